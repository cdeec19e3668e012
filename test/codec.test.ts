import { describe, expect, it } from 'vitest';
import { ApplicationFailure, CancelledFailure, defaultPayloadConverter, METADATA_ENCODING_KEY } from '@temporalio/common';
import { AesGcmPayloadCodec, ENCRYPTED_ENCODING, KEY_ID_METADATA, PayloadKeyError, payloadFromJson, payloadToJson } from '../lib/payload-codec';
import { generateKeyRing, keyRingFromConfig, parseKeyRing, resolvePayloadKeyRing } from '../lib/payload-keys';
import { ConfigError, loadConfig } from '../lib/config';
import { safeErrorObject, withSafeErrors } from '../lib/safe-error';
import { sanitisedFailure } from '../worker/sanitise-failures';
import { withScratchDatabase } from './support/stack';

/**
 * Issue 12: the payload codec's key ring (rotation without stranding a history), its errors, its
 * configuration, and what failures and log lines may say.
 */
const value = { name: 'Mette Frederiksen-Lund', email: 'mette.fl@kunde.test', phone: '+4528719304' };
const plain = () => defaultPayloadConverter.toPayload(value);
const utf8 = (b: Uint8Array | null | undefined) => Buffer.from(b ?? new Uint8Array()).toString('utf8');

describe('AES-256-GCM payload codec with a key ring', () => {
  it('encrypts under the current key, naming it, and decrypts back to the same payload', async () => {
    const { ring } = generateKeyRing(['a']);
    const codec = new AesGcmPayloadCodec(ring);
    const [encrypted] = await codec.encode([plain()]);
    expect(utf8(encrypted!.metadata![METADATA_ENCODING_KEY])).toBe(ENCRYPTED_ENCODING);
    expect(utf8(encrypted!.metadata![KEY_ID_METADATA])).toBe('a');
    const raw = Buffer.from(encrypted!.data!).toString('latin1');
    for (const v of Object.values(value)) expect(raw).not.toContain(v);
    const [decrypted] = await codec.decode([encrypted!]);
    expect(defaultPayloadConverter.fromPayload(decrypted!)).toEqual(value);
    // A fresh IV each time: the same value never encrypts to the same bytes.
    const [again] = await codec.encode([plain()]);
    expect(Buffer.from(again!.data!).equals(Buffer.from(encrypted!.data!))).toBe(false);
  });

  it('rotation: a payload encrypted under key A decodes with the ring [B, A], which encrypts new ones under B', async () => {
    const a = generateKeyRing(['key-a']);
    const b = generateKeyRing(['key-b']);
    const [underA] = await new AesGcmPayloadCodec(a.ring).encode([plain()]);
    const rotated = keyRingFromConfig(`${b.spec},${a.spec}`);
    expect(rotated.currentKeyId).toBe('key-b');
    const codec = new AesGcmPayloadCodec(rotated);
    expect(defaultPayloadConverter.fromPayload((await codec.decode([underA!]))[0]!)).toEqual(value);
    const [underB] = await codec.encode([plain()]);
    expect(utf8(underB!.metadata![KEY_ID_METADATA])).toBe('key-b');
    // PAYLOAD_KEY_ID may keep an older key current while the new one is rolled out everywhere.
    expect(keyRingFromConfig(`${b.spec},${a.spec}`, 'key-a').currentKeyId).toBe('key-a');
  });

  it('an unknown key id is a clear failure naming that id and the ring, never key material', async () => {
    const a = generateKeyRing(['key-a']);
    const b = generateKeyRing(['key-b']);
    const [underA] = await new AesGcmPayloadCodec(a.ring).encode([plain()]);
    const err = await new AesGcmPayloadCodec(b.ring).decode([underA!]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PayloadKeyError);
    expect((err as Error).message).toMatch(/key id "key-a", which is not in the key ring \(PAYLOAD_KEYS has key-b\)/);
    expect((err as Error).message).not.toContain(b.spec.split(':')[1]);
  });

  it('refuses a payload under a known id but another key, or altered, or relabelled to another key id', async () => {
    const a = generateKeyRing(['same-id']);
    const impostor = generateKeyRing(['same-id']);
    const [encrypted] = await new AesGcmPayloadCodec(a.ring).encode([plain()]);
    await expect(new AesGcmPayloadCodec(impostor.ring).decode([encrypted!])).rejects.toThrow(/does not decrypt with that key/);
    const altered = Buffer.from(encrypted!.data!);
    altered[20] = altered[20]! ^ 1;
    await expect(new AesGcmPayloadCodec(a.ring).decode([{ ...encrypted!, data: altered }])).rejects.toThrow(PayloadKeyError);
    // The key id is authenticated: the same bytes under another id of the ring do not decrypt.
    const two = keyRingFromConfig(`${a.spec},other:${a.spec.split(':')[1]}`);
    const relabelled = { metadata: { ...encrypted!.metadata, [KEY_ID_METADATA]: Buffer.from('other') }, data: encrypted!.data };
    await expect(new AesGcmPayloadCodec(two).decode([relabelled])).rejects.toThrow(/key id "other" does not decrypt/);
  });

  it('passes payloads without its encoding through unchanged: histories recorded before the codec still replay', async () => {
    const codec = new AesGcmPayloadCodec(generateKeyRing().ring);
    const before = plain();
    expect(await codec.decode([before])).toEqual([before]);
  });

  it('speaks the remote codec protocol’s JSON (base64 metadata and data) both ways', async () => {
    const codec = new AesGcmPayloadCodec(generateKeyRing().ring);
    const [encrypted] = await codec.encode([plain()]);
    const json = JSON.parse(JSON.stringify(payloadToJson(encrypted!))) as ReturnType<typeof payloadToJson>;
    expect(Buffer.from(json.metadata![KEY_ID_METADATA]!, 'base64').toString()).toBe('k1');
    expect(defaultPayloadConverter.fromPayload((await codec.decode([payloadFromJson(json)]))[0]!)).toEqual(value);
  });
});

