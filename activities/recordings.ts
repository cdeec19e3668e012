import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import type { Sql, Tx } from '../db/index';
import { prepareReceipts, receiptsOfDispute, type DeletionReason } from '../db/receipts';
import { appendPrepared } from '../db/hash-chain';
import { lockDueRecordings, tombstoneDeletable, type TombstonedRow } from '../db/recordings';
import { lockDispute } from '../db/disputes';
import type { RecordingStore } from '../lib/recording-store';
import type { EraseContext } from '../db/personal-data';
import { appendLedger, prepareLedger } from '../db/audit-ledger';
import { requireStaffActor } from './actors';

export interface RecordingDeps {
  sql: Sql;
  store: RecordingStore;
}

interface DeletionContext {
  reason: DeletionReason;
  workflowId: string;
  runId: string;
  disputeId: string | null;
}

/**
 * Finishes the deletion of recordings this transaction has tombstoned (`tombstoneDeletable`):
 * unlinks their audio and appends a chained receipt and a ledger entry each, all before the
 * transaction commits. A crash in between rolls the rows back to 'retained' and the next
 * attempt finishes the job (unlinking missing audio is not an error).
 */
export async function deleteConfirmed(tx: Tx, store: RecordingStore, rows: TombstonedRow[], ctx: DeletionContext): Promise<string[]> {
  if (rows.length === 0) return [];
  const ids = rows.map((r) => r.id);
  // Made before the chains' locks, which are held to the commit: under them only linking and inserting.
  const receipts = prepareReceipts(
    rows.map((r) => ({
      recordingId: r.id,
      clientId: r.clientId,
      recordedAt: r.recordedAt,
      deleteAfter: r.deleteAfter,
      deletedAt: r.deletedAt,
      audioSha256: r.audioSha256,
      ...ctx,
    })),
  );
  const ledger = prepareLedger(ids.map((id) => ({ actor: { type: 'system', id: null, role: ctx.reason }, action: 'recording.delete', outcome: 'done', objectType: 'recording', objectId: id })));
  await store.deleteMany(rows.map((r) => r.audioKey), tx);
  // The receipts' chain before the ledger's, always in that order, so two appenders never deadlock.
  await appendPrepared(tx, [receipts, ledger]);
  return ids;
}

/**
 * What an erasure through the personal-data map needs to delete recordings: the same locked
 * delete as the sweep, with receipts naming the run that erased them (a request or a transfer).
 */
export function erasureContext(
  deps: { store: RecordingStore; dataDir: string },
  by: { requestId: string | null; reason: 'erasure' | 'objection'; workflowId: string; runId: string },
): EraseContext {
  return {
    requestId: by.requestId,
    reason: by.reason,
    store: deps.store,
    dataDir: deps.dataDir,
    deleteRecordings: (tx, rows) => deleteConfirmed(tx, deps.store, rows, { reason: by.reason, workflowId: by.workflowId, runId: by.runId, disputeId: null }),
  };
}

/** One transaction: lock a batch of due, unheld recordings, re-check holds, delete. */
export async function sweepBatch(deps: RecordingDeps, input: { dueBefore: Date; batchSize: number; ctx: DeletionContext }): Promise<number> {
  return deps.sql.begin(async (tx) => {
    const locked = await lockDueRecordings(tx, input.dueBefore, input.batchSize);
    const rows = await tombstoneDeletable(tx, locked, input.dueBefore);
    return (await deleteConfirmed(tx, deps.store, rows, input.ctx)).length;
  });
}

/** Two transactions at once: in-process runs of the sweep on this 2-core machine went from ~16 s to ~11 s per 30,000 with two lanes; three were no faster. */
export const SWEEP_LANES = 2;

export interface SweepProgress {
  deleted: number;
  batches: number;
}

