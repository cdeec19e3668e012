/**
 * bench/retention: the retention sweep against a plain batched SQL delete plus unlink.
 *
 *   npm run bench -- retention            (BENCH_EXPIRED=100000 BENCH_HELD=1000 BENCH_ROUNDS=2 by default)
 *
 * 1. Throughput: BENCH_EXPIRED recordings past deadline (and BENCH_HELD held) are deleted by the
 *    retentionSweep workflow on the real worker process (receipts, hold checks, heartbeats), then
 *    — same data regenerated — by a plain loop of `delete … returning audio_key` +
 *    unlink with the same batch size, in alternating rounds. Ratio = sweep rate / plain rate over
 *    all rounds.
 * 2. Scaling: the sweep over SCALE_EXPIRED due recordings among few vs many retained (not yet
 *    due) ones: its time should follow the due recordings, not the table.
 */
import { randomUUID, createHash } from 'node:crypto';
import { mkdir, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { openBenchStack, spawnBenchWorker, fmt, cpuPerUnit, cpuSnapshot, type BenchStack } from './stack';
import { audioKeyFor } from '../lib/recording-store';
import type { retentionSweep } from '../workflows/retention-sweep';

const EXPIRED = Number(process.env.BENCH_EXPIRED ?? 100_000);
const HELD = Number(process.env.BENCH_HELD ?? 1_000);
const BATCH = 500;
/** Sweep-then-plain rounds: the ratio is taken over all of them, so one noisy run weighs less. */
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 2);
const SCALE_EXPIRED = Number(process.env.BENCH_SCALE_EXPIRED ?? 10_000);
const SCALE_SIZES = [10_000, Number(process.env.BENCH_SCALE_RETAINED ?? 200_000)];

const AUDIO = Buffer.alloc(2048, 7);
const AUDIO_SHA = createHash('sha256').update(AUDIO).digest('hex');

async function eachLimited<T>(items: T[], limit: number, fn: (item: T) => Promise<void>) {
  let next = 0;
  await Promise.all(Array.from({ length: limit }, async () => { while (next < items.length) await fn(items[next++]!); }));
}

/** Rows straight into Postgres (generate_series) and audio files onto disk, as ingest leaves them. */
async function seed(b: BenchStack, clientId: string, count: number, opts: { due: boolean; files: boolean }): Promise<string[]> {
  const ids = Array.from({ length: count }, () => randomUUID());
  const recordedAt = opts.due ? new Date(Date.now() - 120 * 86_400_000) : new Date();
  const deleteAfter = opts.due ? new Date(Date.now() - 30 * 86_400_000) : new Date(Date.now() + 90 * 86_400_000);
  for (let i = 0; i < ids.length; i += 10_000) {
    const chunk = ids.slice(i, i + 10_000);
    await b.sql`
      insert into recordings (id, client_id, recorded_at, duration_seconds, delete_after, audio_key, audio_sha256, audio_bytes, content_type)
      select id, ${clientId}, ${recordedAt}, 60, ${deleteAfter}, substr(id::text, 1, 2) || '/' || id::text || '.audio', ${AUDIO_SHA}, ${AUDIO.length}, 'audio/wav'
      from unnest(${chunk}::uuid[]) as id`;
  }
  if (opts.files) {
    const root = path.join(b.dataDir, 'recordings');
    await eachLimited(ids, 32, async (id) => {
      const file = path.join(root, audioKeyFor(id));
      await mkdir(path.dirname(file), { recursive: true });
      await writeFile(file, AUDIO);
    });
  }
  return ids;
}

async function hold(b: BenchStack, clientId: string, ids: string[]) {
  const disputeId = randomUUID();
  await b.sql`insert into disputes (id, client_id, reason) values (${disputeId}, ${clientId}, 'bench')`;
  await b.sql`insert into recording_holds (recording_id, dispute_id) select id, ${disputeId} from unnest(${ids}::uuid[]) as id`;
}

/**
 * Statistics for what was just seeded, as autovacuum keeps them in production. Without them
 * the planner takes the freshly filled recording_holds for a handful of rows and checks every
 * recording against all 1,000 holds in a loop (~30 ms per batch of 500, for the sweep and the
 * baseline alike) instead of looking each up in recording_holds_active.
 */
async function analyzeSeeded(b: BenchStack) {
  await b.sql`vacuum analyze recordings`;
  await b.sql`analyze recording_holds`;
}

async function runSweep(b: BenchStack, taskQueue: string) {
  const started = performance.now();
  const result = await b.client.workflow.execute<typeof retentionSweep>('retentionSweep', {
    workflowId: `bench-sweep-${randomUUID()}`,
    taskQueue,
    args: [{ batchSize: BATCH }],
  });
  return { seconds: (performance.now() - started) / 1000, deleted: result.deleted };
}

/** The baseline: what deleting costs with no receipts, no hold re-check, no workflow. */
async function plainDelete(b: BenchStack) {
  const root = path.join(b.dataDir, 'recordings');
  const started = performance.now();
  let deleted = 0;
  for (;;) {
    const rows = await b.sql<{ audioKey: string }[]>`
      delete from recordings where id in (
        select r.id from recordings r
        where r.status = 'retained' and r.delete_after <= now()
          and not exists (select 1 from recording_holds h where h.recording_id = r.id and h.released_at is null)
        order by r.delete_after, r.id limit ${BATCH})
      returning audio_key as "audioKey"`;
    if (rows.length === 0) break;
    await eachLimited(rows, 32, async (r) => unlink(path.join(root, r.audioKey)).catch(() => {}));
    deleted += rows.length;
  }
  return { seconds: (performance.now() - started) / 1000, deleted };
}

