import { createHash, randomUUID } from 'node:crypto';
import { closeSync, createWriteStream, openSync, readSync } from 'node:fs';
import { mkdir, readdir, rename, rm, stat, unlink } from 'node:fs/promises';
import path from 'node:path';
import { once } from 'node:events';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { isSealed, openFile, sealingStream, unseal, type DataKeyLookup } from './at-rest';
import type { PersonKeys } from '../db/person-keys';
import type { Db } from '../db/index';

/**
 * Where call audio lives. Files under DATA_DIR by default; a cloud object store can implement
 * the same interface (staged upload + commit = multipart upload + complete).
 *
 * Issue 12: with a key service, audio is sealed at rest (lib/at-rest.ts) under a data key of
 * its own, made when the upload starts (the person is not known before the form's fields are)
 * and saved wrapped in person_keys at commit; `delete` destroys the key with the file, so a
 * copy of the file (a backup) no longer opens either. Reads open sealed audio transparently and
 * return legacy plaintext files (written before, or seeded by bench/transfer.ts) as they are.
 */
export interface RecordingStore {
  /** Streams audio to a staging area, hashing it; nothing is visible under `key` until commit. */
  stage(audio: Readable, options?: { maxBytes?: number }): Promise<StagedAudio>;
  /** The plaintext audio, streamed (sealed audio is opened on the way, its key from `keys` when given). */
  open(key: string, keys?: DataKeyLookup): Promise<Readable>;
  /**
   * A whole short file (a few hundred kilobytes at most): for callers that handle many short
   * recordings at once. The file is read synchronously (cheaper than async for short files on a
   * local disk; see readShortFile), the opening after it may wait for its key.
   */
  read(key: string, keys?: DataKeyLookup): Promise<Buffer>;
  /** The data keys of many recordings' audio, fetched at once, for `read` and `open`: a query per batch, not per file. */
  keysFor(audioKeys: string[]): Promise<DataKeyLookup>;
  /** Idempotent: deleting what is already gone succeeds. Destroys the audio's data key too. */
  delete(key: string): Promise<void>;
  /**
   * `delete` for many (a sweep batch): the files unlinked 32 at a time, their keys destroyed in
   * one statement on `db` — the caller's transaction, so the keys go with the rows' tombstones.
   */
  deleteMany(keys: string[], db?: Db): Promise<void>;
  exists(key: string): Promise<boolean>;
  /**
   * Removes staged files nobody will commit: left by a process that died mid-upload. Only files
   * untouched for `idleMs` go, so an upload still streaming (in this or another API replica
   * sharing the store) is never cut. Returns how many were removed.
   */
  sweepStaging(idleMs: number): Promise<number>;
}

export interface StagedAudio {
  sha256: string;
  bytes: number;
  commit(key: string): Promise<void>;
  discard(): Promise<void>;
}

export class AudioTooLargeError extends Error {
  constructor(readonly maxBytes: number) {
    super(`audio exceeds ${maxBytes} bytes`);
    this.name = 'AudioTooLargeError';
  }
}

/** Keys are derived from the recording id: `ab/abcdef…​.audio`, sharded so no folder grows huge. */
export const audioKeyFor = (recordingId: string) => `${recordingId.slice(0, 2)}/${recordingId}.audio`;

const noKeys: DataKeyLookup = {
  keyById: () => Promise.reject(new Error('sealed audio, but this recording store has no key service')),
};

/** Reused by `readShortFile`: reads are synchronous, so one buffer serves them all. */
const scratch = Buffer.allocUnsafe(64 * 1024);

/**
 * A short file, whole, read synchronously: open, read until the end, close. For the transfer
 * package's hundred thousand recordings of a few kilobytes this is the cheap way: the async
 * readFile hands open, fstat, read and close to the thread pool one after the other, which on
 * this 2-core machine cost ~70 µs of wall time and ~110 µs of CPU per 300-byte file, against
 * ~10 µs here (measured). The event loop waits that long — for a local disk, less than the
 * async round trips cost it. Callers pass short files only (`RecordingStore.read`).
 */
