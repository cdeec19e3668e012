import { createHash } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { appFor } from './support/api';
import type { TestStack } from './support/stack';
import { useStack } from './support/fixture';
import { fakeAudio, newClient, uploadForm } from './support/recordings';

let s: TestStack;
let app: ReturnType<typeof appFor>;
let staff: { authorization: string };
let clientId: string;

const MAX_BYTES = 64 * 1024;

const fixture = useStack({ RECORDING_MAX_BYTES: String(MAX_BYTES) }, { ownDatabase: true, roles: ['support'], client: true });
beforeAll(() => {
  ({ s, app, clientId, staff: { support: staff } } = fixture);
});

const upload = (form: FormData, headers: Record<string, string> = staff) => app.request('/v1/recordings', { method: 'POST', headers, body: form });

/** Audio files in the store, staging area included: "nothing stored" means none appear. */
async function storedFiles(): Promise<string[]> {
  const root = path.join(s.config.DATA_DIR, 'recordings');
  const files = await readdir(root, { recursive: true, withFileTypes: true }).catch(() => []);
  return files.filter((f) => f.isFile()).map((f) => path.join(f.parentPath, f.name));
}
const rowCount = async () => (await s.sql`select count(*)::int as n from recordings`)[0]!.n as number;
const callsCounted = async () => (await s.sql`select coalesce(sum(calls), 0)::int as n from call_stats`)[0]!.n as number;

describe('ingesting a call recording (D4)', () => {
  it('stores the audio with its SHA-256 and a deadline three calendar months on', async () => {
    const audio = fakeAudio('a', 5000);
    const res = await upload(uploadForm({ clientId, recordedAt: '2026-01-31T11:00:00Z', durationSeconds: '125', callerNumber: '+45 48 22 10 00' }, { data: audio }));
    expect(res.status).toBe(201);
    const body = (await res.json()) as { id: string; deleteAfter: string; sha256: string };
    expect(body.sha256).toBe(createHash('sha256').update(audio).digest('hex'));
    // 31 January + P3M is 30 April (Copenhagen wall clock kept across summer time), never 1 May.
    expect(body.deleteAfter).toBe('2026-04-30T10:00:00.000Z');

    const view = (await (await app.request(`/v1/recordings/${body.id}`, { headers: staff })).json()) as Record<string, unknown>;
    expect(view).toMatchObject({ id: body.id, clientId, status: 'retained', recordedAt: '2026-01-31T11:00:00.000Z', deleteAfter: body.deleteAfter, holds: [] });
    expect(view).not.toHaveProperty('callerNumber'); // personal data stays out of the answer
    // One caller is one string everywhere (E.164), and the call counts for its Copenhagen day (D3).
    const [stored] = await s.sql`select caller_number from recordings where id = ${body.id}`;
    expect(stored).toEqual({ caller_number: '+4548221000' });
    expect(await s.sql`select day::text, calls from call_stats where client_id = ${clientId} and day = '2026-01-31'`).toEqual([{ day: '2026-01-31', calls: 1 }]);

    const download = await app.request(`/v1/recordings/${body.id}/audio`, { headers: staff });
    expect(download.status).toBe(200);
    expect(Buffer.from(await download.arrayBuffer()).equals(audio)).toBe(true);
  });

  it('computes the deadline from the configured retention in Copenhagen calendar terms', async () => {
    const res = await upload(uploadForm({ clientId, recordedAt: '2025-11-30T12:00:00+01:00', durationSeconds: '1' }, { data: fakeAudio('b') }));
    expect(((await res.json()) as { deleteAfter: string }).deleteAfter).toBe('2026-02-28T11:00:00.000Z');
  });
});

