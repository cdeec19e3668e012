import { randomUUID } from 'node:crypto';
import { Context } from '@temporalio/activity';
import type { Sql } from '../db/index';
import type { Mailer } from '../lib/mailer';
import { recordSystemCheck as insertSystemCheck } from '../db/system-checks';
import { deliverEmail, sealLegacyBodies } from './email';
import { createRecordingActivities } from './recordings';
import { createRequestActivities } from './requests';
import { createPolicyActivities } from './policies';
import { createTransferActivities } from './transfers';
import { createAccountActivities } from './account';
import type { RecordingStore } from '../lib/recording-store';
import { personKeysFor, type PersonKeys } from '../db/person-keys';
import { sweepRetention, type RetentionPeriods } from '../db/personal-data';
import { addCalendarDuration, subtractCalendarDuration } from '../lib/durations';
import { startPendingWorkflows } from '../lib/workflow-starts';

/** Everything activities touch, built once by worker/main.ts (or by a test with real parts). */
export interface ActivityDeps {
  sql: Sql;
  mailer: Mailer;
  store: RecordingStore;
  config: { DATABASE_URL: string; MAIL_FROM: string; STAFF_EMAIL: string; PUBLIC_URL: string; DATA_DIR: string; PASSWORD_LINK_TTL: string; DATA_KEYS?: string; DATA_KEY_ID?: string; DATA_KEY_MAX_AGE: string; NODE_ENV?: string } & RetentionPeriods;
  /** Issue 12: the person data keys (db/person-keys.ts); unset, the pool's own (personKeysFor). */
  keys?: PersonKeys;
}

export function createActivities(given: ActivityDeps) {
  const deps = { ...given, keys: given.keys ?? personKeysFor(given.sql, given.config) };
  const emailDeps = { sql: deps.sql, mailer: deps.mailer, mailFrom: deps.config.MAIL_FROM, keys: deps.keys };

  /**
   * Issue 12, part of the data-retention sweep: every live data key is re-wrapped under the
   * current master key (so older ones can be retired, and with them what backups taken under
   * them could open), outbox bodies from before sealing are sealed, and staff are emailed once a
   * day while the current master key is older than DATA_KEY_MAX_AGE (the erasure answer promises
   * that bound) or keys are wrapped by a master key no longer in DATA_KEYS.
   */
  async function keepKeysCurrent(): Promise<Record<string, number>> {
    const heartbeat = () => Context.current().heartbeat();
    let rewrapped = 0;
    for (let n = await deps.keys.rewrapBatch(); n > 0; n = await deps.keys.rewrapBatch()) {
      rewrapped += n;
      heartbeat();
    }
    let sealed = 0;
    for (let after: string | null = ''; after !== null; heartbeat()) {
      const batch = await sealLegacyBodies(deps.sql, deps.keys, after);
      sealed += batch.sealed;
      after = batch.lastKey;
    }
    const status = await deps.keys.masterKeyStatus();
    const due = addCalendarDuration(status.currentSince, deps.config.DATA_KEY_MAX_AGE);
    const now = new Date();
    if (due <= now || status.liveUnderMissingKeys > 0) {
      const problems = [
        ...(due <= now
          ? [`The current master key of DATA_KEYS (id ${status.currentKeyId}) has been in use since ${status.currentSince.toISOString()}, longer than DATA_KEY_MAX_AGE (${deps.config.DATA_KEY_MAX_AGE}). Erasure answers promise that database backups stop opening erased data within that time: put a new key first in DATA_KEYS, restart, let the data-retention sweep re-wrap the keys (GET /v1/retention/data shows how many remain), then remove the old key from DATA_KEYS and the secret store.`]
          : []),
        ...(status.liveUnderMissingKeys > 0
          ? [`${status.liveUnderMissingKeys} live data key(s) are wrapped by a master key that is no longer in DATA_KEYS: what they seal does not open. Put that key back behind the current one.`]
          : []),
      ];
      await deliverEmail(emailDeps, {
        key: `data-keys:${status.currentKeyId}:${now.toISOString().slice(0, 10)}`,
        to: deps.config.STAFF_EMAIL,
        category: 'service',
        subject: 'Data master keys need attention (DATA_KEYS)',
        text: problems.join('\n\n') + '\n',
      });
    }
    return { person_keys_rewrapped: rewrapped, email_outbox_sealed: sealed };
  }
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
      Object.assign(counts, await keepKeysCurrent());
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
