import { randomUUID } from 'node:crypto';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { Client } from '@temporalio/client';
import { createApp } from '../api/app';
import { createLazyClient } from '../lib/temporal';
import { freePort, startDevServer, type DevServer } from '../scripts/dev-server';
import type { SinkMessage } from '../scripts/mail-sink';
import { json, staffAuth } from './support/api';
import { messagesTo } from './support/mailbox';
import { newClient, seedRecordings } from './support/recordings';
import { awaitDecision, fileRequest } from './support/requests';
import { openStack, silentLog, type TestStack } from './support/stack';
import { waitFor } from './support/wait';
import { spawnWorker, workerEnvFor, type WorkerProcess } from './support/worker-process';
import { disputeWorkflowId, requestWorkflowId } from '../workflows/ids';

/**
 * Fault drill (issue 13): the Temporal server dies (SIGKILL) while requests wait on their SLA
 * timers and a dispute on its review timer, stays down past the first of them, and comes back
 * on the same port and state file. Every timer fires exactly once, nothing is lost or doubled.
 *
 * A compressed clock: reminders 6 s and 12 s after receipt, escalation at 16 s, the answer due
 * at 20 s; a dispute reminds staff every 6 s. The server dies about a second after the requests
 * are filed and stays down until a second after the first reminders and review fell due.
 */
const REMINDERS_MS = [6_000, 12_000];
const SLA_MS = 20_000;
const REVIEW_MS = 6_000;
const REQUESTS = 4;

let dir: string;
let dbFile: string;
let port: number;
let server: DevServer;
let s: TestStack;
let worker: WorkerProcess;
let temporal: Client;
let app: ReturnType<typeof createApp>;
let staffEmail: string;
let officer: { authorization: string };

const startServer = () => startDevServer({ binary: inject('temporalBinary'), port, dbFile, headless: true, readyTimeoutMs: 120_000 });

beforeAll(async () => {
  // The run's temporary folder is removed by global teardown; this one is removed below too.
  dir = await mkdtemp(path.join(inject('runTempDir'), 'temporal-restart-'));
  dbFile = path.join(dir, 'temporal.db');
  port = await freePort();
  server = await startServer();
  staffEmail = `privacy-${randomUUID().slice(0, 8)}@topcall.test`;
  const periods = {
    REQUEST_SLA: `PT${SLA_MS / 1000}S`,
    REQUEST_REMINDERS: REMINDERS_MS.map((ms) => `PT${ms / 1000}S`).join(','),
    REQUEST_ESCALATION: 'PT16S',
    DISPUTE_REVIEW_INTERVAL: `PT${REVIEW_MS / 1000}S`,
    STAFF_EMAIL: staffEmail,
  };
  s = await openStack({ TEMPORAL_ADDRESS: server.address, ...periods }, { ownDatabase: true });
  // The real worker process: its Schedules go to this server of the file's own; a request whose
  // start the outage prevents is started by the `workflow-starts` Schedule within 5 s.
  worker = await spawnWorker(
    workerEnvFor(s.config, { ...periods, RETENTION_SWEEP_INTERVAL: 'P30D', DATA_RETENTION_SWEEP_INTERVAL: 'P30D', WORKFLOW_START_RECONCILE_INTERVAL: 'PT5S' }),
  );
  // The API as api/main.ts builds it: a lazy Temporal client that reconnects on its own.
  temporal = createLazyClient(server.address, s.config.TEMPORAL_NAMESPACE, s.dataConverter);
  app = createApp({ config: s.config, sql: s.sql, temporal, store: s.store, log: silentLog, payloadCodec: s.payloadCodec });
}, 180_000);

