import { randomUUID } from 'node:crypto';
import os from 'node:os';
import { serve, type ServerType } from '@hono/node-server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../api/app';
import { isLoopback } from '../api/auth';
import { createMetrics, PROMISE_GAUGES } from '../api/metrics';
import { createSql } from '../db/index';
import { deletionCounts, promiseStats, type PromiseStats } from '../db/stats';
import { freePort } from '../scripts/dev-server';
import { ISOLATED_NAMESPACE } from './global-setup';
import { appFor, json, staffAuth } from './support/api';
import { activate, registerCustomer } from './support/customers';
import { dashboardMetricNames, familyNames, parseSamples, sampleValue, type Sample } from './support/prometheus';
import { fileRequest, awaitDecision } from './support/requests';
import { newClient, uploadRecording } from './support/recordings';
import { openStack, silentLog, withScratchDatabase, type TestStack } from './support/stack';
import { waitFor } from './support/wait';
import { spawnWorker, workerEnvFor, type WorkerProcess } from './support/worker-process';

/**
 * Issue 15: the promises as numbers. A request breaches its deadline and a recording outlives
 * its deadline under a dispute hold, on the real stack (Temporal, the real worker entry point
 * with its SDK metrics exporter, Postgres, SMTP) with the periods shrunk; /metrics and
 * /v1/stats then show both, with the same numbers, and only to whom they may.
 */

const UUID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/i;

let s: TestStack;
let worker: WorkerProcess;
let workerMetricsUrl: string;
let app: ReturnType<typeof appFor>;
let support: { authorization: string };
let officer: { authorization: string };
let clientId: string;

beforeAll(async () => {
  // Requests are due 6 s after receipt, recordings 4 s after the call. The real worker runs in its
  // own process, in a namespace of its own (it puts the retention Schedules there; 30-day
  // intervals keep them, and their sweeps, out of this test: overdue recordings stay overdue).
  const periods = {
    REQUEST_SLA: 'PT6S',
    REQUEST_REMINDERS: 'PT2S',
    REQUEST_ESCALATION: 'PT4S',
    RECORDING_RETENTION: 'PT4S',
    RETENTION_SWEEP_INTERVAL: 'P30D',
    DATA_RETENTION_SWEEP_INTERVAL: 'P30D',
    STAFF_EMAIL: `dpo-${randomUUID().slice(0, 8)}@topcall.test`,
  };
  s = await openStack({ TEMPORAL_NAMESPACE: ISOLATED_NAMESPACE, ...periods }, { ownDatabase: true });
  const port = await freePort();
  workerMetricsUrl = `http://127.0.0.1:${port}/metrics`;
  worker = await spawnWorker(workerEnvFor(s.config, { ...periods, WORKER_METRICS_ADDRESS: `127.0.0.1:${port}` }));
  app = appFor(s);
  support = await staffAuth(s.sql, 'support');
  officer = await staffAuth(s.sql, 'privacy_officer');
  clientId = await newClient(s, 'Målinger ApS');
});

afterAll(async () => {
  await worker?.stop();
  await s?.close();
});

const stats = async (who = support) => {
  const res = await app.request('/v1/stats', { headers: who });
  expect(res.status, await res.clone().text()).toBe(200);
  return (await res.json()) as PromiseStats;
};
const scrape = async (): Promise<{ text: string; samples: Sample[] }> => {
  const res = await app.request('/metrics');
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
  const text = await res.text();
  return { text, samples: parseSamples(text) };
};
const gauge = (samples: Sample[], name: string) => sampleValue(samples, name);

