import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openStack, type TestStack } from './support/stack';
import { newClient, seedRecordings } from './support/recordings';
import { spawnWorker, workerEnvFor, type WorkerProcess } from './support/worker-process';
import { waitFor } from './support/wait';
import { ISOLATED_NAMESPACE } from './global-setup';
import { createRecordingActivities } from '../activities/recordings';
import { insertDispute } from '../db/disputes';
import { verifyReceiptChain } from '../db/receipts';
import { audioKeyFor } from '../lib/recording-store';
import { sweepProgressQuery, type retentionSweep } from '../workflows/retention-sweep';

const EXPIRED = 4000;
const HELD = 40;

let s: TestStack;
let workerEnv: Record<string, string>;
const workers: WorkerProcess[] = [];

beforeAll(async () => {
  // The real worker entry point runs in its own process, in a namespace of its own (it creates
  // the retention Schedule there; a 30-day interval keeps that Schedule out of this test).
  s = await openStack({ TEMPORAL_NAMESPACE: ISOLATED_NAMESPACE, RETENTION_SWEEP_INTERVAL: 'P30D' }, { ownDatabase: true });
  workerEnv = workerEnvFor(s.config);
});

afterAll(async () => {
  await Promise.all(workers.map((w) => w.stop()));
  await s.close();
});

const receiptCount = async () => (await s.sql`select count(*)::int as n from deletion_receipts`)[0]!.n as number;

describe('retentionSweep when its worker is killed mid-sweep', () => {
  it('resumes on another worker and deletes every due recording exactly once, keeping the held ones', { timeout: 180_000 }, async () => {
    const clientId = await newClient(s);
    const longAgo = new Date(Date.now() - 120 * 86_400_000);
    const expired = await seedRecordings(s, { clientId, count: EXPIRED, recordedAt: longAgo, retention: 'P3M' });
    const held = await seedRecordings(s, { clientId, count: HELD, recordedAt: longAgo, retention: 'P3M' });
    const disputeId = randomUUID();
    await insertDispute(s.sql, { id: disputeId, clientId, reason: 'test' });
    await createRecordingActivities({ sql: s.sql, store: s.store }).placeHolds({ disputeId, recordingIds: held });

    workers.push(await spawnWorker(workerEnv));
    const handle = await s.client.workflow.start<typeof retentionSweep>('retentionSweep', {
      workflowId: `retention-sweep-crash-${randomUUID()}`,
      taskQueue: s.config.TEMPORAL_TASK_QUEUE,
      // Small batches and chunks so the kill lands mid-sweep; a short heartbeat timeout so the retry comes soon.
      args: [{ batchSize: 10, chunkMs: 300, heartbeatTimeoutMs: 2_000 }],
    });

    // Progress is readable while the sweep runs.
    const midway = await waitFor(async () => {
      const p = await handle.query(sweepProgressQuery);
      return p.deleted > 0 && !p.done ? p : undefined;
    }, { what: 'sweep progress mid-run', timeoutMs: 30_000, intervalMs: 50 });
    expect(midway.deleted).toBeLessThan(EXPIRED);

    await workers[0]!.kill();
    const atKill = await receiptCount();
    expect(atKill).toBeGreaterThan(0);
    expect(atKill).toBeLessThan(EXPIRED);

    workers.push(await spawnWorker(workerEnv));
    const result = await handle.result();

    // Exactly once: every due recording has one receipt, the count is exact, nothing held was touched.
    expect(result).toMatchObject({ deleted: EXPIRED, done: true });
    expect(await receiptCount()).toBe(EXPIRED);
    const [states] = await s.sql<{ deleted: number; retained: number }[]>`
      select count(*) filter (where status = 'deleted')::int as deleted, count(*) filter (where status = 'retained')::int as retained
      from recordings`;
    expect(states).toEqual({ deleted: EXPIRED, retained: HELD });
    const heldStates = await s.sql`select distinct status from recordings where id = any(${held}::uuid[])`;
    expect(heldStates).toEqual([{ status: 'retained' }]);
    for (const id of [expired[0]!, expired[EXPIRED - 1]!]) expect(await s.store.exists(audioKeyFor(id))).toBe(false);
    for (const id of held.slice(0, 5)) expect(await s.store.exists(audioKeyFor(id))).toBe(true);
    expect(await verifyReceiptChain(s.sql)).toMatchObject({ valid: true, receipts: EXPIRED });

    // The history shows the kill, and no workflow task ever failed. The kill lands either in
    // a chunk (the activity is retried: a second attempt) or between chunks, while the worker
    // held the workflow task (that task times out and is given to the new worker).
    const history = await handle.fetchHistory();
    const events = history.events ?? [];
    expect(events.some((e) => e.workflowTaskFailedEventAttributes)).toBe(false);
    const retried = events.some((e) => (e.activityTaskStartedEventAttributes?.attempt ?? 1) > 1 || e.activityTaskTimedOutEventAttributes);
    const taskTimedOut = events.some((e) => e.workflowTaskTimedOutEventAttributes);
    expect(retried || taskTimedOut).toBe(true);
  });
});
