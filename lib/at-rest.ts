import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { Transform, pipeline, type Readable } from 'node:stream';

/**
 * Issue 12, D9, D15: the at-rest format of a person's audio, export packages and outbox bodies.
 * AES-256-GCM under a data key of db/person-keys.ts, with a small header that names the key:
 *
 *   magic 0x89 'T' 'C' 'E', version 0x01 (5 bytes) · key id (the person_keys row, 16 bytes) ·
 *   IV (12 bytes) · ciphertext · GCM tag (16 bytes)
 *
 * The header is the additional authenticated data, so a blob cannot be relabelled to another
 * key. Destroying the key (erasure) leaves every copy of the blob — backups included — without a
 * key that opens it. Data without the magic is legacy plaintext (written before this format, or
 * seeded by the transfer benchmark) and is read as it is.
 */
export const SEALED_MAGIC = Buffer.from([0x89, 0x54, 0x43, 0x45, 0x01]);
const KEY_ID_BYTES = 16;
const IV_BYTES = 12;
const TAG_BYTES = 16;
export const SEALED_HEADER_BYTES = SEALED_MAGIC.length + KEY_ID_BYTES + IV_BYTES;
/** What sealing adds to the plaintext's length. */
export const SEALED_OVERHEAD = SEALED_HEADER_BYTES + TAG_BYTES;
/** Outbox bodies are text: a sealed one is this prefix and the sealed bytes in base64. */
export const SEALED_TEXT_PREFIX = 'sealed:v1:';

export interface DataKey {
  /** The person_keys row id (a UUID). */
  id: string;
  key: Buffer;
}

/** Finds a data key by the id a header names; throws (KeyDestroyedError) once it is destroyed. */
export interface DataKeyLookup {
  keyById(id: string): Promise<Buffer>;
}

/** Sealed data that does not open: altered, cut short, or a different key under the id. Names no content. */
export class SealedDataError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SealedDataError';
  }
}

const uuidBytes = (id: string) => {
  const hex = id.replace(/-/g, '');
  if (!/^[0-9a-f]{32}$/i.test(hex)) throw new SealedDataError('a data key id must be a UUID');
  return Buffer.from(hex, 'hex');
};
const uuidText = (b: Buffer) => {
  const h = b.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
};

export const isSealed = (head: Uint8Array) => head.length >= SEALED_MAGIC.length && Buffer.from(head.buffer, head.byteOffset, SEALED_MAGIC.length).equals(SEALED_MAGIC);

interface Header {
  keyId: string;
  iv: Buffer;
  bytes: Buffer;
}

function newHeader(keyId: string): Header {
  const iv = randomBytes(IV_BYTES);
  return { keyId, iv, bytes: Buffer.concat([SEALED_MAGIC, uuidBytes(keyId), iv]) };
}

/** The header of sealed data (its first SEALED_HEADER_BYTES). */
export function readHeader(head: Uint8Array): Header {
  const b = Buffer.from(head.buffer, head.byteOffset, Math.min(head.length, SEALED_HEADER_BYTES));
  if (!isSealed(b) || b.length < SEALED_HEADER_BYTES) throw new SealedDataError('not sealed data, or its header is cut short');
  return { keyId: uuidText(b.subarray(SEALED_MAGIC.length, SEALED_MAGIC.length + KEY_ID_BYTES)), iv: b.subarray(SEALED_MAGIC.length + KEY_ID_BYTES), bytes: b };
}

/** The id of the data key that sealed `data`, or undefined for legacy plaintext. */
export const sealedKeyId = (data: Uint8Array): string | undefined => (isSealed(data) ? readHeader(data).keyId : undefined);

export function seal(k: DataKey, plain: Uint8Array): Buffer {
  const h = newHeader(k.id);
  const cipher = createCipheriv('aes-256-gcm', k.key, h.iv, { authTagLength: TAG_BYTES });
  cipher.setAAD(h.bytes);
  return Buffer.concat([h.bytes, cipher.update(plain), cipher.final(), cipher.getAuthTag()]);
}

/** Opens sealed data with a key already in hand. */
export function unsealWith(key: Buffer, data: Uint8Array): Buffer {
  const h = readHeader(data);
  const b = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  if (b.length < SEALED_OVERHEAD) throw new SealedDataError(`sealed data under key ${h.keyId} is cut short`);
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, h.iv, { authTagLength: TAG_BYTES });
    decipher.setAAD(h.bytes);
    decipher.setAuthTag(b.subarray(b.length - TAG_BYTES));
    return Buffer.concat([decipher.update(b.subarray(SEALED_HEADER_BYTES, b.length - TAG_BYTES)), decipher.final()]);
  } catch {
    throw new SealedDataError(`sealed data under key ${h.keyId} does not open with it (altered, or another key)`);
  }
}

