import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MockActivityEnvironment } from '@temporalio/testing';
import { ApplicationFailure } from '@temporalio/common';
import { openStack, type TestStack } from './support/stack';
import { newClient } from './support/recordings';
import { seedCustomers } from './support/customers';
import { countPerAddress } from './support/mailbox';
import { CAMPAIGN_LOCK, createPolicyActivities, type NoticeBatchResult } from '../activities/policies';
import { createSql } from '../db/index';
import { createMailer, type Mailer } from '../lib/mailer';
import { insertPolicy, noticeCampaign, noticeProgress } from '../db/policies';

// An attempt Temporal has given up on (its heartbeats stopped arriving) can still be alive and
// sending. The campaign's advisory lock keeps a second attempt out until the first one is gone.

let s: TestStack;
let clientId: string;
let mailer: Mailer;

beforeAll(async () => {
  s = await openStack({}, { ownDatabase: true });
  clientId = await newClient(s);
  mailer = createMailer(s.config.SMTP_URL!, { pool: true, maxConnections: 4 }); // as the worker sends
});
afterAll(async () => {
  mailer.close();
  await s.close();
});

const FIRST = '00000000-0000-0000-0000-000000000000';

async function campaign(persons: number) {
  const people = await seedCustomers(s.sql, { clientId, count: persons, tag: `fence${randomUUID().slice(0, 4)}` });
  const version = `fence-${randomUUID().slice(0, 8)}`;
  await insertPolicy(s.sql, { version, effectiveAt: new Date(Date.now() + 86_400_000), material: true, summary: 'Fence test', body: 'Text' });
  const activities = createPolicyActivities({ sql: s.sql, mailer, config: s.config });
  const slice = () => new MockActivityEnvironment().run(activities.sendPolicyNotices, { version, cursor: FIRST, batchSize: 25, concurrency: 4, timeBudgetMs: 60_000 }) as Promise<NoticeBatchResult>;
  /** SMTP deliveries of this version's notice per address (every delivery, not the mailbox view). */
  const deliveries = () => countPerAddress(`(${version})`, { raw: true });
  return { people, version, slice, deliveries };
}

const busy = (err: unknown) => err instanceof ApplicationFailure && err.type === 'CampaignBusy' && !err.nonRetryable;
const smtpRefused = (err: unknown) => err instanceof ApplicationFailure && err.type === 'SmtpTemporaryFailure';
const registered = async () => (await s.sql<{ n: number }[]>`select count(*)::int as n from customers where status = 'active' and email is not null`)[0]!.n;

describe('one sender per campaign', () => {
  it('refuses a second attempt while the first is still sending, so nobody is sent a notice twice', async () => {
    const c = await campaign(400);
    const everyone = await registered();
    // Each runner retries what Temporal would retry after an SMTP refusal (another test file may
    // have the shared sink refuse a message) and stops at a refusal to share the campaign.
    const run = async () => {
      for (;;) {
        try {
          return { done: (await c.slice()).done, busy: false };
        } catch (err) {
          if (busy(err)) return { done: false, busy: true };
          if (!smtpRefused(err)) throw err;
          await new Promise((r) => setTimeout(r, 100));
        }
      }
    };
    const outcomes = await Promise.all([run(), run()]);
    expect(outcomes.filter((o) => o.busy).length).toBeGreaterThanOrEqual(1);
    expect(await noticeProgress(s.sql, c.version)).toMatchObject({ total: everyone, sent: everyone, failed: 0, pending: 0 });

    const deliveries = await c.deliveries();
    expect(deliveries.size).toBe(everyone);
    for (const p of c.people) expect(deliveries.get(p.email), p.email).toBe(1);
  });

  it('waits for a holder that is still alive and carries on once its connection is gone', async () => {
    const c = await campaign(60);
    // Another process holding the campaign's lock: a zombie attempt.
    const zombie = createSql(s.config.DATABASE_URL, { max: 1 });
    await zombie`select pg_advisory_lock(${CAMPAIGN_LOCK}, hashtext(${noticeCampaign(c.version)}))`;

    const refused = await c.slice().catch((err: unknown) => err);
    expect(busy(refused)).toBe(true);
    expect(await noticeProgress(s.sql, c.version)).toMatchObject({ sent: 0 });
    expect((await c.deliveries()).size).toBe(0);

    // The holder dies: Postgres ends its session and the lock with it.
    await zombie.end();
    let result = await c.slice().catch((err: unknown) => err);
    while (smtpRefused(result)) result = await c.slice().catch((err: unknown) => err);
    expect(result).toMatchObject({ done: true });
    const deliveries = await c.deliveries();
    expect(deliveries.size).toBe(await registered());
    for (const p of c.people) expect(deliveries.get(p.email), p.email).toBe(1);
  });
});