describe('PAYLOAD_KEYS configuration', () => {
  const problemsOf = (env: Record<string, string>) => {
    try {
      loadConfig(env);
      return [];
    } catch (err) {
      if (err instanceof ConfigError) return err.problems;
      throw err;
    }
  };

  it('takes id:base64 pairs, the first current unless PAYLOAD_KEY_ID says otherwise', () => {
    const { spec } = generateKeyRing(['2026-a', '2025-b']);
    const config = loadConfig({ PAYLOAD_KEYS: spec });
    expect(parseKeyRing(config.PAYLOAD_KEYS!).ring!.currentKeyId).toBe('2026-a');
    expect(parseKeyRing(spec, '2025-b').ring!.currentKeyId).toBe('2025-b');
  });

  it('names a malformed ring, a short key and an unknown PAYLOAD_KEY_ID without echoing any key', () => {
    const short = Buffer.alloc(16, 7).toString('base64');
    const problems = problemsOf({ PAYLOAD_KEYS: `good:${Buffer.alloc(32, 1).toString('base64')},weak:${short}` });
    expect(problems).toEqual(['PAYLOAD_KEYS: key "weak" must be 32 bytes in base64 (e.g. from `openssl rand -base64 32`) (got "<hidden>")']);
    expect(problems.join()).not.toContain(short);
    expect(problemsOf({ PAYLOAD_KEYS: 'no-colon-here' })[0]).toMatch(/^PAYLOAD_KEYS: entry 1 must be id:base64key/);
    const { spec } = generateKeyRing(['a']);
    expect(problemsOf({ PAYLOAD_KEYS: spec, PAYLOAD_KEY_ID: 'b' })).toEqual(['PAYLOAD_KEY_ID: is not one of the key ids (a) (got "b")']);
  });

  it('production mode refuses to start without PAYLOAD_KEYS', () => {
    expect(problemsOf({ NODE_ENV: 'production' }).some((p) => p.startsWith('PAYLOAD_KEYS: must be set in production'))).toBe(true);
  });

  it('development without PAYLOAD_KEYS: one key, generated once and kept in Postgres, the same for every process', async () => {
    await withScratchDatabase(async (sql) => {
      const [first, second] = await Promise.all([resolvePayloadKeyRing({}, sql), resolvePayloadKeyRing({}, sql)]);
      expect(first.currentKeyId).toMatch(/^dev-[0-9a-f]{12}$/);
      expect(second.currentKeyId).toBe(first.currentKeyId);
      expect(first.keys.get(first.currentKeyId)!.equals(second.keys.get(second.currentKeyId)!)).toBe(true);
      expect(first.keys.get(first.currentKeyId)!.length).toBe(32);
    });
  });
});

