import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client, Connection } from '@temporalio/client';
import { ensureTemporalCli } from '../scripts/temporal-cli';
import { freePort, startDevServer, type DevServer } from '../scripts/dev-server';
import { startMailSink, type MailSink } from '../scripts/mail-sink';
import { createSql, dropDatabase, ensureDatabase, type Sql } from '../db/index';
import { migrate } from '../db/migrate';
import { build } from '../scripts/build';
import { createDataConverter } from '../lib/payload-codec';
import { generateKeyRing } from '../lib/payload-keys';
import { PersonKeys } from '../db/person-keys';

const root = fileURLToPath(new URL('..', import.meta.url));

/** The same real parts as the tests: a dev server, a fresh database, an SMTP sink, a data dir. */
export interface BenchStack {
  sql: Sql;
  client: Client;
  env: Record<string, string>;
  dataDir: string;
  /** The person data keys under DATA_KEYS of `env`: a bench seeds sealed data with them, as production stores it, and opens it. */
  personKeys: PersonKeys;
  sink: MailSink;
  close(): Promise<void>;
}

export async function openBenchStack(): Promise<BenchStack> {
  const binary = await ensureTemporalCli((l) => console.error(l));
  const temporal: DevServer = await startDevServer({ binary, port: await freePort(), headless: true });
  const sink = await startMailSink({ limit: 1_000_000 });
  const url = new URL(process.env.DATABASE_URL ?? 'postgres://127.0.0.1:5432/privacy_backoffice');
  url.pathname = `/privacy_backoffice_bench_${randomBytes(4).toString('hex')}`;
  await ensureDatabase(url.toString());
  const sql = createSql(url.toString(), { max: 10 });
  await migrate(sql);
  const dataDir = await mkdtemp(path.join(os.tmpdir(), 'privacy-backoffice-bench-'));
  // Issue 12: the benchmarks measure the encrypted stack, as production runs it: one fresh key
  // for the run, in the workers' and API's environment and in this process's client (the
  // baselines' plain client.workflow.start included).
  const keys = generateKeyRing(['bench']);
  const dataKeys = generateKeyRing(['bench-data']);
  const connection = await Connection.connect({ address: temporal.address });
  const client = new Client({ connection, namespace: 'default', dataConverter: createDataConverter(keys.ring) });
  const env = {
    PAYLOAD_KEYS: keys.spec,
    DATA_KEYS: dataKeys.spec,
    DATABASE_URL: url.toString(),
    TEMPORAL_ADDRESS: temporal.address,
    TEMPORAL_TASK_QUEUE: `bench-${randomBytes(4).toString('hex')}`,
    SMTP_URL: `smtp://127.0.0.1:${sink.smtpPort}`,
    DATA_DIR: dataDir,
    RETENTION_SWEEP_INTERVAL: 'P30D', // the Schedule stays out of the measurement
    LOG_LEVEL: 'warn',
  };
  return {
    sql,
    client,
    env,
    dataDir,
    personKeys: new PersonKeys(sql, () => Promise.resolve(dataKeys.ring)),
    sink,
    async close() {
      await connection.close();
      await sql.end({ timeout: 5 });
      await dropDatabase(url.toString());
      await Promise.all([temporal.stop(), sink.close(), rm(dataDir, { recursive: true, force: true })]);
    },
  };
}

/** Benchmarks measure what `npm start` and the image run: the compiled processes (built here if stale). */
export async function ensureBuilt(): Promise<void> {
  await build({ say: (line) => console.error(line) });
}

export interface BenchWorker {
  child: ChildProcess;
  /** Resident memory (VmRSS, MiB) 30 s after the worker said it started, before any work. */
  idleRssMiB: number;
  /** Peak resident memory of the worker process since the last reset (VmHWM), in MiB. */
  peakRssMiB(): Promise<number>;
  /** CPU seconds (user + system) the worker process has used so far. */
  cpuSeconds(): Promise<number>;
  /** Current resident memory (VmRSS), in MiB. */
  rssMiB(): Promise<number>;
  /** Starts a new peak from the current RSS (Linux clear_refs 5), so start-up bundling is not counted. */
  resetPeak(): Promise<void>;
  stop(): Promise<void>;
}

