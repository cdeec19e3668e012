import { once } from 'node:events';
import { mkdir, readdir, stat, utimes, writeFile } from 'node:fs/promises';
import net, { type AddressInfo } from 'node:net';
import path from 'node:path';
import { serve, type ServerType } from '@hono/node-server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../api/app';
import { appFor, staffAuth } from './support/api';
import { openStack, silentLog, type TestStack } from './support/stack';
import { newClient } from './support/recordings';
import { waitFor } from './support/wait';

/**
 * Hostile uploads over a real socket (issue 11): bodies cut off in every part, extra file parts,
 * clients that disconnect mid-stream. The API must answer 4xx or drop the connection, keep
 * serving, and leave nothing in the staging area. An error event nobody listens to would end
 * this test process (vitest reports it), as it used to end the API.
 */
let s: TestStack;
let server: ServerType;
let port: number;
let token: string;
let clientId: string;

beforeAll(async () => {
  s = await openStack({}, { ownDatabase: true });
  token = (await staffAuth(s.sql, 'support')).token;
  clientId = await newClient(s);
  const app = createApp({ config: s.config, sql: s.sql, temporal: s.client, store: s.store, log: silentLog, payloadCodec: s.payloadCodec });
  server = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' });
  await once(server, 'listening');
  port = (server.address() as AddressInfo).port;
});
afterAll(async () => {
  await new Promise((resolve) => server.close(resolve));
  await s.close();
});

const BOUNDARY = 'hostile-boundary-7f3a';
const field = (name: string, value: string) => `--${BOUNDARY}\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n${value}\r\n`;
const filePart = (name: string, data: string) =>
  `--${BOUNDARY}\r\nContent-Disposition: form-data; name="${name}"; filename="call.wav"\r\nContent-Type: audio/wav\r\n\r\n${data}\r\n`;
const closing = `--${BOUNDARY}--\r\n`;
const audio = 'A'.repeat(200_000);

/** A complete, valid body; the cases below cut it or add to it. */
const validBody = () =>
  field('clientId', clientId) + field('recordedAt', '2026-11-01T10:00:00Z') + field('durationSeconds', '5') + filePart('audio', audio) + closing;

const stagingDir = () => path.join(s.config.DATA_DIR, 'recordings', '.staging');
const staged = async () => (await readdir(stagingDir()).catch(() => [])).length;
const rows = async () => (await s.sql`select count(*)::int as n from recordings`)[0]!.n as number;

/** Sends `body` with chunked encoding (so the server reads it all, then finds the form broken), returns the status line. */
async function sendChunked(body: string): Promise<{ status: number; contentType: string }> {
  const socket = net.connect(port, '127.0.0.1');
  await once(socket, 'connect');
  let response = '';
  socket.setEncoding('latin1');
  socket.on('data', (d: string) => (response += d));
  socket.write(
    `POST /v1/recordings HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${token}\r\n` +
      `Content-Type: multipart/form-data; boundary=${BOUNDARY}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n`,
  );
  const bytes = Buffer.from(body, 'latin1');
  for (let at = 0; at < bytes.length; at += 16_384) {
    const chunk = bytes.subarray(at, at + 16_384);
    socket.write(`${chunk.length.toString(16)}\r\n`);
    socket.write(chunk);
    socket.write('\r\n');
  }
  socket.write('0\r\n\r\n');
  await once(socket, 'close');
  const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(response)?.[1] ?? 0);
  const contentType = /\r\ncontent-type: ([^\r]+)/i.exec(response)?.[1] ?? '';
  return { status, contentType };
}

/** Sends the headers and part of the body, then tears the connection down. */
async function abortAfter(body: string, claimedLength: number): Promise<void> {
  const socket = net.connect(port, '127.0.0.1');
  await once(socket, 'connect');
  socket.on('error', () => {});
  socket.write(
    `POST /v1/recordings HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${token}\r\n` +
      `Content-Type: multipart/form-data; boundary=${BOUNDARY}\r\nContent-Length: ${claimedLength}\r\n\r\n`,
  );
  socket.write(Buffer.from(body, 'latin1'));
  // Let the server start streaming the audio into staging before the client vanishes.
  if (body.includes('name="audio"; filename=')) await waitFor(async () => (await staged()) > 0, { what: 'the upload to reach staging', timeoutMs: 5_000 }).catch(() => undefined);
  socket.destroy();
}

async function stillServing() {
  const res = await fetch(`http://127.0.0.1:${port}/healthz`);
  expect(res.status).toBe(200);
}