describe('a breached request and a held overdue recording, in /metrics and /v1/stats', () => {
  let customer: { authorization: string };
  let requestId: string;
  let heldId: string;
  let unheldId: string;
  let disputeId: string;

  it('counts the request overdue once its deadline passes, and the held recording as held but not as overdue', async () => {
    const person = await registerCustomer(app, support, { clientId, locale: 'en' });
    customer = await activate(app, person);
    requestId = await fileRequest(app, customer, { type: 'access' });

    // The held recording goes first, so it is the older overdue one: the oldest-overdue age
    // must still come from the unheld one.
    const held = await uploadRecording(app, support, clientId, {}, 'h');
    heldId = held.id;
    const res = await app.request('/v1/disputes', json({ clientId, recordingIds: [heldId], reason: 'The caller disputes the order' }, support));
    expect(res.status, await res.clone().text()).toBe(201);
    disputeId = ((await res.json()) as { id: string }).id;
    const unheld = await uploadRecording(app, support, clientId, {}, 'u');
    unheldId = unheld.id;

    // Every deadline passes: the request's (6 s) and both recordings' (4 s).
    const breached = await waitFor(
      async () => {
        const now = await stats();
        return now.requests.overdue === 1 && now.recordings.overdueUnheld === 1 ? now : undefined;
      },
      { what: 'the request overdue and the unheld recording overdue in /v1/stats', timeoutMs: 30_000, intervalMs: 250 },
    );
    expect(Date.parse(held.deleteAfter)).toBeLessThan(Date.now());

    expect(breached).toEqual({
      requests: { open: 1, dueSoon: 0, overdue: 1, answeredOnTime30d: 0, answeredLate30d: 0 },
      recordings: {
        retained: 1,
        held: 1,
        // The held recording is past its deadline too, and rightly kept: it is not counted here.
        overdueUnheld: 1,
        oldestOverdueSeconds: expect.any(Number),
      },
      notices: { sent: 0, failed: 0 },
    });
    const unheldAge = (Date.now() - Date.parse(unheld.deleteAfter)) / 1000;
    const heldAge = (Date.now() - Date.parse(held.deleteAfter)) / 1000;
    expect(breached.recordings.oldestOverdueSeconds).toBeLessThanOrEqual(Math.ceil(unheldAge));
    expect(breached.recordings.oldestOverdueSeconds).toBeGreaterThanOrEqual(Math.floor(unheldAge) - 3);
    expect(heldAge).toBeGreaterThan(unheldAge); // so a count that took the held one would show here

    // The same numbers as gauges (counts are still; the age moves with the clock).
    const { samples } = await scrape();
    const after = await stats();
    expect(gauge(samples, 'privacy_stats_up')).toBe(1);
    expect(gauge(samples, 'privacy_requests_open')).toBe(after.requests.open);
    expect(gauge(samples, 'privacy_requests_due_soon')).toBe(after.requests.dueSoon);
    expect(gauge(samples, 'privacy_requests_overdue')).toBe(1);
    expect(gauge(samples, 'privacy_requests_answered_on_time_30d')).toBe(after.requests.answeredOnTime30d);
    expect(gauge(samples, 'privacy_requests_answered_late_30d')).toBe(after.requests.answeredLate30d);
    expect(gauge(samples, 'privacy_recordings_held')).toBe(1);
    expect(gauge(samples, 'privacy_recordings_retained')).toBe(1);
    expect(gauge(samples, 'privacy_recordings_overdue_unheld')).toBe(1);
    expect(gauge(samples, 'privacy_notices_sent')).toBe(after.notices.sent);
    expect(gauge(samples, 'privacy_notices_failed')).toBe(after.notices.failed);
    expect(Math.abs(gauge(samples, 'privacy_recordings_oldest_overdue_seconds')! - after.recordings.oldestOverdueSeconds)).toBeLessThanOrEqual(2);
    expect(gauge(samples, 'privacy_retention_sweep_interval_seconds')).toBe(30 * 86_400);
  });

  it('moves the request to answered late, and counts the held recording deleted once its dispute is resolved', async () => {
    await awaitDecision(app, officer, requestId);
    const decided = await app.request(`/v1/requests/${requestId}/decision`, json({ decision: 'approve' }, { ...officer, prefer: 'wait=30' }));
    expect(decided.status, await decided.clone().text()).toBe(200);

    const resolved = await app.request(`/v1/disputes/${disputeId}/resolve`, json({ resolution: 'Settled with the client' }, officer));
    expect(resolved.status).toBe(200);
    expect(((await resolved.json()) as { deleted: string[] }).deleted).toEqual([heldId]);

    const now = await stats();
    expect(now.requests).toEqual({ open: 0, dueSoon: 0, overdue: 0, answeredOnTime30d: 0, answeredLate30d: 1 });
    expect(now.recordings).toMatchObject({ retained: 1, held: 0, overdueUnheld: 1 });

    const { samples } = await scrape();
    expect(gauge(samples, 'privacy_requests_answered_late_30d')).toBe(1);
    expect(gauge(samples, 'privacy_recordings_held')).toBe(0);
    expect(sampleValue(samples, 'privacy_recording_deletions_total', { reason: 'dispute_resolved' })).toBe(1);
    expect(sampleValue(samples, 'privacy_recording_deletions_total', { reason: 'retention' })).toBe(0);
    expect(unheldId).toBeTruthy();
  });

  it('records HTTP latency by route pattern, and no label carries an id, an address or a URL', async () => {
    const { text, samples } = await scrape();
    const count = (route: string, method: string, status: string) =>
      sampleValue(samples, 'http_request_duration_seconds_count', { route, method, status }) ?? 0;
    expect(count('/v1/stats', 'GET', '200')).toBeGreaterThanOrEqual(3);
    expect(count('/v1/requests/:id', 'GET', '200')).toBeGreaterThanOrEqual(1);
    expect(count('/v1/disputes/:id/resolve', 'POST', '200')).toBe(1);
    expect(count('/metrics', 'GET', '200')).toBeGreaterThanOrEqual(2);
    // Node's default metrics are there too.
    expect(familyNames(text)).toContain('process_resident_memory_bytes');

    const labelValues = samples.flatMap((x) => Object.values(x.labels));
    expect(labelValues.filter((v) => UUID.test(v) || v.includes('@') || v.includes('?') || /\d{6,}/.test(v))).toEqual([]);
    expect(text).not.toMatch(UUID);
  });

  it('shows /v1/stats to every staff role, and to no customer or anonymous caller', async () => {
    for (const role of ['support', 'privacy_officer', 'admin'] as const) {
      expect((await app.request('/v1/stats', { headers: await staffAuth(s.sql, role) })).status).toBe(200);
    }
    const refused = await app.request('/v1/stats', { headers: customer });
    expect(refused.status).toBe(403);
    expect(refused.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect((await app.request('/v1/stats')).status).toBe(401);
  });

  it("the worker's Temporal SDK exporter serves what the dashboard reads from it, failures included", async () => {
    // A failing activity, for the failure panel: a system check whose id Postgres refuses.
    const failing = await s.client.workflow.start('systemCheck', {
      workflowId: `metrics-failing-check-${randomUUID()}`,
      taskQueue: s.config.TEMPORAL_TASK_QUEUE,
      args: [{ checkId: 'not-a-uuid' }],
    });
    const text = await waitFor(
      async () => {
        const body = await (await fetch(workerMetricsUrl)).text();
        return (sampleValue(parseSamples(body), 'temporal_activity_execution_failed_total', { activity_type: 'recordSystemCheck' }) ?? 0) >= 1 ? body : undefined;
      },
      { what: 'the failed activity attempt in the worker exporter', timeoutMs: 20_000, intervalMs: 250 },
    );
    await failing.terminate('metrics test: the failure is counted');
    const families = familyNames(text);
    expect(families.size).toBeGreaterThan(5);
    const fromWorker = dashboardMetricNames().filter((n) => n.startsWith('temporal_'));
    expect(fromWorker.length).toBeGreaterThan(0);
    const series = new Set(parseSamples(text).map((x) => x.name));
    // A histogram the dashboard reads as _bucket must be served as such.
    expect(fromWorker.filter((n) => !series.has(n)), `temporal metrics the dashboard reads; the worker served:\n${[...series].join('\n')}`).toEqual([]);
    // Types, queues and namespaces: never a workflow id (this run's task queue is named by a UUID).
    const labels = parseSamples(text).flatMap((x) => Object.entries(x.labels).filter(([k]) => k !== 'task_queue').map(([, v]) => v));
    expect(labels.filter((v) => UUID.test(v) || v.includes('@'))).toEqual([]);
  });
});

describe('the OpenAPI document', () => {
  it('describes /metrics for scrapers and /v1/stats for staff, with the contract shape', async () => {
    type Op = { 'x-access'?: string; responses: Record<string, { content?: Record<string, { schema?: { $ref?: string } }> }> };
    const doc = (await (await app.request('/openapi.json')).json()) as {
      paths: Record<string, { get?: Op }>;
      components: { schemas: Record<string, { required?: string[]; properties?: Record<string, { required?: string[] }> }> };
    };
    expect(doc.paths['/metrics']?.get).toMatchObject({ 'x-access': 'scraper', responses: { 200: { content: { 'text/plain': {} } } } });
    expect(doc.paths['/v1/stats']?.get).toMatchObject({ 'x-access': 'staff' });
    expect(doc.paths['/v1/stats']!.get!.responses['200']!.content!['application/json']!.schema!.$ref).toBe('#/components/schemas/PromiseStats');
    const schema = doc.components.schemas.PromiseStats!;
    expect(schema.required).toEqual(['requests', 'recordings', 'notices']);
    expect(schema.properties!.requests!.required).toEqual(['open', 'dueSoon', 'overdue', 'answeredOnTime30d', 'answeredLate30d']);
    expect(schema.properties!.recordings!.required).toEqual(['retained', 'held', 'overdueUnheld', 'oldestOverdueSeconds']);
    expect(schema.properties!.notices!.required).toEqual(['sent', 'failed']);
  });
});

describe('/metrics is for scrapers on this machine', () => {
  const remote = { incoming: { socket: { remoteAddress: '192.0.2.10' } } };
  const local = (address: string) => ({ incoming: { socket: { remoteAddress: address } } });

  it('refuses a caller from another address, unless METRICS_ALLOW_REMOTE', async () => {
    const refused = await app.request('/metrics', {}, remote);
    expect(refused.status).toBe(403);
    expect(await refused.json()).toMatchObject({ status: 403, detail: expect.stringContaining('METRICS_ALLOW_REMOTE') });
    for (const address of ['127.0.0.1', '127.3.2.1', '::1', '::ffff:127.0.0.1']) expect((await app.request('/metrics', {}, local(address))).status, address).toBe(200);
    // Relayed by a proxy on this machine: the real caller is elsewhere.
    expect((await app.request('/metrics', { headers: { 'x-forwarded-for': '203.0.113.9' } }, local('127.0.0.1'))).status).toBe(403);
    expect((await app.request('/metrics', { headers: { forwarded: 'for=203.0.113.9' } }, local('::1'))).status).toBe(403);

    const open = createApp({ config: { ...s.config, METRICS_ALLOW_REMOTE: true }, sql: s.sql, temporal: s.client, store: s.store, log: silentLog, payloadCodec: s.payloadCodec });
    expect((await open.request('/metrics', {}, remote)).status).toBe(200);
  });

  it('tells loopback addresses from others', () => {
    for (const a of ['127.0.0.1', '127.255.0.9', '::1', '::ffff:127.0.0.1', '::FFFF:127.0.0.1']) expect(isLoopback(a), a).toBe(true);
    for (const a of ['192.0.2.10', '10.0.0.1', '::ffff:10.0.0.1', 'fe80::1', '::', '0.0.0.0', '127.0.0.1.evil', '1270.0.0.1']) expect(isLoopback(a), a).toBe(false);
  });

  // Over real sockets: the API listens on every interface, as api/main.ts does.
  const external = Object.values(os.networkInterfaces())
    .flat()
    .find((i) => i && !i.internal && i.family === 'IPv4')?.address;
  let server: ServerType | undefined;
  let port: number;
  afterAll(() => new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve())));

  it('answers over the loopback interface', async () => {
    port = await freePort();
    await new Promise<void>((resolve) => {
      server = serve({ fetch: app.fetch, port, hostname: '0.0.0.0' }, () => resolve());
    });
    const res = await fetch(`http://127.0.0.1:${port}/metrics`);
    expect(res.status).toBe(200);
    expect(await res.text()).toContain('privacy_requests_overdue');
  });

  it.skipIf(!external)("refuses a connection to the machine's network address", async () => {
    const res = await fetch(`http://${external}:${port}/metrics`);
    expect(res.status).toBe(403);
    expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  });
});

