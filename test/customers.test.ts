import { createHash, randomUUID } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { appFor, json } from './support/api';
import type { TestStack } from './support/stack';
import { useStack } from './support/fixture';
import { newClient } from './support/recordings';
import { activate, linkTokenIn, registerCustomer, uniqueEmail } from './support/customers';
import { messagesTo, waitForMessage } from './support/mailbox';
import { loginKey } from '../db/customers';
import { waitFor } from './support/wait';
import { createRequestActivities } from '../activities/requests';
import { customerWorkflowId } from '../workflows/ids';
import { CustomerId } from '../workflows/search-attributes';

let s: TestStack;
let app: ReturnType<typeof appFor>;
let staff: { authorization: string };
let clientId: string;

const fixture = useStack({ PASSWORD_LINK_TTL: 'PT1H' }, { ownDatabase: true, worker: true, roles: ['support'], client: true });
beforeAll(() => {
  ({ s, app, clientId, staff: { support: staff } } = fixture);
});

describe('customerLifecycle: registration and provenance (D1, D2)', () => {
  it('invites a person registered by someone else, in Danish, saying who provided the data, with a one-time link', async () => {
    const who = await registerCustomer(app, staff, { clientId, providedBy: 'Jens Hansen, teamansvarlig hos Hansen VVS' });
    expect(who.invitation.subject).toBe('Din konto hos TopCall');
    expect(who.invitation.text).toContain('Dine oplysninger blev givet til os af Jens Hansen, teamansvarlig hos Hansen VVS');
    expect(who.invitation.text).toMatch(new RegExp(`${s.config.PUBLIC_URL}/account/set-password\\?token=[\\w-]{43}`));
    expect(who.invitation.text).toContain('Axeltorv 8'); // D13 contact block
    // The link's token is stored only as a hash, and the outbox never held it.
    const token = linkTokenIn(who.invitation.text)!;
    expect(JSON.stringify(await s.sql`select * from password_tokens`)).not.toContain(token);
    expect(JSON.stringify(await s.sql`select * from email_outbox`)).not.toContain(token);

    const customer = await activate(app, who);
    const me = (await (await app.request('/v1/me', { headers: customer })).json()) as Record<string, unknown>;
    expect(me).toMatchObject({ id: who.id, email: who.email, providedBy: 'Jens Hansen, teamansvarlig hos Hansen VVS', marketingEmails: true });
    expect(typeof me.providedAt).toBe('string');

    // The link works once.
    expect((await app.request('/v1/auth/password', json({ token, password: 'another long password' }))).status).toBe(400);
    const description = await s.client.workflow.getHandle(customerWorkflowId(who.id)).describe();
    expect(description.typedSearchAttributes.get(CustomerId)).toBe(who.id);
  });

  it('writes in English when the person chose it, and says they gave the data themselves only when staff say so', async () => {
    const who = await registerCustomer(app, staff, { clientId, locale: 'en', providedBy: { source: 'self', via: 'phone' } });
    expect(who.invitation.subject).toBe('Your TopCall account');
    expect(who.invitation.text).toContain('You gave us your details yourself by phone on');
    expect(who.invitation.text).not.toMatch(/given to us by/);
    expect(who.invitation.text).toContain('kundeservice@topcall.dk');
    expect((await s.sql`select provided_by_kind, provided_via from customers where id = ${who.id}`)[0]).toEqual({ provided_by_kind: 'self', provided_via: 'phone' });
  });

  it('makes staff say who gave the data (D2): never "self" by default', async () => {
    const before = (await s.sql`select count(*)::int as n from customers`)[0]!.n;
    for (const providedBy of [undefined, 'self', { source: 'self' }, { source: 'someone' }]) {
      const res = await app.request('/v1/customers', json({ clientId, email: `nobody-${Math.random().toString(36).slice(2)}@kunde.test`, name: 'Uden Kilde', ...(providedBy === undefined ? {} : { providedBy }) }, staff));
      expect(res.status, JSON.stringify(providedBy)).toBe(422);
      expect(((await res.json()) as { errors: { field: string }[] }).errors.map((e) => e.field)[0]).toMatch(/^providedBy/);
    }
    expect((await s.sql`select count(*)::int as n from customers`)[0]!.n).toBe(before);
    // Handed over by the client: the invitation names the client.
    const who = await registerCustomer(app, staff, { clientId, providedBy: { source: 'client' } });
    expect(who.invitation.text).toMatch(/Dine oplysninger blev givet til os af .+ \(klient \/ client\)/);
    expect((await s.sql`select provided_by_kind from customers where id = ${who.id}`)[0]).toEqual({ provided_by_kind: 'client' });
  });

  it('stores passwords only as argon2id hashes', async () => {
    const who = await registerCustomer(app, staff, { clientId });
    await activate(app, who, 'a very secret passphrase');
    const [row] = await s.sql`select password_hash from customers where id = ${who.id}`;
    expect(row!.password_hash).toMatch(/^\$argon2id\$/);
    expect(row!.password_hash).not.toContain('a very secret passphrase');
  });

  it('tells staff of a duplicate email (409), refuses an unknown client and a bad email (422)', async () => {
    const email = uniqueEmail('dup');
    await registerCustomer(app, staff, { clientId, email });
    expect((await app.request('/v1/customers', json({ clientId, email, name: 'X', providedBy: { source: 'client' } }, staff))).status).toBe(409);
    expect((await app.request('/v1/customers', json({ clientId: '00000000-0000-4000-8000-000000000000', email: uniqueEmail('x'), name: 'X', providedBy: { source: 'client' } }, staff))).status).toBe(422);
    expect((await app.request('/v1/customers', json({ clientId, email: 'not-an-email', name: 'X' }, staff))).status).toBe(422);
  });
});

