import { randomUUID } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { appFor, json, staffAuth } from './support/api';
import type { TestStack } from './support/stack';
import { useStack } from './support/fixture';
import { seedCustomers } from './support/customers';
import { queryMessages, refuseNextMessages, rejectRecipients } from './support/mailbox';
import { waitFor } from './support/wait';
import { messageIdFor } from '../activities/email';
import { policyWorkflowId } from '../workflows/ids';
import { PolicyVersion } from '../workflows/search-attributes';
import type { SinkMessage } from '../scripts/mail-sink';

let s: TestStack;
let app: ReturnType<typeof appFor>;
let officer: { authorization: string };
let clientId: string;
const people: { id: string; email: string; locale: 'da' | 'en' }[] = [];
/** This file's people have addresses of their own domain: the outage it injects in the shared sink hits only them. */
const DOMAIN = `policy-${randomUUID().slice(0, 8)}.test`;

const fixture = useStack(
  { POLICY_NOTICE_PERIOD: 'PT4S', POLICY_CATCHUP_INTERVAL: 'PT1S', MAIL_CONCURRENCY: '4' },
  { ownDatabase: true, worker: true, roles: ['privacy_officer'], client: true },
);
beforeAll(async () => {
  ({ s, app, clientId, staff: { privacy_officer: officer } } = fixture);
  const tag = randomUUID().slice(0, 6);
  for (const p of await seedCustomers(s.sql, { clientId, domain: DOMAIN, count: 30, tag: `da${tag}` })) people.push({ ...p, locale: 'da' });
  for (const p of await seedCustomers(s.sql, { clientId, domain: DOMAIN, count: 10, tag: `optout${tag}`, marketingEmails: false })) people.push({ ...p, locale: 'da' });
  for (const p of await seedCustomers(s.sql, { clientId, domain: DOMAIN, count: 10, tag: `en${tag}`, locale: 'en' })) people.push({ ...p, locale: 'en' });
  // An erased person is no longer registered: no notice.
  await s.sql`insert into customers (id, client_id, email, name, provided_by, status, erased_at) values (${randomUUID()}, ${clientId}, null, null, '[erased]', 'erased', now())`;
});

const inSeconds = (seconds: number) => new Date(Date.now() + seconds * 1000).toISOString();
const publish = (body: Record<string, unknown>, who = officer) => app.request('/v1/policies', json({ summary: 'Vi gemmer optagelser i 2 måneder i stedet for 3.', text: 'Den fulde tekst …', ...body }, who));
const progress = async (version: string) =>
  (await (await app.request(`/v1/policies/${version}`, { headers: officer })).json()) as { status: string; notices: { total: number; sent: number; failed: number } };
const current = async () => ((await (await app.request('/v1/policies/current')).json()) as { version: string }).version;

/** Notices of one version the sink received, per address: every SMTP delivery, repeats included. */
async function noticesOf(version: string): Promise<Map<string, SinkMessage[]>> {
  const byAddress = new Map<string, SinkMessage[]>();
  for (const m of await queryMessages({ contains: `(${version})`, raw: true })) {
    if (!m.text.includes(`(${version})`)) continue;
    for (const to of m.to) byAddress.set(to, [...(byAddress.get(to) ?? []), m]);
  }
  return byAddress;
}

