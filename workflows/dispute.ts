import {
  ActivityFailure,
  ApplicationFailure,
  allHandlersFinished,
  condition,
  continueAsNew,
  defineUpdate,
  patched,
  proxyActivities,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { Activities } from '../activities';
import { ClientId, DisputeStatus } from './search-attributes';
import { ACTOR_NOT_ALLOWED } from './request-types';

const { placeHolds, resolveDispute, sendStaffEmail } = proxyActivities<Activities>({
  startToCloseTimeout: '1 minute',
  retry: { initialInterval: '1 second', maximumInterval: '30 seconds' },
});

export interface DisputeInput {
  disputeId: string;
  clientId: string;
  /** DISPUTE_REVIEW_INTERVAL in ms: staff are reminded this often while the dispute is open. */
  reviewIntervalMs: number;
  state?: { recordingIds: string[]; reminders: number };
  /**
   * Continue as new after this many reminders in one run, besides when Temporal suggests it
   * (tests set it to cross runs in seconds; production leaves it unset). Input only: replay-safe.
   */
  remindersPerRun?: number;
}

export interface DisputeState {
  disputeId: string;
  status: 'open' | 'resolving' | 'resolved';
  recordingIds: string[];
  deleted: string[];
  reminders: number;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export const addRecordingsUpdate = defineUpdate<{ recordingIds: string[] }, [{ recordingIds: string[] }]>('addRecordings');
/**
 * `resolvedBy`: the staff token id of who resolves (the API sends it). The activity checks it in
 * Postgres (issue 12); runs resolved before it was sent carried no argument.
 */
export const resolveUpdate = defineUpdate<{ deleted: string[] }, [{ resolvedBy?: string } | undefined]>('resolve');

/**
 * Patch (docs/workflow-changes.md, issue 13): a run about to continue as new waits for its
 * handlers first; a resolve that finished meanwhile used to be lost, the next run starting
 * "open" again. Now the run re-checks after the wait and ends resolved. Only that path calls
 * `patched()`, so runs that never met the race have the same commands as before.
 */
export const DISPUTE_RECHECK_BEFORE_CONTINUE = 'dispute-recheck-before-continue-as-new';

/** Lets the caller of an update see the activity's own failure type (e.g. RecordingDeleted). */
function unwrapActivityFailure(err: unknown): never {
  if (err instanceof ActivityFailure && err.cause instanceof ApplicationFailure) throw err.cause;
  throw err;
}

/**
 * D4 and GDPR 17(3)(e): holds named recordings while a dispute is open, reminds staff to
 * review it, and on resolution deletes at once the held recordings already past deadline.
 */
export async function dispute(input: DisputeInput): Promise<DisputeState> {
  const state: DisputeState = {
    disputeId: input.disputeId,
    status: 'open',
    recordingIds: input.state?.recordingIds ?? [],
    deleted: [],
    reminders: input.state?.reminders ?? 0,
  };
  upsertSearchAttributes([
    { key: ClientId, value: input.clientId },
    { key: DisputeStatus, value: 'open' },
  ]);

  // No query: Postgres holds the dispute and its holds (GET /v1/disputes/{id}); the state here
  // serves the validators, the reminders and the continue-as-new (docs/recordings.md).
  let remindersThisRun = 0;

  setHandler(
    addRecordingsUpdate,
    async ({ recordingIds }) => {
      // The update answers only once the holds are committed in Postgres.
      await placeHolds({ disputeId: input.disputeId, recordingIds }).catch(unwrapActivityFailure);
      for (const id of recordingIds) if (!state.recordingIds.includes(id)) state.recordingIds.push(id);
      return { recordingIds: state.recordingIds };
    },
    {
      validator: ({ recordingIds }) => {
        if (state.status !== 'open') throw ApplicationFailure.nonRetryable('the dispute is resolved', 'DisputeNotOpen');
        if (!Array.isArray(recordingIds) || recordingIds.length === 0 || recordingIds.length > 1000 || !recordingIds.every((id) => UUID.test(id))) {
          throw ApplicationFailure.nonRetryable('recordingIds must be 1 to 1000 recording ids', 'InvalidRecordingIds');
        }
      },
    },
  );

  setHandler(
    resolveUpdate,
    async (by: { resolvedBy?: string } | undefined) => {
      state.status = 'resolving';
      const { deleted } = await resolveDispute({ disputeId: input.disputeId, resolvedBy: by?.resolvedBy }).catch((err: unknown) => {
        // Refused below the API (issue 12: the actor may not resolve disputes): the holds stay, the dispute stays open.
        if (err instanceof ActivityFailure && err.cause instanceof ApplicationFailure && err.cause.type === ACTOR_NOT_ALLOWED) state.status = 'open';
        return unwrapActivityFailure(err);
      });
      state.deleted = deleted;
      state.status = 'resolved';
      upsertSearchAttributes([{ key: DisputeStatus, value: 'resolved' }]);
      return { deleted };
    },
    {
      validator: (_by: { resolvedBy?: string } | undefined) => {
        if (state.status !== 'open') throw ApplicationFailure.nonRetryable('the dispute is already resolved', 'DisputeNotOpen');
      },
    },
  );

  while (state.status !== 'resolved') {
    const settled = await condition(() => state.status === 'resolved', input.reviewIntervalMs);
    if (settled) break;
    if (state.status === 'open') {
      state.reminders += 1;
      remindersThisRun += 1;
      await sendStaffEmail({
        key: `dispute:${input.disputeId}:review:${state.reminders}`,
        subject: `Dispute ${input.disputeId} is still open (${state.recordingIds.length} recording(s) on hold)`,
        text:
          `Dispute ${input.disputeId} still holds ${state.recordingIds.length} call recording(s) past the normal deletion.\n` +
          `Review it, and resolve it when it is settled so the recordings can be deleted (privacy policy D4).\n` +
          `Reminder ${state.reminders}.\n`,
      });
    }
    const runIsFull = workflowInfo().continueAsNewSuggested || (input.remindersPerRun !== undefined && remindersThisRun >= input.remindersPerRun);
    if (runIsFull && state.status === 'open') {
      await condition(allHandlersFinished);
      // A resolve may have been accepted and finished while the handlers were awaited.
      if (state.status !== 'open' && patched(DISPUTE_RECHECK_BEFORE_CONTINUE)) continue;
      await continueAsNew<typeof dispute>({ ...input, state: { recordingIds: state.recordingIds, reminders: state.reminders } });
    }
  }
  await condition(allHandlersFinished);
  return state;
}