export function createRecordingActivities(deps: RecordingDeps) {
  return {
    /**
     * Deletes every recording due before `dueBefore` and not held, batch by batch, until none
     * is left or the time budget is spent (the workflow then calls again). Each batch commits
     * on its own and heartbeats; the work resumes naturally after a crash because deleted rows
     * are no longer due, and the retry recounts this run's receipts so nothing is counted twice.
     */
    async sweepExpiredRecordings(input: {
      dueBefore: string;
      batchSize: number;
      timeBudgetMs: number;
      /** What this run's earlier calls already reported, so a retry can count exactly. */
      countedThisRun: number;
      /** Batches in flight at once (default SWEEP_LANES). */
      lanes?: number;
    }): Promise<SweepProgress & { done: boolean }> {
      const context = Context.current();
      const { workflowId = 'unknown', runId = 'unknown' } = context.info.workflowExecution ?? {};
      const progress: SweepProgress = { deleted: 0, batches: (context.info.heartbeatDetails as SweepProgress | undefined)?.batches ?? 0 };
      if (context.info.attempt > 1) {
        // Resuming after a crash: batches committed before it have receipts naming this run.
        const [row] = await deps.sql<{ n: number }[]>`select count(*)::int as n from deletion_receipts where run_id = ${runId}`;
        progress.deleted = row!.n - input.countedThisRun;
      }
      const started = Date.now();
      const dueBefore = new Date(input.dueBefore);
      // Lanes: each its own transaction on its own rows (SKIP LOCKED), so one lane's Postgres
      // work (re-check, receipts, ledger) overlaps another's unlinking. The chains' locks still
      // line up their appends, so the receipt chain stays one line.
      let done = false;
      const lane = async () => {
        for (;;) {
          if (context.cancellationSignal.aborted) throw context.cancellationSignal.reason;
          if (done || Date.now() - started > input.timeBudgetMs) return;
          const deleted = await sweepBatch(deps, { dueBefore, batchSize: input.batchSize, ctx: { reason: 'retention', workflowId, runId, disputeId: null } });
          progress.deleted += deleted;
          progress.batches += 1;
          context.heartbeat(progress);
          // Nothing left for this lane: what is not locked by another lane is gone.
          if (deleted === 0) {
            done = true;
            return;
          }
        }
      };
      await Promise.all(Array.from({ length: Math.max(1, input.lanes ?? SWEEP_LANES) }, lane));
      return { ...progress, done };
    },

    /**
     * Places a dispute's holds on recordings of its client. All or nothing; answers only once
     * the holds are committed, so the caller can rely on them.
     */
    async placeHolds(input: { disputeId: string; recordingIds: string[] }): Promise<{ recordingIds: string[] }> {
      return deps.sql.begin(async (tx) => {
        const dispute = await lockDispute(tx, input.disputeId);
        if (!dispute) throw ApplicationFailure.nonRetryable('no such dispute', 'DisputeNotFound');
        if (dispute.status !== 'open') throw ApplicationFailure.nonRetryable('the dispute is resolved', 'DisputeNotOpen');
        // FOR SHARE conflicts with the sweep's FOR UPDATE: a hold and a delete of one row serialize.
        const rows = await tx<{ id: string; clientId: string; status: string }[]>`
          select id, client_id as "clientId", status from recordings where id = any(${input.recordingIds}::uuid[]) for share`;
        const found = new Map(rows.map((r) => [r.id, r]));
        const unknown = input.recordingIds.filter((id) => !found.has(id));
        if (unknown.length) throw ApplicationFailure.nonRetryable('unknown recordings', 'UnknownRecordings', { recordingIds: unknown });
        const foreign = rows.filter((r) => r.clientId !== dispute.clientId).map((r) => r.id);
        if (foreign.length) throw ApplicationFailure.nonRetryable("recordings of another client", 'RecordingOfAnotherClient', { recordingIds: foreign });
        const gone = rows.filter((r) => r.status === 'deleted').map((r) => r.id);
        if (gone.length) throw ApplicationFailure.nonRetryable('recordings already deleted', 'RecordingDeleted', { recordingIds: gone });
        await tx`
          insert into recording_holds ${tx(input.recordingIds.map((id) => ({ recording_id: id, dispute_id: input.disputeId })))}
          on conflict (recording_id, dispute_id) do nothing`;
        return { recordingIds: input.recordingIds };
      });
    },

    /**
     * Releases a dispute's holds and, in the same transaction, deletes each released recording
     * that is past its deadline and held by no other dispute (receipts name the dispute). The
     * rest fall back to the schedule. Idempotent: a retry reports what the first attempt deleted.
     */
    async resolveDispute(input: { disputeId: string; resolvedBy?: string }): Promise<{ deleted: string[] }> {
      const { workflowId = 'unknown', runId = 'unknown' } = Context.current().info.workflowExecution ?? {};
      // Below the API (issue 12): the resolving actor must hold the API's role for it, checked in Postgres.
      const act = { action: 'dispute.resolve', objectType: 'dispute', objectId: input.disputeId } as const;
      const actor = await requireStaffActor(deps.sql, input.resolvedBy, ['privacy_officer'], act);
      await deps.sql.begin(async (tx) => {
        const dispute = await lockDispute(tx, input.disputeId);
        if (!dispute) throw ApplicationFailure.nonRetryable('no such dispute', 'DisputeNotFound');
        const held = await tx<{ id: string }[]>`
          select r.id from recordings r join recording_holds h on h.recording_id = r.id
          where h.dispute_id = ${input.disputeId} order by r.id for update of r`;
        const now = new Date();
        await tx`update recording_holds set released_at = ${now} where dispute_id = ${input.disputeId} and released_at is null`;
        const rows = await tombstoneDeletable(tx, held.map((r) => r.id), now, now);
        await deleteConfirmed(tx, deps.store, rows, { reason: 'dispute_resolved', workflowId, runId, disputeId: input.disputeId });
        await tx`update disputes set status = 'resolved', resolved_at = coalesce(resolved_at, ${now}) where id = ${input.disputeId}`;
        await appendLedger(tx, [{ ...act, actor, outcome: 'done' }], { once: true });
      });
      return { deleted: (await receiptsOfDispute(deps.sql, input.disputeId)).map((r) => r.recordingId) };
    },
  };
}
