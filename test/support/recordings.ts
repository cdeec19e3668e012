import { expect } from 'vitest';
import { randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import { insertClient } from '../../db/clients';
import type { NewRecording } from '../../db/recordings';
import { addCalendarDuration } from '../../lib/durations';
import { audioKeyFor } from '../../lib/recording-store';
import type { TestStack } from './stack';

export async function newClient(s: TestStack, name = 'Testfirma ApS'): Promise<string> {
  return (await insertClient(s.sql, { name, restrictions: [] })).id;
}

export const fakeAudio = (seed: string, bytes = 2048) => Buffer.alloc(bytes, seed);

export function uploadForm(fields: Record<string, string>, audio?: { data: Buffer; type?: string; name?: string }): FormData {
  const form = new FormData();
  for (const [k, v] of Object.entries(fields)) form.append(k, v);
  if (audio) form.append(audio.name ?? 'audio', new Blob([new Uint8Array(audio.data)], { type: audio.type ?? 'audio/wav' }), 'call.wav');
  return form;
}

/** Uploads a recording of `clientId` recorded now through the API (201) with `fields` added. */
export async function uploadRecording(
  app: { request: (path: string, init?: RequestInit) => Response | Promise<Response> },
  staff: { authorization: string },
  clientId: string,
  fields: Record<string, string>,
  seed: string,
): Promise<{ id: string; deleteAfter: string }> {
  const res = await app.request('/v1/recordings', {
    method: 'POST',
    headers: staff,
    body: uploadForm({ clientId, recordedAt: new Date().toISOString(), durationSeconds: '20', ...fields }, { data: fakeAudio(seed) }),
  });
  expect(res.status, await res.clone().text()).toBe(201);
  return (await res.json()) as { id: string; deleteAfter: string };
}

/**
 * Puts recordings straight into the store and Postgres, as ingest would, for tests that need
 * many or back-dated ones (thousands of uploads through the API would only be slow).
 */
export async function seedRecordings(
  s: Pick<TestStack, 'sql' | 'store' | 'config'>,
  options: { clientId: string; count: number; recordedAt: Date; retention?: string },
): Promise<string[]> {
  const deleteAfter = addCalendarDuration(options.recordedAt, options.retention ?? s.config.RECORDING_RETENTION);
  const rows: NewRecording[] = Array.from({ length: options.count }, () => {
    const id = randomUUID();
    return {
      id,
      clientId: options.clientId,
      recordedAt: options.recordedAt,
      durationSeconds: 60,
      deleteAfter,
      audioKey: audioKeyFor(id),
      audioSha256: '',
      audioBytes: 0,
      contentType: 'audio/wav',
    };
  });
  let next = 0;
  await Promise.all(
    Array.from({ length: 16 }, async () => {
      while (next < rows.length) {
        const row = rows[next++]!;
        const staged = await s.store.stage(Readable.from([fakeAudio(row.id.slice(0, 1), 256)]));
        await staged.commit(row.audioKey);
        row.audioSha256 = staged.sha256;
        row.audioBytes = staged.bytes;
      }
    }),
  );
  for (let i = 0; i < rows.length; i += 2000) {
    await s.sql`insert into recordings ${s.sql(
      rows.slice(i, i + 2000).map((r) => ({
        id: r.id,
        client_id: r.clientId,
        recorded_at: r.recordedAt,
        duration_seconds: r.durationSeconds,
        delete_after: r.deleteAfter,
        audio_key: r.audioKey,
        audio_sha256: r.audioSha256,
        audio_bytes: r.audioBytes,
        content_type: r.contentType,
      })),
    )}`;
  }
  return rows.map((r) => r.id);
}
