/**
 * bench/transfer: the business-transfer package built by its workflow against a plain export.
 *
 *   npm run bench -- transfer            (BENCH_PERSONS=100000, one recording each, audio 256 bytes, BENCH_ROUNDS=2)
 *
 * 1. The workflow: `transferPackage` on the real (compiled) worker process packages every
 *    person — JSON Lines per client and category from the personal-data map, each recording's
 *    audio, every file AES-256-GCM, a signed manifest — in resumable, heartbeated batches,
 *    continuing as new so its history stays bounded.
 * 2. The baseline, on the same data: per client and category one `COPY (select row_to_json …)
 *    TO STDOUT` streamed through the same cipher into a file, and the same audio files read (32
 *    ahead, as the workflow does) and streamed through one cipher into one file — no batches, no
 *    tar, no fsync, no manifest, no signature, no workflow.
 *
 * In alternating rounds (workflow, then baseline; BENCH_ROUNDS, default 2), each round a new
 * transfer of the same persons. Prints both rates per round and their ratio over all rounds (aim
 * ≥ 0.7), the worker's resident memory before and at its peak during the build (aim: growth ≤
 * 100 MiB), and the runs and history length of the workflow.
 */
import { execFileSync } from 'node:child_process';
import { createCipheriv, createHash, generateKeyPairSync, randomBytes, randomUUID } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createSql } from '../db/index';
import { openBenchStack, spawnBenchWorker, fmt, cpuPerUnit, cpuSnapshot, type BenchStack, type BenchWorker } from './stack';
import { audioKeyFor, recordingStoreFor } from '../lib/recording-store';
import { seal } from '../lib/at-rest';
import { verifyTransferPackage } from '../lib/verify-transfer';
import { packageFileKey } from '../activities/transfer-package';
import { transferPackageWorkflowId } from '../workflows/ids';
import type { transferPackage } from '../workflows/transfer-package';

const PERSONS = Number(process.env.BENCH_PERSONS ?? 100_000);
/** Workflow-then-plain rounds: the ratio is taken over all of them, so one noisy run weighs less. */
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 2);
const CLIENTS = 4;
const AUDIO_BYTES = 256;

async function eachLimited<T>(items: T[], limit: number, fn: (item: T) => Promise<void>) {
  let next = 0;
  await Promise.all(Array.from({ length: limit }, async () => { while (next < items.length) await fn(items[next++]!); }));
}

/** Persons (with a second address each) in CLIENTS clients, one recording each with its audio sealed on disk. */
async function seedPersons(b: BenchStack): Promise<string[]> {
  const clientIds: string[] = [];
  for (let c = 0; c < CLIENTS; c++) {
    const [client] = await b.sql<{ id: string }[]>`insert into clients (name) values (${`Bench ${c} ApS`}) returning id`;
    clientIds.push(client!.id);
    await b.sql`
      insert into customers (id, client_id, email, name, provided_by, provided_by_kind, locale, marketing_emails)
      select gen_random_uuid(), ${client!.id}, 'person-' || ${c} || '-' || g || '@kunde.test', 'Person ' || g, 'Bench ApS (klient / client)', 'client', 'da', g % 3 <> 0
      from generate_series(1, ${PERSONS / CLIENTS}) g`;
  }
  const audio = Buffer.alloc(AUDIO_BYTES, 7);
  const sha = createHash('sha256').update(audio).digest('hex');
  const ids = (
    await b.sql<{ id: string }[]>`
      with r as (select gen_random_uuid() as id, client_id, id as customer_id, row_number() over () as n from customers)
      insert into recordings (id, client_id, customer_id, caller_number, recorded_at, duration_seconds, delete_after, audio_key, audio_sha256, audio_bytes, content_type)
      select id, client_id, customer_id, '+4520' || lpad(n::text, 6, '0'), now() - interval '1 day', 60, now() + interval '80 days',
             substr(id::text, 1, 2) || '/' || id::text || '.audio', ${sha}, ${AUDIO_BYTES}, 'audio/wav'
      from r
      returning id`
  ).map((r) => r.id);
  // Sealed as ingest stores it (issue 12): each recording's audio under its own data key, kept wrapped in person_keys.
  const root = path.join(b.dataDir, 'recordings');
  for (let i = 0; i < ids.length; i += 5000) {
    const rows: { id: string; audio_key: string; master_key_id: string; wrapped: Buffer }[] = [];
    await eachLimited(ids.slice(i, i + 5000), 32, async (id) => {
      const { dataKey, wrapped } = await b.personKeys.generate();
      const file = path.join(root, audioKeyFor(id));
      await mkdir(path.dirname(file), { recursive: true });
      await writeFile(file, seal(dataKey, audio));
      rows.push({ id: wrapped.id, audio_key: audioKeyFor(id), master_key_id: wrapped.masterKeyId, wrapped: wrapped.wrapped });
    });
    await b.sql`insert into person_keys ${b.sql(rows)}`;
  }
  return clientIds;
}