describe('bad uploads are refused and nothing is stored', () => {
  const refusals: Array<[string, () => FormData, number, string[]]> = [
    ['an unknown client', () => uploadForm({ clientId: '00000000-0000-4000-8000-000000000000', recordedAt: '2026-11-01T10:00:00Z', durationSeconds: '5' }, { data: fakeAudio('c') }), 422, ['clientId']],
    ['missing audio', () => uploadForm({ clientId, recordedAt: '2026-11-01T10:00:00Z', durationSeconds: '5' }), 422, ['audio']],
    ['empty audio', () => uploadForm({ clientId, recordedAt: '2026-11-01T10:00:00Z', durationSeconds: '5' }, { data: Buffer.alloc(0) }), 422, ['audio']],
    ['audio that is not audio', () => uploadForm({ clientId, recordedAt: '2026-11-01T10:00:00Z', durationSeconds: '5' }, { data: fakeAudio('d'), type: 'text/html' }), 422, ['audio']],
    ['a recordedAt in the future', () => uploadForm({ clientId, recordedAt: new Date(Date.now() + 3_600_000).toISOString(), durationSeconds: '5' }, { data: fakeAudio('e') }), 422, ['recordedAt']],
    ['a recordedAt that is no timestamp', () => uploadForm({ clientId, recordedAt: 'yesterday', durationSeconds: '5' }, { data: fakeAudio('f') }), 422, ['recordedAt']],
    ['a duration of the wrong type', () => uploadForm({ clientId, recordedAt: '2026-11-01T10:00:00Z', durationSeconds: 'long' }, { data: fakeAudio('g') }), 422, ['durationSeconds']],
    ['a callerNumber that is no phone number', () => uploadForm({ clientId, recordedAt: '2026-11-01T10:00:00Z', durationSeconds: '5', callerNumber: 'ring mig op' }, { data: fakeAudio('n') }), 422, ['callerNumber']],
    ['an unknown field', () => uploadForm({ clientId, recordedAt: '2026-11-01T10:00:00Z', durationSeconds: '5', transcript: 'hello' }, { data: fakeAudio('h') }), 422, ['transcript']],
    ['a second file', () => { const f = uploadForm({ clientId, recordedAt: '2026-11-01T10:00:00Z', durationSeconds: '5' }, { data: fakeAudio('i') }); f.append('video', new Blob(['x']), 'v.mp4'); return f; }, 422, ['video']],
    ['audio over RECORDING_MAX_BYTES', () => uploadForm({ clientId, recordedAt: '2026-11-01T10:00:00Z', durationSeconds: '5' }, { data: fakeAudio('j', MAX_BYTES + 1) }), 413, []],
  ];

  for (const [what, form, status, fields] of refusals) {
    it(`refuses ${what} with ${status}`, async () => {
      const [rowsBefore, filesBefore, callsBefore] = [await rowCount(), await storedFiles(), await callsCounted()];
      const res = await upload(form());
      expect(res.status).toBe(status);
      expect(res.headers.get('content-type')).toBe('application/problem+json');
      const body = (await res.json()) as { errors?: { field: string }[] };
      if (fields.length) expect(body.errors?.map((e) => e.field)).toEqual(expect.arrayContaining(fields));
      expect(await rowCount()).toBe(rowsBefore);
      expect(await storedFiles()).toEqual(filesBefore);
      expect(await callsCounted()).toBe(callsBefore); // a refused call is not counted either
    });
  }

  it('refuses a body that is not multipart with 415', async () => {
    const res = await app.request('/v1/recordings', { method: 'POST', headers: { ...staff, 'content-type': 'application/json' }, body: JSON.stringify({ clientId }) });
    expect(res.status).toBe(415);
  });

  it('refuses an upload without a staff token before reading it', async () => {
    const before = await rowCount();
    const res = await upload(uploadForm({ clientId, recordedAt: '2026-11-01T10:00:00Z', durationSeconds: '5' }, { data: fakeAudio('k') }), {});
    expect(res.status).toBe(401);
    expect(await rowCount()).toBe(before);
  });
});

describe('reading recordings', () => {
  it('lists a client’s recordings by status, newest first, page by page', async () => {
    const other = await newClient(s, 'Anden klient');
    for (const day of ['01', '02', '03']) {
      expect((await upload(uploadForm({ clientId: other, recordedAt: `2026-10-${day}T09:00:00Z`, durationSeconds: '30' }, { data: fakeAudio(day) }))).status).toBe(201);
    }
    const first = (await (await app.request(`/v1/recordings?clientId=${other}&status=retained&limit=2`, { headers: staff })).json()) as { items: { recordedAt: string; clientId: string }[]; nextCursor: string };
    expect(first.items.map((r) => r.recordedAt)).toEqual(['2026-10-03T09:00:00.000Z', '2026-10-02T09:00:00.000Z']);
    const second = (await (await app.request(`/v1/recordings?clientId=${other}&status=retained&limit=2&cursor=${first.nextCursor}`, { headers: staff })).json()) as { items: { recordedAt: string }[]; nextCursor: string | null };
    expect(second.items.map((r) => r.recordedAt)).toEqual(['2026-10-01T09:00:00.000Z']);
    expect(second.nextCursor).toBeNull();
    const held = (await (await app.request(`/v1/recordings?clientId=${other}&status=held`, { headers: staff })).json()) as { items: unknown[] };
    expect(held.items).toEqual([]);
  });

  it('answers 404 for an unknown recording and 422 for a malformed id', async () => {
    expect((await app.request('/v1/recordings/00000000-0000-4000-8000-000000000000', { headers: staff })).status).toBe(404);
    expect((await app.request('/v1/recordings/nope', { headers: staff })).status).toBe(422);
  });
});