async function reset(b: BenchStack) {
  await b.sql`truncate deletion_receipts, recording_holds, disputes, recordings cascade`;
}

async function main() {
  const b = await openBenchStack();
  const worker = await spawnBenchWorker(b.env);
  try {
    const [client] = await b.sql<{ id: string }[]>`insert into clients (name) values ('Bench ApS') returning id`;
    const clientId = client!.id;

    console.log(`bench/retention — ${fmt(EXPIRED)} recordings past deadline, ${fmt(HELD)} of them held, batch ${BATCH}, ${ROUNDS} round(s) of sweep then plain`);
    const seedDue = async () => {
      await reset(b);
      await seed(b, clientId, EXPIRED + HELD, { due: true, files: true }).then((ids) => hold(b, clientId, ids.slice(0, HELD)));
      await analyzeSeeded(b);
    };
    const rssBefore = await worker.rssMiB();
    await worker.resetPeak();
    const cpu = () => cpuSnapshot({ worker: () => worker.cpuSeconds() });
    const perThousand = (before: Record<string, number>, after: Record<string, number>) => cpuPerUnit(before, after, EXPIRED / 1000, 1);
    let sweepSeconds = 0;
    let plainSeconds = 0;
    for (let round = 1; round <= ROUNDS; round++) {
      // a. the workflow
      await seedDue();
      const sweepCpuBefore = await cpu();
      const sweep = await runSweep(b, b.env.TEMPORAL_TASK_QUEUE!);
      const sweepCpu = perThousand(sweepCpuBefore, await cpu());
      const [{ held }] = (await b.sql`select count(*)::int as held from recordings where status = 'retained'`) as unknown as [{ held: number }];
      if (sweep.deleted !== EXPIRED || held !== HELD) throw new Error(`sweep deleted ${sweep.deleted}, ${held} left (expected ${EXPIRED}, ${HELD})`);

      // b. the baseline on the same data, regenerated
      await seedDue();
      const plainCpuBefore = await cpu();
      const plain = await plainDelete(b);
      const plainCpu = perThousand(plainCpuBefore, await cpu());
      if (plain.deleted !== EXPIRED) throw new Error(`plain delete removed ${plain.deleted}`);

      sweepSeconds += sweep.seconds;
      plainSeconds += plain.seconds;
      const sweepRate = sweep.deleted / sweep.seconds;
      const plainRate = plain.deleted / plain.seconds;
      console.log(`  round ${round}`);
      console.log(`    retentionSweep workflow   ${fmt(sweep.deleted)} deleted in ${fmt(sweep.seconds, 2)} s = ${fmt(sweepRate)} deletions/s (receipts chained, holds re-checked)`);
      console.log(`    plain SQL delete + unlink ${fmt(plain.deleted)} deleted in ${fmt(plain.seconds, 2)} s = ${fmt(plainRate)} deletions/s (baseline)`);
      console.log(`    ratio sweep/plain         ${fmt(sweepRate / plainRate, 2)}`);
      console.log(`    CPU ms per 1,000 deleted  sweep: ${sweepCpu}`);
      console.log(`                              plain: ${plainCpu}`);
    }
    console.log(`  all rounds`);
    console.log(`    ratio sweep/plain         ${fmt(plainSeconds / sweepSeconds, 2)}  (${fmt((EXPIRED * ROUNDS) / sweepSeconds)} vs ${fmt((EXPIRED * ROUNDS) / plainSeconds)} deletions/s; aim ≥ 0.8)`);
    console.log(`    worker RSS                ${fmt(worker.idleRssMiB, 1)} MiB idle after start, ${fmt(rssBefore, 1)} MiB before the sweeps, peak ${fmt(await worker.peakRssMiB(), 1)} MiB during them (VmRSS / VmHWM of the compiled worker process)`);

    // 2. scaling with the retained (not yet due) recordings
    console.log(`\n  sweep time vs table size — ${fmt(SCALE_EXPIRED)} due each time`);
    const times: number[] = [];
    for (const retained of SCALE_SIZES) {
      await reset(b);
      await seed(b, clientId, retained, { due: false, files: false });
      await seed(b, clientId, SCALE_EXPIRED, { due: true, files: true });
      await analyzeSeeded(b);
      const run = await runSweep(b, b.env.TEMPORAL_TASK_QUEUE!);
      if (run.deleted !== SCALE_EXPIRED) throw new Error(`scaling sweep deleted ${run.deleted}`);
      times.push(run.seconds);
      console.log(`  ${fmt(retained).padStart(9)} retained + ${fmt(SCALE_EXPIRED)} due: ${fmt(run.seconds, 2)} s (${fmt(SCALE_EXPIRED / run.seconds)} deletions/s)`);
    }
    console.log(`  time ratio large/small table: ${fmt(times[1]! / times[0]!, 2)} for ${fmt(SCALE_SIZES[1]! / SCALE_SIZES[0]!)}× the retained rows (≈1 means it follows the due ones only)`);
  } finally {
    await worker.stop();
    await b.close();
  }
}

await main();
