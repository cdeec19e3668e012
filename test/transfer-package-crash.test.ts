import { generateKeyPairSync, randomUUID } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { openStack, type TestStack } from './support/stack';
import { seedCustomers } from './support/customers';
import { newClient, seedRecordings } from './support/recordings';
import { spawnWorker, workerEnvFor, type WorkerProcess } from './support/worker-process';
import { waitFor } from './support/wait';
import { ISOLATED_NAMESPACE } from './global-setup';
import { createRecordingActivities } from '../activities/recordings';
import { appendBatch, beginPackage, packageFileKey, writeManifest } from '../activities/transfer-package';
import { insertDispute } from '../db/disputes';
import { audioKeyFor } from '../lib/recording-store';
import { isAudioPack, PACKED_AUDIO_MAX } from '../lib/transfer-package';
import { verifyTransferPackage } from '../lib/verify-transfer';
import { transferPackageWorkflowId } from '../workflows/ids';
import { transferPackageProgressQuery, type transferPackage } from '../workflows/transfer-package';

/**
 * D8: the package is built in batches that survive a killed worker. The real worker process is
 * SIGKILLed mid-build; another finishes it; the result verifies, holds every person exactly
 * once, and is byte-for-byte the package a build without a crash writes.
 */
const PERSONS = 120;
const BATCH = 5;
/** The recording whose audio is too long for a pack. */
const LONG = 21;

let s: TestStack;
let workerEnv: Record<string, string>;
const workers: WorkerProcess[] = [];
const temps: string[] = [];
const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 3072, publicKeyEncoding: { type: 'spki', format: 'pem' }, privateKeyEncoding: { type: 'pkcs8', format: 'pem' } });

beforeAll(async () => {
  s = await openStack({ TEMPORAL_NAMESPACE: ISOLATED_NAMESPACE, RETENTION_SWEEP_INTERVAL: 'P30D' }, { ownDatabase: true });
  workerEnv = workerEnvFor(s.config);
});
afterAll(async () => {
  await Promise.all(workers.map((w) => w.stop()));
  await Promise.all(temps.map((t) => rm(t, { recursive: true, force: true })));
  await s.close();
});

/** A transfer at its handover: the inventory taken, the persons fixed. */
async function transferAtHandover(): Promise<{ id: string; persons: { id: string; email: string }[]; recordings: string[] }> {
  const clientId = await newClient(s);
  const persons = await seedCustomers(s.sql, { clientId, count: PERSONS, tag: 'moving' });
  const recordings = await seedRecordings(s, { clientId, count: PERSONS, recordedAt: new Date(Date.now() - 86_400_000) });
  await s.sql`update recordings r set customer_id = p.id from (select unnest(${recordings}::uuid[]) as rid, unnest(${persons.map((p) => p.id)}::uuid[]) as id) p where r.id = p.rid`;
  // One long recording: a file of its own in the package, streamed; the short ones go into their batch's audio pack.
  const long = await s.store.stage(Readable.from([Buffer.alloc(PACKED_AUDIO_MAX + 1000, 'L')]));
  await s.sql`delete from person_keys where audio_key = ${audioKeyFor(recordings[LONG]!)}`;
  await long.commit(audioKeyFor(recordings[LONG]!));
  await s.sql`update recordings set audio_sha256 = ${long.sha256}, audio_bytes = ${long.bytes} where id = ${recordings[LONG]!}`;
  await s.sql`insert into call_messages (client_id, customer_id, channel, body, caller_name) select ${clientId}, id, 'sms', 'Ring tilbage', 'Person' from unnest(${persons.slice(0, 30).map((p) => p.id)}::uuid[]) id`;
  await s.sql`insert into data_requests (id, customer_id, type, received_at, due_at, filed_by) values (${randomUUID()}, ${persons[7]!.id}, 'access', now(), now() + interval '7 days', 'customer')`;
  await s.sql`update customers set marketing_emails = false where id = ${persons[3]!.id}`;
  const disputeId = randomUUID();
  await insertDispute(s.sql, { id: disputeId, clientId, reason: 'test' });
  await createRecordingActivities({ sql: s.sql, store: s.store }).placeHolds({ disputeId, recordingIds: [recordings[11]!] });
  const id = randomUUID();
  await s.sql`
    insert into transfers (id, acquirer_name, acquirer_email, acquirer_public_key, scope, legal_basis, handover_at, after_handover, created_by, status, inventory, excluded)
    values (${id}, 'Opkøber A/S', 'data@opkoeber.test', ${publicKey}, ${s.sql.json({ all: true })}, 'acquisition', now(), 'keep', ${randomUUID()}, 'packaging', '[]', '[]')`;
  await s.sql`insert into transfer_persons (transfer_id, customer_id, client_id) select ${id}, unnest(${persons.map((p) => p.id)}::uuid[]), ${clientId}`;
  return { id, persons, recordings };
}