describe('bodies cut off in each part are refused with 4xx and leave nothing behind', () => {
  const full = () => validBody();
  const cuts: Array<[string, () => string]> = [
    ['inside a plain field', () => full().slice(0, full().indexOf('recordedAt') + 30)],
    ['inside the audio part’s headers', () => full().slice(0, full().indexOf('filename=') + 5)],
    ['in the middle of the audio', () => full().slice(0, full().indexOf(audio) + audio.length / 2)],
    ['just before the closing boundary', () => full().slice(0, full().length - closing.length)],
    ['inside an extra file part after the audio', () => full().replace(closing, '') + filePart('video', 'V'.repeat(100_000)).slice(0, 50_000)],
    ['inside an extra file part before the audio', () => field('clientId', clientId) + filePart('video', 'V'.repeat(100_000)).slice(0, 60_000)],
    ['inside a second audio part', () => full().replace(closing, '') + filePart('audio', 'B'.repeat(100_000)).slice(0, 50_000)],
  ];

  for (const [where, body] of cuts) {
    it(`cut ${where}`, async () => {
      const before = await rows();
      const { status, contentType } = await sendChunked(body());
      expect(status).toBeGreaterThanOrEqual(400);
      expect(status).toBeLessThan(500);
      expect(contentType).toBe('application/problem+json');
      expect(await rows()).toBe(before);
      await waitFor(async () => (await staged()) === 0, { what: 'the staging area to be empty' });
      await stillServing();
    });
  }

  it('a valid body over the same socket path is stored (the harness itself is sound)', async () => {
    const { status } = await sendChunked(validBody());
    expect(status).toBe(201);
    expect(await staged()).toBe(0);
  });

  it('extra file parts in a complete body are named in a 422, and nothing is stored', async () => {
    const before = await rows();
    const body = validBody().replace(closing, '') + filePart('video', 'V'.repeat(10_000)) + filePart('audio', 'B'.repeat(10_000)) + closing;
    const { status } = await sendChunked(body);
    expect(status).toBe(422);
    expect(await rows()).toBe(before);
    await waitFor(async () => (await staged()) === 0, { what: 'the staging area to be empty' });
  });
});

describe('clients that disconnect mid-upload', () => {
  const cases: Array<[string, (b: string) => string]> = [
    ['in the middle of the audio', (b) => b.slice(0, b.indexOf(audio) + 120_000)],
    ['in a plain field', (b) => b.slice(0, b.indexOf('durationSeconds'))],
    ['in an extra file part', (b) => field('clientId', clientId) + filePart('video', 'V'.repeat(100_000)).slice(0, 80_000)],
  ];
  for (const [where, cut] of cases) {
    it(`disconnecting ${where} leaves no partial file and the API keeps serving`, async () => {
      const body = validBody();
      const before = await rows();
      await abortAfter(cut(body), Buffer.byteLength(body, 'latin1'));
      await waitFor(async () => (await staged()) === 0, { what: 'the partial upload to be removed from staging' });
      expect(await rows()).toBe(before);
      await stillServing();
    });
  }

  it('twenty aborted uploads at once leave the API serving and staging empty', async () => {
    const body = validBody();
    await Promise.all(Array.from({ length: 20 }, () => abortAfter(body.slice(0, body.indexOf(audio) + 100_000), Buffer.byteLength(body, 'latin1'))));
    await waitFor(async () => (await staged()) === 0, { what: 'every partial upload to be removed' });
    await stillServing();
  });
});

describe('the staging sweep', () => {
  it('removes files left by a process that died, and keeps one still being written', async () => {
    await mkdir(stagingDir(), { recursive: true });
    const abandoned = path.join(stagingDir(), 'abandoned-by-a-crash');
    const fresh = path.join(stagingDir(), 'still-streaming');
    await writeFile(abandoned, 'partial');
    await writeFile(fresh, 'partial');
    const hourAgo = new Date(Date.now() - 3_600_000);
    await utimes(abandoned, hourAgo, hourAgo);
    expect(await s.store.sweepStaging(15 * 60_000)).toBe(1);
    await expect(stat(abandoned)).rejects.toThrow();
    expect((await stat(fresh)).isFile()).toBe(true);
    expect(await s.store.sweepStaging(0)).toBe(1);
    expect(await staged()).toBe(0);
  });
});

describe('in-process requests (app.request) get the same answers', () => {
  it('a truncated multipart body through the fetch API is a 422 problem', async () => {
    const app = appFor(s);
    const res = await app.request('/v1/recordings', {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': `multipart/form-data; boundary=${BOUNDARY}` },
      body: validBody().slice(0, 1000),
    });
    expect(res.status).toBe(422);
    expect(res.headers.get('content-type')).toBe('application/problem+json');
  });
});
