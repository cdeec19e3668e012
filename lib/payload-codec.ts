import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { existsSync } from 'node:fs';
import { METADATA_ENCODING_KEY, ValueError, type DataConverter, type Payload, type PayloadCodec } from '@temporalio/common';
import { createRequire } from 'node:module';
import type { PayloadKeyRing } from './payload-keys';

// CommonJS whose named exports Node's ESM loader cannot detect: required, so it loads the same
// under tsx, compiled node and vitest.
const { temporal } = createRequire(import.meta.url)('@temporalio/proto') as typeof import('@temporalio/proto');

/**
 * Issue 12, D9: every payload the back office hands to Temporal (workflow and activity inputs
 * and results, signals, updates, queries, memos, schedule arguments, and failures' messages and
 * stack traces through `encodeCommonAttributes`) is encrypted with AES-256-GCM before it leaves
 * the process, so Temporal's database, its Web UI without the codec, and anyone who can read
 * the history see ciphertext.
 *
 * Keys form a ring with ids: payloads are encrypted under the current key and carry its id in
 * their metadata; decryption takes whichever key the payload names, so rotating (a new key
 * first, the old ones kept behind it) never strands a history. Payloads without this codec's
 * encoding pass through untouched: histories recorded before the codec still replay.
 */
export const ENCRYPTED_ENCODING = 'binary/encrypted';
export const KEY_ID_METADATA = 'encryption-key-id';
const IV_BYTES = 12;
const TAG_BYTES = 16;
/** The codec's own errors: they name key ids (not secret), never key material or payload content. */
export class PayloadKeyError extends ValueError {
  constructor(message: string) {
    super(message); // its name stays ValueError (the SDK's, read-only): what the SDK and the UI know
  }
}

const text = (bytes: Uint8Array | null | undefined) => (bytes ? Buffer.from(bytes).toString('utf8') : undefined);

export class AesGcmPayloadCodec implements PayloadCodec {
  constructor(private readonly ring: PayloadKeyRing) {
    for (const [id, key] of ring.keys) if (key.length !== 32) throw new PayloadKeyError(`key ${JSON.stringify(id)} is not 32 bytes`);
    if (!ring.keys.has(ring.currentKeyId)) throw new PayloadKeyError(`the current key id ${JSON.stringify(ring.currentKeyId)} is not in the ring`);
  }

  async encode(payloads: Payload[]): Promise<Payload[]> {
    return payloads.map((payload) => this.encrypt(payload));
  }

  async decode(payloads: Payload[]): Promise<Payload[]> {
    return payloads.map((payload) => this.decrypt(payload));
  }

  private encrypt(payload: Payload): Payload {
    const keyId = this.ring.currentKeyId;
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.ring.keys.get(keyId)!, iv, { authTagLength: TAG_BYTES });
    // The key id is authenticated with the content: a payload cannot be relabelled to another key.
    cipher.setAAD(Buffer.from(keyId, 'utf8'));
    const plain = temporal.api.common.v1.Payload.encode(payload).finish();
    const data = Buffer.concat([iv, cipher.update(plain), cipher.final(), cipher.getAuthTag()]);
    return {
      metadata: { [METADATA_ENCODING_KEY]: Buffer.from(ENCRYPTED_ENCODING), [KEY_ID_METADATA]: Buffer.from(keyId) },
      data,
    };
  }

  private decrypt(payload: Payload): Payload {
    if (text(payload.metadata?.[METADATA_ENCODING_KEY]) !== ENCRYPTED_ENCODING) return payload; // not ours: recorded before the codec
    const keyId = text(payload.metadata?.[KEY_ID_METADATA]);
    if (!keyId) throw new PayloadKeyError('an encrypted payload names no key id');
    const key = this.ring.keys.get(keyId);
    if (!key) {
      throw new PayloadKeyError(`a payload is encrypted with key id ${JSON.stringify(keyId.slice(0, 64))}, which is not in the key ring (PAYLOAD_KEYS has ${[...this.ring.keys.keys()].join(', ')}); add that key behind the current one`);
    }
    const data = Buffer.from(payload.data ?? new Uint8Array());
    if (data.length < IV_BYTES + TAG_BYTES) throw new PayloadKeyError(`an encrypted payload (key id ${JSON.stringify(keyId)}) is too short`);
    try {
      const decipher = createDecipheriv('aes-256-gcm', key, data.subarray(0, IV_BYTES), { authTagLength: TAG_BYTES });
      decipher.setAAD(Buffer.from(keyId, 'utf8'));
      decipher.setAuthTag(data.subarray(data.length - TAG_BYTES));
      const plain = Buffer.concat([decipher.update(data.subarray(IV_BYTES, data.length - TAG_BYTES)), decipher.final()]);
      return temporal.api.common.v1.Payload.decode(plain);
    } catch {
      throw new PayloadKeyError(`a payload encrypted with key id ${JSON.stringify(keyId)} does not decrypt with that key (a different key under the same id, or altered data)`);
    }
  }
}

/** This file runs compiled (dist/lib/payload-codec.js, beside a copy of the .cjs) or from source. */
const here = (name: string) => fileURLToPath(new URL(`./${name}`, import.meta.url));
/**
 * The failure converter with `encodeCommonAttributes: true` (messages and stack traces go into
 * an encoded payload, so the codec encrypts them). Plain CommonJS: the SDK `require()`s it in
 * whatever runs the client or worker (tsx, compiled node, vitest), and the workflow bundle
 * includes it too (bundleWorkflowCode's failureConverterPath): the workflow's own failures are
 * encoded the same way.
 */
export const failureConverterPath = here('failure-converter.cjs');
if (!existsSync(failureConverterPath)) throw new Error(`missing ${failureConverterPath} (scripts/build.ts copies it into dist/lib)`);

/** The data converter every Temporal client, worker and replayer of the back office uses. */
export function createDataConverter(ring: PayloadKeyRing): DataConverter {
  return { payloadCodecs: [new AesGcmPayloadCodec(ring)], failureConverterPath };
}

export interface JsonPayload {
  metadata?: Record<string, string> | null;
  data?: string | null;
}

/** Temporal's remote codec protocol: payloads as proto JSON (metadata values and data in base64). */
export const payloadFromJson = (p: JsonPayload): Payload => ({
  metadata: Object.fromEntries(Object.entries(p.metadata ?? {}).map(([k, v]) => [k, Buffer.from(v, 'base64')])),
  data: Buffer.from(p.data ?? '', 'base64'),
});

export const payloadToJson = (p: Payload): JsonPayload => ({
  metadata: Object.fromEntries(Object.entries(p.metadata ?? {}).map(([k, v]) => [k, Buffer.from(v ?? new Uint8Array()).toString('base64')])),
  data: Buffer.from(p.data ?? new Uint8Array()).toString('base64'),
});