/** A transfer of every person at its handover, ready to package. */
async function newTransfer(b: BenchStack, publicKey: string): Promise<string> {
  const transferId = randomUUID();
  await b.sql`
    insert into transfers (id, acquirer_name, acquirer_email, acquirer_public_key, scope, legal_basis, handover_at, after_handover, created_by, status, inventory, excluded)
    values (${transferId}, 'Opkøber A/S', 'data@opkoeber.test', ${publicKey}, ${b.sql.json({ all: true })}, 'acquisition', now(), 'keep', ${randomUUID()}, 'packaging', '[]', '[]')`;
  await b.sql`insert into transfer_persons (transfer_id, customer_id, client_id) select ${transferId}, id, client_id from customers`;
  await b.sql`vacuum analyze`;
  // The seed's files and the database's writes go to disk now, not during the first measurement:
  // the kernel writes dirty pages back ~30 s later, which fell into round 1's workflow.
  execFileSync('sync');
  await b.sql`checkpoint`;
  return transferId;
}

/** AES-256-GCM over a stream: iv first, tag last (the package's file format). */
function gcm(key: Buffer): Transform {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  let first = true;
  return new Transform({
    transform(chunk: Buffer, _e, done) {
      if (first) {
        this.push(iv);
        first = false;
      }
      done(null, cipher.update(chunk));
    },
    flush(done) {
      this.push(cipher.final());
      done(null, cipher.getAuthTag());
    },
  });
}

/** The baseline: COPY … TO STDOUT per client and category through the cipher into a file, then the audio. */
export async function plainExport(b: BenchStack, clientIds: string[], out: string): Promise<{ seconds: number; jsonSeconds: number; bytes: number }> {
  await mkdir(out, { recursive: true });
  const key = randomBytes(32);
  const started = performance.now();
  // COPY takes no parameters: the client id (a uuid from our own insert) is checked and written in.
  const categories = (clientId: string) => {
    if (!/^[0-9a-f-]{36}$/.test(clientId)) throw new Error('not a uuid');
    // A connection per COPY, closed after it: postgres.js can leave a connection's socket paused after
    // a COPY stream under backpressure, and the next query on it would wait for ever.
    const copy = (select: string) => async () => {
      const conn = createSql(b.env.DATABASE_URL!, { max: 1 });
      const stream = await conn.unsafe(`copy (select row_to_json(x) from (${select}) x) to stdout`).readable();
      stream.once('close', () => void conn.end({ timeout: 1 }));
      return stream;
    };
    return {
      persons: copy(`select id, email, name, locale, created_at, marketing_emails, objected_to_processing, provided_by, provided_by_kind, provided_via, provided_at
                     from customers where client_id = '${clientId}' order by id`),
      email_addresses: copy(`select e.customer_id, e.email, e.since from customer_emails e join customers c on c.id = e.customer_id
                     where c.client_id = '${clientId}' order by e.customer_id, e.since, e.email`),
      recordings: copy(`select r.id, r.customer_id, r.caller_number, r.recorded_at, r.duration_seconds, r.delete_after, r.content_type, r.audio_sha256,
                     exists (select 1 from recording_holds h where h.recording_id = r.id and h.released_at is null) as held
                     from recordings r join customers c on c.id = r.customer_id where c.client_id = '${clientId}' and r.status = 'retained' order by r.customer_id, r.id`),
    };
  };
  for (const clientId of clientIds) {
    for (const [name, query] of Object.entries(categories(clientId))) {
      await pipeline(await query(), gcm(key), createWriteStream(path.join(out, `${clientId}-${name}.jsonl.enc`)));
    }
  }
  const jsonSeconds = (performance.now() - started) / 1000;
  // The same store the worker reads from (same read call, the data keys fetched in one query as the
  // workflow fetches a batch's), 32 reads ahead as the workflow does, all of it through one cipher
  // stream into one file (the workflow encrypts a pack per batch).
  const store = recordingStoreFor(b.dataDir, b.personKeys);
  const audioCipher = gcm(key);
  const audioWritten = pipeline(audioCipher, createWriteStream(path.join(out, 'audio.enc')));
  for (const clientId of clientIds) {
    const rows = await b.sql<{ key: string }[]>`select r.audio_key as key from recordings r join customers c on c.id = r.customer_id where c.client_id = ${clientId} and r.status = 'retained' order by r.customer_id, r.id`;
    const keys = await store.keysFor(rows.map((r) => r.key));
    const reads: Promise<Buffer>[] = [];
    let next = 0;
    const fill = () => {
      while (reads.length < 32 && next < rows.length) reads.push(store.read(rows[next++]!.key, keys));
    };
    fill();
    for (let i = 0; i < rows.length; i++) {
      const audio = await reads.shift()!;
      fill();
      if (!audioCipher.write(audio)) await new Promise<void>((resolve) => audioCipher.once('drain', () => resolve()));
    }
  }
  audioCipher.end();
  await audioWritten;
  const seconds = (performance.now() - started) / 1000;
  let bytes = 0;
  for (const f of [...clientIds.flatMap((c) => ['persons', 'email_addresses', 'recordings'].map((n) => `${c}-${n}.jsonl.enc`)), 'audio.enc']) bytes += (await stat(path.join(out, f))).size;
  return { seconds, jsonSeconds, bytes };
}

