import { constants, generateKeyPairSync, publicEncrypt, randomBytes, randomUUID } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { TarAppender, tarBuffer } from '../lib/tar-writer';
import { audioPackPath, encryptFile, ENTRY_MTIME, KEY_ENTRY, PACKAGE_FORMAT, publicKeyFingerprint, type KeyEntry } from '../lib/transfer-package';
import { verifyTransferPackage } from '../lib/verify-transfer';

/**
 * The acquirer's side of an audio pack (D8): `verify-transfer --out` unpacks each pack into one
 * file per recording, and a pack holding anything but recordings — a path that would leave the
 * output folder, say — is a problem named after the pack, with nothing written outside.
 * (The packs the worker writes are checked end to end in transfers and transfer-package-crash.)
 */
const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 3072, publicKeyEncoding: { type: 'spki', format: 'pem' }, privateKeyEncoding: { type: 'pkcs8', format: 'pem' } });
const temps: string[] = [];
afterAll(() => Promise.all(temps.map((t) => rm(t, { recursive: true, force: true }))));

/** A package of a key entry and one audio pack of `entries` (no manifest: these tests are about the pack). */
async function packageWith(entries: { name: string; data: Buffer }[], options: { flipByte?: boolean } = {}): Promise<{ dir: string; file: string; pack: string }> {
  const dir = await mkdtemp(path.join(inject('runTempDir'), 'verify-transfer-'));
  temps.push(dir);
  const dataKey = randomBytes(32);
  const key: KeyEntry = {
    format: PACKAGE_FORMAT,
    transferId: randomUUID(),
    alg: 'RSA-OAEP-SHA256',
    wrappedKey: publicEncrypt({ key: publicKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' }, dataKey).toString('base64'),
    recipientKeySha256: publicKeyFingerprint(publicKey),
  };
  const pack = audioPackPath(randomUUID(), '00000', 0);
  const file = path.join(dir, 'package.tar');
  const tar = await TarAppender.open(file, null, ENTRY_MTIME);
  await tar.add(KEY_ENTRY, Buffer.from(JSON.stringify(key)));
  const encrypted = encryptFile(dataKey, pack, tarBuffer(entries, ENTRY_MTIME));
  if (options.flipByte) encrypted[encrypted.length >> 1]! ^= 1;
  await tar.add(pack, encrypted);
  await tar.close();
  return { dir, file, pack };
}

describe('an audio pack in verify-transfer', () => {
  it('is unpacked into one file per recording, each with its audio', async () => {
    // Enough recordings that the pack is read in many chunks, with backpressure.
    const recordings = Array.from({ length: 600 }, () => ({ name: randomUUID(), data: randomBytes(300) }));
    const { dir, file, pack } = await packageWith(recordings);
    const out = path.join(dir, 'out');
    const report = await verifyTransferPackage(file, { privateKeyPem: privateKey, outDir: out });
    expect(report.problems).toEqual([{ path: 'manifest.json', problem: 'missing' }]);
    expect(report.audio).toBe(recordings.length);
    const audioDir = path.join(out, path.dirname(pack));
    expect((await readdir(audioDir)).sort()).toEqual(recordings.map((r) => r.name).sort());
    expect(await readFile(path.join(audioDir, recordings[123]!.name))).toEqual(recordings[123]!.data);
  });

  it('leaves none of its recordings in the output folder when it does not authenticate', async () => {
    const recordings = Array.from({ length: 50 }, () => ({ name: randomUUID(), data: randomBytes(300) }));
    const { dir, file, pack } = await packageWith(recordings, { flipByte: true });
    const out = path.join(dir, 'out');
    const report = await verifyTransferPackage(file, { privateKeyPem: privateKey, outDir: out });
    expect(report.problems).toContainEqual({ path: pack, problem: expect.stringMatching(/does not decrypt/) });
    expect(report.audio).toBe(0);
    // The recordings before the flipped byte were unpacked while the stream ran; the failed tag removed them.
    expect(await readdir(path.join(out, path.dirname(pack))).catch(() => [])).toEqual([]);
  });

  it('is refused, by its name, when it holds an entry that is not a recording, and nothing lands outside the output folder', async () => {
    const { dir, file, pack } = await packageWith([
      { name: randomUUID(), data: randomBytes(10) },
      { name: '../../../escaped', data: Buffer.from('not audio') },
    ]);
    const out = path.join(dir, 'out');
    const report = await verifyTransferPackage(file, { privateKeyPem: privateKey, outDir: out });
    expect(report.ok).toBe(false);
    expect(report.problems).toContainEqual({ path: pack, problem: 'holds an entry "../../../escaped" that is not a recording' });
    expect(await readdir(dir)).toEqual(['out', 'package.tar']);
    expect(await readdir(path.join(out, 'clients'))).toHaveLength(1);
  });
});
