import { Context } from '@temporalio/activity';
import type { Sql } from '../db/index';
import type { Mailer } from '../lib/mailer';
import { recordSystemCheck as insertSystemCheck } from '../db/system-checks';
import { deliverEmail } from './email';
import { createRecordingActivities } from './recordings';
import { createRequestActivities } from './requests';
import { createPolicyActivities } from './policies';
import type { RecordingStore } from '../lib/recording-store';

/** Everything activities touch, built once by worker/main.ts (or by a test with real parts). */
export interface ActivityDeps {
  sql: Sql;
  mailer: Mailer;
  store: RecordingStore;
  config: { DATABASE_URL: string; MAIL_FROM: string; STAFF_EMAIL: string; PUBLIC_URL: string; DATA_DIR: string; EXPORT_LINK_TTL: string; PASSWORD_LINK_TTL: string };
}

export function createActivities(deps: ActivityDeps) {
  const emailDeps = { sql: deps.sql, mailer: deps.mailer, mailFrom: deps.config.MAIL_FROM };
  return {
    ...createRecordingActivities({ sql: deps.sql, store: deps.store }),
    ...createRequestActivities(deps),
    ...createPolicyActivities(deps),

    /** Records that a system check reached the worker and Postgres; returns the database's time. */
    async recordSystemCheck(input: { checkId: string }): Promise<{ databaseTime: string }> {
      const workflowId = Context.current().info.workflowExecution?.workflowId ?? 'unknown';
      const completedAt = await insertSystemCheck(deps.sql, { id: input.checkId, workflowId });
      return { databaseTime: completedAt.toISOString() };
    },

    /** A service email to the staff mailbox (STAFF_EMAIL); the address never enters workflow history. */
    async sendStaffEmail(input: { key: string; subject: string; text: string }): Promise<{ messageId: string }> {
      const { messageId } = await deliverEmail(emailDeps, {
        key: input.key,
        to: deps.config.STAFF_EMAIL,
        category: 'service',
        subject: input.subject,
        text: input.text,
      });
      return { messageId };
    },
  };
}

export type Activities = ReturnType<typeof createActivities>;