/** What `work` returns, and the CPU it took per 1,000 persons by process (the bench worker's from its own figures). */
async function withCpu<T>(worker: BenchWorker, work: () => Promise<T>): Promise<{ result: T; cpuPerThousand: string }> {
  const cpu = () => cpuSnapshot({ worker: () => worker.cpuSeconds() });
  const before = await cpu();
  const result = await work();
  return { result, cpuPerThousand: cpuPerUnit(before, await cpu(), PERSONS / 1000, 1) };
}

/** One package built by the workflow on the bench worker: its time, CPU split, memory, history and the tar. */
async function measureWorkflow(b: BenchStack, worker: BenchWorker, transferId: string) {
  const rssBefore = await worker.rssMiB();
  await worker.resetPeak();
  const { result: { sealed, seconds }, cpuPerThousand } = await withCpu(worker, async () => {
    const started = performance.now();
    const handle = await b.client.workflow.start<typeof transferPackage>('transferPackage', {
      workflowId: transferPackageWorkflowId(transferId),
      taskQueue: b.env.TEMPORAL_TASK_QUEUE!,
      args: [{ transferId, ...(process.env.BENCH_BATCH ? { batchSize: Number(process.env.BENCH_BATCH) } : {}) }],
    });
    const watch = setInterval(() => {
      if (!process.env.BENCH_DEBUG) return;
      void handle.describe().then(
        (d) => console.error(`  … ${d.status.name}, ${JSON.stringify(d.raw.pendingActivities?.map((a) => [a.activityType?.name, a.attempt, a.lastFailure?.message]))}`),
        (e: Error) => console.error(`  … ${e.message}`),
      );
    }, 5_000);
    const sealed = await handle.result().finally(() => clearInterval(watch));
    return { sealed, seconds: (performance.now() - started) / 1000 };
  });
  const peak = await worker.peakRssMiB();
  const tar = path.join(b.dataDir, packageFileKey(transferId));
  const bytes = (await stat(tar)).size;

  // Its history: every run of the workflow id, the longest, and the wall time of each activity type.
  let runs = 0;
  let longest = 0;
  const activityMs = new Map<string, number>();
  for await (const run of b.client.workflow.list({ query: `WorkflowId = "${transferPackageWorkflowId(transferId)}"` })) {
    runs += 1;
    longest = Math.max(longest, run.historyLength);
    const events = (await b.client.workflow.getHandle(run.workflowId, run.runId).fetchHistory()).events ?? [];
    const scheduled = new Map<string, { type: string; at: number }>();
    const ms = (t: { seconds?: unknown; nanos?: number | null } | null | undefined) => Number(t?.seconds ?? 0) * 1000 + (t?.nanos ?? 0) / 1e6;
    for (const e of events) {
      const s = e.activityTaskScheduledEventAttributes;
      if (s) scheduled.set(String(e.eventId), { type: s.activityType?.name ?? '?', at: ms(e.eventTime) });
      const done = e.activityTaskCompletedEventAttributes;
      const from = done && scheduled.get(String(done.scheduledEventId));
      if (from) activityMs.set(from.type, (activityMs.get(from.type) ?? 0) + ms(e.eventTime) - from.at);
    }
  }
  return { seconds, cpuPerThousand, rssBefore, peak, tar, bytes, sealed, runs, longest, activityMs };
}

