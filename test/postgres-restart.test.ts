import { randomUUID } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../api/app';
import { createRecordingActivities } from '../activities/recordings';
import { createSql, ensureDatabase, type Sql } from '../db/index';
import { insertDispute } from '../db/disputes';
import { migrate } from '../db/migrate';
import { verifyReceiptChain } from '../db/receipts';
import { audioKeyFor } from '../lib/recording-store';
import { requestWorkflowId } from '../workflows/ids';
import { sweepProgressQuery, type retentionSweep } from '../workflows/retention-sweep';
import { ISOLATED_NAMESPACE } from './global-setup';
import { json, staffAuth } from './support/api';
import { seedCustomers } from './support/customers';
import { messagesTo } from './support/mailbox';
import { startPgCluster, type PgCluster } from './support/pg-cluster';
import { newClient, seedRecordings } from './support/recordings';
import { awaitDecision, fileRequest } from './support/requests';
import { openStack, silentLog, type TestStack } from './support/stack';
import { waitFor } from './support/wait';
import { spawnWorker, workerEnvFor, type WorkerProcess } from './support/worker-process';
import type { Payload } from '@temporalio/common';

/**
 * Fault drill (issue 13): Postgres is stopped (fast shutdown) while a retention sweep deletes
 * recordings and approved access and erasure requests are being carried out, and started again.
 * The machine's shared Postgres is never touched: the drill runs on a cluster of its own.
 */
const EXPIRED = 3000;
const HELD = 20;
/** Each kind: the worker's pool (10 connections) keeps room for the sweep beside the blocked executions. */
const PER_TYPE = 3;

let cluster: PgCluster;
let s: TestStack;
let apiSql: Sql;
let worker: WorkerProcess;
let app: ReturnType<typeof createApp>;
let staffEmail: string;

beforeAll(async () => {
  cluster = await startPgCluster();
  const url = cluster.url('privacy_backoffice_drill');
  await ensureDatabase(url);
  const migrator = createSql(url, { max: 1 });
  await migrate(migrator);
  await migrator.end();

  staffEmail = `privacy-${randomUUID().slice(0, 8)}@topcall.test`;
  // The real worker entry point, in the namespace kept for workers that own Schedules (a 30-day
  // interval keeps the retention Schedule out of it; this test starts its sweep itself).
  s = await openStack({ DATABASE_URL: url, TEMPORAL_NAMESPACE: ISOLATED_NAMESPACE, RETENTION_SWEEP_INTERVAL: 'P30D', STAFF_EMAIL: staffEmail });
  worker = await spawnWorker(workerEnvFor(s.config, { STAFF_EMAIL: staffEmail, DATA_RETENTION_SWEEP_INTERVAL: 'P30D' }));
  // The API with a pool of its own, as api/main.ts has.
  apiSql = createSql(url, { max: 5 });
  app = createApp({ config: s.config, sql: apiSql, temporal: s.client, store: s.store, log: silentLog, payloadCodec: s.payloadCodec });
}, 180_000);

afterAll(async () => {
  await worker?.stop();
  await apiSql?.end({ timeout: 5 });
  await s?.close();
  await cluster?.destroy();
});

const readyz = async () => {
  const res = await app.request('/readyz');
  return { status: res.status, body: (await res.json()) as { checks: { postgres: string; temporal: string } } };
};

/** Whether a run's pending activity of `type` has had an attempt fail because Postgres refused the connection. */
async function failedOnRefusal(workflowId: string, type: string): Promise<boolean> {
  if (worker.child.exitCode !== null || worker.child.signalCode !== null) {
    throw new Error(`the worker process ended (${worker.child.exitCode ?? worker.child.signalCode}):\n${worker.output().slice(-2000)}`);
  }
  const d = await s.client.workflow.getHandle(workflowId).describe();
  const pending = d.raw.pendingActivities?.find((a) => a.activityType?.name === type);
  return (pending?.attempt ?? 0) > 1 && /ECONNREFUSED/.test(await failureMessage(pending?.lastFailure));
}

/** A failure's message: the codec encodes it (issue 12) into encodedAttributes, which the test stack's codec opens. */
async function failureMessage(f: { message?: string | null; encodedAttributes?: Payload | null } | null | undefined): Promise<string> {
  if (!f?.encodedAttributes) return f?.message ?? '';
  const [decoded] = await s.payloadCodec.decode([f.encodedAttributes as Payload]);
  return (JSON.parse(Buffer.from(decoded!.data!).toString()) as { message?: string }).message ?? '';
}