describe('team leads (D2)', () => {
  it('lets a team lead register members of their own team, recorded as the provider, and nothing more', async () => {
    const lead = await registerCustomer(app, staff, { clientId, name: 'Jens Hansen', teamLead: true });
    const leadAuth = await activate(app, lead);
    const email = uniqueEmail('member');
    const res = await app.request('/v1/customers', json({ clientId, email, name: 'Sofie Holm' }, leadAuth));
    expect(res.status).toBe(202);
    expect(await res.json()).toMatchObject({ status: 'accepted' });
    const invitation = await waitForMessage(email, () => true, 'the member invitation');
    expect(invitation.text).toContain('Dine oplysninger blev givet til os af Jens Hansen (teamansvarlig / team lead)');

    const otherClient = await newClient(s, 'Fremmed ApS');
    expect((await app.request('/v1/customers', json({ clientId: otherClient, email: uniqueEmail('x'), name: 'X' }, leadAuth))).status).toBe(403);
    expect((await app.request('/v1/customers', json({ clientId, email: uniqueEmail('y'), name: 'Y', teamLead: true }, leadAuth))).status).toBe(403);
    const member = await activate(app, { email, invitation });
    expect((await app.request('/v1/customers', json({ clientId, email: uniqueEmail('z'), name: 'Z' }, member))).status).toBe(403);
  });
});