async function main() {
  const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 3072, publicKeyEncoding: { type: 'spki', format: 'pem' }, privateKeyEncoding: { type: 'pkcs8', format: 'pem' } });
  const b = await openBenchStack();
  const worker = await spawnBenchWorker(b.env);
  try {
    console.log(`bench/transfer — ${fmt(PERSONS)} persons in ${CLIENTS} clients, ${fmt(PERSONS)} recordings (audio ${AUDIO_BYTES} bytes each), ${ROUNDS} round(s)`);
    const clientIds = await seedPersons(b);
    const rounds: { wf: Awaited<ReturnType<typeof measureWorkflow>>; plain: Awaited<ReturnType<typeof plainExport>> & { cpuPerThousand: string } }[] = [];
    for (let round = 1; round <= ROUNDS; round++) {
      const transferId = await newTransfer(b, publicKey);

      // 1. the workflow
      const wf = await measureWorkflow(b, worker, transferId);

      // The package is what the acquirer can check (outside the timing).
      const checked = performance.now();
      const report = await verifyTransferPackage(wf.tar, { privateKeyPem: privateKey });
      if (!report.ok || report.manifestSha256 !== wf.sealed.manifestSha256) throw new Error(`the package does not verify: ${JSON.stringify(report.problems.slice(0, 5))}`);
      if (report.audio !== PERSONS) throw new Error(`the package holds the audio of ${report.audio} recordings, not ${PERSONS}`);
      const verified = `OK: ${fmt(report.files)} files, ${fmt(report.decrypted)} decrypted, the audio of ${fmt(report.audio)} recordings, in ${fmt((performance.now() - checked) / 1000, 2)} s`;
      // Every round hands over the same data: this round's package goes, and its disclosure leaves
      // the register, or the next round's recipients category would list this acquirer for everyone.
      await rm(wf.tar, { force: true });
      await b.sql`update transfers set disclosure_id = null where id = ${transferId}`;

      // 2. the baseline
      const plainDir = path.join(b.dataDir, 'plain');
      const { result: plain, cpuPerThousand: cpuPlain } = await withCpu(worker, () => plainExport(b, clientIds, plainDir));
      await rm(plainDir, { recursive: true, force: true });
      rounds.push({ wf, plain: { ...plain, cpuPerThousand: cpuPlain } });

      console.log(`  round ${round}`);
      console.log(`    transferPackage workflow  ${fmt(PERSONS)} persons in ${fmt(wf.seconds, 2)} s = ${fmt(PERSONS / wf.seconds)} persons/s, ${fmt(wf.sealed.files)} files, ${fmt(wf.bytes / 1048576, 1)} MiB (batches, manifest, signature)`);
      console.log(`    plain COPY + encrypt      ${fmt(PERSONS)} persons in ${fmt(plain.seconds, 2)} s = ${fmt(PERSONS / plain.seconds)} persons/s (JSON Lines ${fmt(plain.jsonSeconds, 2)} s, audio ${fmt(plain.seconds - plain.jsonSeconds, 2)} s), ${fmt(plain.bytes / 1048576, 1)} MiB (baseline)`);
      console.log(`    ratio workflow/plain      ${fmt(plain.seconds / wf.seconds, 2)}`);
      console.log(`    CPU ms per 1,000 persons  workflow: ${wf.cpuPerThousand}`);
      console.log(`                              plain:    ${cpuPlain}`);
      console.log(`    activities (wall time)    ${[...wf.activityMs].map(([type, t]) => `${type} ${fmt(t / 1000, 2)} s`).join(', ')}`);
      console.log(`    verify-transfer           ${verified}`);
    }
    const wfSeconds = rounds.reduce((t, r) => t + r.wf.seconds, 0);
    const plainSeconds = rounds.reduce((t, r) => t + r.plain.seconds, 0);
    const growth = Math.max(...rounds.map((r) => r.wf.peak - r.wf.rssBefore));
    console.log(`  all rounds`);
    console.log(`    workflow                  ${fmt((PERSONS * ROUNDS) / wfSeconds)} persons/s`);
    console.log(`    plain                     ${fmt((PERSONS * ROUNDS) / plainSeconds)} persons/s`);
    console.log(`    ratio workflow/plain      ${fmt(plainSeconds / wfSeconds, 2)}  (aim ≥ 0.7)`);
    console.log(`    worker RSS                ${fmt(worker.idleRssMiB, 1)} MiB idle, peak ${fmt(Math.max(...rounds.map((r) => r.wf.peak)), 1)} MiB during a build: growth at most ${fmt(growth, 1)} MiB (aim ≤ 100)`);
    console.log(`    history                   ${Math.max(...rounds.map((r) => r.wf.runs))} run(s) per package (continue-as-new), longest ${fmt(Math.max(...rounds.map((r) => r.wf.longest)))} events`);
  } finally {
    await worker.stop();
    await b.close();
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) await main();
