import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { appFor, json } from './support/api';
import type { TestStack } from './support/stack';
import { useStack } from './support/fixture';
import { fakeAudio, newClient, uploadForm } from './support/recordings';
import { waitFor } from './support/wait';
import { waitForMessage } from './support/mailbox';
import { ensureRetentionSchedule } from '../worker/schedules';
import { RETENTION_SCHEDULE_ID, disputeWorkflowId } from '../workflows/ids';
import { fixedDurationMs } from '../lib/durations';
import { audioKeyFor } from '../lib/recording-store';
import { DisputeStatus } from '../workflows/search-attributes';

// A compressed clock: recordings live 6 s, the sweep runs every 2 s, open disputes remind every 3 s.
const RETENTION_MS = 6_000;
const SWEEP_MS = 2_000;

let s: TestStack;
let app: ReturnType<typeof appFor>;
let support: { authorization: string };
let officer: { authorization: string };
let clientId: string;

const fixture = useStack(
  { RECORDING_RETENTION: 'PT6S', RETENTION_SWEEP_INTERVAL: 'PT2S', DISPUTE_REVIEW_INTERVAL: 'PT3S', STAFF_EMAIL: `dpo-${randomUUID().slice(0, 8)}@topcall.test` },
  { ownDatabase: true, worker: true, roles: ['support', 'privacy_officer'], client: true },
);
beforeAll(async () => {
  ({ s, app, clientId, staff: { support, privacy_officer: officer } } = fixture);
  await ensureRetentionSchedule(s.client, { taskQueue: s.config.TEMPORAL_TASK_QUEUE, intervalMs: fixedDurationMs(s.config.RETENTION_SWEEP_INTERVAL) });
});
// Registered after the fixture, so it runs before the worker stops.
afterAll(async () => {
  await s.client.schedule.getHandle(RETENTION_SCHEDULE_ID).delete().catch(() => {});
});

interface RecordingView {
  id: string;
  status: 'retained' | 'held' | 'deleted';
  deleteAfter: string;
  deletedAt?: string;
  holds: string[];
  receipt?: Record<string, unknown> & { reason: string; deletedAt: string; disputeId: string | null; hash: string; prevHash: string };
}

async function ingest(recordedAt = new Date()): Promise<{ id: string; sha256: string; deleteAfter: string }> {
  const res = await app.request('/v1/recordings', {
    method: 'POST',
    headers: support,
    body: uploadForm({ clientId, recordedAt: recordedAt.toISOString(), durationSeconds: '42' }, { data: fakeAudio(randomUUID().slice(0, 1)) }),
  });
  expect(res.status).toBe(201);
  return (await res.json()) as { id: string; sha256: string; deleteAfter: string };
}

const view = async (id: string) => (await (await app.request(`/v1/recordings/${id}`, { headers: support })).json()) as RecordingView;

async function openDispute(recordingIds: string[]): Promise<string> {
  const res = await app.request('/v1/disputes', json({ clientId, recordingIds, reason: 'The caller disputes what was agreed' }, support));
  expect(res.status).toBe(201);
  const body = (await res.json()) as { id: string; status: string; recordingIds: string[] };
  expect(body).toMatchObject({ status: 'open', recordingIds });
  return body.id;
}

const resolve = async (disputeId: string) => {
  const res = await app.request(`/v1/disputes/${disputeId}/resolve`, json({ resolution: 'Settled with the client' }, officer));
  expect(res.status).toBe(200);
  return (await res.json()) as { id: string; status: string; deleted: string[] };
};

const waitUntilDeleted = (id: string, timeoutMs = RETENTION_MS + 4 * SWEEP_MS + 10_000) =>
  waitFor(async () => {
    const v = await view(id);
    return v.status === 'deleted' ? v : undefined;
  }, { what: `recording ${id} to be deleted`, timeoutMs, intervalMs: 200 });

