import { constants, createHash, createPrivateKey, createPublicKey, privateDecrypt, type KeyObject } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, open, rm } from 'node:fs/promises';
import { once } from 'node:events';
import path from 'node:path';
import { type Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { extract } from 'tar-stream';
import {
  decryptingStream,
  isAudioPack,
  isRecordingEntryName,
  KEY_ENTRY,
  MANIFEST_ENTRY,
  PACKAGE_FORMAT,
  publicKeyFingerprint,
  sha256Hex,
  SIGNATURE_ENTRY,
  signatureValid,
  SIGNER_ENTRY,
  type KeyEntry,
  type ManifestFile,
  type SignatureEntry,
} from './transfer-package';

export interface VerifyOptions {
  /** The acquirer's RSA private key (PEM): with it every file is decrypted and its tag checked. */
  privateKeyPem?: string;
  /** The signer fingerprint TopCall gave out of band (the email, GET /v1/transfers/signing-key): checked when given. */
  signerKeySha256?: string;
  /** Writes the decrypted files here (needs the private key); a file or audio pack that does not authenticate leaves nothing here. */
  outDir?: string;
}

export interface VerifyReport {
  ok: boolean;
  /** Each problem names the file it is about. */
  problems: { path: string; problem: string }[];
  transferId?: string;
  manifestSha256?: string;
  signerKeySha256?: string;
  /** Files listed in the manifest. */
  files: number;
  /** Files decrypted and authenticated (with the private key). */
  decrypted: number;
  /** Recordings whose audio was decrypted and authenticated: one per entry of an audio pack, one per long recording's file. */
  audio: number;
  manifest?: Record<string, unknown>;
}

/** Waits until `stream` takes more or is closed (failed), leaving no listener behind. */
async function drainedOrClosed(stream: Writable) {
  const done = new AbortController();
  try {
    await Promise.race([once(stream, 'drain', { signal: done.signal }), once(stream, 'close', { signal: done.signal })]);
  } finally {
    done.abort();
  }
}

const SMALL_ENTRIES = new Set([KEY_ENTRY, SIGNER_ENTRY, MANIFEST_ENTRY, SIGNATURE_ENTRY]);

/**
 * Reads the decrypted tar of an audio pack, writing each recording to `dir` (when given) and
 * returning how many it held. Fails — for the pack's name — when the pack does not
 * authenticate, is not a tar, or holds an entry that is not a recording id (no path leaves `dir`).
 */
async function unpackAudio(plain: Readable, dir: string | undefined): Promise<number> {
  const inner = extract();
  const feeding = pipeline(plain, inner);
  feeding.catch(() => undefined); // awaited below; an error also ends the loop
  const written: string[] = [];
  let recordings = 0;
  try {
    // No await before the loop: tar-stream waits for ever on an entry emitted before anyone iterates.
    for await (const entry of inner) {
      const name = entry.header.name;
      if (entry.header.type !== 'file' || !isRecordingEntryName(name)) throw new Error(`holds an entry ${JSON.stringify(name)} that is not a recording`);
      if (dir && !recordings) await mkdir(dir, { recursive: true });
      const target = dir ? path.join(dir, name) : undefined;
      const fh = target ? await open(target, 'w', 0o600) : undefined;
      if (target) written.push(target);
      try {
        for await (const chunk of entry as AsyncIterable<Buffer>) if (fh) await fh.write(chunk);
      } finally {
        await fh?.close();
      }
      recordings += 1;
    }
    await feeding;
  } catch (err) {
    // The tag is checked at the pack's end: what it held is unauthenticated, so none of it stays.
    await Promise.all(written.map((f) => rm(f, { force: true })));
    throw err;
  }
  return recordings;
}

/**
 * What the acquirer runs on the package (`npm run verify-transfer`): reads the tar once, as a
 * stream, checking that every file is in the manifest with the same size and SHA-256, that
 * TopCall's signature covers the manifest, and — with the private key — that every file
 * decrypts and authenticates. Never throws for a bad package: it reports what is wrong, by name.
 */
export async function verifyTransferPackage(file: string, options: VerifyOptions = {}): Promise<VerifyReport> {
  const problems: VerifyReport['problems'] = [];
  const seen = new Map<string, { bytes: number; sha256: string }>();
  const small = new Map<string, Buffer>();
  let privateKey: KeyObject | undefined;
  let dataKey: Buffer | undefined;
  let decrypted = 0;
  let audio = 0;
  if (options.privateKeyPem) {
    try {
      privateKey = createPrivateKey(options.privateKeyPem);
    } catch {
      problems.push({ path: '--key', problem: 'is not a PEM private key' });
    }
  }

  const unwrap = (raw: Buffer) => {
    if (!privateKey) return;
    try {
      const entry = JSON.parse(raw.toString('utf8')) as KeyEntry;
      if (entry.recipientKeySha256 !== publicKeyFingerprint(createPublicKey(privateKey))) {
        problems.push({ path: KEY_ENTRY, problem: 'the data key was wrapped for another RSA key than the one given' });
        return;
      }
      dataKey = privateDecrypt({ key: privateKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' }, Buffer.from(entry.wrappedKey, 'base64'));
    } catch {
      problems.push({ path: KEY_ENTRY, problem: 'the data key does not unwrap with the given private key' });
    }
  };

  const tar = extract();
  let tarError: Error | undefined;
  const reading = pipeline(createReadStream(file), tar).catch((err: Error) => {
    tarError = err;
  });
  try {
    for await (const entry of tar) {
      const name = entry.header.name;
      if (seen.has(name)) problems.push({ path: name, problem: 'appears more than once' });
      const hash = createHash('sha256');
      let bytes = 0;
      const chunks: Buffer[] = [];
      const keepWhole = SMALL_ENTRIES.has(name);
      const decrypt = dataKey && name.endsWith('.enc');
      if (decrypt && options.outDir) {
        const target = path.resolve(options.outDir, name.replace(/\.enc$/, ''));
        if (!target.startsWith(path.resolve(options.outDir) + path.sep)) problems.push({ path: name, problem: 'path leaves the output folder: not written' });
      }
      let plain: ReturnType<typeof decryptingStream> | undefined;
      let done: Promise<unknown> = Promise.resolve();
      if (decrypt) {
        plain = decryptingStream(dataKey!);
        const target = options.outDir ? path.resolve(options.outDir, name.replace(/\.enc$/, '')) : undefined;
        const writable = target && target.startsWith(path.resolve(options.outDir!) + path.sep);
        let opened: Promise<number>;
        if (isAudioPack(name)) {
          // A pack of recordings: its tar is unpacked next to it, one file per recording.
          opened = unpackAudio(plain, writable ? path.dirname(target) : undefined);
        } else {
          if (writable) await mkdir(path.dirname(target), { recursive: true });
          const sink = writable ? createWriteStream(target, { mode: 0o600 }) : new Writable({ write: (_c, _e, cb) => cb() });
          opened = pipeline(plain, sink).then(
            () => (/\/audio\//.test(name) ? 1 : 0),
            async (err: unknown) => {
              // Written before the tag at its end was checked: an unauthenticated file does not stay.
              if (writable) await rm(target, { force: true });
              throw err;
            },
          );
        }
        done = opened.then(
          (recordings) => {
            decrypted += 1;
            audio += recordings;
          },
          (err: Error) => problems.push({ path: name, problem: err.message }),
        );
      }
      for await (const chunk of entry as AsyncIterable<Buffer>) {
        hash.update(chunk);
        bytes += chunk.length;
        if (keepWhole) chunks.push(chunk);
        if (plain && !plain.destroyed && !plain.write(chunk)) await drainedOrClosed(plain);
      }
      plain?.end();
      await done;
      seen.set(name, { bytes, sha256: hash.digest('hex') });
      if (keepWhole) small.set(name, Buffer.concat(chunks));
      if (name === KEY_ENTRY) unwrap(small.get(name)!);
    }
  } catch (err) {
    tarError ??= err as Error;
  }
  await reading;
  if (tarError) problems.push({ path: path.basename(file), problem: `not a readable tar archive after ${[...seen.keys()].at(-1) ?? 'its start'}: ${tarError.message}` });

  const report: VerifyReport = { ok: false, problems, files: 0, decrypted, audio };
  const manifestRaw = small.get(MANIFEST_ENTRY);
  if (!manifestRaw) {
    problems.push({ path: MANIFEST_ENTRY, problem: 'missing' });
    return report;
  }
  report.manifestSha256 = sha256Hex(manifestRaw);
  let manifest: { format?: string; transferId?: string; files?: ManifestFile[] } | undefined;
  try {
    manifest = JSON.parse(manifestRaw.toString('utf8')) as typeof manifest;
  } catch {
    problems.push({ path: MANIFEST_ENTRY, problem: 'is not valid JSON (altered?)' });
  }

  // The signature: TopCall's key, over the manifest's SHA-256.
  const signerRaw = small.get(SIGNER_ENTRY);
  const sigRaw = small.get(SIGNATURE_ENTRY);
  if (!signerRaw || !sigRaw) {
    problems.push({ path: signerRaw ? SIGNATURE_ENTRY : SIGNER_ENTRY, problem: 'missing' });
  } else {
    try {
      const signer = createPublicKey(signerRaw.toString('utf8'));
      report.signerKeySha256 = publicKeyFingerprint(signer);
      if (options.signerKeySha256 && options.signerKeySha256.toLowerCase() !== report.signerKeySha256) {
        problems.push({ path: SIGNER_ENTRY, problem: `is not the key TopCall gave you (fingerprint ${report.signerKeySha256})` });
      }
      if (!signatureValid(JSON.parse(sigRaw.toString('utf8')) as SignatureEntry, report.manifestSha256, signer)) {
        problems.push({ path: MANIFEST_ENTRY, problem: 'TopCall’s signature does not match it (the manifest or its signature was altered)' });
      }
    } catch {
      problems.push({ path: SIGNATURE_ENTRY, problem: 'the signature or signer key cannot be read' });
    }
  }

  if (manifest) {
    report.manifest = manifest as Record<string, unknown>;
    report.transferId = manifest.transferId;
    if (manifest.format !== PACKAGE_FORMAT) problems.push({ path: MANIFEST_ENTRY, problem: `format ${String(manifest.format)}, expected ${PACKAGE_FORMAT}` });
    const listed = new Set<string>();
    for (const f of manifest.files ?? []) {
      listed.add(f.path);
      const got = seen.get(f.path);
      if (!got) problems.push({ path: f.path, problem: 'listed in the manifest but not in the package' });
      else if (got.bytes !== f.bytes || got.sha256 !== f.sha256) problems.push({ path: f.path, problem: `SHA-256 ${got.sha256} (${got.bytes} bytes) is not the manifest’s ${f.sha256} (${f.bytes} bytes): altered or damaged` });
    }
    report.files = listed.size;
    for (const name of seen.keys()) {
      if (!listed.has(name) && name !== MANIFEST_ENTRY && name !== SIGNATURE_ENTRY) problems.push({ path: name, problem: 'in the package but not in the manifest' });
    }
  }
  report.decrypted = decrypted;
  report.audio = audio;
  report.ok = problems.length === 0;
  return report;
}
