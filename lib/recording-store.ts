import { createHash, randomUUID } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, rename, rm, stat, unlink } from 'node:fs/promises';
import path from 'node:path';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';

/**
 * Where call audio lives. Files under DATA_DIR by default; a cloud object store can implement
 * the same interface (staged upload + commit = multipart upload + complete).
 */
export interface RecordingStore {
  /** Streams audio to a staging area, hashing it; nothing is visible under `key` until commit. */
  stage(audio: Readable, options?: { maxBytes?: number }): Promise<StagedAudio>;
  open(key: string): Promise<Readable>;
  /** Idempotent: deleting what is already gone succeeds. */
  delete(key: string): Promise<void>;
  exists(key: string): Promise<boolean>;
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

export function createFileRecordingStore(root: string): RecordingStore {
  const staging = path.join(root, '.staging');
  const fileOf = (key: string) => {
    const file = path.resolve(root, key);
    if (!file.startsWith(path.resolve(root) + path.sep)) throw new Error('invalid audio key');
    return file;
  };

  return {
    async stage(audio, options = {}) {
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
      try {
        await pipeline(audio, meter, createWriteStream(temp, { mode: 0o600 }));
      } catch (err) {
        await rm(temp, { force: true });
        throw err;
      }
      return {
        sha256: hash.digest('hex'),
        bytes,
        async commit(key) {
          const file = fileOf(key);
          await mkdir(path.dirname(file), { recursive: true });
          await rename(temp, file);
        },
        discard: () => rm(temp, { force: true }),
      };
    },
    async open(key) {
      const file = fileOf(key);
      await stat(file);
      return createReadStream(file);
    },
    async delete(key) {
      try {
        await unlink(fileOf(key));
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      }
    },
    async exists(key) {
      return stat(fileOf(key)).then(
        () => true,
        () => false,
      );
    },
  };
}

/** The embedded default: audio under DATA_DIR/recordings. */
export const recordingStoreFor = (dataDir: string) => createFileRecordingStore(path.join(dataDir, 'recordings'));