/** Opens sealed data, looking its key up; legacy plaintext comes back as it is. */
export async function unseal(keys: DataKeyLookup, data: Uint8Array): Promise<Buffer> {
  if (!isSealed(data)) return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  return unsealWith(await keys.keyById(readHeader(data).keyId), data);
}

/** A stream that seals what flows through it: header first, tag last. */
export function sealingStream(k: DataKey): Transform {
  const h = newHeader(k.id);
  const cipher = createCipheriv('aes-256-gcm', k.key, h.iv, { authTagLength: TAG_BYTES });
  cipher.setAAD(h.bytes);
  let started = false;
  return new Transform({
    transform(chunk: Buffer, _enc, done) {
      if (!started) {
        started = true;
        this.push(h.bytes);
      }
      done(null, cipher.update(chunk));
    },
    flush(done) {
      if (!started) this.push(h.bytes);
      this.push(cipher.final());
      done(null, cipher.getAuthTag());
    },
  });
}

/**
 * A stream that opens sealed data after its header (ciphertext and tag): plaintext flows as it
 * is deciphered, holding back only the last 16 bytes (the tag), so large audio stays streaming;
 * altered or cut-short data ends the stream with an error instead of a clean end.
 */
function unsealingStream(key: Buffer, h: Header): Transform {
  const decipher = createDecipheriv('aes-256-gcm', key, h.iv, { authTagLength: TAG_BYTES });
  decipher.setAAD(h.bytes);
  let tail: Buffer = Buffer.alloc(0);
  return new Transform({
    transform(chunk: Buffer, _enc, done) {
      if (tail.length + chunk.length <= TAG_BYTES) {
        tail = Buffer.concat([tail, chunk]);
        return done();
      }
      if (chunk.length >= TAG_BYTES) {
        const out = [decipher.update(tail), decipher.update(chunk.subarray(0, chunk.length - TAG_BYTES))];
        tail = chunk.subarray(chunk.length - TAG_BYTES);
        return done(null, Buffer.concat(out));
      }
      const all = Buffer.concat([tail, chunk]);
      tail = all.subarray(all.length - TAG_BYTES);
      done(null, decipher.update(all.subarray(0, all.length - TAG_BYTES)));
    },
    flush(done) {
      if (tail.length !== TAG_BYTES) return done(new SealedDataError(`sealed data under key ${h.keyId} is cut short`));
      try {
        decipher.setAuthTag(tail);
        done(null, decipher.final());
      } catch {
        done(new SealedDataError(`sealed data under key ${h.keyId} does not open with it (altered, or another key)`));
      }
    },
  });
}

/** Streams a file's plaintext: sealed ones opened on the way, legacy plaintext as it is. Throws ENOENT as fs does. */
export async function openFile(keys: DataKeyLookup, file: string): Promise<Readable> {
  const handle = await open(file, 'r');
  let head: Buffer;
  try {
    head = Buffer.alloc(SEALED_HEADER_BYTES);
    const { bytesRead } = await handle.read(head, 0, SEALED_HEADER_BYTES, 0);
    head = head.subarray(0, bytesRead);
  } finally {
    await handle.close();
  }
  if (!isSealed(head)) return createReadStream(file);
  const h = readHeader(head);
  const key = await keys.keyById(h.keyId);
  return pipeline(createReadStream(file, { start: SEALED_HEADER_BYTES }), unsealingStream(key, h), () => {});
}

/** A text to keep in a text column, sealed. */
export const sealText = (k: DataKey, text: string) => SEALED_TEXT_PREFIX + seal(k, Buffer.from(text, 'utf8')).toString('base64');

/** The sealed text's key id, or undefined for legacy plaintext. */
export const sealedTextKeyId = (stored: string) => (stored.startsWith(SEALED_TEXT_PREFIX) ? readHeader(Buffer.from(stored.slice(SEALED_TEXT_PREFIX.length, SEALED_TEXT_PREFIX.length + 48), 'base64')).keyId : undefined);

/** Opens a text kept by sealText; legacy plaintext (and markers such as [erased]) come back as they are. */
export async function unsealText(keys: DataKeyLookup, stored: string): Promise<string> {
  if (!stored.startsWith(SEALED_TEXT_PREFIX)) return stored;
  return (await unseal(keys, Buffer.from(stored.slice(SEALED_TEXT_PREFIX.length), 'base64'))).toString('utf8');
}