describe('the retention schedule (D4)', () => {
  let heldId: string;

  it('is created once by the worker at start, idempotently, every RETENTION_SWEEP_INTERVAL, skipping overlaps', async () => {
    // beforeAll created it; a second worker start only brings it in line.
    expect(await ensureRetentionSchedule(s.client, { taskQueue: s.config.TEMPORAL_TASK_QUEUE, intervalMs: SWEEP_MS })).toBe('updated');
    const description = await s.client.schedule.getHandle(RETENTION_SCHEDULE_ID).describe();
    expect(description.spec.intervals).toMatchObject([{ every: SWEEP_MS }]);
    expect(description.policies.overlap).toBe('SKIP');
    expect(description.action).toMatchObject({ type: 'startWorkflow', workflowType: 'retentionSweep', taskQueue: s.config.TEMPORAL_TASK_QUEUE });
  });

  let disputeId: string;

  it('deletes an unheld recording within one sweep interval of its deadline, with a receipt, and its audio is gone', async () => {
    const unheld = await ingest();
    const held = await ingest();
    heldId = held.id;
    disputeId = await openDispute([held.id]);
    expect(await view(held.id)).toMatchObject({ status: 'held', holds: [disputeId] });

    const deleted = await waitUntilDeleted(unheld.id);
    const lateBy = Date.parse(deleted.deletedAt!) - Date.parse(unheld.deleteAfter);
    expect(lateBy).toBeGreaterThanOrEqual(0);
    expect(lateBy).toBeLessThanOrEqual(SWEEP_MS + 1_500);
    expect(deleted.receipt).toMatchObject({
      recordingId: unheld.id,
      clientId,
      deleteAfter: unheld.deleteAfter,
      deletedAt: deleted.deletedAt,
      audioSha256: unheld.sha256,
      reason: 'retention',
      disputeId: null,
    });
    expect(deleted.receipt!.workflowId).toMatch(/^retention-sweep/);
    expect(deleted.receipt!.runId).toMatch(/^[0-9a-f-]{36}$/);
    expect(deleted.receipt!.hash).toMatch(/^[0-9a-f]{64}$/);
    expect(await s.store.exists(audioKeyFor(unheld.id))).toBe(false);
    const audio = await app.request(`/v1/recordings/${unheld.id}/audio`, { headers: support });
    expect(audio.status).toBe(410);
    // The tombstone keeps no link to a person.
    const [row] = await s.sql`select caller_number, customer_id from recordings where id = ${unheld.id}`;
    expect(row).toEqual({ caller_number: null, customer_id: null });
  });

  it('never deletes a held recording, however far past its deadline', async () => {
    const { deleteAfter } = await view(heldId);
    // Let several sweeps run after the deadline.
    await waitFor(async () => Date.now() > Date.parse(deleteAfter) + 3 * SWEEP_MS && (await sweepsSince(Date.parse(deleteAfter))) >= 2, {
      what: 'two sweeps after the held recording’s deadline',
      timeoutMs: RETENTION_MS + 10 * SWEEP_MS,
    });
    expect(await view(heldId)).toMatchObject({ status: 'held', holds: [disputeId] });
    expect(await s.store.exists(audioKeyFor(heldId))).toBe(true);
    expect((await app.request(`/v1/recordings/${heldId}/audio`, { headers: support })).status).toBe(200);
  });

  it('on resolution deletes the held recordings already overdue at once and leaves the others to the schedule', async () => {
    const fresh = await ingest();
    const added = await app.request(`/v1/disputes/${disputeId}/recordings`, json({ recordingIds: [fresh.id] }, support));
    expect(added.status).toBe(200);
    expect(((await added.json()) as { recordingIds: string[] }).recordingIds).toEqual([heldId, fresh.id]);

    const result = await resolve(disputeId);
    expect(result).toEqual({ id: disputeId, status: 'resolved', deleted: [heldId] });
    const held = await view(heldId);
    expect(held.status).toBe('deleted');
    expect(held.receipt).toMatchObject({ reason: 'dispute_resolved', disputeId, workflowId: disputeWorkflowId(disputeId) });
    expect(await s.store.exists(audioKeyFor(heldId))).toBe(false);

    expect(await view(fresh.id)).toMatchObject({ status: 'retained', holds: [] });
    const later = await waitUntilDeleted(fresh.id);
    expect(later.receipt).toMatchObject({ reason: 'retention', disputeId: null });

    const dispute = await (await app.request(`/v1/disputes/${disputeId}`, { headers: support })).json();
    expect(dispute).toMatchObject({ id: disputeId, status: 'resolved', recordingIds: [heldId, fresh.id] });
    const description = await s.client.workflow.getHandle(disputeWorkflowId(disputeId)).describe();
    expect(description.status.name).toBe('COMPLETED');
    expect(description.typedSearchAttributes.get(DisputeStatus)).toBe('resolved');
  });

  it('keeps a recording two disputes hold until both are resolved', async () => {
    const shared = await ingest();
    const first = await openDispute([shared.id]);
    const second = await openDispute([shared.id]);
    expect((await view(shared.id)).holds.sort()).toEqual([first, second].sort());
    await waitFor(async () => Date.now() > Date.parse(shared.deleteAfter) + SWEEP_MS, { what: 'the deadline to pass', timeoutMs: RETENTION_MS + 5_000 });

    expect((await resolve(first)).deleted).toEqual([]);
    expect(await view(shared.id)).toMatchObject({ status: 'held', holds: [second] });
    expect((await resolve(second)).deleted).toEqual([shared.id]);
    expect((await view(shared.id)).receipt).toMatchObject({ reason: 'dispute_resolved', disputeId: second });
  });

  it('reminds staff while a dispute is open, and marks it in its search attributes', async () => {
    const rec = await ingest();
    const id = await openDispute([rec.id]);
    const handle = s.client.workflow.getHandle(disputeWorkflowId(id));
    expect((await handle.describe()).typedSearchAttributes.get(DisputeStatus)).toBe('open');
    const reminder = await waitForMessage(s.config.STAFF_EMAIL, (m) => m.subject.startsWith(`Dispute ${id} is still open`), 'a dispute review reminder', 15_000);
    expect(reminder.to).toEqual([s.config.STAFF_EMAIL]);
    await resolve(id);
  });
});