describe('promiseStats: the numbers, on rows of known age', () => {
  it('counts each request, recording and notice where the contract says', async () => {
    await withScratchDatabase(async (sql) => {
      const client = (await sql<{ id: string }[]>`insert into clients (name) values ('Tal ApS') returning id`)[0]!.id;
      const ago = (seconds: number) => sql`now() - make_interval(secs => ${seconds})`;
      const request = async (receivedAgo: number, dueAgo: number, answeredAgo: number | null) => {
        await sql`insert into data_requests (id, type, received_at, due_at, answered_at, requester, filed_by)
                  values (${randomUUID()}, 'access', ${ago(receivedAgo)}, ${ago(dueAgo)}, ${answeredAgo === null ? null : ago(answeredAgo)},
                          ${sql.json({ name: 'x', email: 'x@kunde.test', identityCheck: 'phone' })}, 'staff')`;
      };
      const DAY = 86_400;
      await request(3600, -3 * DAY, null); // open, due in 3 days
      await request(3600, -2 * 3600, null); // open, due in 2 hours
      await request(8 * DAY, DAY, null); // open, a day overdue
      await request(6 * DAY, DAY, 2 * DAY); // answered a day early
      await request(6 * DAY, 2 * DAY, 2 * DAY); // answered at the due moment: on time
      await request(9 * DAY, 3 * DAY, DAY); // answered two days late
      await request(50 * DAY, 43 * DAY, 40 * DAY); // answered late, 40 days ago: outside the window

      const recording = async (deleteAgo: number, status: 'retained' | 'deleted' = 'retained') => {
        const id = randomUUID();
        await sql`insert into recordings (id, client_id, recorded_at, duration_seconds, delete_after, audio_key, audio_sha256, audio_bytes, content_type, status, deleted_at)
                  values (${id}, ${client}, now() - interval '90 days', 10, ${ago(deleteAgo)}, ${`k/${id}`}, 'sha', 1, 'audio/wav', ${status},
                          ${status === 'deleted' ? sql`now()` : null})`;
        return id;
      };
      const dispute = async () => {
        const id = randomUUID();
        await sql`insert into disputes (id, client_id, reason) values (${id}, ${client}, 'r')`;
        return id;
      };
      const hold = (recordingId: string, disputeId: string, released = false) =>
        sql`insert into recording_holds (recording_id, dispute_id, released_at) values (${recordingId}, ${disputeId}, ${released ? sql`now()` : null})`;
      const [d1, d2] = [await dispute(), await dispute()];
      await recording(-DAY); // retained, not due
      await recording(100); // overdue 100 s, unheld: the oldest that counts
      await recording(50); // overdue, unheld
      await hold(await recording(1000), d1); // overdue 1000 s but held: not overdue-unheld, not the oldest
      await hold(await recording(10), d1, true); // its hold was released: overdue and unheld
      const twice = await recording(-DAY);
      await hold(twice, d1);
      await hold(twice, d2); // held by two disputes: one recording
      const deleted = await recording(DAY, 'deleted');
      await sql`insert into deletion_receipts (seq, recording_id, client_id, recorded_at, delete_after, deleted_at, audio_sha256, reason, workflow_id, run_id, prev_hash, hash)
                values (1, ${deleted}, ${client}, now(), now(), now(), 'sha', 'retention', 'w', 'r', '', 'h1')`;

      const notice = (n: number, status: string, campaign: string | null) =>
        sql`insert into email_outbox (key, message_id, recipient, category, subject, text_body, status, campaign, locale)
            values (${`k${n}`}, ${`<m${n}@t>`}, 'x@kunde.test', 'service', 's', 't', ${status}, ${campaign}, 'da')`;
      await notice(1, 'sent', 'policy:v2');
      await notice(2, 'sent', 'policy:v2');
      await notice(3, 'failed', 'policy:v2');
      await notice(4, 'pending', 'policy:v2');
      await notice(5, 'sent', null); // an answer email, not a notice

      const result = await promiseStats(sql);
      expect(result).toEqual({
        requests: { open: 3, dueSoon: 1, overdue: 1, answeredOnTime30d: 2, answeredLate30d: 1 },
        recordings: { retained: 4, held: 2, overdueUnheld: 3, oldestOverdueSeconds: expect.any(Number) },
        notices: { sent: 2, failed: 1 },
      });
      expect(result.recordings.oldestOverdueSeconds).toBeGreaterThanOrEqual(100);
      expect(result.recordings.oldestOverdueSeconds).toBeLessThan(110);
      expect(await deletionCounts(sql)).toEqual({ retention: 1, dispute_resolved: 0, erasure: 0, objection: 0 });

      // /metrics reads the same function.
      const metrics = createMetrics({ sql, log: silentLog, retentionSweepInterval: 'PT1H' });
      const samples = parseSamples(await metrics.render());
      const fresh = await promiseStats(sql);
      for (const g of PROMISE_GAUGES) {
        if (g.name.endsWith('_seconds')) expect(Math.abs(gauge(samples, g.name)! - g.value(fresh))).toBeLessThanOrEqual(2);
        else expect(gauge(samples, g.name), g.name).toBe(g.value(fresh));
      }
      expect(sampleValue(samples, 'privacy_recording_deletions_total', { reason: 'retention' })).toBe(1);
    });
  });

  it('still serves /metrics when Postgres does not answer: the promise gauges read NaN and privacy_stats_up 0', async () => {
    const url = new URL(s.config.DATABASE_URL);
    url.pathname = `/no_such_database_${randomUUID().slice(0, 8)}`;
    const gone = createSql(url.toString(), { max: 1 });
    try {
      const samples = parseSamples(await createMetrics({ sql: gone, log: silentLog, retentionSweepInterval: 'PT1H' }).render());
      expect(gauge(samples, 'privacy_stats_up')).toBe(0);
      for (const g of PROMISE_GAUGES) expect(gauge(samples, g.name), g.name).toBeNaN();
      expect(samples.some((x) => x.name === 'process_resident_memory_bytes')).toBe(true);
    } finally {
      await gone.end({ timeout: 1 });
    }
  });
});
