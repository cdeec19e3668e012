/**
 * bench/intake: customers filing data-subject requests over HTTP against plain workflow starts.
 *
 *   npm run bench -- intake        (BENCH_REQUESTS=1000 per run, BENCH_CONCURRENCY=1,8,32)
 *
 * HTTP: BENCH_REQUESTS customers, each with their own login token, each file one access request
 * (`POST /v1/requests`, autocannon, a fixed count over as many connections as the concurrency) on
 * the compiled API process: token check, validation, the customer looked up, the request row
 * inserted, its workflow started (after the answer: the run is timed until every start is made). One request per person, as customers really file them: a
 * second one within REQUEST_REPEAT_WINDOW would be flagged as repetitive.
 * Baseline: the same number of plain `client.workflow.start(accessRequest)` calls from this
 * process with the same concurrency, for rows inserted before its clock starts. Both start the
 * same workflows, which the compiled worker runs as they come (acknowledgement email,
 * assessment); every run starts with the worker idle (the previous run's requests all await a
 * decision). Ratio = HTTP rate / plain rate; p50/p99 per request or start, as the client sees it;
 * CPU per request of the API process and of the client in this process (the machine's other
 * processes, Temporal and Postgres among them, serve both paths).
 */
import { randomUUID } from 'node:crypto';
import autocannon from 'autocannon';
import { openBenchStack, spawnBenchApi, spawnBenchWorker, fmt, cpuPerUnit, cpuSnapshot, type BenchStack } from './stack';
import { loadConfig } from '../lib/config';
import { addCalendarDuration } from '../lib/durations';
import { accessRequestInput } from '../api/file-request';
import { hashToken, newToken } from '../db/access-tokens';
import { insertRequest } from '../db/requests';
import { requestWorkflowId } from '../workflows/ids';
import { accessRequest } from '../workflows/access-request';

const REQUESTS = Number(process.env.BENCH_REQUESTS ?? 1_000);
const CONCURRENCIES = (process.env.BENCH_CONCURRENCY ?? '1,8,32').split(',').map(Number);

interface Run {
  seconds: number;
  latenciesMs: number[];
  /** CPU milliseconds per request or start: the API process (HTTP only) and this process (autocannon, or the gRPC client). */
  apiCpuMs?: number;
  clientCpuMs?: number;
  /** CPU milliseconds per request or start by process, from the run's start until the worker has caught up. */
  split?: string;
}

const percentile = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
const summary = (run: Run) => {
  const sorted = [...run.latenciesMs].sort((a, b) => a - b);
  return { rate: run.latenciesMs.length / run.seconds, p50: percentile(sorted, 50), p99: percentile(sorted, 99) };
};

/** `count` persons of one client, straight into Postgres (no invitations). */
async function seedPersons(b: BenchStack, clientId: string, count: number): Promise<string[]> {
  const ids = Array.from({ length: count }, () => randomUUID());
  for (let i = 0; i < ids.length; i += 10_000) {
    await b.sql`
      insert into customers (id, client_id, email, name, locale, provided_by, provided_by_kind)
      select id, ${clientId}, 'p-' || id || '@bench.test', 'Person', 'da', 'Bench ApS (klient / client)', 'client'
      from unnest(${ids.slice(i, i + 10_000)}::uuid[]) as id`;
  }
  return ids;
}

/** A login token for each person, as `POST /v1/auth/login` issues them (without a password hash per person). */
async function tokensFor(b: BenchStack, customerIds: string[]): Promise<string[]> {
  const tokens = customerIds.map(() => newToken('cust'));
  const expiresAt = new Date(Date.now() + 86_400_000);
  const rows = customerIds.map((id, i) => ({ token_hash: hashToken(tokens[i]!), kind: 'customer', subject_id: id, label: 'login', expires_at: expiresAt }));
  for (let i = 0; i < rows.length; i += 5_000) await b.sql`insert into access_tokens ${b.sql(rows.slice(i, i + 5_000))}`;
  return tokens;
}