function readShortFile(file: string): Buffer {
  const fd = openSync(file, 'r');
  try {
    const chunks: Buffer[] = [];
    for (;;) {
      const n = readSync(fd, scratch, 0, scratch.length, null);
      if (n > 0) chunks.push(Buffer.from(scratch.subarray(0, n)));
      // A regular file reads short only at its end: no second read to see the end.
      if (n < scratch.length) break;
    }
    return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
  } finally {
    closeSync(fd);
  }
}

async function unlinkIfThere(file: string): Promise<void> {
  try {
    await unlink(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}

export function createFileRecordingStore(root: string, keys?: PersonKeys): RecordingStore {
  const staging = path.join(root, '.staging');
  const lookup: DataKeyLookup = keys ?? noKeys;
  const fileOf = (key: string) => {
    const file = path.resolve(root, key);
    if (!file.startsWith(path.resolve(root) + path.sep)) throw new Error('invalid audio key');
    return file;
  };

  return {
    async stage(audio, options = {}) {
      // The caller's stream may fail before `pipeline` below attaches its listeners (the mkdir
      // is awaited first): without a listener of its own that error would end the process.
      audio.on('error', () => {});
      await mkdir(staging, { recursive: true });
      const temp = path.join(staging, randomUUID());
      const hash = createHash('sha256');
      let bytes = 0;
      const meter = new Transform({
        transform(chunk: Buffer, _enc, done) {
          bytes += chunk.length;
          if (options.maxBytes !== undefined && bytes > options.maxBytes) return done(new AudioTooLargeError(options.maxBytes));
          hash.update(chunk);
          done(null, chunk);
        },
      });
      const sealing = keys ? await keys.generate() : undefined;
      const out = createWriteStream(temp, { mode: 0o600 });
      try {
        if (sealing) await pipeline(audio, meter, sealingStream(sealing.dataKey), out);
        else await pipeline(audio, meter, out);
      } catch (err) {
        // The file is opened asynchronously: wait until the stream has closed it, or the removal
        // could run before the file exists and leave it behind.
        if (!out.closed) await once(out, 'close').catch(() => {});
        await rm(temp, { force: true });
        throw err;
      }
      return {
        sha256: hash.digest('hex'),
        bytes,
        async commit(key) {
          const file = fileOf(key);
          // The key first: a file under `key` always has its key (a key without a file is harmless).
          if (sealing) await keys!.save({ audioKey: key }, sealing.wrapped);
          await mkdir(path.dirname(file), { recursive: true });
          await rename(temp, file);
        },
        discard: () => rm(temp, { force: true }),
      };
    },
    open: (key, given) => openFile(given ?? lookup, fileOf(key)),
    read: async (key, given) => {
      const data = readShortFile(fileOf(key));
      return isSealed(data) ? unseal(given ?? lookup, data) : data;
    },
    keysFor: async (audioKeys) => (keys ? keys.audioKeys(audioKeys) : lookup),
    async delete(key) {
      await unlinkIfThere(fileOf(key));
      await keys?.destroyAudioKeys([key]);
    },
    async deleteMany(audioKeys, db) {
      let next = 0;
      // The keys' statement goes to Postgres while the files are unlinked, not after.
      await Promise.all([
        ...Array.from({ length: Math.min(32, audioKeys.length) }, async () => {
          while (next < audioKeys.length) await unlinkIfThere(fileOf(audioKeys[next++]!));
        }),
        keys?.destroyAudioKeys(audioKeys, db),
      ]);
    },
    async sweepStaging(idleMs) {
      const names = await readdir(staging).catch((err: NodeJS.ErrnoException) => {
        if (err.code === 'ENOENT') return [] as string[];
        throw err;
      });
      let removed = 0;
      for (const name of names) {
        const file = path.join(staging, name);
        const info = await stat(file).catch(() => undefined);
        if (info && Date.now() - info.mtimeMs >= idleMs) {
          await rm(file, { force: true });
          removed += 1;
        }
      }
      return removed;
    },
    async exists(key) {
      return stat(fileOf(key)).then(
        () => true,
        () => false,
      );
    },
  };
}

/** The embedded default: audio under DATA_DIR/recordings, sealed when given the key service (api and worker always give it). */
export const recordingStoreFor = (dataDir: string, keys?: PersonKeys) => createFileRecordingStore(path.join(dataDir, 'recordings'), keys);
