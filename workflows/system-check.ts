import { proxyActivities, workflowInfo } from '@temporalio/workflow';
import type { Activities } from '../activities';

const { recordSystemCheck, sendStaffEmail } = proxyActivities<Activities>({
  startToCloseTimeout: '30 seconds',
  retry: { maximumAttempts: 5, initialInterval: '1 second' },
});

export interface SystemCheckResult {
  checkId: string;
  databaseTime: string;
  emailMessageId: string;
}

/** The smallest real run: Temporal → worker → Postgres → SMTP, proving the stack is wired. */
export async function systemCheck(input: { checkId: string }): Promise<SystemCheckResult> {
  const { databaseTime } = await recordSystemCheck({ checkId: input.checkId });
  const { messageId } = await sendStaffEmail({
    key: `system-check:${input.checkId}`,
    subject: `System check ${input.checkId} passed`,
    text:
      `The privacy back office ran system check ${input.checkId} end to end.\n` +
      `Workflow: ${workflowInfo().workflowId}\nDatabase time: ${databaseTime}\n`,
  });
  return { checkId: input.checkId, databaseTime, emailMessageId: messageId };
}