describe('the transfer package when its worker is killed mid-build', () => {
  it('resumes on another worker and yields the same signed package, every person in it exactly once', { timeout: 180_000 }, async () => {
    const t = await transferAtHandover();
    workers.push(await spawnWorker(workerEnv));
    const handle = await s.client.workflow.start<typeof transferPackage>('transferPackage', {
      workflowId: transferPackageWorkflowId(t.id),
      taskQueue: s.config.TEMPORAL_TASK_QUEUE,
      // Small batches so the kill lands mid-build, few per run so it continues as new, and a short heartbeat timeout so the retry comes soon.
      // One batch per activity, too, so there are many.
      args: [{ transferId: t.id, batchSize: BATCH, batchesPerRun: 6, activityMs: 0, heartbeatTimeoutMs: 2_000 }],
    });
    const midway = await waitFor(
      async () => {
        const p = await handle.query(transferPackageProgressQuery).catch(() => undefined);
        return p && p.persons > 0 && !p.done ? p : undefined;
      },
      { what: 'package progress mid-build', timeoutMs: 60_000, intervalMs: 20 },
    );
    expect(midway.persons).toBeLessThan(PERSONS);
    await workers[0]!.kill();
    workers.push(await spawnWorker(workerEnv));
    const sealed = await handle.result();

    // The history stays bounded: the build continued as new every few batches.
    const runs = await waitFor(
      async () => {
        let n = 0;
        for await (const _run of s.client.workflow.list({ query: `WorkflowId = "${transferPackageWorkflowId(t.id)}"` })) n += 1;
        return n > 1 ? n : undefined;
      },
      { what: 'the runs of the package workflow to be listed', timeoutMs: 20_000 },
    );
    expect(runs).toBeGreaterThanOrEqual(Math.ceil(PERSONS / BATCH / 6));

    // The acquirer's check: signed, every hash right, every file decrypts.
    const file = path.join(s.config.DATA_DIR, packageFileKey(t.id));
    const out = await mkdtemp(path.join(inject('runTempDir'), 'transfer-out-'));
    temps.push(out);
    const report = await verifyTransferPackage(file, { privateKeyPem: privateKey, outDir: out });
    expect(report.problems).toEqual([]);
    expect(report.manifestSha256).toBe(sealed.manifestSha256);
    expect(report.decrypted).toBe(report.files - 2); // all but key.json and signer.pem
    // The audio of every recording: the short ones in a pack per batch, the long one on its own.
    expect(report.audio).toBe(PERSONS);
    const listed = (report.manifest as { files: { path: string }[] }).files.map((f) => f.path).filter((p) => p.includes('/audio/'));
    expect(listed.filter((p) => !isAudioPack(p))).toEqual([expect.stringMatching(new RegExp(`/audio/${t.recordings[LONG]}\\.enc$`))]);
    expect(listed.filter(isAudioPack)).toHaveLength(PERSONS / BATCH);

    // Every person once — no batch lost, none written twice — and every recording's audio as it was.
    const clientDir = path.join(out, 'clients', (await readdir(path.join(out, 'clients')))[0]!);
    const lines = (await Promise.all((await readdir(path.join(clientDir, 'persons'))).map((f) => readFile(path.join(clientDir, 'persons', f), 'utf8'))))
      .join('')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { id: string; email: string });
    expect(lines.map((l) => l.id).sort()).toEqual(t.persons.map((p) => p.id).sort());
    expect(new Set(lines.map((l) => l.email))).toEqual(new Set(t.persons.map((p) => p.email)));
    const audio = await readdir(path.join(clientDir, 'audio'));
    expect(audio.sort()).toEqual(t.recordings.map((r) => r).sort());
    const [rec] = await s.sql<{ key: string }[]>`select audio_key as key from recordings where id = ${t.recordings[0]!}`;
    // The audio itself (sealed at rest under TopCall's key, issue 12; the package carries it opened, for the acquirer).
    expect(await readFile(path.join(clientDir, 'audio', t.recordings[0]!))).toEqual(await s.store.read(rec!.key));
    expect(await readFile(path.join(clientDir, 'audio', t.recordings[LONG]!))).toEqual(Buffer.alloc(PACKED_AUDIO_MAX + 1000, 'L'));

    // The obligations the acquirer takes over.
    const obligations = (report.manifest as { obligations: Record<string, { personId?: string; recordingId?: string }[]> }).obligations;
    expect(obligations.openRequests!.map((r) => r.personId)).toEqual([t.persons[7]!.id]);
    expect(obligations.disputeHolds!.map((h) => h.recordingId)).toEqual([t.recordings[11]!]);
    expect(obligations.noMarketing!.map((r) => r.personId)).toEqual([t.persons[3]!.id]);

    // The same package from a build that never crashed: identical bytes, so an identical manifest.
    const crashed = await readFile(file);
    await s.sql.begin(async (tx) => {
      await tx`update transfers set package_state = null where id = ${t.id}`;
      await tx`delete from transfer_files where transfer_id = ${t.id}`;
      await tx`update transfer_persons set handed_over = false where transfer_id = ${t.id}`;
    });
    const deps = { sql: s.sql, store: s.store, config: s.config };
    let progress = await beginPackage(deps, t.id);
    while (!progress.done) progress = await appendBatch(deps, t.id, BATCH);
    const again = await writeManifest(deps, t.id);
    expect(again.manifestSha256).toBe(sealed.manifestSha256);
    expect((await readFile(file)).equals(crashed)).toBe(true);
  });
});