describe('one answer for a taken address (issue 11)', () => {
  /** What a caller can tell two answers apart by: status, body, and every header but the per-call ones. */
  const seen = async (res: Response) => {
    const headers: Record<string, string> = {};
    res.headers.forEach((value, name) => {
      if (name !== 'date' && name !== 'x-request-id') headers[name] = value;
    });
    return { status: res.status, body: await res.text(), headers };
  };
  const customerLifecycleStarts = async () => (await s.sql`select count(*)::int as n from workflow_starts where workflow_type = 'customerLifecycle'`)[0]!.n as number;
  const noticeStarts = async (holderId: string) =>
    (await s.sql<{ workflowId: string }[]>`
      select workflow_id as "workflowId" from workflow_starts
      where workflow_type = 'accountEmail' and args->0->>'kind' = 'already_registered' and args->0->>'customerId' = ${holderId}`).map((r) => r.workflowId);
  const lifecycleRuns = async () => (await s.client.workflow.count(`WorkflowType = 'customerLifecycle' AND TaskQueue = '${s.config.TEMPORAL_TASK_QUEUE}'`)).count;

  it('answers a team lead the same for a new address and for another client’s person; that person is told, nothing is created', async () => {
    const lead = await registerCustomer(app, staff, { clientId, name: 'Jens Hansen', teamLead: true });
    const leadAuth = await activate(app, lead);
    const otherClient = await newClient(s, 'Anden Kunde ApS');
    const holder = await registerCustomer(app, staff, { clientId: otherClient, name: 'Karen Berg' });
    const fresh = uniqueEmail('fresh');
    const startsBefore = await customerLifecycleStarts();
    const register = (email: string, key: string) => app.request('/v1/customers', json({ clientId, email, name: 'Ny Person' }, { ...leadAuth, 'idempotency-key': key }));

    // The taken address first (spelt in capitals: addresses match whatever their case), then a new one.
    const taken = await seen(await register(holder.email.toUpperCase(), 'taken-1'));
    const created = await seen(await register(fresh, 'fresh-1'));
    expect(created.status).toBe(202);
    expect(taken).toEqual(created);
    // A replay answers alike, too, and does not act again.
    const [takenAgain, freshAgain] = [await register(holder.email.toUpperCase(), 'taken-1'), await register(fresh, 'fresh-1')];
    expect(takenAgain.headers.get('idempotent-replayed')).toBe('true');
    expect(await seen(takenAgain)).toEqual(await seen(freshAgain));
    // Both counted against the lead's hourly quota, the replays not: the quota cannot tell them apart either.
    const quotaKey = createHash('sha256').update(`registrations\ncustomer:${lead.id}`).digest();
    expect((await s.sql`select sum(count)::int as n from quota_counters where key_hash = ${quotaKey}`)[0]!.n).toBe(2);

    // The data: one row for the taken address, still the other client's; one new row for the new one.
    expect(await s.sql`select id, client_id as "clientId" from customers where lower(email) = lower(${holder.email})`).toEqual([{ id: holder.id, clientId: otherClient }]);
    expect((await s.sql`select client_id as "clientId" from customers where email = ${fresh}`).map((r) => r.clientId)).toEqual([clientId]);
    // One customerLifecycle start (the new person's), and for the holder one notice, not an invitation.
    expect(await customerLifecycleStarts()).toBe(startsBefore + 1);
    const notices = await noticeStarts(holder.id);
    expect(notices).toHaveLength(1);
    await s.client.workflow.getHandle(notices[0]!).result();
    await waitForMessage(fresh, (m) => m.subject === 'Din konto hos TopCall', 'the new person’s invitation');
    // Temporal agrees: one customerLifecycle run per recorded start on this file's queue (the
    // listing catches up; a run for a second account would keep it above).
    await waitFor(async () => (await lifecycleRuns()) === (await customerLifecycleStarts()), { what: 'Temporal to list exactly one run per recorded start' });

    const mail = await messagesTo(holder.email);
    expect(mail.map((m) => m.subject).sort()).toEqual(['Din konto hos TopCall', 'Nogen har bedt om at registrere din adresse hos TopCall']);
    const notice = mail.find((m) => m.subject.startsWith('Nogen'))!;
    expect(notice.text).toContain('Jens Hansen, teamansvarlig hos Testfirma ApS, bad os');
    expect(notice.text).toContain('Vi har ikke fortalt dem, at du har en konto.');
    expect(notice.text).toContain(`${s.config.PUBLIC_URL}/account/login`);
    expect(notice.text).not.toMatch(/set-password\?token=/);
  });

  it('answers alike for the lead’s own client’s person and a second try; staff are told 409; one notice per asker and day', async () => {
    const lead = await registerCustomer(app, staff, { clientId, name: 'Lise Lund', teamLead: true });
    const leadAuth = await activate(app, lead);
    const register = async (email: string) => seen(await app.request('/v1/customers', json({ clientId, email, name: 'Ny Kollega' }, leadAuth)));

    const email = uniqueEmail('own');
    const first = await register(email);
    expect(first.status).toBe(202);
    // Tries at the address, now the lead's own client's person: the same answer, or a second
    // try would tell "yours now" (it was free) from "accepted" (another client has it).
    expect(await register(email)).toEqual(first);
    expect(await register(email.toUpperCase())).toEqual(first);
    // Staff, who see every client, are told.
    const byStaff = await app.request('/v1/customers', json({ clientId, email, name: 'Ny Kollega', providedBy: { source: 'client' } }, staff));
    expect(byStaff.status).toBe(409);
    expect(byStaff.headers.get('content-type')).toBe('application/problem+json');
    const rows = await s.sql<{ id: string }[]>`select id from customers where lower(email) = lower(${email})`;
    expect(rows).toHaveLength(1);

    // Two notices asked for, one sent: one per asker and day, however often they try.
    const notices = await noticeStarts(rows[0]!.id);
    expect(notices).toHaveLength(2);
    for (const id of notices) await s.client.workflow.getHandle(id).result();
    expect((await s.sql`select count(*)::int as n from email_outbox where key like ${`customer:${rows[0]!.id}:already-registered:%`}`)[0]!.n).toBe(1);
    await waitForMessage(email, (m) => m.subject.startsWith('Nogen'), 'the notice');
    expect((await messagesTo(email)).map((m) => m.subject).sort()).toEqual(['Din konto hos TopCall', 'Nogen har bedt om at registrere din adresse hos TopCall']);
  });

  it('answers alike when another registration of the address commits first (the unique-key race)', async () => {
    const lead = await registerCustomer(app, staff, { clientId, name: 'Ole Vang', teamLead: true });
    const leadAuth = await activate(app, lead);
    const register = async (email: string) => seen(await app.request('/v1/customers', json({ clientId, email, name: 'Ny Kollega' }, leadAuth)));
    const usual = await register(uniqueEmail('usual'));

    // A rival registration of the address holds its row uncommitted: the lead's lookup does not
    // see it, and the lead's insert waits on the unique index until the rival commits.
    const email = uniqueEmail('race');
    const rivalId = randomUUID();
    const otherClient = await newClient(s, 'Rival ApS');
    let commitRival!: () => void;
    const rivalMayCommit = new Promise<void>((resolve) => (commitRival = resolve));
    const rival = s.sql.begin(async (tx) => {
      await tx`insert into customers (id, client_id, email, name, provided_by, provided_by_kind) values (${rivalId}, ${otherClient}, ${email}, 'Rival Person', 'Rival ApS (klient / client)', 'client')`;
      await rivalMayCommit;
    });
    const answer = register(email);
    await waitFor(async () => (await s.sql`select 1 from pg_stat_activity where datname = current_database() and wait_event_type = 'Lock' and query ~* '^[[:space:]]*insert into customers'`).length > 0, {
      what: 'the lead’s insert to wait on the rival’s row',
    });
    commitRival();
    await rival;
    expect(await answer).toEqual(usual);
    expect(await s.sql`select id from customers where lower(email) = lower(${email})`).toEqual([{ id: rivalId }]);
    expect(await noticeStarts(rivalId)).toHaveLength(1);
  });
});

