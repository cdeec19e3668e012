import { constants, createHash, createHmac, publicEncrypt } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import type { Readable, Transform } from 'node:stream';
import { joinSql, type Sql } from '../db/index';
import { PLACES, type HandoverPart } from '../db/personal-data';
import type { DataKeyLookup } from '../lib/at-rest';
import type { RecordingStore } from '../lib/recording-store';
import { TarAppender, tarBuffer } from '../lib/tar-writer';
import { appSecret } from './links';
import {
  AUDIO_PACK_MAX,
  audioPackPath,
  ENCRYPTION_OVERHEAD,
  encryptFile,
  encryptingStream,
  ENTRY_MTIME,
  KEY_ENTRY,
  MANIFEST_ENTRY,
  PACKAGE_FORMAT,
  PACKED_AUDIO_MAX,
  publicKeyFingerprint,
  sha256Hex,
  SIGNATURE_ENTRY,
  signingKeyFromSeed,
  signManifest,
  SIGNER_ENTRY,
  type KeyEntry,
} from '../lib/transfer-package';

/**
 * Builds the business-transfer package (D8) as one tar under DATA_DIR/transfers, in batches
 * that can each be retried: a batch starts by cutting the tar back to the offset the last
 * committed batch recorded, appends its files, and commits the new offset, the files' hashes
 * and who was packaged in one transaction. Every byte depends only on the data and the
 * transfer (the data key is derived, ivs from content), so a batch redone after a crash
 * writes what it would have written the first time, and the manifest is the same.
 * Memory is bounded by two batches' JSON Lines, a read-ahead window and one audio pack (8 MiB),
 * not by the package.
 */
export interface PackageDeps {
  sql: Sql;
  store: RecordingStore;
  config: { DATA_DIR: string };
}

export interface PackageState {
  /** Where the tar's end-of-archive marker starts: the next batch writes from here. */
  offset: number;
  clientIds: string[];
  clientIndex: number;
  /** The last person (id) packaged in the current client. */
  after: string | null;
  /** Part number of the next JSON Lines files of the current client. */
  part: number;
  persons: number;
  recordings: number;
  /** Files and bytes written so far (the manifest's entries; `files` is also the next file's sequence number). */
  files: number;
  bytes: number;
  missingAudio: string[];
  done: boolean;
}

export interface PackageProgress {
  persons: number;
  recordings: number;
  files: number;
  bytes: number;
  done: boolean;
}

const END_OF_ARCHIVE = 1024;
/**
 * Short audio (≤ PACKED_AUDIO_MAX) is read whole, READ_AHEAD files ahead of the writer (≤ 8 MiB):
 * the file store reads synchronously and only their keys may be waited for, a store that reads
 * asynchronously (an object store) keeps that many reads in flight.
 */
const READ_AHEAD = 32;

/**
 * Starts reading at once — up to `width` reads ahead — and yields each item with the result of
 * `read(item)`, or the Error it failed with, in order.
 */
function readAhead<T, R>(items: T[], width: number, read: (item: T) => Promise<R>): AsyncIterable<[T, R | Error]> {
  const running: Promise<R | Error>[] = [];
  let next = 0;
  const fill = () => {
    while (running.length < width && next < items.length) running.push(read(items[next++]!).catch((err: unknown) => (err instanceof Error ? err : new Error(String(err)))));
  };
  fill();
  return {
    async *[Symbol.asyncIterator]() {
      for (const item of items) {
        const result = await running.shift()!;
        fill();
        yield [item, result] as [T, R | Error];
      }
    },
  };
}

const TOPCALL = 'TopCall ApS, Axeltorv 8, 4700 Næstved, Danmark';
export const packageFileKey = (transferId: string) => `transfers/${transferId}.tar`;
const packageFile = (deps: PackageDeps, transferId: string) => path.join(deps.config.DATA_DIR, packageFileKey(transferId));

/** The name of the current batch's files: its JSON Lines parts and its audio packs. */
const partName = (state: PackageState) => String(state.part).padStart(5, '0');

/** The handover categories of the personal-data map, in map order. */
const HANDOVER = PLACES.flatMap((p) => (p.handover && 'file' in p.handover ? [p.handover] : []));

/** The package's AES-256 key: derived from TopCall's transfer key and the transfer id, so a rebuild uses the same. */
const dataKeyFor = async (sql: Sql, transferId: string) => createHmac('sha256', await appSecret(sql, 'transfer_key')).update(`transfer-data-key:${transferId}`).digest();