describe('publishing a policy version (D12)', () => {
  it('starts with the 19 June 2020 policy in force, served publicly', async () => {
    const res = await app.request('/v1/policies/current');
    expect(res.status).toBe(200);
    const body = (await res.json()) as { version: string; effectiveAt: string; text: string };
    expect(body.version).toBe('2020-06-19');
    expect(body.effectiveAt).toBe('2020-06-18T22:00:00.000Z');
    expect(body.text).toContain('Privatlivspolitik');
  });

  it('refuses a material change with less notice than POLICY_NOTICE_PERIOD, a past date, a duplicate and a non-officer', async () => {
    const tooSoon = await publish({ version: `v-soon-${randomUUID().slice(0, 4)}`, effectiveAt: inSeconds(2), material: true });
    expect(tooSoon.status).toBe(422);
    expect(((await tooSoon.json()) as { detail: string }).detail).toMatch(/at least PT4S notice/);
    expect((await publish({ version: 'v-past', effectiveAt: '2020-01-01T00:00:00Z', material: false })).status).toBe(422);
    expect((await publish({ version: 'bad version!', effectiveAt: inSeconds(60), material: false })).status).toBe(422);
    const support = await staffAuth(s.sql, 'support');
    expect((await publish({ version: 'v-support', effectiveAt: inSeconds(60), material: false }, support)).status).toBe(403);
    expect((await s.sql`select count(*)::int as n from policy_versions`)[0]!.n).toBe(1);
    const ok = await publish({ version: 'v-dup', effectiveAt: inSeconds(3600), material: false });
    expect(ok.status).toBe(202);
    expect((await publish({ version: 'v-dup', effectiveAt: inSeconds(3600), material: false })).status).toBe(409);
  });

  it('tells every registered person exactly once before the date, opted-out ones included, then makes the version current', async () => {
    const version = `2027-01-${randomUUID().slice(0, 4)}`;
    const effectiveAt = inSeconds(7);
    expect((await publish({ version, effectiveAt, material: true })).status).toBe(202);

    await waitFor(async () => (await progress(version)).notices.sent === people.length, { what: 'the first pass', timeoutMs: 20_000 });
    // Registered while the campaign runs, before the date: told too.
    const late = await seedCustomers(s.sql, { clientId, domain: DOMAIN, count: 3, tag: `late${randomUUID().slice(0, 4)}` });
    await waitFor(async () => (await progress(version)).notices.sent === people.length + late.length, { what: 'the catch-up', timeoutMs: 10_000 });
    expect(await current()).toBe('2020-06-19'); // not before its date
    expect(Date.now()).toBeLessThan(Date.parse(effectiveAt));

    await waitFor(async () => (await current()) === version, { what: 'the version to become current', timeoutMs: 15_000 });
    expect(Date.now()).toBeGreaterThanOrEqual(Date.parse(effectiveAt));
    expect(await progress(version)).toMatchObject({ status: 'current', notices: { total: people.length + 3, sent: people.length + 3, failed: 0 } });

    const notices = await noticesOf(version);
    for (const p of [...people, ...late.map((l) => ({ ...l, locale: 'da' as const }))]) {
      const got = notices.get(p.email) ?? [];
      expect(got, p.email).toHaveLength(1);
      const [m] = got;
      expect(m!.messageId).toBe(messageIdFor(`policy:${version}:${p.id}`, s.config.MAIL_FROM));
      expect(m!.text).toContain(`${s.config.PUBLIC_URL}/v1/policies/${version}/text`);
      expect(m!.text).toContain('kundeservice@topcall.dk');
      if (p.locale === 'en') expect(m!.subject).toMatch(/^We are changing our privacy policy from/);
      else {
        expect(m!.subject).toMatch(/^Vi ændrer vores privatlivspolitik pr\./);
        expect(m!.text).toContain('Vi gemmer optagelser i 2 måneder i stedet for 3.');
      }
    }
    expect(notices.size).toBe(people.length + 3);
    const description = await s.client.workflow.getHandle(policyWorkflowId(version)).describe();
    expect(description.typedSearchAttributes.get(PolicyVersion)).toBe(version);
    expect(description.memo).toEqual({ material: true, effectiveAt });
    const text = await app.request(`/v1/policies/${version}/text`);
    expect(((await text.json()) as { text: string }).text).toBe('Den fulde tekst …');
  });

  it('delivers to everyone, once, when SMTP refuses for a while and recovers', async () => {
    const version = `2027-02-${randomUUID().slice(0, 4)}`;
    await refuseNextMessages(6, { domain: DOMAIN });
    expect((await publish({ version, effectiveAt: inSeconds(120), material: true })).status).toBe(202);
    const total = (await s.sql`select count(*)::int as n from customers where status = 'active'`)[0]!.n as number;
    await waitFor(async () => (await progress(version)).notices.sent === total, { what: 'every notice after the outage', timeoutMs: 40_000, intervalMs: 250 });
    const notices = await noticesOf(version);
    expect(notices.size).toBe(total);
    expect([...notices.values()].every((m) => m.length === 1)).toBe(true);
    const [retried] = await s.sql`select count(*)::int as n from email_outbox where campaign = ${`policy:${version}`} and attempts > 1`;
    expect(retried!.n).toBeGreaterThan(0); // the outage really hit some notices
  });

  it('lists for staff the notices a mailbox refuses for good, and delivers the rest', async () => {
    const version = `2027-03-${randomUUID().slice(0, 4)}`;
    const [gone] = await seedCustomers(s.sql, { clientId, domain: DOMAIN, count: 1, tag: 'nomailbox' });
    await rejectRecipients([gone!.email]);
    expect((await publish({ version, effectiveAt: inSeconds(120), material: true })).status).toBe(202);
    const total = (await s.sql`select count(*)::int as n from customers where status = 'active'`)[0]!.n as number;
    await waitFor(async () => {
      const p = await progress(version);
      return p.notices.sent === total - 1 && p.notices.failed === 1;
    }, { what: 'all but the refused mailbox', timeoutMs: 20_000 });
    const failures = (await (await app.request(`/v1/policies/${version}/failed-notices`, { headers: officer })).json()) as { items: { customerId: string; error: string }[] };
    expect(failures.items).toHaveLength(1);
    expect(failures.items[0]).toMatchObject({ customerId: gone!.id });
    expect(failures.items[0]!.error).toMatch(/550/);
  });

  it('makes a non-material change current at its date without notices', async () => {
    const version = `2027-04-${randomUUID().slice(0, 4)}`;
    expect((await publish({ version, effectiveAt: inSeconds(2), material: false })).status).toBe(202);
    await waitFor(async () => (await current()) === version, { what: 'the non-material version to become current', timeoutMs: 15_000 });
    expect((await noticesOf(version)).size).toBe(0);
    expect((await progress(version)).notices).toEqual({ total: 0, sent: 0, failed: 0 });
  });
});