describe('login (D1)', () => {
  it('slows failed logins per account progressively and revokes a token at logout', async () => {
    const who = await registerCustomer(app, staff, { clientId });
    const customer = await activate(app, who, 'the right password!');
    for (let i = 0; i < 5; i++) expect((await app.request('/v1/auth/login', json({ email: who.email, password: 'wrong password' }))).status).toBe(401);
    const limited = await app.request('/v1/auth/login', json({ email: who.email, password: 'the right password!' }));
    expect(limited.status).toBe(429);
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(Number(limited.headers.get('retry-after'))).toBeLessThanOrEqual(300);

    expect((await app.request('/v1/me', { headers: customer })).status).toBe(200);
    expect((await app.request('/v1/auth/logout', { method: 'POST', headers: customer })).status).toBe(204);
    expect((await app.request('/v1/me', { headers: customer })).status).toBe(401);
  });

  it('checks at most the free attempts of 50 parallel wrong passwords, and lets the owner in once the attack stops (issue 11)', async () => {
    const who = await registerCustomer(app, staff, { clientId });
    await activate(app, who, 'the right password!');
    const statuses = await Promise.all(Array.from({ length: 50 }, () => Promise.resolve(app.request('/v1/auth/login', json({ email: who.email, password: 'a wrong guess' }))).then((r) => r.status)));
    const checked = statuses.filter((x) => x === 401).length;
    expect(checked).toBeLessThanOrEqual(5);
    expect(statuses.filter((x) => x === 429)).toHaveLength(50 - checked);
    // No hard lock-out: once the delay after the last failure has passed, the owner logs in.
    const owner = await waitFor(
      async () => {
        const res = await app.request('/v1/auth/login', json({ email: who.email, password: 'the right password!' }));
        return res.status === 200 ? res : undefined;
      },
      { what: 'the owner to get in after the attack', timeoutMs: 10_000, intervalMs: 500 },
    );
    expect(owner.status).toBe(200);
    // The successful attempt is not remembered as a failure.
    const keyHex = loginKey('email', who.email).toString('hex');
    expect((await s.sql`select count(*)::int as n from login_failures where key_hash = decode(${keyHex}, 'hex')`)[0]!.n).toBe(checked);
  });

  it('looks the set-password token up before any hashing: unknown links are refused without argon2', async () => {
    const res = await app.request('/v1/auth/password', json({ token: 'x'.repeat(43), password: 'a long enough password' }));
    expect(res.status).toBe(400);
  });

  it('answers an unknown email exactly like a wrong password', async () => {
    const res = await app.request('/v1/auth/login', json({ email: uniqueEmail('nobody'), password: 'whatever it is' }));
    expect(res.status).toBe(401);
    expect(((await res.json()) as { detail: string }).detail).toBe('Wrong email or password.');
  });
});