/** TopCall's signing key (Ed25519, from a seed in app_secrets). */
export const transferSigningKey = async (sql: Sql) => signingKeyFromSeed(await appSecret(sql, 'transfer_signing_seed'));

/**
 * Appends entries to the tar at `offset` (cutting off whatever a crashed attempt wrote after it)
 * and closes it with the end-of-archive marker, so the file is a valid tar after every batch.
 * Returns the new offset (where the marker starts).
 */
async function appendToTar(file: string, offset: number | null, add: (tar: TarAppender) => Promise<void>): Promise<number> {
  await mkdir(path.dirname(file), { recursive: true });
  const tar = await TarAppender.open(file, offset, ENTRY_MTIME);
  try {
    await add(tar);
  } catch (err) {
    await tar.abandon();
    throw err;
  }
  return tar.close();
}

/** The audio through the cipher; an error reading the audio fails the cipher stream too. */
function encrypted(source: Readable, cipher: Transform): Readable {
  source.once('error', (err) => cipher.destroy(err));
  return source.pipe(cipher);
}

interface TransferForPackage {
  id: string;
  acquirerPublicKey: string;
  state: PackageState | null;
  wrapped: string | null;
  startedAt: Date | null;
}

async function loadTransfer(sql: Sql, transferId: string): Promise<TransferForPackage> {
  const [t] = await sql<TransferForPackage[]>`
    select id, acquirer_public_key as "acquirerPublicKey", package_state as state, package_key_wrapped as wrapped, package_started_at as "startedAt"
    from transfers where id = ${transferId}`;
  if (!t) throw new Error('no such transfer');
  return t;
}

const progressOf = (state: PackageState): PackageProgress => ({ persons: state.persons, recordings: state.recordings, files: state.files, bytes: state.bytes, done: state.done });

/**
 * Starts the tar with the data key wrapped for the acquirer and TopCall's public signing key.
 * Idempotent: a package already begun is left as it is.
 */
