import { type DecipherGCM, createCipheriv, createDecipheriv, createHash, createHmac, createPrivateKey, hash, createPublicKey, sign, verify, type KeyObject } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';

/**
 * The business-transfer package (D8), shared by the worker that writes it and
 * `npm run verify-transfer`, which the acquirer runs. One tar file:
 *
 *   key.json                       the package's data key, wrapped with RSA-OAEP-SHA256 for the acquirer
 *   signer.pem                     TopCall's Ed25519 public key (compare its fingerprint with the email)
 *   clients/{client}/{category}/{part}.jsonl.enc   JSON Lines per client and category, in parts
 *   clients/{client}/audio/{part}-{n}.tar.enc       the audio of a batch's short recordings, packed:
 *                                                    a tar of one `{recording}` entry each
 *   clients/{client}/audio/{recording}.enc         the audio of a long recording, on its own
 *   manifest.json                  every file above with its size and SHA-256, the open obligations
 *   manifest.sig                   TopCall's Ed25519 signature over the manifest's SHA-256
 *
 * Short recordings are packed because a file each made the per-file work (a tar entry, an iv,
 * two hashes, a manifest row) cost more than the audio itself in a package of 100,000 of them.
 *
 * Every `.enc` file is `iv (12 bytes) ‖ AES-256-GCM ciphertext ‖ tag (16 bytes)` under the
 * data key. The iv is derived from the data key, the file's path and the SHA-256 of its
 * plaintext, so a rebuilt file is byte-for-byte the same (a resumed build yields the same
 * manifest) while two different plaintexts never share an iv.
 */
export const PACKAGE_FORMAT = 'topcall-transfer/3';
/** Audio up to this size goes into its batch's audio pack; longer audio is a file of its own, streamed. */
export const PACKED_AUDIO_MAX = 256 * 1024;
/** A pack is closed (and the next one begun) once its audio reaches this many bytes, so it fits in memory. */
export const AUDIO_PACK_MAX = 8 * 1024 * 1024;
/** The name of a batch's `n`th audio pack. */
export const audioPackPath = (clientId: string, part: string, n: number) => `clients/${clientId}/audio/${part}-${n}.tar.enc`;
/** Whether a package entry is an audio pack (whose plaintext is a tar of recordings). */
export const isAudioPack = (entryPath: string) => /^clients\/[^/]+\/audio\/[^/]+\.tar\.enc$/.test(entryPath);
/** A recording's entry name in an audio pack: its id and nothing else. */
export const isRecordingEntryName = (name: string) => /^[0-9a-f-]{36}$/.test(name);
export const KEY_ENTRY = 'key.json';
export const SIGNER_ENTRY = 'signer.pem';
export const MANIFEST_ENTRY = 'manifest.json';
export const SIGNATURE_ENTRY = 'manifest.sig';
export const IV_BYTES = 12;
export const TAG_BYTES = 16;
/** An encrypted file is this much larger than its plaintext. */
export const ENCRYPTION_OVERHEAD = IV_BYTES + TAG_BYTES;
/** Every tar entry gets this modification time, so the archive's bytes depend on its contents only. */
export const ENTRY_MTIME = new Date('2000-01-01T00:00:00Z');

export interface KeyEntry {
  format: typeof PACKAGE_FORMAT;
  transferId: string;
  alg: 'RSA-OAEP-SHA256';
  /** The 32-byte AES-256-GCM data key, encrypted for the acquirer's RSA public key, base64. */
  wrappedKey: string;
  /** SHA-256 of the acquirer's public key (SPKI DER), so the acquirer knows which private key opens it. */
  recipientKeySha256: string;
}

export interface SignatureEntry {
  alg: 'Ed25519';
  /** What is signed: `${PACKAGE_FORMAT} manifest sha256:<hex>`. */
  signed: string;
  signature: string;
  signerKeySha256: string;
}

/** One-shot `crypto.hash` (Node ≥ 20.12): no Hash object per call, which counts for a package of 100,000 small files. */
export const sha256Hex = (data: Buffer | string): string => hash('sha256', data, 'hex');

/** SHA-256 of a public key's SPKI DER: the fingerprint an acquirer compares out of band. */
export const publicKeyFingerprint = (key: KeyObject | string) => sha256Hex((typeof key === 'string' ? createPublicKey(key) : key).export({ type: 'spki', format: 'der' }));

/** TopCall's Ed25519 signing key from a 32-byte seed (kept in app_secrets): PKCS#8 is a fixed prefix plus the seed. */
export function signingKeyFromSeed(seed: Buffer): { privateKey: KeyObject; publicKey: KeyObject } {
  if (seed.length !== 32) throw new Error('the signing seed must be 32 bytes');
  const privateKey = createPrivateKey({ key: Buffer.concat([Buffer.from('302e020100300506032b657004220420', 'hex'), seed]), format: 'der', type: 'pkcs8' });
  return { privateKey, publicKey: createPublicKey(privateKey) };
}

