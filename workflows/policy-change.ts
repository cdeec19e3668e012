import { continueAsNew, defineQuery, proxyActivities, setHandler, sleep, upsertSearchAttributes, workflowInfo } from '@temporalio/workflow';
import type { Activities } from '../activities';
import { PolicyVersion } from './search-attributes';

const campaignActivities = (heartbeatTimeoutMs: number) =>
  proxyActivities<Activities>({
    startToCloseTimeout: '10 minutes',
    // A worker killed mid-slice is noticed within this; the retry resumes with what is still pending.
    heartbeatTimeout: heartbeatTimeoutMs,
    // An SMTP outage is waited out here too.
    retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '2 minutes' },
  });

export interface PolicyChangeInput {
  version: string;
  effectiveAt: string;
  material: boolean;
  batchSize?: number;
  /** MAIL_CONCURRENCY: notices in flight at once. */
  concurrency?: number;
  /** POLICY_CATCHUP_INTERVAL in ms: how often people registered since are caught up before the date. */
  catchUpIntervalMs?: number;
  /** How long a silent slice may go before it is retried elsewhere (default 30 s). */
  heartbeatTimeoutMs?: number;
  /** Waits before giving permanently failed notices another try. */
  retryDelaysMs?: number[];
  state?: PolicyChangeProgress;
}

export interface PolicyChangeProgress {
  phase: 'notifying' | 'catching-up' | 'waiting' | 'current';
  cursor: string | null;
  sent: number;
  failed: number;
  retryRound: number;
}

export const policyProgressQuery = defineQuery<PolicyChangeProgress>('policyProgress');

/**
 * D12: publishes a policy version. For a material change every registered person gets exactly
 * one notice (an outbox row per version and person) before the effective date; then, at the
 * date (a durable timer), the version becomes current.
 */
export async function policyChange(input: PolicyChangeInput): Promise<PolicyChangeProgress> {
  const progress: PolicyChangeProgress = input.state ?? { phase: input.material ? 'notifying' : 'waiting', cursor: '00000000-0000-0000-0000-000000000000', sent: 0, failed: 0, retryRound: 0 };
  upsertSearchAttributes([{ key: PolicyVersion, value: input.version }]);
  const { sendPolicyNotices, retryFailedNotices, makePolicyCurrent } = campaignActivities(input.heartbeatTimeoutMs ?? 30_000);
  setHandler(policyProgressQuery, () => progress);
  const effectiveAt = Date.parse(input.effectiveAt);
  const slice = { version: input.version, batchSize: input.batchSize ?? 1000, concurrency: input.concurrency ?? 5, timeBudgetMs: 10_000 };

  const carryOn = async () => {
    if (workflowInfo().continueAsNewSuggested) await continueAsNew<typeof policyChange>({ ...input, state: progress });
  };

  /** Runs slices until the pass is done, keeping the totals. */
  const pass = async (cursor: string | null) => {
    for (;;) {
      const r = await sendPolicyNotices({ ...slice, cursor });
      if (r.totals) {
        progress.sent = r.totals.sent;
        progress.failed = r.totals.failed;
      } else {
        progress.sent += r.sent;
        progress.failed += r.failed;
      }
      if (cursor !== null) progress.cursor = cursor = r.cursor;
      if (r.done) return;
      await carryOn();
    }
  };

  if (progress.phase === 'notifying') {
    await pass(progress.cursor);
    progress.phase = 'catching-up';
    await carryOn();
  }
  if (progress.phase === 'catching-up') {
    // People registered while the first pass ran, then failed deliveries once more after a pause.
    await pass(null);
    const delays = input.retryDelaysMs ?? [60_000, 600_000];
    while (progress.failed > 0 && progress.retryRound < delays.length && Date.now() + delays[progress.retryRound]! < effectiveAt) {
      await sleep(delays[progress.retryRound]!);
      progress.retryRound += 1;
      const retried = await retryFailedNotices({ version: input.version });
      if (retried > 0) {
        progress.failed -= retried;
        await pass(null);
      }
    }
    progress.phase = 'waiting';
  }

  // Until the date: keep telling people who register meanwhile.
  while (input.material && Date.now() < effectiveAt) {
    await sleep(Math.min(input.catchUpIntervalMs ?? 3_600_000, effectiveAt - Date.now()));
    await pass(null);
    await carryOn();
  }
  if (Date.now() < effectiveAt) await sleep(effectiveAt - Date.now());
  await makePolicyCurrent({ version: input.version });
  progress.phase = 'current';
  return progress;
}