export async function beginPackage(deps: PackageDeps, transferId: string): Promise<PackageProgress> {
  const t = await loadTransfer(deps.sql, transferId);
  if (t.state) return progressOf(t.state);
  const dataKey = await dataKeyFor(deps.sql, transferId);
  // RSA-OAEP is randomised: the wrapped key is made once and kept, so a rebuild writes the same key.json.
  const wrapped = t.wrapped ?? publicEncrypt({ key: t.acquirerPublicKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' }, dataKey).toString('base64');
  const keyEntry: KeyEntry = { format: PACKAGE_FORMAT, transferId, alg: 'RSA-OAEP-SHA256', wrappedKey: wrapped, recipientKeySha256: publicKeyFingerprint(t.acquirerPublicKey) };
  const { publicKey } = await transferSigningKey(deps.sql);
  const files = [
    { path: KEY_ENTRY, data: Buffer.from(`${JSON.stringify(keyEntry, null, 1)}\n`) },
    { path: SIGNER_ENTRY, data: Buffer.from(publicKey.export({ type: 'spki', format: 'pem' }) as string) },
  ];
  const offset = await appendToTar(packageFile(deps, transferId), null, async (tar) => {
    for (const f of files) await tar.add(f.path, f.data);
  });
  const clients = await deps.sql<{ id: string }[]>`
    select distinct client_id as id from transfer_persons where transfer_id = ${transferId} order by 1`;
  const state: PackageState = {
    offset,
    clientIds: clients.map((c) => c.id),
    clientIndex: 0,
    after: null,
    part: 0,
    persons: 0,
    recordings: 0,
    files: files.length,
    bytes: files.reduce((sum, f) => sum + f.data.length, 0),
    missingAudio: [],
    done: clients.length === 0,
  };
  await deps.sql.begin(async (tx) => {
    await tx`delete from transfer_files where transfer_id = ${transferId}`;
    await tx`insert into transfer_files ${tx(files.map((f, seq) => ({ transfer_id: transferId, seq, path: f.path, bytes: f.data.length, sha256: sha256Hex(f.data) })))}`;
    await tx`update transfers set package_state = ${tx.json(state as never)}, package_key_wrapped = ${wrapped}, package_started_at = coalesce(package_started_at, now()),
               package_file_key = ${packageFileKey(transferId)}, signer_key_sha256 = ${publicKeyFingerprint(publicKey)} where id = ${transferId}`;
  });
  return progressOf(state);
}

interface AudioRow {
  id: string;
  key: string;
  sha256: string;
  bytes: string;
}

/** What one batch reads from Postgres before anything is written: where it stands, who, their JSON Lines and their recordings. */
interface BatchRead {
  /** The client's inventory is exhausted: the next batch starts on the next client. */
  exhausted: boolean;
  /** The last person of the slice (packaged or skipped). */
  lastId: string | null;
  persons: string[];
  audio: AudioRow[];
  /** The data keys the audio is sealed under, fetched in one query. */
  keys?: DataKeyLookup;
  parts: { path: string; data: Buffer }[];
}

/**
 * Reads one batch in one statement: the next slice of the current client's inventory, straight
 * off its index, with who of it is still active and unrestricted checked by key (a person erased
 * or restricted since is skipped), and for those each handover category of the map aggregated by
 * Postgres into its JSON Lines (and the recordings' audio they name) — one string per category,
 * not a row per item, and the persons' ids sent once. Then each part encrypted, and the audio's
 * data keys fetched in one query. Reads only, so it can run while the batch before it is still
 * being written.
 */
async function readBatch(deps: PackageDeps, transferId: string, state: PackageState, batchSize: number, dataKey: Buffer): Promise<BatchRead> {
  const { sql } = deps;
  const clientId = state.clientIds[state.clientIndex]!;
  // An array expression (the cast), not `any (subquery)`, which would compare with each row.
  const ids = sql`(select ids from batch)::uuid[]`;
  const categories = HANDOVER.map((h, i) => sql`cross join (${h.part(sql, ids, { id: transferId })}) ${sql(`c${i}`)}`);
  const [row] = await sql<({ last: string | null; ids: string[] } & Record<string, string | HandoverPart['audio']>)[]>`
    with slice as (
      select customer_id,
             -- a lookup by key per person (a join here read every customer for each batch)
             coalesce((select c.status = 'active' and not c.processing_restricted from customers c where c.id = t.customer_id), false) as ok
      from transfer_persons t
      where transfer_id = ${transferId} and client_id = ${clientId} ${state.after ? sql`and customer_id > ${state.after}` : sql``}
      order by customer_id limit ${batchSize}),
    batch as (select coalesce(array_agg(customer_id order by customer_id) filter (where ok), '{}') as ids from slice)
    select (select customer_id from slice order by customer_id desc limit 1) as last, b.ids,
           ${joinSql(sql, HANDOVER.map((_, i) => sql`${sql(`c${i}`)}.lines as ${sql(`lines${i}`)}, ${sql(`c${i}`)}.audio as ${sql(`audio${i}`)}`))}
    from batch b ${categories}`;
  if (!row!.last) return { exhausted: true, lastId: null, persons: [], audio: [], parts: [] };
  const persons = row!.ids;
  if (!persons.length) return { exhausted: false, lastId: row!.last, persons, audio: [], parts: [] };
  const part = partName(state);
  let audio: AudioRow[] = [];
  const parts: BatchRead['parts'] = [];
  HANDOVER.forEach((h, i) => {
    const lines = row![`lines${i}`] as HandoverPart['lines'];
    const named = row![`audio${i}`] as HandoverPart['audio'];
    if (named) audio = named.map(([id, key, sha256, bytes]) => ({ id, key, sha256, bytes }));
    if (lines === null) return;
    const entryPath = `clients/${clientId}/${h.file}/${part}.jsonl.enc`;
    parts.push({ path: entryPath, data: encryptFile(dataKey, entryPath, Buffer.from(`${lines}\n`)) });
  });
  return { exhausted: false, lastId: row!.last, persons, audio, parts, keys: audio.length ? await deps.store.keysFor(audio.map((a) => a.key)) : undefined };
}

/** Where the package stands after `read` (before its files are counted): the position the next read starts from. */
function positionAfter(state: PackageState, read: BatchRead): PackageState {
  if (read.exhausted) {
    const clientIndex = state.clientIndex + 1;
    return { ...state, clientIndex, after: null, part: 0, done: clientIndex >= state.clientIds.length };
  }
  return { ...state, after: read.lastId, part: read.persons.length ? state.part + 1 : state.part };
}

interface PackagedFile {
  path: string;
  bytes: number;
  sha256: string;
}

/**
 * Appends a read batch to the tar — its JSON Lines parts, then the recordings' audio, read a
 * window ahead: short ones into the batch's audio packs (a new pack every AUDIO_PACK_MAX bytes),
 * long ones streamed as files of their own, so memory stays at the window and one pack — and
 * returns the state after it with the files written. Nothing is committed here.
 */
async function writeBatch(
  deps: PackageDeps,
  transferId: string,
  state: PackageState,
  read: BatchRead,
  dataKey: Buffer,
  heartbeat: (details?: unknown) => void,
): Promise<{ next: PackageState; files: PackagedFile[] }> {
  const position = positionAfter(state, read);
  if (!read.persons.length) return { next: position, files: [] };
  const clientId = state.clientIds[state.clientIndex]!;
  const part = partName(state);
  const missingAudio = [...state.missingAudio];
  const missing = (id: string) => {
    // Retained but its audio is gone: listed in the manifest instead of failing the handover.
    if (!missingAudio.includes(id)) missingAudio.push(id);
  };
  const reads = readAhead(read.audio, READ_AHEAD, (a) => (Number(a.bytes) <= PACKED_AUDIO_MAX ? deps.store.read(a.key, read.keys) : Promise.resolve(undefined)));
  const files: PackagedFile[] = [];
  const addFile = async (tar: TarAppender, entryPath: string, data: Buffer) => {
    await tar.add(entryPath, data);
    files.push({ path: entryPath, bytes: data.length, sha256: sha256Hex(data) });
  };
  // Short recordings go into the batch's audio packs (a tar each, encrypted as one file), long ones are files of their own.
  let pack: { name: string; data: Buffer }[] = [];
  let packBytes = 0;
  let packs = 0;
  const closePack = async (tar: TarAppender) => {
    if (!pack.length) return;
    const entryPath = audioPackPath(clientId, part, packs++);
    await addFile(tar, entryPath, encryptFile(dataKey, entryPath, tarBuffer(pack, ENTRY_MTIME)));
    pack = [];
    packBytes = 0;
  };
  const offset = await appendToTar(packageFile(deps, transferId), state.offset, async (tar) => {
    for (const p of read.parts) await addFile(tar, p.path, p.data);
    let n = 0;
    for await (const [a, whole] of reads) {
      if (whole instanceof Error) {
        missing(a.id);
      } else if (whole) {
        pack.push({ name: a.id, data: whole });
        packBytes += whole.length;
        if (packBytes >= AUDIO_PACK_MAX) await closePack(tar);
      } else {
        const entryPath = `clients/${clientId}/audio/${a.id}.enc`;
        let source: Readable | undefined;
        try {
          source = await deps.store.open(a.key, read.keys);
        } catch {
          missing(a.id);
        }
        if (source) {
          const size = Number(a.bytes) + ENCRYPTION_OVERHEAD;
          const hash = createHash('sha256');
          await tar.addStream(entryPath, size, encrypted(source, encryptingStream(dataKey, entryPath, a.sha256)), (chunk) => hash.update(chunk));
          files.push({ path: entryPath, bytes: size, sha256: hash.digest('hex') });
        }
      }
      if (++n % 200 === 0) heartbeat({ clientIndex: state.clientIndex, after: state.after, audio: n });
    }
    await closePack(tar);
  });
  const next: PackageState = {
    ...position,
    offset,
    missingAudio,
    persons: state.persons + read.persons.length,
    recordings: state.recordings + read.audio.length,
    files: state.files + files.length,
    bytes: state.bytes + files.reduce((sum, f) => sum + f.bytes, 0),
  };
  return { next, files };
}

/**
 * Commits a written batch: its files' hashes, who was packaged, and the state (the tar's new
 * offset) — one statement, so all or nothing without a transaction's extra round trips.
 */
async function commitBatch(deps: PackageDeps, transferId: string, before: PackageState, written: { next: PackageState; files: PackagedFile[] }, persons: string[]) {
  const { sql } = deps;
  const { next, files } = written;
  // Arrays, not one parameter per value: a thousand files are four parameters.
  await sql`
    with files as (
      insert into transfer_files (transfer_id, seq, path, bytes, sha256)
      select ${transferId}, * from unnest(${files.map((_, i) => before.files + i)}::int[], ${files.map((f) => f.path)}::text[], ${files.map((f) => f.bytes)}::bigint[], ${files.map((f) => f.sha256)}::text[])
      on conflict (transfer_id, seq) do update set path = excluded.path, bytes = excluded.bytes, sha256 = excluded.sha256),
    handed_over as (
      update transfer_persons set handed_over = true where transfer_id = ${transferId} and customer_id = any(${persons}::uuid[]))
    update transfers set package_state = ${sql.json(next as never)} where id = ${transferId}`;
}

/** A promise whose rejection is handled later (awaited), not reported as unhandled meanwhile. */
function later<T>(p: Promise<T>): Promise<T> {
  p.catch(() => undefined);
  return p;
}

/**
 * Batches of up to `batchSize` persons for up to `maxMs` (at least one batch), each committed
 * on its own, so a retry resumes after the last committed one. The batches overlap: the next
 * batch is read from Postgres while this one's audio is written, and a batch commits while the
 * next is written — the tar itself is appended strictly in order, and a batch commits only
 * after the one before it has.
 */
export async function appendBatches(
  deps: PackageDeps,
  transferId: string,
  batchSize: number,
  options: { maxMs?: number; heartbeat?: (details?: unknown) => void } = {},
): Promise<PackageProgress> {
  const heartbeat = options.heartbeat ?? (() => {});
  const t = await loadTransfer(deps.sql, transferId);
  if (!t.state) throw new Error('the package has not been begun');
  let state: PackageState = t.state;
  if (state.done) return progressOf(state);
  const until = Date.now() + (options.maxMs ?? 0);
  const dataKey = await dataKeyFor(deps.sql, transferId);
  let reading = later(readBatch(deps, transferId, state, batchSize, dataKey));
  let committing: Promise<void> = Promise.resolve();
  for (;;) {
    const read = await reading;
    const position = positionAfter(state, read);
    const more = !position.done && Date.now() < until;
    if (more) reading = later(readBatch(deps, transferId, position, batchSize, dataKey));
    const written = await writeBatch(deps, transferId, state, read, dataKey, heartbeat);
    await committing;
    committing = later(commitBatch(deps, transferId, state, written, read.persons));
    state = written.next;
    if (!more) break;
  }
  await committing;
  heartbeat({ clientIndex: state.clientIndex, after: state.after });
  return progressOf(state);
}

/** One batch (see appendBatches). */
export const appendBatch = (deps: PackageDeps, transferId: string, batchSize: number, heartbeat?: (details?: unknown) => void) =>
  appendBatches(deps, transferId, batchSize, { heartbeat });

/** Writes a JSON array from rows read in pages, so a manifest of any size needs no more memory than a page. */
async function writeArray<T>(write: (s: string) => Promise<void>, pages: AsyncIterable<T[]>) {
  let first = true;
  await write('[');
  for await (const page of pages) {
    // One write (one buffer, one hash update) per page: the files list alone has a row per file.
    let text = '';
    for (const row of page) {
      text += `${first ? '\n' : ',\n'}  ${JSON.stringify(row)}`;
      first = false;
    }
    if (text) await write(text);
  }
  await write(first ? ']' : '\n ]');
}

/**
 * Closes the package: the manifest (every file with its size and SHA-256, the clients and
 * counts, what was excluded and why, and the open obligations the acquirer takes over), then
 * TopCall's signature over the manifest's SHA-256. Returns the manifest's SHA-256.
 */
export async function writeManifest(deps: PackageDeps, transferId: string): Promise<{ manifestSha256: string; bytes: number; files: number }> {
  const t = await loadTransfer(deps.sql, transferId);
  if (!t.state?.done) throw new Error('the package is not complete');
  const state = t.state;
  const [row] = await deps.sql<{ inventory: unknown; excluded: unknown; signer: string; name: string; email: string; legalBasis: string; handoverAt: Date }[]>`
    select inventory, excluded, signer_key_sha256 as signer, acquirer_name as name, acquirer_email as email, legal_basis as "legalBasis", handover_at as "handoverAt"
    from transfers where id = ${transferId}`;
  const temp = `${packageFile(deps, transferId)}.manifest.tmp`;
  const out = createWriteStream(temp, { mode: 0o600 });
  const hash = createHash('sha256');
  let bytes = 0;
  const write = async (s: string) => {
    const b = Buffer.from(s);
    hash.update(b);
    bytes += b.length;
    if (!out.write(b)) await new Promise<void>((r) => out.once('drain', () => r()));
  };
  const handedOver = (column: string) => deps.sql`transfer_persons p on p.customer_id = ${deps.sql(column)} and p.transfer_id = ${transferId} and p.handed_over`;
  try {
    const head = {
      format: PACKAGE_FORMAT,
      transferId,
      from: TOPCALL,
      to: { name: row!.name, email: row!.email },
      legalBasis: row!.legalBasis,
      handoverAt: row!.handoverAt.toISOString(),
      packagedAt: t.startedAt!.toISOString(),
      encryption: {
        files: 'AES-256-GCM: each .enc file is iv (12 bytes) ‖ ciphertext ‖ tag (16 bytes)',
        key: `${KEY_ENTRY}: the data key wrapped with RSA-OAEP-SHA256 for your public key`,
      },
      signature: { alg: 'Ed25519', entry: SIGNATURE_ENTRY, signer: SIGNER_ENTRY, signerKeySha256: row!.signer },
      layout:
        'clients/{client}/{category}/{part}.jsonl.enc: JSON Lines per client and category; clients/{client}/audio/{part}-{n}.tar.enc: a tar of the audio of short recordings, one entry named by each recording id; clients/{client}/audio/{recording}.enc: the audio of a long recording',
      categories: HANDOVER.map((h) => h.file),
      persons: state.persons,
      recordings: state.recordings - state.missingAudio.length,
      recordingsWithoutAudio: state.missingAudio,
      inventory: row!.inventory,
      excluded: row!.excluded,
    };
    await write(`${JSON.stringify(head, null, 1).slice(0, -2)},\n "obligations": {\n  "openRequests": `);
    await writeArray(
      write,
      deps.sql`select d.id as "requestId", d.customer_id as "personId", d.type, d.received_at as "receivedAt", d.due_at as "dueAt"
               from data_requests d join ${handedOver('d.customer_id')}
               where d.answered_at is null order by d.due_at, d.id`.cursor(1000),
    );
    await write(',\n  "disputeHolds": ');
    await writeArray(
      write,
      deps.sql`select h.recording_id as "recordingId", h.dispute_id as "disputeId", h.placed_at as "since"
               from recording_holds h join recordings r on r.id = h.recording_id join ${handedOver('r.customer_id')}
               where h.released_at is null and r.status = 'retained' order by h.recording_id, h.dispute_id`.cursor(1000),
    );
    await write(',\n  "noMarketing": ');
    await writeArray(
      write,
      deps.sql`select c.id as "personId" from customers c join ${handedOver('c.id')} where not c.marketing_emails order by c.id`.cursor(5000),
    );
    await write(',\n  "objections": ');
    await writeArray(
      write,
      deps.sql`select c.id as "personId" from customers c join ${handedOver('c.id')} where c.objected_to_processing order by c.id`.cursor(5000),
    );
    await write('\n },\n "files": ');
    await writeArray(write, deps.sql`select path, bytes::float8 as bytes, sha256 from transfer_files where transfer_id = ${transferId} order by seq`.cursor(5000));
    await write('\n}\n');
    await new Promise<void>((resolve, reject) => out.end((err?: Error | null) => (err ? reject(err) : resolve())));
  } catch (err) {
    out.destroy();
    await rm(temp, { force: true });
    throw err;
  }
  const manifestSha256 = hash.digest('hex');
  const signature = Buffer.from(`${JSON.stringify(signManifest(manifestSha256, (await transferSigningKey(deps.sql)).privateKey), null, 1)}\n`);
  const [count] = await deps.sql<{ n: number }[]>`select count(*)::int as n from transfer_files where transfer_id = ${transferId}`;
  const end = await appendToTar(packageFile(deps, transferId), state.offset, async (tar) => {
    await tar.addStream(MANIFEST_ENTRY, bytes, createReadStream(temp));
    await tar.add(SIGNATURE_ENTRY, signature);
  });
  await rm(temp, { force: true });
  return { manifestSha256, bytes: end + END_OF_ARCHIVE, files: count!.n };
}

/** Removes the package and its half-written manifest (cancellation, rejection, acknowledgement). */
export async function deletePackageFiles(deps: { config: { DATA_DIR: string } }, transferId: string): Promise<void> {
  const file = path.join(deps.config.DATA_DIR, packageFileKey(transferId));
  await Promise.all([rm(file, { force: true }), rm(`${file}.manifest.tmp`, { force: true })]);
}
