import { randomUUID } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { appFor, json, staffAuth } from './support/api';
import type { TestStack } from './support/stack';
import { useStack } from './support/fixture';
import { seedRecordings } from './support/recordings';
import { createRecordingActivities, sweepBatch } from '../activities/recordings';
import { insertDispute } from '../db/disputes';

let s: TestStack;
let clientId: string;

const fixture = useStack({}, { ownDatabase: true, worker: true, client: true });
beforeAll(() => {
  ({ s, clientId } = fixture);
});

const overdue = () => new Date(Date.now() - 100 * 86_400_000);
const sweepContext = { reason: 'retention' as const, workflowId: 'race-test', runId: randomUUID(), disputeId: null };

/** A recording deleted while one of its holds was in force: the one thing that must never exist. */
async function deletedWhileHeld(): Promise<number> {
  const [row] = await s.sql<{ n: number }[]>`
    select count(*)::int as n from recordings r join recording_holds h on h.recording_id = r.id
    where r.status = 'deleted' and h.placed_at <= r.deleted_at and (h.released_at is null or h.released_at > r.deleted_at)`;
  return row!.n;
}

describe('a hold racing a sweep', () => {
  it('never loses at the database: 200 races of placing a hold against deleting the same overdue recording', async () => {
    const activities = createRecordingActivities({ sql: s.sql, store: s.store });
    const outcomes = { held: 0, deleted: 0 };
    for (let i = 0; i < 200; i++) {
      const [id] = await seedRecordings(s, { clientId, count: 1, recordedAt: overdue(), retention: 'P3M' });
      const disputeId = randomUUID();
      await insertDispute(s.sql, { id: disputeId, clientId, reason: 'race' });
      const [hold, swept] = await Promise.allSettled([
        activities.placeHolds({ disputeId, recordingIds: [id!] }),
        sweepBatch({ sql: s.sql, store: s.store }, { dueBefore: new Date(), batchSize: 10, ctx: sweepContext }),
      ]);
      expect(swept.status).toBe('fulfilled');
      const [row] = await s.sql<{ status: string }[]>`select status from recordings where id = ${id!}`;
      if (hold.status === 'fulfilled') {
        // The hold answered "in force": the recording must still be there.
        expect(row!.status).toBe('retained');
        outcomes.held++;
      } else {
        expect((hold.reason as { type?: string }).type).toBe('RecordingDeleted');
        expect(row!.status).toBe('deleted');
        outcomes.deleted++;
      }
    }
    expect(outcomes.held + outcomes.deleted).toBe(200);
    expect(await deletedWhileHeld()).toBe(0);
    console.info(`hold/sweep races: hold first ${outcomes.held}, sweep first ${outcomes.deleted}`);
  });

  it('never loses through the API and the dispute workflow: 25 races of POST /v1/disputes against a sweep', async () => {
    const app = appFor(s);
    const staff = await staffAuth(s.sql, 'support');
    for (let i = 0; i < 25; i++) {
      const [id] = await seedRecordings(s, { clientId, count: 1, recordedAt: overdue(), retention: 'P3M' });
      const [res] = await Promise.all([
        app.request('/v1/disputes', json({ clientId, recordingIds: [id], reason: 'race' }, staff)),
        sweepBatch({ sql: s.sql, store: s.store }, { dueBefore: new Date(), batchSize: 10, ctx: sweepContext }),
      ]);
      const [row] = await s.sql<{ status: string }[]>`select status from recordings where id = ${id!}`;
      if (res.status === 201) expect(row!.status).toBe('retained');
      else {
        expect([409, 422]).toContain(res.status);
        expect(row!.status).toBe('deleted');
      }
      // A later sweep never takes a recording whose hold answered 201.
      await sweepBatch({ sql: s.sql, store: s.store }, { dueBefore: new Date(), batchSize: 10, ctx: sweepContext });
      if (res.status === 201) expect((await s.sql`select status from recordings where id = ${id!}`)[0]!.status).toBe('retained');
    }
    expect(await deletedWhileHeld()).toBe(0);
  });
});
