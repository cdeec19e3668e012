import { randomUUID } from 'node:crypto';
import { Context } from '@temporalio/activity';
import type { Sql } from '../db/index';
import type { Mailer } from '../lib/mailer';
import { recordSystemCheck as insertSystemCheck } from '../db/system-checks';
import { deliverEmail } from './email';
import { createRecordingActivities } from './recordings';
import { createRequestActivities } from './requests';
import { createPolicyActivities } from './policies';
import { createTransferActivities } from './transfers';
import { createAccountActivities } from './account';
import type { RecordingStore } from '../lib/recording-store';
import { personKeysFor, type PersonKeys } from '../db/person-keys';
import { sweepRetention, type RetentionPeriods } from '../db/personal-data';
import { subtractCalendarDuration } from '../lib/durations';
import { startPendingWorkflows } from '../lib/workflow-starts';

/** Everything activities touch, built once by worker/main.ts (or by a test with real parts). */
export interface ActivityDeps {
  sql: Sql;
  mailer: Mailer;
  store: RecordingStore;
  config: { DATABASE_URL: string; MAIL_FROM: string; STAFF_EMAIL: string; PUBLIC_URL: string; DATA_DIR: string; PASSWORD_LINK_TTL: string; DATA_KEYS?: string; DATA_KEY_ID?: string; NODE_ENV?: string } & RetentionPeriods;
  /** Issue 12: the person data keys (db/person-keys.ts); unset, the pool's own (personKeysFor). */
  keys?: PersonKeys;
}

export function createActivities(given: ActivityDeps) {
  const deps = { ...given, keys: given.keys ?? personKeysFor(given.sql, given.config) };
  const emailDeps = { sql: deps.sql, mailer: deps.mailer, mailFrom: deps.config.MAIL_FROM, keys: deps.keys };
  return {
    ...createRecordingActivities({ sql: deps.sql, store: deps.store }),
    ...createRequestActivities(deps),
    ...createPolicyActivities(deps),
    ...createTransferActivities(deps),
    ...createAccountActivities(deps),

    /** Records that a system check reached the worker and Postgres; returns the database's time. */
    async recordSystemCheck(input: { checkId: string }): Promise<{ databaseTime: string }> {
      const workflowId = Context.current().info.workflowExecution?.workflowId ?? 'unknown';
      const completedAt = await insertSystemCheck(deps.sql, { id: input.checkId, workflowId });
      return { databaseTime: completedAt.toISOString() };
    },

    /**
     * D15: one pass over every place of the personal-data map that has a retention period. Each
     * place commits on its own; a retry only finds what an earlier attempt left, and the counts
     * of all attempts of one run add up in data_retention_runs.
     */
    async sweepPersonalData(_input: Record<string, never>): Promise<Record<string, number>> {
      const info = Context.current().info.workflowExecution;
      const counts = await sweepRetention(deps.sql, deps.config, { dataDir: deps.config.DATA_DIR, subtract: subtractCalendarDuration });
      const [row] = await deps.sql<{ counts: Record<string, number> }[]>`
        insert into data_retention_runs (workflow_id, run_id, counts) values (${info?.workflowId ?? 'manual'}, ${info?.runId ?? randomUUID()}, ${deps.sql.json(counts)})
        on conflict (run_id) do update set finished_at = now(), counts = (
          select jsonb_object_agg(k, coalesce((data_retention_runs.counts ->> k)::int, 0) + coalesce((excluded.counts ->> k)::int, 0))
          from jsonb_object_keys(data_retention_runs.counts || excluded.counts) k)
        returning counts`;
      return row!.counts;
    },

    /** Issue 13: starts workflows recorded beside their rows but never started (a crash between commit and start). */
    async startPendingWorkflows(input: { olderThanMs: number }): Promise<{ started: number; existed: number }> {
      return startPendingWorkflows(Context.current().client, deps.sql, input.olderThanMs);
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