/** CPU seconds (user + system) a process has used so far, from /proc/<pid>/stat (clock ticks of 1/100 s). */
const cpuOf = async (pid: number | undefined) => {
  const fields = (await readFile(`/proc/${pid}/stat`, 'utf8')).split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
};
const rssOf = async (pid: number | undefined) => Number(/VmRSS:\s+(\d+) kB/.exec(await readFile(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) / 1024;

/** The compiled worker entry point (dist/worker/main.js, prebuilt workflow bundle) in its own process, so its memory is its own. */
export async function spawnBenchWorker(env: Record<string, string>, options: { idleWaitMs?: number } = {}): Promise<BenchWorker> {
  await ensureBuilt();
  const child = spawn(process.execPath, [...(process.env.BENCH_PROFILE ? ['--cpu-prof', '--cpu-prof-dir', process.env.BENCH_PROFILE] : []), 'dist/worker/main.js'], { cwd: root, env: { ...process.env, ...env, LOG_LEVEL: 'info', EXIT_WITH_PARENT: '1' }, stdio: ['pipe', 'pipe', 'inherit'] });
  await new Promise<void>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('"msg":"worker started"')) resolve();
    });
    child.once('exit', (code) => reject(new Error(`worker exited (${code})`)));
  });
  // BENCH_WORKER_LOG=1 shows the worker's log (on stderr) when a benchmark needs explaining.
  if (process.env.BENCH_WORKER_LOG) child.stdout!.pipe(process.stderr);
  else child.stdout!.resume();
  // Idle: start-up done (connections, Schedules, the bundle loaded into its context), no task yet.
  // V8 gives start-up garbage back some 30 s after the start (183 → 147 MiB measured), so that long.
  await new Promise((r) => setTimeout(r, options.idleWaitMs ?? 30_000));
  const idleRssMiB = await rssOf(child.pid);
  return {
    child,
    idleRssMiB,
    async peakRssMiB() {
      const status = await readFile(`/proc/${child.pid}/status`, 'utf8');
      return Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1] ?? 0) / 1024;
    },
    cpuSeconds: () => cpuOf(child.pid),
    rssMiB: () => rssOf(child.pid),
    async resetPeak() {
      await writeFile(`/proc/${child.pid}/clear_refs`, '5');
    },
    stop: () =>
      new Promise<void>((resolve) => {
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}

export interface BenchApi {
  child: ChildProcess;
  url: string;
  rssMiB(): Promise<number>;
  cpuSeconds(): Promise<number>;
  stop(): Promise<void>;
}

/** The compiled API entry point (dist/api/main.js) in its own process, ready when /readyz says so. */
export async function spawnBenchApi(env: Record<string, string>): Promise<BenchApi> {
  await ensureBuilt();
  const port = await freePort();
  // info, as in production: a log line per request (to /dev/null here) is part of what intake costs.
  // BENCH_PROFILE_DIR: a V8 CPU profile of the API, written when it stops (to see where intake's time goes).
  const profile = process.env.BENCH_PROFILE_DIR ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_PROFILE_DIR}`] : [];
  const child = spawn(process.execPath, [...profile, 'dist/api/main.js'], { cwd: root, env: { ...process.env, ...env, PORT: String(port), LOG_LEVEL: 'info' }, stdio: ['ignore', 'ignore', 'inherit'] });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`api exited (${child.exitCode})`);
    if (await fetch(`${url}/readyz`).then((r) => r.ok, () => false)) break;
    if (Date.now() > deadline) throw new Error('api did not get ready in 60 s');
    await new Promise((r) => setTimeout(r, 200));
  }
  return {
    child,
    url,
    rssMiB: () => rssOf(child.pid),
    cpuSeconds: () => cpuOf(child.pid),
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}

export const fmt = (n: number, digits = 0) => n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });

/** CPU seconds the whole machine has spent busy so far (all cores; /proc/stat minus idle and iowait). */
export async function machineBusySeconds(): Promise<number> {
  const cpu = (await readFile('/proc/stat', 'utf8')).split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  const [user, nice, system, , , irq, softirq, steal] = cpu as [number, number, number, number, number, number, number, number];
  return (user + nice + system + irq + softirq + steal) / 100;
}

/** CPU seconds used so far by the live processes named `comm` (e.g. every Postgres backend). */
export async function processCpuSeconds(comm: string): Promise<number> {
  let ticks = 0;
  for (const pid of (await readdir('/proc')).filter((d) => /^\d+$/.test(d))) {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
    const open = stat.indexOf('(');
    const close = stat.lastIndexOf(')');
    if (open < 0 || stat.slice(open + 1, close) !== comm) continue;
    const fields = stat.slice(close + 2).split(' ');
    ticks += Number(fields[11]) + Number(fields[12]);
  }
  return ticks / 100;
}

/**
 * CPU seconds used so far by the machine, every Postgres backend, the Temporal server, the
 * processes in `own` (by name), and this process: two snapshots around a run say where its
 * time went (`cpuPerUnit`).
 */
export async function cpuSnapshot(own: Record<string, () => Promise<number>> = {}): Promise<Record<string, number>> {
  const self = process.cpuUsage();
  const snapshot: Record<string, number> = { machine: await machineBusySeconds(), postgres: await processCpuSeconds('postgres'), temporal: await processCpuSeconds('temporal') };
  for (const [name, cpuSeconds] of Object.entries(own)) snapshot[name] = await cpuSeconds();
  snapshot.bench = (self.user + self.system) / 1e6;
  return snapshot;
}

/** CPU milliseconds per `units` of work between two snapshots, by part: `machine 1.23, postgres …`. */
export const cpuPerUnit = (before: Record<string, number>, after: Record<string, number>, units: number, digits: number) =>
  Object.keys(after)
    .map((part) => `${part} ${fmt(((after[part]! - before[part]!) * 1000) / units, digits)}`)
    .join(', ');