describe('sanitised failures and log lines (issue 12)', () => {
  /** What nodemailer throws for a 550: the server's text quotes the address. */
  const smtp550 = () => Object.assign(new Error('Can\'t send mail - all recipients were rejected: 550 5.1.1 <mette.fl@kunde.test>: Recipient address rejected'), { code: 'EENVELOPE', responseCode: 550, command: 'RCPT TO', response: '550 5.1.1 <mette.fl@kunde.test>: Recipient address rejected', rejected: ['mette.fl@kunde.test'] });
  /** What postgres.js throws for a unique violation: the detail quotes the value. */
  const pgUnique = () => Object.assign(new Error('duplicate key value violates unique constraint "customers_email_key"'), { name: 'PostgresError', code: '23505', detail: 'Key (email)=(mette.fl@kunde.test) already exists.' });

  it('an activity’s driver error leaves as an ApplicationFailure with the code only, retryable, typed by its class', () => {
    for (const [err, text, type] of [[smtp550(), 'SMTP 550 after RCPT TO', 'Error'], [pgUnique(), 'PostgresError 23505', 'PostgresError']] as const) {
      const out = sanitisedFailure(err) as ApplicationFailure;
      expect(out).toBeInstanceOf(ApplicationFailure);
      expect(out.message).toBe(text);
      expect(out.type).toBe(type);
      expect(out.nonRetryable).toBe(false);
      expect(JSON.stringify({ ...out, stack: out.stack, message: out.message })).not.toContain('mette');
    }
  });

  it('keeps the back office’s own failures (types the workflows branch on) and cancellations as they are', () => {
    const own = ApplicationFailure.nonRetryable('the email request:1:answer was refused for good: SMTP 550 after RCPT TO', 'PermanentSmtpFailure');
    expect(sanitisedFailure(own)).toBe(own);
    const cancelled = new CancelledFailure('cancelled');
    expect(sanitisedFailure(cancelled)).toBe(cancelled);
    const withRawCause = ApplicationFailure.create({ message: 'outbox unavailable', type: 'OutboxUnavailable', nonRetryable: true, cause: pgUnique() });
    const cleaned = sanitisedFailure(withRawCause) as ApplicationFailure;
    expect(cleaned).toMatchObject({ message: 'outbox unavailable', type: 'OutboxUnavailable', nonRetryable: true });
    expect((cleaned.cause as Error).message).toBe('PostgresError 23505');
  });

  it('the logger’s serializers write an error anywhere in an entry as class, codes and stack frames, never its text', () => {
    const entry = withSafeErrors({ sdk: { error: smtp550(), nested: [{ err: pgUnique() }] }, requestId: 'r-1' }) as Record<string, unknown>;
    const text = JSON.stringify(entry);
    expect(text).not.toContain('mette');
    expect(text).not.toContain('Recipient address rejected');
    expect(entry).toMatchObject({ requestId: 'r-1', sdk: { error: { name: 'Error', code: 'EENVELOPE', responseCode: 550, command: 'RCPT TO' }, nested: [{ err: { name: 'PostgresError', code: '23505' } }] } });
    const withCause = new Error('outer', { cause: pgUnique() });
    expect(safeErrorObject(withCause)).toMatchObject({ name: 'Error', cause: { name: 'PostgresError', code: '23505' } });
    expect(JSON.stringify(safeErrorObject(withCause))).not.toContain('mette');
    expect((safeErrorObject(pgUnique()).stack as string).split('\n').every((l) => /^\s+at /.test(l))).toBe(true);
  });
});