describe('marketing preferences (D11)', () => {
  it('stops marketing mail after opting out, but not service mail', async () => {
    const who = await registerCustomer(app, staff, { clientId });
    const customer = await activate(app, who);
    const activities = createRequestActivities({ sql: s.sql, mailer: s.mailer, store: s.store, config: s.config });

    expect(await activities.sendMarketingEmail({ key: `news:1:${who.id}`, customerId: who.id, subject: 'Nyhedsbrev 1', text: 'Nyt fra TopCall' })).toEqual({ sent: true });
    const res = await app.request('/v1/me/preferences', { method: 'PATCH', headers: { ...customer, 'content-type': 'application/json' }, body: JSON.stringify({ marketingEmails: false }) });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ marketingEmails: false });
    expect(await activities.sendMarketingEmail({ key: `news:2:${who.id}`, customerId: who.id, subject: 'Nyhedsbrev 2', text: 'Nyt fra TopCall' })).toEqual({ sent: false });

    // A service email still goes: the acknowledgement of a request.
    const filed = await app.request('/v1/requests', json({ type: 'access' }, customer));
    expect(filed.status).toBe(202);
    await waitForMessage(who.email, (m) => m.subject.startsWith('Vi har modtaget din anmodning'), 'the acknowledgement');
    const subjects = (await messagesTo(who.email)).map((m) => m.subject);
    expect(subjects).toContain('Nyhedsbrev 1');
    expect(subjects).not.toContain('Nyhedsbrev 2');
    const [suppressed] = await s.sql`select status from email_outbox where key = ${`news:2:${who.id}`}`;
    expect(suppressed).toEqual({ status: 'suppressed' });
    await waitFor(async () => (await (await app.request('/v1/me', { headers: customer })).json() as { marketingEmails: boolean }).marketingEmails === false, { what: 'the preference to show' });
  });

  it('refuses a preference that is not a boolean', async () => {
    const who = await registerCustomer(app, staff, { clientId });
    const customer = await activate(app, who);
    const res = await app.request('/v1/me/preferences', { method: 'PATCH', headers: { ...customer, 'content-type': 'application/json' }, body: JSON.stringify({ marketingEmails: 'no' }) });
    expect(res.status).toBe(422);
    expect((await app.request('/v1/me', { headers: staff })).status).toBe(403);
  });
});
