import { randomUUID } from 'node:crypto';
import { copyFile, mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { strFromU8, unzipSync } from 'fflate';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import { KeyDestroyedError, personKeysFor, type PersonKeys } from '../db/person-keys';
import { SEALED_MAGIC, SEALED_TEXT_PREFIX, SealedDataError, sealedKeyId, sealedTextKeyId, unseal, unsealText } from '../lib/at-rest';
import { audioKeyFor } from '../lib/recording-store';
import { appFor, json } from './support/api';
import type { TestStack } from './support/stack';
import { useStack } from './support/fixture';
import { uploadForm } from './support/recordings';
import { fileAndApprove } from './support/requests';
import { registerCustomer, uniqueEmail } from './support/customers';
import { waitForMessage } from './support/mailbox';
import { waitFor } from './support/wait';

/**
 * Issue 12, D15: crypto-shredding. A person's audio, export package and outbox bodies are sealed
 * at rest under data keys kept only wrapped in person_keys; erasure through the normal flow
 * (a staff erasure request, the officer's approval) destroys those keys, so the copies a backup
 * took beforehand no longer open.
 */
let s: TestStack;
let app: ReturnType<typeof appFor>;
let support: { authorization: string };
let officer: { authorization: string };
let clientId: string;
let keys: PersonKeys;

const fixture = useStack(
  { REQUEST_SLA: 'PT1H', REQUEST_REMINDERS: 'PT30M', REQUEST_ESCALATION: 'PT50M', STAFF_EMAIL: `privacy-${randomUUID().slice(0, 8)}@topcall.test` },
  { worker: true, roles: ['support', 'privacy_officer'], client: true },
);
beforeAll(() => {
  ({ s, app, clientId, staff: { support, privacy_officer: officer } } = fixture);
  keys = personKeysFor(s.sql, s.config);
});

async function upload(fields: Record<string, string>, audio: Buffer): Promise<string> {
  const res = await app.request('/v1/recordings', {
    method: 'POST',
    headers: support,
    body: uploadForm({ clientId, recordedAt: new Date().toISOString(), durationSeconds: '20', ...fields }, { data: audio }),
  });
  expect(res.status, await res.clone().text()).toBe(201);
  return ((await res.json()) as { id: string }).id;
}

const audioFile = (recordingId: string) => path.join(s.config.DATA_DIR, 'recordings', audioKeyFor(recordingId));
const keyRow = async (where: { customerId?: string; audioKey?: string }) =>
  (
    await s.sql<{ id: string; wrapped: Buffer | null; destroyedAt: Date | null }[]>`
      select id, wrapped, destroyed_at as "destroyedAt" from person_keys
      where ${where.customerId ? s.sql`customer_id = ${where.customerId}` : s.sql`audio_key = ${where.audioKey!}`}`
  )[0];

describe('crypto-shredding (issue 12)', () => {
  it('seals audio, the export and outbox bodies; erasure destroys the keys, and copies taken before no longer open', async () => {
    const tag = randomUUID().slice(0, 8);
    const name = `Kirsten Skovgaard ${tag}`;
    const person = await registerCustomer(app, support, { clientId, name, email: uniqueEmail('shred') });
    const email = person.email;
    const voice = Buffer.from(`Hej, det er ${name} (${email}), jeg ringer om min ordre. `.repeat(400));
    const recordingId = await upload({ customerId: person.id }, voice);
    const heldVoice = Buffer.from(`Optagelse under tvist for ${tag}. `.repeat(300));
    const heldId = await upload({ customerId: person.id }, heldVoice);
    const dispute = await app.request('/v1/disputes', json({ clientId, recordingIds: [heldId], reason: 'Klienten bestrider en aftale indgået i samtalen' }, support));
    expect(dispute.status).toBe(201);

    // The audio on disk is ciphertext under the recording's own key; the API serves the audio itself.
    const rawAudio = await readFile(audioFile(recordingId));
    expect(rawAudio.subarray(0, SEALED_MAGIC.length)).toEqual(SEALED_MAGIC);
    expect(rawAudio.includes(Buffer.from(email))).toBe(false);
    expect(rawAudio.includes(voice.subarray(0, 64))).toBe(false);
    expect(sealedKeyId(rawAudio)).toBe((await keyRow({ audioKey: audioKeyFor(recordingId) }))!.id);
    expect((await unseal(keys, rawAudio)).equals(voice)).toBe(true);
    const served = await app.request(`/v1/recordings/${recordingId}/audio`, { headers: support });
    expect(served.status).toBe(200);
    expect(Buffer.from(await served.arrayBuffer()).equals(voice)).toBe(true);

    // An access request builds the export: sealed with the person's key, served as the zip.
    const access = await fileAndApprove(app, support, officer, { type: 'access', customerId: person.id });
    const answer = await waitForMessage(email, (m) => /\/v1\/exports\//.test(m.text), 'the access answer with its link');
    const link = /\/v1\/exports\/([\w-]+)/.exec(answer.text)![1]!;
    const [pkg] = await s.sql<{ fileKey: string; sha256: string }[]>`select file_key as "fileKey", sha256 from export_packages where request_id = ${access.id}`;
    const exportFile = path.join(s.config.DATA_DIR, pkg!.fileKey);
    const rawExport = await readFile(exportFile);
    const personKey = (await keyRow({ customerId: person.id }))!;
    expect(sealedKeyId(rawExport)).toBe(personKey.id);
    expect(rawExport.includes(Buffer.from(email))).toBe(false);
    const zip = await unseal(keys, rawExport);
    expect(strFromU8(unzipSync(zip)['data.json']!)).toContain(email);
    expect(rawExport.includes(zip.subarray(0, 64))).toBe(false);
    const download = await app.request(`/v1/exports/${link}`);
    expect(download.status).toBe(200);
    expect(Buffer.from(await download.arrayBuffer()).equals(zip)).toBe(true);

    // The emails to the person are sealed under the same key in the outbox.
    const outbox = await s.sql<{ key: string; textBody: string }[]>`
      select key, text_body as "textBody" from email_outbox where key like ${`customer:${person.id}:%`} or key like ${`request:${access.id}:%`} order by key`;
    expect(outbox.map((o) => o.key)).toEqual(expect.arrayContaining([`customer:${person.id}:invitation`, `request:${access.id}:answer`]));
    for (const o of outbox) {
      expect(o.textBody.startsWith(SEALED_TEXT_PREFIX)).toBe(true);
      expect(o.textBody).not.toContain(name);
      expect(sealedTextKeyId(o.textBody)).toBe(personKey.id);
    }
    const invitation = await unsealText(keys, outbox.find((o) => o.key.endsWith(':invitation'))!.textBody);
    expect(invitation).toContain(name);

    // A backup: copies of the files and of the outbox bodies, taken before the erasure.
    const backup = path.join(s.config.DATA_DIR, '..', `backup-${tag}`);
    await mkdir(backup, { recursive: true });
    await copyFile(audioFile(recordingId), path.join(backup, 'audio'));
    await copyFile(exportFile, path.join(backup, 'export'));
    await writeFile(path.join(backup, 'outbox.json'), JSON.stringify(outbox));

    // Erasure through the normal flow: staff file it, the officer approves, the answer goes out, then the keys go.
    const erasure = await fileAndApprove(app, support, officer, { type: 'erasure', customerId: person.id });
    const erasureAnswer = await waitForMessage(email, (m) => m.text.includes(erasure.id) && /slettet|deleted/i.test(m.text), 'the erasure answer');
    expect(erasureAnswer.text).toMatch(/Vi destruerer de nøgler som sidste led i sletningen, så kopier af disse data i sikkerhedskopier af vores filer ikke længere kan læses/);
    // Database backups still hold the wrapped keys until the master key is retired: the answer says by when (DATA_KEY_MAX_AGE, test/key-rotation.test.ts).
    const by = /låst med vores hovednøgle\. .* senest (\d{4}-\d{2}-\d{2}) kan de sikkerhedskopier heller ikke åbne dine data/.exec(erasureAnswer.text)?.[1];
    expect(Math.abs(Date.parse(by!) - (Date.now() + 30 * 86_400_000))).toBeLessThan(2 * 86_400_000);
    await waitFor(async () => (await keyRow({ customerId: person.id }))?.destroyedAt, { what: 'the person’s key to be destroyed' });

    const destroyedPersonKey = (await keyRow({ customerId: person.id }))!;
    expect(destroyedPersonKey.wrapped).toBeNull();
    const destroyedAudioKey = (await keyRow({ audioKey: audioKeyFor(recordingId) }))!;
    expect(destroyedAudioKey.wrapped).toBeNull();
    expect(destroyedAudioKey.destroyedAt).toBeInstanceOf(Date);
    await expect(stat(audioFile(recordingId))).rejects.toThrow(/ENOENT/);
    await expect(stat(exportFile)).rejects.toThrow(/ENOENT/);

    // The backup's copies no longer open: the keys they name are gone.
    await expect(unseal(keys, await readFile(path.join(backup, 'audio')))).rejects.toBeInstanceOf(KeyDestroyedError);
    await expect(unseal(keys, await readFile(path.join(backup, 'export')))).rejects.toBeInstanceOf(KeyDestroyedError);
    const copied = JSON.parse(await readFile(path.join(backup, 'outbox.json'), 'utf8')) as { textBody: string }[];
    for (const o of copied) await expect(unsealText(keys, o.textBody)).rejects.toBeInstanceOf(KeyDestroyedError);

    // The recording the dispute holds is kept (GDPR 17(3)(e)), and so is its key: it still plays.
    expect((await keyRow({ audioKey: audioKeyFor(heldId) }))!.wrapped).not.toBeNull();
    const heldAudio = await app.request(`/v1/recordings/${heldId}/audio`, { headers: support });
    expect(heldAudio.status).toBe(200);
    expect(Buffer.from(await heldAudio.arrayBuffer()).equals(heldVoice)).toBe(true);
  });

  it('reads audio written before sealing as it is, and refuses sealed audio that was altered', async () => {
    const legacyId = randomUUID();
    const legacy = Buffer.from('RIFF legacy plaintext audio '.repeat(100));
    await mkdir(path.dirname(audioFile(legacyId)), { recursive: true });
    await writeFile(audioFile(legacyId), legacy);
    expect((await s.store.read(audioKeyFor(legacyId))).equals(legacy)).toBe(true);
    const chunks: Buffer[] = [];
    for await (const chunk of await s.store.open(audioKeyFor(legacyId))) chunks.push(chunk as Buffer);
    expect(Buffer.concat(chunks).equals(legacy)).toBe(true);

    // Sealed through the store: streamed back whole; a flipped byte ends the stream with an error.
    const big = Buffer.alloc(3 * 1024 * 1024 + 7, 'lyd');
    const staged = await s.store.stage(Readable.from([big.subarray(0, 1_000_000), big.subarray(1_000_000)]));
    const key = audioKeyFor(randomUUID());
    await staged.commit(key);
    const streamed: Buffer[] = [];
    for await (const chunk of await s.store.open(key)) streamed.push(chunk as Buffer);
    expect(Buffer.concat(streamed).equals(big)).toBe(true);
    const file = path.join(s.config.DATA_DIR, 'recordings', key);
    const altered = await readFile(file);
    altered[altered.length - 100]! ^= 1;
    await writeFile(file, altered);
    await expect(s.store.read(key)).rejects.toBeInstanceOf(SealedDataError);
    await expect(
      (async () => {
        for await (const chunk of await s.store.open(key)) void chunk;
      })(),
    ).rejects.toBeInstanceOf(SealedDataError);

    // Deleting audio destroys its key.
    await s.store.delete(key);
    expect((await keyRow({ audioKey: key }))!.destroyedAt).toBeInstanceOf(Date);
  });

  it('opens many recordings with their keys fetched at once, and a key destroyed since still refuses', async () => {
    const audio = Array.from({ length: 5 }, (_, i) => Buffer.from(`opkald ${i} `.repeat(50)));
    const audioKeys: string[] = [];
    for (const a of audio) {
      const staged = await s.store.stage(Readable.from([a]));
      audioKeys.push(audioKeyFor(randomUUID()));
      await staged.commit(audioKeys.at(-1)!);
    }
    // One query for the batch: reading every file, whole or streamed, looks no key up by id.
    const byId = vi.spyOn(keys, 'keyById');
    const batch = await keys.audioKeys(audioKeys);
    for (const [i, k] of audioKeys.entries()) expect((await s.store.read(k, batch)).equals(audio[i]!)).toBe(true);
    const streamed: Buffer[] = [];
    for await (const chunk of await s.store.open(audioKeys[0]!, batch)) streamed.push(chunk as Buffer);
    expect(Buffer.concat(streamed).equals(audio[0]!)).toBe(true);
    expect(byId).not.toHaveBeenCalled();
    // Audio sealed again since, under a key the batch did not fetch, is looked up by id.
    const again = await s.store.stage(Readable.from([Buffer.from('resealed')]));
    await s.sql`delete from person_keys where audio_key = ${audioKeys[1]!}`;
    await again.commit(audioKeys[1]!);
    expect((await s.store.read(audioKeys[1]!, batch)).toString()).toBe('resealed');
    expect(byId).toHaveBeenCalledTimes(1);
    byId.mockRestore();
    // A copy taken before the audio was deleted does not open with a batch fetched after: its key is destroyed.
    const file = path.join(s.config.DATA_DIR, 'recordings', audioKeys[3]!);
    const backup = await readFile(file);
    await s.store.delete(audioKeys[3]!);
    await writeFile(file, backup);
    await expect(s.store.read(audioKeys[3]!, await keys.audioKeys(audioKeys))).rejects.toBeInstanceOf(KeyDestroyedError);
  });
});