/** Sweep runs the schedule started after `since`, as Temporal lists them. */
async function sweepsSince(since: number): Promise<number> {
  const description = await s.client.schedule.getHandle(RETENTION_SCHEDULE_ID).describe();
  return description.info.recentActions.filter((a) => a.takenAt.getTime() > since).length;
}

describe('disputes refuse what they cannot do', () => {
  it('refuses unknown recordings, another client’s recordings and deleted ones, starting nothing', async () => {
    const other = await newClient(s, 'Anden ApS');
    const rec = await ingest();
    const before = (await s.sql`select count(*)::int as n from disputes`)[0]!.n;
    const unknown = await app.request('/v1/disputes', json({ clientId, recordingIds: [randomUUID()], reason: 'x' }, support));
    expect(unknown.status).toBe(422);
    const foreign = await app.request('/v1/disputes', json({ clientId: other, recordingIds: [rec.id], reason: 'x' }, support));
    expect(foreign.status).toBe(422);
    expect(((await foreign.json()) as { errors: { field: string; message: string }[] }).errors).toEqual([
      { field: 'recordingIds.0', in: 'body', message: "is another client's recording" },
    ]);
    const empty = await app.request('/v1/disputes', json({ clientId, recordingIds: [], reason: 'x' }, support));
    expect(empty.status).toBe(422);
    expect((await s.sql`select count(*)::int as n from disputes`)[0]!.n).toBe(before);

    const gone = await waitUntilDeleted(rec.id);
    const late = await app.request('/v1/disputes', json({ clientId, recordingIds: [gone.id], reason: 'x' }, support));
    expect(late.status).toBe(422);
  });

  it('answers 404 for an unknown dispute, 409 for a resolved one, 403 when support tries to resolve', async () => {
    const rec = await ingest();
    const id = await openDispute([rec.id]);
    expect((await app.request(`/v1/disputes/${id}/resolve`, json({ resolution: 'x' }, support))).status).toBe(403);
    expect((await app.request(`/v1/disputes/${randomUUID()}/resolve`, json({ resolution: 'x' }, officer))).status).toBe(404);
    await resolve(id);
    expect((await app.request(`/v1/disputes/${id}/resolve`, json({ resolution: 'again' }, officer))).status).toBe(409);
    expect((await app.request(`/v1/disputes/${id}/recordings`, json({ recordingIds: [rec.id] }, support))).status).toBe(409);
  });
});
