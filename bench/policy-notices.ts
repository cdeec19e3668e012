/**
 * bench/policy-notices: a material policy change noticed to BENCH_PERSONS people (default
 * 50,000) by the policyChange workflow on the real worker process (outbox row per person,
 * marked as SMTP accepts each), against plain nodemailer sending the same messages to the
 * same sink with the same concurrency, in the same run. Also: the worker's peak memory and
 * the campaign's Temporal history (it continues as new, so it stays bounded).
 *
 *   npm run bench -- policy-notices        (BENCH_PERSONS, BENCH_CONCURRENCY, BENCH_ROUNDS)
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
/** Workflow-then-plain rounds: the ratio is taken over all of them, so one noisy run weighs less. */
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 2);

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
      insert into customers (id, client_id, email, name, locale, provided_by, provided_by_kind)
      select id, ${client!.id}, 'p-' || id || '@bench.test', 'Person', case when random() < 0.2 then 'en' else 'da' end, 'Bench ApS (klient / client)', 'client'
      from unnest(${ids.slice(i, i + 10_000)}::uuid[]) as id`;
  }
  await b.sql`vacuum analyze customers`;
  const effectiveAt = new Date(Date.now() + 86_400_000);
  const newVersion = async () => {
    const version = `bench-${randomUUID().slice(0, 8)}`;
    await insertPolicy(b.sql, { version, effectiveAt, material: true, summary: 'Vi gemmer optagelser i 2 måneder i stedet for 3.', body: 'Fuld tekst' });
    return version;
  };
  console.log(`bench/policy-notices — ${fmt(PERSONS)} persons, concurrency ${CONCURRENCY}, one local SMTP sink, ${ROUNDS} round(s) of workflow then plain`);

  /** Plain nodemailer in its own process, like the worker (async: the sink lives in this process and must keep answering). */
  const runPlain = (version: string, limit?: number) =>
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

  /** One campaign through the policyChange workflow on the worker process. */
  const measureWorkflow = async () => {
    const version = await newVersion();
    b.sink.clear(); // each measured run starts with an empty sink: a sink holding 50,000 messages is slower (GC)
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
    const machine = (await machineBusySeconds()) - machineBefore;
    const sink = cpuSecondsSince(benchCpuBefore);
    const postgres = (await processCpuSeconds('postgres')) - pgBefore;
    const temporal = (await processCpuSeconds('temporal')) - temporalBefore;
    const workerCpu = (await worker.cpuSeconds()) - workerCpuBefore;
    const progress = await noticeProgress(b.sql, version);
    if (progress.sent !== PERSONS || b.sink.messages.length !== PERSONS) throw new Error(`workflow sent ${progress.sent}, sink got ${b.sink.messages.length}`);
    const raw = (await handle.describe()).raw.workflowExecutionInfo;
    let runs = 0;
    for await (const _ of b.client.workflow.list({ query: `WorkflowId = '${policyWorkflowId(version)}'` })) runs++;
    await handle.terminate('bench over');
    return { seconds, machine, sink, postgres, temporal, workerCpu, runs, events: Number(raw?.historyLength ?? 0), historyBytes: Number(raw?.historySizeBytes ?? 0) };
  };

  /** The same notices through plain nodemailer, its machine CPU measured the same way. */
  const measurePlain = async () => {
    const version = await newVersion();
    b.sink.clear();
    const machineBefore = await machineBusySeconds();
    const sinkBefore = process.cpuUsage();
    const plain = await runPlain(version);
    const machine = (await machineBusySeconds()) - machineBefore;
    const sink = cpuSecondsSince(sinkBefore);
    if (plain.sent !== PERSONS || b.sink.messages.length !== PERSONS) throw new Error(`plain sent ${plain.sent}, sink got ${b.sink.messages.length}`);
    return { ...plain, machine, sink };
  };

  // Warm-up, not measured: the sink (in this process) and Postgres see mail before the first run does.
  await runPlain(await newVersion(), Math.min(2_000, PERSONS));
  await worker.resetPeak();
  const rssBefore = await worker.rssMiB();

  const us = (s: number, n: number) => `${fmt((s / n) * 1e6)} µs`;
  const rounds: { wf: Awaited<ReturnType<typeof measureWorkflow>>; plain: Awaited<ReturnType<typeof measurePlain>> }[] = [];
  for (let round = 1; round <= ROUNDS; round++) {
    const wf = await measureWorkflow();
    const plain = await measurePlain();
    rounds.push({ wf, plain });
    const wfRate = PERSONS / wf.seconds;
    const plainRate = PERSONS / plain.seconds;
    console.log(`  round ${round}`);
    console.log(`    policyChange workflow  ${fmt(PERSONS)} notices in ${fmt(wf.seconds, 2)} s = ${fmt(wfRate)} notices/s (an outbox row each, marked sent as SMTP accepts it)`);
    console.log(`    plain nodemailer       ${fmt(PERSONS)} messages in ${fmt(plain.seconds, 2)} s = ${fmt(plainRate)} messages/s (baseline, same sink and concurrency)`);
    console.log(`    ratio workflow/plain   ${fmt(wfRate / plainRate, 2)}`);
    console.log(`    machine CPU per msg    workflow ${us(wf.machine, PERSONS)} (worker ${us(wf.workerCpu, PERSONS)}, sink ${us(wf.sink, PERSONS)}, Postgres ${us(wf.postgres, PERSONS)}, Temporal server ${us(wf.temporal, PERSONS)})`);
    console.log(`                           plain    ${us(plain.machine, PERSONS)} (sender ${us(plain.cpuSeconds, PERSONS)}, sink ${us(plain.sink, PERSONS)})`);
  }
  const wfTotal = rounds.reduce((t, r) => t + r.wf.seconds, 0);
  const plainTotal = rounds.reduce((t, r) => t + r.plain.seconds, 0);
  const last = rounds.at(-1)!.wf;
  console.log(`  all rounds`);
  console.log(`    ratio workflow/plain   ${fmt(plainTotal / wfTotal, 2)}  (${fmt((PERSONS * ROUNDS) / wfTotal)} vs ${fmt((PERSONS * ROUNDS) / plainTotal)} per second; aim ≥ 0.85, issue 15)`);
  console.log(`    worker RSS             ${fmt(worker.idleRssMiB, 1)} MiB idle after start, ${fmt(rssBefore, 1)} MiB before the campaigns, peak ${fmt(await worker.peakRssMiB(), 1)} MiB during them`);
  console.log(`    Temporal history       ${last.runs} run(s) (continue-as-new); latest run ${fmt(last.events)} events, ${fmt(last.historyBytes / 1024, 1)} KiB`);
} finally {
  await worker.stop();
  await b.close();
}