export const signedStatement = (manifestSha256: string) => `${PACKAGE_FORMAT} manifest sha256:${manifestSha256}`;

export function signManifest(manifestSha256: string, privateKey: KeyObject): SignatureEntry {
  const publicKey = createPublicKey(privateKey);
  const signed = signedStatement(manifestSha256);
  return { alg: 'Ed25519', signed, signature: sign(null, Buffer.from(signed), privateKey).toString('base64'), signerKeySha256: publicKeyFingerprint(publicKey) };
}

export function signatureValid(entry: SignatureEntry, manifestSha256: string, publicKey: KeyObject): boolean {
  if (entry.alg !== 'Ed25519' || entry.signed !== signedStatement(manifestSha256)) return false;
  return verify(null, Buffer.from(entry.signed), publicKey, Buffer.from(entry.signature, 'base64'));
}

/** The iv of one file: HMAC(data key, path ‖ SHA-256 of the plaintext), first 12 bytes. */
export function fileIv(dataKey: Buffer, entryPath: string, plaintextSha256: string): Buffer {
  return createHmac('sha256', dataKey).update(`${entryPath}\0${plaintextSha256}`).digest().subarray(0, IV_BYTES);
}

/**
 * Encrypts a whole (bounded) buffer into `iv ‖ ciphertext ‖ tag`. `plaintextSha256` may be given
 * when it is known (audio, hashed at ingest), so a file gets the same iv whether it is streamed or read whole.
 */
export function encryptFile(dataKey: Buffer, entryPath: string, plaintext: Buffer, plaintextSha256 = sha256Hex(plaintext)): Buffer {
  const iv = fileIv(dataKey, entryPath, plaintextSha256);
  const cipher = createCipheriv('aes-256-gcm', dataKey, iv);
  return Buffer.concat([iv, cipher.update(plaintext), cipher.final(), cipher.getAuthTag()]);
}

/** Streams `iv ‖ ciphertext ‖ tag` for a plaintext whose SHA-256 is known in advance (audio, hashed at ingest). */
export function encryptingStream(dataKey: Buffer, entryPath: string, plaintextSha256: string): Transform {
  const iv = fileIv(dataKey, entryPath, plaintextSha256);
  const cipher = createCipheriv('aes-256-gcm', dataKey, iv);
  let started = false;
  return new Transform({
    transform(chunk: Buffer, _enc, done: TransformCallback) {
      if (!started) {
        started = true;
        this.push(iv);
      }
      done(null, cipher.update(chunk));
    },
    flush(done: TransformCallback) {
      if (!started) this.push(iv);
      this.push(cipher.final());
      done(null, cipher.getAuthTag());
    },
  });
}

/**
 * Streams the plaintext of an encrypted file; fails at the end when the tag does not
 * authenticate (the last 16 bytes are held back until then).
 */
export function decryptingStream(dataKey: Buffer): Transform {
  let head = Buffer.alloc(0);
  let decipher: DecipherGCM | undefined;
  let tail = Buffer.alloc(0);
  return new Transform({
    transform(chunk: Buffer, _enc, done: TransformCallback) {
      let data = chunk;
      if (!decipher) {
        head = Buffer.concat([head, data]);
        if (head.length < IV_BYTES) return done();
        decipher = createDecipheriv('aes-256-gcm', dataKey, head.subarray(0, IV_BYTES));
        data = head.subarray(IV_BYTES);
      }
      const all = tail.length ? Buffer.concat([tail, data]) : data;
      const cut = Math.max(0, all.length - TAG_BYTES);
      tail = Buffer.from(all.subarray(cut));
      done(null, cut ? decipher.update(all.subarray(0, cut)) : undefined);
    },
    flush(done: TransformCallback) {
      try {
        if (!decipher || tail.length < TAG_BYTES) throw new Error('too short to be an encrypted file');
        decipher.setAuthTag(tail);
        done(null, decipher.final());
      } catch {
        done(new Error('does not decrypt: the data key or the file is wrong (authentication failed)'));
      }
    },
  });
}

/** Decrypts a whole buffer (verification of small files, tests). */
export function decryptFile(dataKey: Buffer, data: Buffer): Buffer {
  if (data.length < ENCRYPTION_OVERHEAD) throw new Error('too short to be an encrypted file');
  const decipher = createDecipheriv('aes-256-gcm', dataKey, data.subarray(0, IV_BYTES));
  decipher.setAuthTag(data.subarray(data.length - TAG_BYTES));
  return Buffer.concat([decipher.update(data.subarray(IV_BYTES, data.length - TAG_BYTES)), decipher.final()]);
}

/** The file list of the manifest: one entry per file in the tar before the manifest. */
export interface ManifestFile {
  path: string;
  bytes: number;
  sha256: string;
}
