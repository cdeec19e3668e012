/**
 * bench/policy-notices: a material policy change noticed to BENCH_PERSONS people (default
 * 50,000) by the policyChange workflow on the real worker process (outbox row per person,
 * marked as SMTP accepts each), against plain nodemailer sending the same messages to the
 * same sink with the same concurrency, in the same run. Also: the worker's peak memory and
 * the campaign's Temporal history (it continues as new, so it stays bounded).
 *
 *   npm run bench -- policy-notices        (BENCH_PERSONS, BENCH_CONCURRENCY)
 */
import { randomUUID } from 'node:crypto';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { openBenchStack, spawnBenchWorker, machineBusySeconds, processCpuSeconds, fmt } from './stack';
import { insertPolicy, noticeProgress } from '../db/policies';
import { policyWorkflowId } from '../workflows/ids';
import { policyProgressQuery, type policyChange } from '../workflows/policy-change';

const PERSONS = Number(process.env.BENCH_PERSONS ?? 50_000);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 8);

const cpuSecondsSince = (before: NodeJS.CpuUsage) => {
  const d = process.cpuUsage(before);
  return (d.user + d.system) / 1e6;
};

const b = await openBenchStack();
const worker = await spawnBenchWorker({ ...b.env, MAIL_CONCURRENCY: String(CONCURRENCY) });
try {
  const [client] = await b.sql<{ id: string }[]>`insert into clients (name) values ('Bench ApS') returning id`;
  const ids = Array.from({ length: PERSONS }, () => randomUUID());
  for (let i = 0; i < ids.length; i += 10_000) {
    await b.sql`
      insert into customers (id, client_id, email, name, locale)
      select id, ${client!.id}, 'p-' || id || '@bench.test', 'Person', case when random() < 0.2 then 'en' else 'da' end
      from unnest(${ids.slice(i, i + 10_000)}::uuid[]) as id`;
  }
  await b.sql`vacuum analyze customers`;
  const version = `bench-${randomUUID().slice(0, 8)}`;
  const effectiveAt = new Date(Date.now() + 86_400_000);
  await insertPolicy(b.sql, { version, effectiveAt, material: true, summary: 'Vi gemmer optagelser i 2 måneder i stedet for 3.', body: 'Fuld tekst' });
  console.log(`bench/policy-notices — ${fmt(PERSONS)} persons, concurrency ${CONCURRENCY}, one local SMTP sink`);

  /** Plain nodemailer in its own process, like the worker (async: the sink lives in this process and must keep answering). */
  const runPlain = (limit?: number) =>
    new Promise<{ sent: number; seconds: number; cpuSeconds: number }>((resolve, reject) => {
      const child = spawn(process.execPath, ['--import', 'tsx', 'bench/plain-sender.ts'], {
        cwd: fileURLToPath(new URL('..', import.meta.url)),
        env: { ...process.env, DATABASE_URL: b.env.DATABASE_URL, SMTP_URL: b.env.SMTP_URL, VERSION: version, CONCURRENCY: String(CONCURRENCY), LIMIT: limit ? String(limit) : 'all' },
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      let out = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      child.on('exit', (code) => (code === 0 ? resolve(JSON.parse(out.trim().split('\n').pop()!)) : reject(new Error(`plain sender exited ${code}`))));
    });
  // Warm-up, not measured: the sink (in this process) and Postgres see mail before the first run does.
  await runPlain(Math.min(2_000, PERSONS));
  // Each measured run starts with an empty sink: a sink holding 50,000 messages is slower (GC).
  b.sink.clear();

  // 1. the workflow
  await worker.resetPeak();
  const rssBefore = await worker.rssMiB();
  const workerCpuBefore = await worker.cpuSeconds();
  const machineBefore = await machineBusySeconds();
  const [pgBefore, temporalBefore] = [await processCpuSeconds('postgres'), await processCpuSeconds('temporal')];
  const benchCpuBefore = process.cpuUsage();
  const started = performance.now();
  const startedAt = Date.now();
  const handle = await b.client.workflow.start<typeof policyChange>('policyChange', {
    workflowId: policyWorkflowId(version),
    taskQueue: b.env.TEMPORAL_TASK_QUEUE!,
    args: [{ version, effectiveAt: effectiveAt.toISOString(), material: true, concurrency: CONCURRENCY, catchUpIntervalMs: 3_600_000 }],
  });
  // Done when the first pass and the catch-up have sent everything (the workflow then waits for the date).
  for (;;) {
    const p = await handle.query(policyProgressQuery).catch(() => undefined);
    if (p && p.phase === 'waiting') break;
    if (performance.now() - started > 30 * 60_000) throw new Error(`campaign did not finish: ${JSON.stringify(p)}`);
    await new Promise((r) => setTimeout(r, 500));
  }
  // The campaign's time runs to the last notice marked sent, so polling coarsely costs no accuracy
  // (and little CPU in this process, which is also the sink).
  const [last] = await b.sql<{ at: Date }[]>`select max(sent_at) as at from email_outbox where campaign = ${`policy:${version}`}`;
  const seconds = (last!.at.getTime() - startedAt) / 1000;
  const wfMachine = (await machineBusySeconds()) - machineBefore;
  const wfSink = cpuSecondsSince(benchCpuBefore);
  const wfPostgres = (await processCpuSeconds('postgres')) - pgBefore;
  const wfTemporal = (await processCpuSeconds('temporal')) - temporalBefore;
  const progress = await noticeProgress(b.sql, version);
  const delivered = b.sink.messages.length;
  if (progress.sent !== PERSONS || delivered !== PERSONS) throw new Error(`workflow sent ${progress.sent}, sink got ${delivered}`);
  b.sink.clear();
  const peak = await worker.peakRssMiB();
  const workerCpu = (await worker.cpuSeconds()) - workerCpuBefore;
  const description = await handle.describe();
  const raw = description.raw.workflowExecutionInfo;
  const runs = await (async () => {
    let n = 0;
    for await (const _ of b.client.workflow.list({ query: `WorkflowId = '${policyWorkflowId(version)}'` })) n++;
    return n;
  })();
  await handle.terminate('bench over');

  // 2. the baseline (its machine CPU is measured the same way)
  const plainMachineBefore = await machineBusySeconds();
  const plainSinkBefore = process.cpuUsage();
  const plainOut = await runPlain();
  const plainMachine = (await machineBusySeconds()) - plainMachineBefore;
  const plainSink = cpuSecondsSince(plainSinkBefore);
  const plain = plainOut;
  if (plain.sent !== PERSONS || b.sink.messages.length !== PERSONS) throw new Error(`plain sent ${plain.sent}, sink got ${b.sink.messages.length}`);

  const wfRate = PERSONS / seconds;
  const plainRate = plain.sent / plain.seconds;
  console.log(`  policyChange workflow    ${fmt(PERSONS)} notices in ${fmt(seconds, 2)} s = ${fmt(wfRate)} notices/s (outbox row each, exactly-once bookkeeping)`);
  console.log(`  plain nodemailer         ${fmt(plain.sent)} messages in ${fmt(plain.seconds, 2)} s = ${fmt(plainRate)} messages/s (baseline, same sink and concurrency)`);
  console.log(`  ratio workflow/plain     ${fmt(wfRate / plainRate, 2)}  (aim ≥ 0.7)`);
  const us = (s: number, n: number) => `${fmt((s / n) * 1e6)} µs`;
  console.log(`  machine CPU per message  workflow ${us(wfMachine, PERSONS)} (worker ${us(workerCpu, PERSONS)}, sink ${us(wfSink, PERSONS)}, Postgres ${us(wfPostgres, PERSONS)}, Temporal server ${us(wfTemporal, PERSONS)}, rest ${us(wfMachine - workerCpu - wfSink - wfPostgres - wfTemporal, PERSONS)})`);
  console.log(`                           plain    ${us(plainMachine, plain.sent)} (sender ${us(plain.cpuSeconds, plain.sent)}, sink ${us(plainSink, plain.sent)}, rest ${us(plainMachine - plain.cpuSeconds - plainSink, plain.sent)})`);
  console.log(`  worker RSS               ${fmt(rssBefore, 1)} MiB before, peak ${fmt(peak, 1)} MiB during the campaign`);
  console.log(`  Temporal history         ${runs} run(s) (continue-as-new); latest run ${fmt(Number(raw?.historyLength ?? 0))} events, ${fmt(Number(raw?.historySizeBytes ?? 0) / 1024, 1)} KiB`);
} finally {
  await worker.stop();
  await b.close();
}