describe('Postgres restarted under the request and sweep workflows', () => {
  it('the driver: a transaction cut off by a fast shutdown rejects, nothing throws outside it, and the pool answers once Postgres is back', async () => {
    // postgres.js 3.4.9 threw an uncaught TypeError here (ending the process) and then answered
    // CONNECT_TIMEOUT for good; patches/postgres+3.4.9.patch (patch-package, postinstall) repairs it.
    const sql = createSql(cluster.url('postgres'), { max: 2 });
    try {
      let release!: () => void;
      const released = new Promise<void>((r) => (release = r));
      const outcome = (p: Promise<unknown>) => p.then(() => 'committed', (err: { code?: string }) => err.code);
      // One transaction waiting between two queries, one with a query running.
      const open = outcome(
        sql.begin(async (tx) => {
          await tx`select 1`;
          await released;
          await tx`select 2`;
        }),
      );
      const busy = outcome(
        sql.begin(async (tx) => {
          await tx`select pg_sleep(30)`;
        }),
      );
      await waitFor(async () => (await s.sql`select 1 from pg_stat_activity where query like '%pg_sleep(30)%' and pid <> pg_backend_pid()`).length > 0, {
        what: 'the query in flight',
      });
      await cluster.stop();
      release();
      // The query in flight hears Postgres's own goodbye (57P01, "terminating connection due to
      // administrator command") or, when the socket closes first, the driver's CONNECTION_CLOSED.
      expect(['CONNECTION_CLOSED', '57P01']).toContain(await busy);
      expect(await open).toBe('CONNECTION_CLOSED');
      expect(['CONNECTION_CLOSED', 'ECONNREFUSED']).toContain(await outcome(sql`select 1`));

      await cluster.start();
      const started = Date.now();
      // A query that was already queued on a connection as it died can still fail with that
      // connection's error; the pool must answer again at once, not time out for good.
      await waitFor(async () => outcome(sql`select 1`).then((r) => r === 'committed'), { what: 'the pool to answer again', timeoutMs: 4_000 });
      for (let i = 0; i < 4; i++) expect(await sql`select ${i}::int as i`).toEqual([{ i }]);
      expect(await sql.begin((tx) => tx`select 'in a transaction' as x`)).toEqual([{ x: 'in a transaction' }]);
      expect(Date.now() - started, 'no connect timeout on the way').toBeLessThan(4_000);
    } finally {
      await sql.end({ timeout: 1 });
      if (!cluster.running) await cluster.start();
    }
  });

  it('answers every request once and deletes every due recording once; /readyz says 503 while it is down', { timeout: 180_000 }, async () => {
    const support = await staffAuth(s.sql, 'support');
    const officer = await staffAuth(s.sql, 'privacy_officer');
    const clientId = await newClient(s);

    // Recordings past their deadline, some held by a dispute.
    const longAgo = new Date(Date.now() - 120 * 86_400_000);
    const expired = await seedRecordings(s, { clientId, count: EXPIRED, recordedAt: longAgo, retention: 'P3M' });
    const held = await seedRecordings(s, { clientId, count: HELD, recordedAt: longAgo, retention: 'P3M' });
    const disputeId = randomUUID();
    await insertDispute(s.sql, { id: disputeId, clientId, reason: 'drill' });
    await createRecordingActivities({ sql: s.sql, store: s.store }).placeHolds({ disputeId, recordingIds: held });

    // Access requests from callers, erasure requests for people with an account; all await a decision.
    const callers = Array.from({ length: PER_TYPE }, (_, i) => `caller-${i}-${randomUUID().slice(0, 8)}@kunde.test`);
    const people = await seedCustomers(s.sql, { clientId, count: PER_TYPE, tag: `pgdrill${randomUUID().slice(0, 4)}` });
    const requests: { id: string; type: 'access' | 'erasure'; email: string }[] = [];
    for (const email of callers) {
      requests.push({ id: await fileRequest(app, support, { type: 'access', caller: { name: 'Ole Opringer', email, identityCheck: 'called back on the number' } }), type: 'access', email });
    }
    for (const p of people) requests.push({ id: await fileRequest(app, support, { type: 'erasure', customerId: p.id }), type: 'erasure', email: p.email });
    for (const r of requests) await awaitDecision(app, officer, r.id);

    // So that every execution is inside Postgres when it stops, a transaction of the test's own
    // holds what each one writes last (a new export package; the person's account row): they
    // wait on it, their transactions open, until the shutdown cuts them all off.
    const blocker = createSql(cluster.url('privacy_backoffice_drill'), { max: 1 });
    let release!: () => void;
    const released = new Promise<void>((r) => (release = r));
    let locked!: () => void;
    const lockTaken = new Promise<void>((r) => (locked = r));
    const holding = blocker
      .begin(async (tx) => {
        await tx`lock table export_packages in share mode`;
        await tx`select 1 from customers where id = any(${people.map((p) => p.id)}::uuid[]) for update`;
        locked();
        await released;
      })
      .catch(() => undefined); // cut off by the shutdown, as intended
    await lockTaken;

    for (const r of requests) {
      const decided = await app.request(`/v1/requests/${r.id}/decision`, json({ decision: 'approve' }, officer));
      expect(decided.status, await decided.clone().text()).toBe(202);
    }
    const waitingOnLocks = () => s.sql<{ n: number }[]>`select count(*)::int as n from pg_stat_activity where wait_event_type = 'Lock'`.then((r) => r[0]!.n);
    await waitFor(async () => (await waitingOnLocks()) === requests.length, { what: 'every execution to be inside Postgres', timeoutMs: 30_000, intervalMs: 100 });

    // The sweep, in small batches so the stop lands mid-sweep.
    const sweep = await s.client.workflow.start<typeof retentionSweep>('retentionSweep', {
      workflowId: `retention-sweep-pg-restart-${randomUUID()}`,
      taskQueue: s.config.TEMPORAL_TASK_QUEUE,
      args: [{ batchSize: 10, chunkMs: 300, heartbeatTimeoutMs: 2_000 }],
    });
    await waitFor(async () => {
      const p = await sweep.query(sweepProgressQuery);
      return p.deleted >= 200 && !p.done;
    }, { what: 'the sweep to be under way', timeoutMs: 60_000, intervalMs: 50 });

    // The outage: a fast shutdown rolls back every open transaction and cuts every client off.
    const receiptsBefore = (await s.sql<{ n: number }[]>`select count(*)::int as n from deletion_receipts`)[0]!.n;
    await cluster.stop();
    const stoppedAt = Date.now();
    release();
    await holding;
    await blocker.end({ timeout: 1 });
    expect(receiptsBefore).toBeLessThan(EXPIRED);
    const down = await readyz();
    expect(down.status).toBe(503);
    expect(down.body.checks).toEqual({ postgres: 'down', temporal: 'up' });
    expect((await app.request('/healthz')).status).toBe(200);

    // Down until the activities, cut off, have been retried against the stopped server and
    // failed again (connection refused): Temporal keeps retrying them.
    await waitFor(() => failedOnRefusal(sweep.workflowId, 'sweepExpiredRecordings'), { what: 'the sweep to retry into the outage', timeoutMs: 30_000, intervalMs: 250 });
    for (const r of requests) {
      await waitFor(() => failedOnRefusal(requestWorkflowId(r.id), 'executeRequest'), { what: `the execution of ${r.id} to retry into the outage`, timeoutMs: 30_000, intervalMs: 250 });
    }
    expect((await readyz()).status).toBe(503);

    await cluster.start();
    const startedAt = Date.now();
    await waitFor(async () => (await readyz()).status === 200, { what: '/readyz to return to 200', timeoutMs: 30_000, intervalMs: 200 });
    const readyAt = Date.now();

    const result = await sweep.result();
    await waitFor(async () => {
      const rows = await s.sql<{ status: string }[]>`select status from data_requests where id = any(${requests.map((r) => r.id)}::uuid[])`;
      return rows.length === requests.length && rows.every((r) => r.status === 'answered');
    }, { what: 'every request to be answered', timeoutMs: 90_000, intervalMs: 250 });
    console.info(
      `postgres restart: ${receiptsBefore} of ${EXPIRED} deleted and ${requests.length} executions waiting in Postgres when it stopped; ` +
        `down ${startedAt - stoppedAt} ms; /readyz 200 ${readyAt - startedAt} ms after the start; sweep done ${Date.now() - startedAt} ms after`,
    );
    expect(worker.child.exitCode, `the worker rode out the outage:\n${worker.output().slice(-3000)}`).toBeNull();

    // The sweep: every due recording deleted exactly once, one receipt each, a valid chain; the held ones kept.
    expect(result).toMatchObject({ deleted: EXPIRED, done: true });
    const [receipts] = await s.sql<{ total: number; distinct: number }[]>`
      select count(*)::int as total, count(distinct recording_id)::int as distinct from deletion_receipts`;
    expect(receipts).toEqual({ total: EXPIRED, distinct: EXPIRED });
    expect(await verifyReceiptChain(s.sql)).toMatchObject({ valid: true, receipts: EXPIRED });
    const [states] = await s.sql<{ deleted: number; retained: number }[]>`
      select count(*) filter (where status = 'deleted')::int as deleted, count(*) filter (where status = 'retained')::int as retained from recordings`;
    expect(states).toEqual({ deleted: EXPIRED, retained: HELD });
    expect((await s.sql`select distinct status from recordings where id = any(${held}::uuid[])`).map((r) => r.status)).toEqual(['retained']);
    for (const id of [expired[0]!, expired[EXPIRED - 1]!]) expect(await s.store.exists(audioKeyFor(id))).toBe(false);
    for (const id of held.slice(0, 5)) expect(await s.store.exists(audioKeyFor(id))).toBe(true);

    // Every request answered exactly once: one sent outbox row, one SMTP delivery.
    for (const r of requests) {
      const outbox = await s.sql<{ key: string; status: string }[]>`select key, status from email_outbox where key like ${`request:${r.id}:%`} order by key`;
      expect(outbox, r.id).toEqual([
        { key: `request:${r.id}:ack`, status: 'sent' },
        { key: `request:${r.id}:answer`, status: 'sent' },
      ]);
      const mail = (await messagesTo(r.email, { raw: true })).filter((m) => m.text.includes(r.id));
      expect(mail.map((m) => !m.duplicateOf), `${r.type} ${r.id}: the acknowledgement and the answer, one delivery each`).toEqual([true, true]);
    }
    // Erasure done once: the accounts are erased; access: one package per request, and on disk
    // exactly the packages Postgres knows (an attempt cut off must leave no stray copy of a person's data).
    await waitFor(async () => (await s.sql`select 1 from customers where id = any(${people.map((p) => p.id)}::uuid[]) and status = 'erased'`).length === PER_TYPE, {
      what: 'the erased accounts',
    });
    const packages = await s.sql<{ requestId: string; id: string; fileKey: string }[]>`
      select request_id as "requestId", id, file_key as "fileKey" from export_packages`;
    expect(packages.map((p) => p.requestId).sort()).toEqual(requests.filter((r) => r.type === 'access').map((r) => r.id).sort());
    const onDisk = (await readdir(path.join(s.config.DATA_DIR, 'exports'))).map((f) => `exports/${f}`).sort();
    expect(onDisk).toEqual(packages.map((p) => p.fileKey).sort());
    for (const p of packages) {
      const [row] = await s.sql<{ outcome: { exportId?: string } }[]>`select outcome from data_requests where id = ${p.requestId}`;
      expect(row!.outcome.exportId, 'the outcome names the package that stands').toBe(p.id);
    }

    // Temporal: each run completed once; each execution was retried after the outage.
    for (const r of requests) {
      const handle = s.client.workflow.getHandle(requestWorkflowId(r.id));
      await waitFor(async () => (await handle.describe()).status.name === 'COMPLETED', { what: `${r.id} to complete`, timeoutMs: 30_000 });
      const events = (await handle.fetchHistory()).events ?? [];
      expect(events.some((e) => e.workflowTaskFailedEventAttributes)).toBe(false);
      const scheduled = new Map(events.filter((e) => e.activityTaskScheduledEventAttributes).map((e) => [String(e.eventId), e.activityTaskScheduledEventAttributes!.activityType!.name]));
      const executions = events.filter((e) => e.activityTaskStartedEventAttributes && scheduled.get(String(e.activityTaskStartedEventAttributes.scheduledEventId)) === 'executeRequest');
      expect(executions.map((e) => e.activityTaskStartedEventAttributes!.attempt! > 1), r.id).toEqual([true]);
      let runs = 0;
      for await (const _ of s.client.workflow.list({ query: `WorkflowId = '${requestWorkflowId(r.id)}'` })) runs += 1;
      expect(runs).toBe(1);
    }
    expect((await sweep.describe()).status.name).toBe('COMPLETED');
  });
});