afterAll(async () => {
  await worker?.stop();
  await temporal?.connection.close().catch(() => {});
  await s?.close();
  await server?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

const readyz = async () => {
  const res = await app.request('/readyz');
  return { status: res.status, body: (await res.json()) as { checks: { postgres: string; temporal: string } } };
};

/** Staff emails about one request or dispute, every SMTP delivery (a repeat would show here). */
const staffDeliveries = async (id: string) => (await messagesTo(staffEmail, { raw: true })).filter((m) => m.subject.includes(id));
const kinds = (messages: SinkMessage[]) => messages.map((m) => /^(Reminder|ESCALATION|SLA BREACHED|Dispute)/.exec(m.subject)?.[1] ?? m.subject).sort();

describe('the Temporal server restarted under pending timers', () => {
  it('fires every request and dispute timer exactly once after the restart; no run is lost or doubled', { timeout: 180_000 }, async () => {
    const support = await staffAuth(s.sql, 'support');
    officer = await staffAuth(s.sql, 'privacy_officer');
    const clientId = await newClient(s);
    expect((await readyz()).status).toBe(200);

    // Callers who have no account, filed by staff; each request waits for a decision on its timers.
    const callers = Array.from({ length: REQUESTS }, (_, i) => `caller-${i}-${randomUUID().slice(0, 8)}@kunde.test`);
    const ids: string[] = [];
    for (const email of callers) {
      ids.push(await fileRequest(app, support, { type: 'access', caller: { name: 'Ole Opringer', email, identityCheck: 'called back on the number' } }));
    }
    const recordingIds = await seedRecordings(s, { clientId, count: 2, recordedAt: new Date() });
    const opening = Date.now();
    const opened = await app.request('/v1/disputes', json({ clientId, recordingIds, reason: 'drill' }, support));
    expect(opened.status).toBe(201);
    const disputeId = ((await opened.json()) as { id: string }).id;
    const disputeOpenedAt = Date.now();
    for (const id of ids) await awaitDecision(app, officer, id);
    // Pending durable timers: each run has recorded its next wait in its history.
    const timerSet = async (workflowId: string) => ((await s.client.workflow.getHandle(workflowId).fetchHistory()).events ?? []).some((e) => e.timerStartedEventAttributes);
    for (const workflowId of [...ids.map(requestWorkflowId), disputeWorkflowId(disputeId)]) {
      await waitFor(() => timerSet(workflowId), { what: `${workflowId} to set its timer`, timeoutMs: 10_000 });
    }
    const received = (await s.sql<{ at: Date }[]>`select received_at as at from data_requests where id = any(${ids}::uuid[])`).map((r) => r.at.getTime());
    const [firstDue, lastDue] = [Math.min(...received) + REMINDERS_MS[0]!, Math.max(...received) + REMINDERS_MS[0]!];

    // The crash: SIGKILL, no shutdown, before any timer is due. The API notices and says so.
    expect(Math.min(firstDue, opening + REVIEW_MS) - Date.now(), 'the timers are still pending when the server dies').toBeGreaterThan(1_000);
    await server.kill();
    const killedAt = Date.now();
    expect(await staffDeliveries(ids[0]!)).toEqual([]);
    const down = await waitFor(async () => {
      const r = await readyz();
      return r.status === 503 ? r : undefined;
    }, { what: '/readyz to say 503 while Temporal is down', timeoutMs: 15_000 });
    expect(down.body.checks).toEqual({ postgres: 'up', temporal: 'down' });
    expect((await app.request('/healthz')).status).toBe(200);

    // A request filed during the outage: the API commits it and answers 202; its start waits
    // for Temporal (the API's own retry, or the `workflow-starts` Schedule once it is back).
    const lateCaller = `caller-late-${randomUUID().slice(0, 8)}@kunde.test`;
    let lateFiledAfterMs = 0;
    const filing = fileRequest(app, support, { type: 'access', caller: { name: 'Sen Opringer', email: lateCaller, identityCheck: 'called back on the number' } }).then((id) => {
      lateFiledAfterMs = Date.now() - killedAt;
      return id;
    });

    // Down past the first reminder and the dispute's first review: those timers fell due while
    // no server was running.
    await waitFor(() => Date.now() > Math.max(lastDue, disputeOpenedAt + REVIEW_MS) + 1_000, {
      what: 'the first timers to fall due during the outage',
      timeoutMs: 30_000,
      intervalMs: 200,
    });
    expect(await staffDeliveries(ids[0]!), 'nothing fires while the server is down').toEqual([]);
    const restartedAt = Date.now();
    server = await startServer();
    expect(server.started).toBe(true);
    expect((await stat(dbFile)).size).toBeGreaterThan(0);
    const lateId = await filing;
    const allIds = [...ids, lateId];
    const upAgain = await waitFor(async () => (await readyz()).status === 200 && Date.now(), { what: '/readyz to return to 200', timeoutMs: 30_000, intervalMs: 200 });
    const [lateStart] = await s.sql<{ recordedAt: Date; startedAt: Date | null }[]>`
      select recorded_at as "recordedAt", started_at as "startedAt" from workflow_starts where workflow_id = ${requestWorkflowId(lateId)}`;
    console.info(
      `temporal restart: killed ${firstDue - killedAt} ms before the first timer was due, down ${restartedAt - killedAt} ms; /readyz ready ${upAgain - restartedAt} ms after the restart; ` +
        `the request filed during the outage answered 202 after ${lateFiledAfterMs} ms (its run ${lateStart?.startedAt ? 'started by the API' : 'left to the workflow-starts Schedule'})`,
    );

    // Every timer fires: per request two reminders, the escalation and the breach; the dispute reminds every 6 s.
    for (const id of allIds) {
      await waitFor(async () => (await staffDeliveries(id)).some((m) => m.subject.startsWith('SLA BREACHED')), { what: `the breach of ${id}`, timeoutMs: 60_000, intervalMs: 250 });
    }
    await waitFor(async () => (await staffDeliveries(disputeId)).length >= 3, { what: 'three dispute reviews', timeoutMs: 30_000, intervalMs: 250 });
    expect(worker.child.exitCode, `the worker rode out the outage:\n${worker.output().slice(-3000)}`).toBeNull();

    // Exactly once: each timer's email was delivered once over SMTP (no repeat, not even one a
    // mailbox would drop), and the first reminder, due during the outage, came after the restart.
    for (const id of allIds) {
      const mail = await staffDeliveries(id);
      expect(kinds(mail), id).toEqual(['ESCALATION', 'Reminder', 'Reminder', 'SLA BREACHED']);
      expect(new Set(mail.map((m) => m.messageId)).size).toBe(mail.length);
      expect(mail.filter((m) => m.duplicateOf)).toEqual([]);
    }
    for (const id of ids) {
      const first = (await staffDeliveries(id)).filter((m) => m.subject.startsWith('Reminder'))[0]!;
      expect(Date.parse(first.receivedAt), 'the overdue reminder fired after the restart').toBeGreaterThanOrEqual(restartedAt);
    }

    // The requests go on: approving each answers the caller once.
    for (const id of allIds) {
      const decided = await app.request(`/v1/requests/${id}/decision`, json({ decision: 'approve' }, { ...officer, prefer: 'wait=30' }));
      expect(decided.status, await decided.clone().text()).toBe(200);
    }
    for (const [i, email] of [...callers, lateCaller].entries()) {
      // The acknowledgement and the answer, each delivered once.
      const mail = await messagesTo(email, { raw: true });
      expect(mail.map((m) => m.text.includes(allIds[i]!) && !m.duplicateOf), email).toEqual([true, true]);
    }
    const resolved = await app.request(`/v1/disputes/${disputeId}/resolve`, json({ resolution: 'settled' }, officer));
    expect(resolved.status, await resolved.clone().text()).toBe(200);
    // The dispute: reviews numbered 1, 2, 3… with none missing and none twice; the first, due
    // during the outage, came after the restart.
    const reviews = await staffDeliveries(disputeId);
    const numbers = reviews.map((m) => Number(/Reminder (\d+)\./.exec(m.text)?.[1]));
    expect(numbers).toEqual(Array.from({ length: numbers.length }, (_, i) => i + 1));
    expect(Date.parse(reviews[0]!.receivedAt)).toBeGreaterThanOrEqual(restartedAt);

    // Postgres: one row per request, answered, breached; one sent outbox row per email.
    const rows = await s.sql<{ id: string; status: string; slaBreached: boolean }[]>`
      select id, status, sla_breached as "slaBreached" from data_requests where id = any(${allIds}::uuid[]) order by id`;
    expect(rows.map((r) => r.id).sort()).toEqual([...allIds].sort());
    expect(rows.every((r) => r.status === 'answered' && r.slaBreached)).toBe(true);
    for (const id of allIds) {
      const outbox = await s.sql<{ key: string; status: string }[]>`select key, status from email_outbox where key like ${`request:${id}:%`} order by key`;
      expect(outbox.map((o) => o.key.slice(`request:${id}:`.length)), id).toEqual(['ack', 'answer', 'breach', 'escalation', 'reminder:1', 'reminder:2']);
      expect(outbox.every((o) => o.status === 'sent')).toBe(true);
    }
    expect((await s.sql`select count(*)::int as n from workflow_starts where workflow_id = any(${allIds.map(requestWorkflowId)}) and started_at is null`)[0]!.n).toBe(0);

    // Temporal: one run per workflow id, completed, each timer fired at most once and no task failed.
    const runs = new Map<string, number>();
    for await (const w of s.client.workflow.list({ query: `WorkflowType = 'accessRequest' OR WorkflowType = 'dispute'` })) runs.set(w.workflowId, (runs.get(w.workflowId) ?? 0) + 1);
    expect(Object.fromEntries(runs)).toEqual(Object.fromEntries([...allIds.map(requestWorkflowId), disputeWorkflowId(disputeId)].map((w) => [w, 1])));
    for (const workflowId of [...allIds.map(requestWorkflowId), disputeWorkflowId(disputeId)]) {
      const handle = s.client.workflow.getHandle(workflowId);
      await waitFor(async () => (await handle.describe()).status.name === 'COMPLETED', { what: `${workflowId} to complete`, timeoutMs: 30_000 });
      const events = (await handle.fetchHistory()).events ?? [];
      const started = events.filter((e) => e.timerStartedEventAttributes).map((e) => e.timerStartedEventAttributes!.timerId);
      const fired = events.filter((e) => e.timerFiredEventAttributes).map((e) => e.timerFiredEventAttributes!.timerId);
      const canceled = events.filter((e) => e.timerCanceledEventAttributes).map((e) => e.timerCanceledEventAttributes!.timerId);
      // Every timer set either fired once or was canceled (the dispute's last, by the resolve).
      expect([...fired, ...canceled].sort(), `${workflowId}: each timer fired or was canceled, once`).toEqual([...started].sort());
      if (workflowId.startsWith('dispute:')) expect(fired.length).toBe(numbers.length);
      else expect(canceled, `${workflowId}: decided only after the breach`).toEqual([]);
      // The timer each run had set before the kill (its first) fired; its email came after the restart (above).
      if (workflowId !== requestWorkflowId(lateId)) expect(fired, `${workflowId}: the timer pending at the kill fired`).toContain(started[0]);
      expect(events.some((e) => e.workflowTaskFailedEventAttributes), `${workflowId}: no workflow task failed`).toBe(false);
    }
  });
});
