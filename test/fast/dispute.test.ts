import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WorkflowUpdateStage } from '@temporalio/client';
import { addRecordingsUpdate, resolveUpdate, type dispute, type DisputeInput } from '../../workflows/dispute';
import { disputeWorkflowId } from '../../workflows/ids';
import { waitFor } from '../support/wait';
import { EventType, eventTypesOf, gate, startFakeWorker, type FakeWorker } from './fake-worker';
import { updateRefusal } from '../support/updates';

/** Who resolves: the fake activities check nothing, the real ones check this staff token id in Postgres. */
const OFFICER = '00000000-0000-4000-8000-000000000001';
let w: FakeWorker;
/** placeHolds waits on this while set: an addRecordings handler still in flight. */
let holdsGate: ReturnType<typeof gate> | undefined;
/** resolveDispute waits on this while set: a resolve in flight. */
let resolveGate: ReturnType<typeof gate> | undefined;

beforeAll(async () => {
  w = await startFakeWorker({
    async placeHolds({ recordingIds }) {
      await holdsGate?.promise;
      return { recordingIds };
    },
    async resolveDispute() {
      await resolveGate?.promise;
      return { deleted: [] };
    },
    async sendStaffEmail({ key }) {
      return { messageId: `<${key}@fast>` };
    },
  });
});
afterAll(async () => w?.stop());

const disputeInput = (extra: Partial<DisputeInput> = {}): DisputeInput => ({ disputeId: randomUUID(), clientId: randomUUID(), reviewIntervalMs: 1_500, ...extra });
const start = (input: DisputeInput) =>
  w.client.workflow.start<typeof dispute>('dispute', { workflowId: disputeWorkflowId(input.disputeId), taskQueue: w.taskQueue, args: [input] });
const callsOf = (disputeId: string, name: string) => w.calls.filter((c) => c.name === name && JSON.stringify(c.input).includes(disputeId));
const recording = () => randomUUID();

describe('dispute (fast tier: real workflow, fake activities)', () => {
  it('a resolve that finishes while the run waits for its handlers before continuing as new ends the dispute: one final run, resolved', async () => {
    holdsGate = gate();
    const input = disputeInput({ remindersPerRun: 1 });
    const handle = await start(input);
    const firstRunId = handle.firstExecutionRunId;
    // An addRecordings handler in flight (its placeHolds held) when the first reminder makes the run full.
    await handle.startUpdate(addRecordingsUpdate, { args: [{ recordingIds: [recording()] }], waitForStage: WorkflowUpdateStage.ACCEPTED });
    await waitFor(() => callsOf(input.disputeId, 'placeHolds').length === 1, { what: 'the holds to be placed' });

    // The reminder is sent, then the run waits for the handler before continuing as new: no timer after it.
    await waitFor(
      async () => {
        const types = await eventTypesOf(handle);
        const completed = types.lastIndexOf(EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED);
        return completed > 0 && types.at(-1) === EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED && !types.slice(completed).includes(EventType.EVENT_TYPE_TIMER_STARTED);
      },
      { what: 'the run to wait for its handlers after the first reminder', timeoutMs: 10_000 },
    );
    expect(callsOf(input.disputeId, 'sendStaffEmail')).toHaveLength(1);

    // The resolve is accepted (the status is still open) and finishes while addRecordings is held.
    expect(await handle.executeUpdate(resolveUpdate, { args: [{ resolvedBy: OFFICER }] })).toEqual({ deleted: [] });
    holdsGate.open();
    holdsGate = undefined;

    // Before the fix, the run continued as new into an "open" run that reminded staff again.
    const closed = await waitFor(
      async () => {
        const d = await w.client.workflow.getHandle(handle.workflowId).describe();
        return d.status.name !== 'RUNNING' ? d : undefined;
      },
      { what: 'the dispute to close', timeoutMs: 10_000 },
    );
    expect(closed.status.name).toBe('COMPLETED');
    expect(closed.runId, 'the run that took the resolve is the final one').toBe(firstRunId);
    expect(await handle.result()).toMatchObject({ status: 'resolved' });
    expect(callsOf(input.disputeId, 'resolveDispute')).toHaveLength(1);
    expect(callsOf(input.disputeId, 'sendStaffEmail'), 'no reminder after the resolve').toHaveLength(1);
  });

  it('continues as new with its holds and reminder count, and a resolve in a later run ends it', async () => {
    const input = disputeInput({ remindersPerRun: 1, reviewIntervalMs: 400 });
    const handle = await start(input);
    const held = [recording(), recording()];
    await handle.executeUpdate(addRecordingsUpdate, { args: [{ recordingIds: held }] });
    await waitFor(() => callsOf(input.disputeId, 'sendStaffEmail').length >= 3, { what: 'three reminders (three runs)', timeoutMs: 10_000 });

    const latest = w.client.workflow.getHandle(handle.workflowId);
    expect(await latest.executeUpdate(resolveUpdate, { args: [{ resolvedBy: OFFICER }] })).toEqual({ deleted: [] });
    const result = await handle.result(); // follows the runs
    expect(result).toMatchObject({ status: 'resolved', recordingIds: held });
    expect((await latest.describe()).runId).not.toBe(handle.firstExecutionRunId);
    // Each run's reminder carries on the count and names the holds of the runs before.
    const keys = callsOf(input.disputeId, 'sendStaffEmail').map((c) => (c.input as { key: string; subject: string }).key);
    expect(keys.slice(0, 3)).toEqual([1, 2, 3].map((n) => `dispute:${input.disputeId}:review:${n}`));
    for (const c of callsOf(input.disputeId, 'sendStaffEmail')) expect((c.input as { subject: string }).subject).toContain('(2 recording(s) on hold)');
  });

  it('validators refuse bad ids and anything after the resolve, before any activity runs', async () => {
    const input = disputeInput({ reviewIntervalMs: 60_000 });
    const handle = await start(input);
    expect(await updateRefusal(handle.executeUpdate(addRecordingsUpdate, { args: [{ recordingIds: ['not-a-uuid'] }] }))).toBe('InvalidRecordingIds');
    expect(await updateRefusal(handle.executeUpdate(addRecordingsUpdate, { args: [{ recordingIds: [] }] }))).toBe('InvalidRecordingIds');
    expect(callsOf(input.disputeId, 'placeHolds')).toHaveLength(0);

    resolveGate = gate();
    await handle.startUpdate(resolveUpdate, { args: [{ resolvedBy: OFFICER }], waitForStage: WorkflowUpdateStage.ACCEPTED });
    // While the resolve is carried out, a second one and new holds are refused.
    expect(await updateRefusal(handle.executeUpdate(resolveUpdate, { args: [{ resolvedBy: OFFICER }] }))).toBe('DisputeNotOpen');
    expect(await updateRefusal(handle.executeUpdate(addRecordingsUpdate, { args: [{ recordingIds: [recording()] }] }))).toBe('DisputeNotOpen');
    resolveGate.open();
    resolveGate = undefined;
    expect(await handle.result()).toMatchObject({ status: 'resolved' });
    expect(callsOf(input.disputeId, 'resolveDispute')).toHaveLength(1);
    expect(callsOf(input.disputeId, 'placeHolds')).toHaveLength(0);
  });
});
