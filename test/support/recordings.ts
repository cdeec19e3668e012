import { randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import { insertClient } from '../../db/clients';
import { insertRecording } from '../../db/recordings';
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

/**
 * Puts recordings straight into the store and Postgres, as ingest would, for tests that need
 * many or back-dated ones (the API refuses nothing back-dated, but thousands of uploads are slow).
 */
export async function seedRecordings(
  s: TestStack,
  options: { clientId: string; count: number; recordedAt: Date; retention?: string },
): Promise<string[]> {
  const ids: string[] = [];
  const deleteAfter = addCalendarDuration(options.recordedAt, options.retention ?? s.config.RECORDING_RETENTION);
  for (let i = 0; i < options.count; i++) {
    const id = randomUUID();
    const staged = await s.store.stage(Readable.from([fakeAudio(id.slice(0, 1), 256)]));
    await staged.commit(audioKeyFor(id));
    await insertRecording(s.sql, {
      id,
      clientId: options.clientId,
      recordedAt: options.recordedAt,
      durationSeconds: 60,
      deleteAfter,
      audioKey: audioKeyFor(id),
      audioSha256: staged.sha256,
      audioBytes: staged.bytes,
      contentType: 'audio/wav',
    });
    ids.push(id);
  }
  return ids;
}
