import { randomUUID } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { appFor, staffAuth } from './support/api';
import type { TestStack } from './support/stack';
import { useStack } from './support/fixture';
import { seedRecordings } from './support/recordings';
import { sweepBatch } from '../activities/recordings';
import fc from 'fast-check';
import { canonicalTail, chainHash, chainHashOfTail } from '../db/hash-chain';

let s: TestStack;
let app: ReturnType<typeof appFor>;
let officer: { authorization: string };

const fixture = useStack({}, { ownDatabase: true, roles: ['privacy_officer'], client: true });
beforeAll(async () => {
  ({ s, app, staff: { privacy_officer: officer } } = fixture);
  const clientId = fixture.clientId;
  const past = new Date(Date.now() - 100 * 86_400_000);
  await seedRecordings(s, { clientId, count: 30, recordedAt: past, retention: 'P3M' });
  // Three batches from two "runs", so the chain spans transactions.
  for (const runId of [randomUUID(), randomUUID()]) {
    await sweepBatch({ sql: s.sql, store: s.store }, { dueBefore: new Date(), batchSize: 10, ctx: { reason: 'retention', workflowId: 'retention-sweep-test', runId, disputeId: null } });
  }
  await sweepBatch({ sql: s.sql, store: s.store }, { dueBefore: new Date(), batchSize: 10, ctx: { reason: 'retention', workflowId: 'retention-sweep-test', runId: randomUUID(), disputeId: null } });
});

const verify = async () => (await (await app.request('/v1/deletion-receipts/verify', { headers: officer })).json()) as { valid: boolean; receipts: number; brokenAtSeq?: number };

/** Runs `tamper`, checks the verdict, then puts the chain back as it was. */
async function tampered(tamper: string, restore: string) {
  await s.sql.unsafe(tamper);
  try {
    return await verify();
  } finally {
    await s.sql.unsafe(restore);
  }
}

describe('the deletion receipt chain', () => {
  it('verifies when untouched', async () => {
    expect(await verify()).toMatchObject({ valid: true, receipts: 30 });
  });

  it('detects an edited deletion time', async () => {
    const verdict = await tampered(
      `update deletion_receipts set deleted_at = deleted_at - interval '1 day' where seq = 17`,
      `update deletion_receipts set deleted_at = deleted_at + interval '1 day' where seq = 17`,
    );
    expect(verdict).toMatchObject({ valid: false, brokenAtSeq: 17 });
  });

  it('detects a swapped audio hash', async () => {
    const verdict = await tampered(
      `update deletion_receipts set audio_sha256 = reverse(audio_sha256) where seq = 3`,
      `update deletion_receipts set audio_sha256 = reverse(audio_sha256) where seq = 3`,
    );
    expect(verdict).toMatchObject({ valid: false, brokenAtSeq: 3 });
  });

  it('detects a removed receipt', async () => {
    const [row] = await s.sql`select * from deletion_receipts where seq = 12`;
    await s.sql`delete from deletion_receipts where seq = 12`;
    try {
      expect(await verify()).toMatchObject({ valid: false, brokenAtSeq: 13 });
    } finally {
      await s.sql`insert into deletion_receipts ${s.sql(row!)}`;
    }
    expect((await verify()).valid).toBe(true);
  });

  it('is for privacy officers, not support', async () => {
    const support = await staffAuth(s.sql, 'support');
    expect((await app.request('/v1/deletion-receipts/verify', { headers: support })).status).toBe(403);
  });
});

describe('hashing from a prepared tail (appendPrepared)', () => {
  it('gives the hash the verification recomputes from the whole entry, for any fields', () => {
    fc.assert(
      fc.property(fc.stringMatching(/^[0-9a-f]{64}$/), fc.nat(), fc.array(fc.jsonValue()), (prev, seq, fields) => {
        expect(chainHashOfTail(prev, seq, canonicalTail(fields))).toBe(chainHash(prev, [seq, ...fields]));
      }),
    );
  });
});