/** Until every request filed so far awaits a decision: the worker has caught up. */
async function drained(b: BenchStack): Promise<number> {
  const started = performance.now();
  for (;;) {
    const [row] = await b.sql<{ waiting: number; total: number }[]>`
      select count(*) filter (where status = 'awaiting_decision')::int as waiting, count(*)::int as total from data_requests`;
    if (row!.waiting === row!.total) return (performance.now() - started) / 1000;
    if (performance.now() - started > 10 * 60_000) throw new Error(`worker did not catch up: ${row!.waiting} of ${row!.total} await a decision`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/**
 * When no filed request's start is left unmade: polled from the last answer on. A start counts
 * once the API has marked it (`started_at`, batched within 100 ms of the start), so the HTTP
 * side is charged up to that much more than its starts took.
 */
async function everyStartMarked(b: BenchStack): Promise<number> {
  const since = performance.now();
  for (;;) {
    const [row] = await b.sql<{ pending: number }[]>`select count(*)::int as pending from workflow_starts where workflow_type = 'accessRequest' and started_at is null`;
    if (row!.pending === 0) return performance.now();
    if (performance.now() - since > 5 * 60_000) throw new Error(`${row!.pending} filed request(s) never had their run started`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

async function runLimited(count: number, concurrency: number, fn: (i: number) => Promise<void>): Promise<Run> {
  const latenciesMs: number[] = [];
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < count) {
        const i = next++;
        const t = performance.now();
        await fn(i);
        latenciesMs.push(performance.now() - t);
      }
    }),
  );
  return { seconds: (performance.now() - started) / 1000, latenciesMs };
}

async function main() {
  const b = await openBenchStack();
  const config = loadConfig(b.env);
  let worker = await spawnBenchWorker(b.env);
  const idleRssMiB = worker.idleRssMiB;
  let peakRssMiB = 0;
  const api = await spawnBenchApi(b.env);
  try {
    const [client] = await b.sql<{ id: string }[]>`insert into clients (name) values ('Bench ApS') returning id`;
    console.log(`bench/intake — ${fmt(REQUESTS)} access requests per run, concurrency ${CONCURRENCIES.join(', ')}; compiled API and worker, one person per request`);
    console.log(`  worker RSS idle           ${fmt(idleRssMiB, 1)} MiB (VmRSS 30 s after start, no task yet)`);
    await worker.resetPeak();
    /** Stops the worker (its peak kept), so a timed run measures intake alone. */
    const stopWorker = async () => {
      peakRssMiB = Math.max(peakRssMiB, await worker.peakRssMiB());
      await worker.stop();
    };
    /** A fresh worker that then runs what the stopped one left: every request filed so far is assessed. */
    const restartWorker = async () => {
      worker = await spawnBenchWorker(b.env, { idleWaitMs: 0 });
      await worker.resetPeak();
      return drained(b);
    };
    /** Taken only while a worker runs (the runs with the worker running). */
    const snapshot = () => cpuSnapshot({ worker: () => worker.cpuSeconds(), api: () => api.cpuSeconds() });
    const splitSince = async (before: Record<string, number>) => cpuPerUnit(before, await snapshot(), REQUESTS, 2);

    /** The baseline: rows inserted first (not timed), then only the workflow starts are. */
    const plain = async (concurrency: number, count = REQUESTS): Promise<Run> => {
      const persons = await seedPersons(b, client!.id, count);
      const requests = persons.map((customerId) => ({ id: randomUUID(), customerId, receivedAt: new Date() }));
      await runLimited(requests.length, 16, async (i) => {
        const r = requests[i]!;
        const dueAt = addCalendarDuration(r.receivedAt, config.REQUEST_SLA);
        await insertRequest(b.sql, { id: r.id, customerId: r.customerId, type: 'access', receivedAt: r.receivedAt, dueAt, details: {}, requester: null, locale: 'da', filedBy: 'customer' });
      });
      const cpuBefore = process.cpuUsage();
      const run = await runLimited(requests.length, concurrency, async (i) => {
        const r = requests[i]!;
        // The same start input as api/file-request.ts makes.
        const receivedAt = new Date();
        const dueAt = addCalendarDuration(receivedAt, config.REQUEST_SLA);
        await b.client.workflow.start(accessRequest, {
          workflowId: requestWorkflowId(r.id),
          taskQueue: config.TEMPORAL_TASK_QUEUE,
          memo: { type: 'access', dueAt: dueAt.toISOString() },
          args: [accessRequestInput(config, { requestId: r.id, type: 'access', customerId: r.customerId, receivedAt, dueAt, filedAt: receivedAt })],
        });
      });
      const cpu = process.cpuUsage(cpuBefore);
      return { ...run, clientCpuMs: (cpu.user + cpu.system) / 1000 / count };
    };

    /** Customers over HTTP: each request carries the next person's token. */
    const http = async (concurrency: number, count = REQUESTS): Promise<Run> => {
      const tokens = await tokensFor(b, await seedPersons(b, client!.id, count));
      let next = 0;
      const latenciesMs: number[] = [];
      const statuses = new Map<number, number>();
      const [apiCpuBefore, cpuBefore] = [await api.cpuSeconds(), process.cpuUsage()];
      const started = performance.now();
      let lastResponseAt = started;
      let allAnswered!: () => void;
      const answered = new Promise<void>((resolve) => (allAnswered = resolve));
      // The API answers once a request is filed and starts its run right after (api/start.ts,
      // PendingStarts): the run is timed until every start is made, not to the last answer.
      const allStarted = answered.then(() => everyStartMarked(b));
      const cannon = new Promise<void>((resolve, reject) => {
        const instance = autocannon(
          {
            url: api.url,
            connections: concurrency,
            amount: count,
            requests: [
              {
                method: 'POST',
                path: '/v1/requests',
                setupRequest: (req) => ({
                  ...req,
                  headers: { 'content-type': 'application/json', authorization: `Bearer ${tokens[next++ % tokens.length]}` },
                  body: JSON.stringify({ type: 'access' }),
                }),
              },
            ],
          },
          (err) => (err ? reject(err) : resolve()),
        );
        instance.on('response', (_client, status, _bytes, ms) => {
          lastResponseAt = performance.now();
          latenciesMs.push(ms);
          statuses.set(status, (statuses.get(status) ?? 0) + 1);
          if (latenciesMs.length === count) allAnswered();
        });
      });
      const [, startedAllAt] = await Promise.all([cannon, allStarted]);
      // To the last answer or the last start, whichever came later — not to autocannon's
      // callback: that comes on its once-a-second tick.
      const seconds = (Math.max(lastResponseAt, startedAllAt) - started) / 1000;
      const cpu = process.cpuUsage(cpuBefore);
      const apiCpuMs = ((await api.cpuSeconds()) - apiCpuBefore) * 1000 / count;
      if (statuses.get(202) !== count || latenciesMs.length !== count) {
        throw new Error(`expected ${count} × 202, got ${JSON.stringify(Object.fromEntries(statuses))}`);
      }
      return { seconds, latenciesMs, apiCpuMs, clientCpuMs: (cpu.user + cpu.system) / 1000 / count };
    };

    const ms = (n: number) => `${fmt(n, 1)} ms`.padStart(9);
    const line = (label: string, run: Run, unit: string, note = '') => {
      const s = summary(run);
      console.log(`    ${label.padEnd(28)} ${fmt(run.latenciesMs.length)} in ${fmt(run.seconds, 2)} s = ${fmt(s.rate).padStart(5)} ${unit}/s   p50 ${ms(s.p50)}   p99 ${ms(s.p99)}${note}`);
    };

    // Warm-up, not measured: both paths' code compiled by the JIT and connections open before the first run.
    await http(4, 100);
    await plain(4, 100);

    // Two measures per concurrency. Intake: the worker is stopped while the clock runs, so the
    // rate is that of the path from the caller to a started run (the API's checks and rows
    // against the bare start), not of how the machine's two cores are shared with the worker's
    // catch-up. Then the same with the worker running as it comes, and the time until the worker
    // has assessed every request, for both.
    let httpTotal = 0;
    let plainTotal = 0;
    let httpLive = 0;
    let plainLive = 0;
    for (const concurrency of CONCURRENCIES) {
      console.log(`  concurrency ${concurrency}`);
      await drained(b);
      await stopWorker();
      const p = await plain(concurrency);
      const plainCatchUp = await restartWorker();
      await stopWorker();
      const h = await http(concurrency);
      const httpCatchUp = await restartWorker();
      httpTotal += h.seconds;
      plainTotal += p.seconds;
      console.log(`    intake (worker stopped while timed)`);
      line('POST /v1/requests (HTTP)', h, 'requests', `   (a fresh worker assessed them all in ${fmt(httpCatchUp, 1)} s)`);
      line('client.workflow.start', p, 'starts  ', `   (in ${fmt(plainCatchUp, 1)} s; baseline)`);
      console.log(`      ratio HTTP/plain           ${fmt(summary(h).rate / summary(p).rate, 2)}`);
      console.log(`      CPU per request            API ${fmt(h.apiCpuMs!, 2)} ms + autocannon ${fmt(h.clientCpuMs!, 2)} ms; plain client ${fmt(p.clientCpuMs!, 2)} ms per start`);

      await drained(b);
      let before = await snapshot();
      const pl = await plain(concurrency);
      const plDrain = await drained(b);
      pl.split = await splitSince(before);
      before = await snapshot();
      const hl = await http(concurrency);
      const hlDrain = await drained(b);
      hl.split = await splitSince(before);
      httpLive += hl.seconds + hlDrain;
      plainLive += pl.seconds + plDrain;
      console.log(`    with the worker running as requests come`);
      line('POST /v1/requests (HTTP)', hl, 'requests', `   (worker done ${fmt(hlDrain, 1)} s after the last)`);
      line('client.workflow.start', pl, 'starts  ', `   (worker done ${fmt(plDrain, 1)} s after the last; baseline)`);
      console.log(`      ratio HTTP/plain           ${fmt(summary(hl).rate / summary(pl).rate, 2)} filing; ${fmt((pl.seconds + plDrain) / (hl.seconds + hlDrain), 2)} until all were assessed`);
      // Until the worker caught up, per request: where both paths spend the machine's two cores (the plain path's row inserts included).
      console.log(`      CPU ms per request         HTTP: ${hl.split}`);
      console.log(`                                 plain: ${pl.split}`);
    }
    const [row] = await b.sql<{ flagged: number }[]>`select count(*)::int as flagged from data_requests where 'repetitive' = any(flags)`;
    console.log(`  all runs`);
    console.log(`    intake ratio HTTP/plain      ${fmt(plainTotal / httpTotal, 2)}  (aim ≥ 0.8; ${row!.flagged} request(s) flagged repetitive)`);
    console.log(`    with the worker running      ${fmt(plainLive / httpLive, 2)} from the first request until every one was assessed`);
    peakRssMiB = Math.max(peakRssMiB, await worker.peakRssMiB());
    console.log(`    worker RSS                   ${fmt(idleRssMiB, 1)} MiB idle, ${fmt(await worker.rssMiB(), 1)} MiB after the runs, peak ${fmt(peakRssMiB, 1)} MiB during them; API ${fmt(await api.rssMiB(), 1)} MiB after`);
  } finally {
    await api.stop();
    await worker.stop();
    await b.close();
  }
}

await main();
