import { beforeAll, describe, expect, it } from 'vitest';
import { randomUUID } from 'node:crypto';
import { appFor, json } from './support/api';
import type { TestStack } from './support/stack';
import { useStack } from './support/fixture';
import { fakeAudio, newClient, uploadForm } from './support/recordings';
import { activate, registerCustomer, uniqueEmail } from './support/customers';

/** D3: call messages are the caller's data, statistics are counts; both only for the client's own users. */
let s: TestStack;
let app: ReturnType<typeof appFor>;
let support: { authorization: string };
let clientId: string;
let otherClientId: string;

const fixture = useStack({}, { ownDatabase: true, worker: true, roles: ['support'], client: 'Hansen VVS ApS' });
beforeAll(async () => {
  ({ s, app, clientId, staff: { support } } = fixture);
  otherClientId = await newClient(s, 'Jensen El ApS');
});

const post = (body: Record<string, unknown>, who = support) => app.request('/v1/call-messages', json(body, who));
const message = (extra: Record<string, unknown> = {}) => ({ clientId, callerName: 'Karen Kunde', callerNumber: '48 22 10 00', message: 'Ring tilbage om tilbuddet', sentAt: new Date().toISOString(), ...extra });
const list = async (who: { authorization: string }, id = clientId, query = '') => app.request(`/v1/clients/${id}/call-messages${query}`, { headers: who });

async function user(client: string, teamLead: boolean) {
  const who = await registerCustomer(app, support, { clientId: client, email: uniqueEmail('user'), teamLead, providedBy: 'Klienten' });
  return { ...who, auth: await activate(app, who) };
}

describe('recording a call message', () => {
  it('stores it with the number in E.164 and counts it for the day', async () => {
    const res = await post(message());
    expect(res.status).toBe(201);
    const { id } = (await res.json()) as { id: string };
    const [row] = await s.sql`select caller_number, caller_name, body from call_messages where id = ${id}`;
    expect(row).toEqual({ caller_number: '+4548221000', caller_name: 'Karen Kunde', body: 'Ring tilbage om tilbuddet' });
    const stats = (await (await app.request(`/v1/clients/${clientId}/call-stats`, { headers: support })).json()) as { days: { messages: number }[] };
    expect(stats.days.at(-1)!.messages).toBeGreaterThanOrEqual(1);
  });

  const refusals: Array<[string, Record<string, unknown>, string]> = [
    ['a number that is no phone number', { callerNumber: 'ring mig' }, 'callerNumber'],
    ['an unknown client', { clientId: '00000000-0000-4000-8000-000000000000' }, 'clientId'],
    ['a time in the future', { sentAt: new Date(Date.now() + 3_600_000).toISOString() }, 'sentAt'],
    ['an unknown field', { transcript: 'hej' }, 'transcript'],
    ['a two-line name', { callerName: 'Karen\nKlik her: http://x' }, 'callerName'],
  ];
  for (const [what, extra, field] of refusals) {
    it(`refuses ${what} and stores nothing`, async () => {
      const before = (await s.sql`select count(*)::int as n from call_messages`)[0]!.n;
      const res = await post(message(extra));
      expect(res.status).toBe(422);
      expect(((await res.json()) as { errors: { field: string }[] }).errors.map((e) => e.field)).toContain(field);
      expect((await s.sql`select count(*)::int as n from call_messages`)[0]!.n).toBe(before);
    });
  }

  it('refuses a customer of another client', async () => {
    const stranger = await registerCustomer(app, support, { clientId: otherClientId, email: uniqueEmail('stranger'), providedBy: 'Klienten' });
    const before = (await s.sql`select count(*)::int as n from call_messages`)[0]!.n;
    const res = await post(message({ customerId: stranger.id }));
    expect(res.status).toBe(422);
    expect(((await res.json()) as { errors: { field: string }[] }).errors.map((e) => e.field)).toEqual(['customerId']);
    expect((await s.sql`select count(*)::int as n from call_messages`)[0]!.n).toBe(before);
  });
});

describe('who sees a client’s messages and statistics', () => {
  it('staff and the client’s team lead do; another client’s team lead gets 404, an ordinary customer 403', async () => {
    expect((await post(message({ message: 'Besked til Hansen' }))).status).toBe(201);
    const lead = await user(clientId, true);
    const otherLead = await user(otherClientId, true);
    const member = await user(clientId, false);

    const asStaff = (await (await list(support)).json()) as { items: { message: string }[] };
    expect(asStaff.items.map((m) => m.message)).toContain('Besked til Hansen');
    const asLead = await list(lead.auth);
    expect(asLead.status).toBe(200);
    expect(((await asLead.json()) as { items: { message: string }[] }).items.map((m) => m.message)).toContain('Besked til Hansen');

    for (const path of ['call-messages', 'call-stats']) {
      const foreign = await app.request(`/v1/clients/${clientId}/${path}`, { headers: otherLead.auth });
      expect(foreign.status).toBe(404);
      expect(await foreign.text()).not.toContain('Hansen');
      expect((await app.request(`/v1/clients/${clientId}/${path}`, { headers: member.auth })).status).toBe(403);
      expect((await app.request(`/v1/clients/${clientId}/${path}`)).status).toBe(401);
    }
    // The other client's lead sees their own (empty) list.
    expect((await list(otherLead.auth, otherClientId)).status).toBe(200);
  });

  it('hides a restricted person’s messages from the client’s users, not from staff (Art. 18)', async () => {
    const lead = await user(clientId, true);
    const person = await registerCustomer(app, support, { clientId, email: uniqueEmail('restricted'), providedBy: 'Klienten' });
    expect((await post(message({ customerId: person.id, message: 'Fra en begrænset person' }))).status).toBe(201);
    await s.sql`update customers set processing_restricted = true where id = ${person.id}`;
    const seen = async (who: { authorization: string }) => ((await (await list(who)).json()) as { items: { message: string }[] }).items.map((m) => m.message);
    expect(await seen(lead.auth)).not.toContain('Fra en begrænset person');
    expect(await seen(support)).toContain('Fra en begrænset person');
  });

  it('pages with a cursor and refuses a forged one', async () => {
    const first = (await (await list(support, clientId, '?limit=1')).json()) as { items: unknown[]; nextCursor: string };
    expect(first.items).toHaveLength(1);
    expect((await list(support, clientId, `?limit=1&cursor=${first.nextCursor}`)).status).toBe(200);
    expect((await list(support, clientId, '?cursor=Zm9yZ2Vk')).status).toBe(422);
  });
});

describe('statistics (D3)', () => {
  it('count calls (recordings) and messages per day, hold no personal data, and outlive the caller’s erasure of their messages', async () => {
    const client = await newClient(s, 'Tæller ApS');
    const day = '2026-11-02';
    for (const seed of ['a', 'b']) {
      const res = await app.request('/v1/recordings', { method: 'POST', headers: support, body: uploadForm({ clientId: client, recordedAt: `${day}T10:00:00Z`, durationSeconds: '5', callerNumber: '+4512345678' }, { data: fakeAudio(seed) }) });
      expect(res.status).toBe(201);
    }
    expect((await post(message({ clientId: client, sentAt: `${day}T10:05:00Z` }))).status).toBe(201);
    const stats = async () => ((await (await app.request(`/v1/clients/${client}/call-stats?from=${day}&to=${day}`, { headers: support })).json()) as { days: unknown[] }).days;
    expect(await stats()).toEqual([{ day, calls: 2, messages: 1 }]);
    const columns = await s.sql`select column_name from information_schema.columns where table_name = 'call_stats' order by 1`;
    expect(columns.map((c) => c.column_name)).toEqual(['calls', 'client_id', 'day', 'messages']);
    await s.sql`delete from call_messages where client_id = ${client}`;
    expect(await stats()).toEqual([{ day, calls: 2, messages: 1 }]);
  });
});

describe('retries with an Idempotency-Key', () => {
  const keyed = (key: string, body: Record<string, unknown>) => app.request('/v1/call-messages', json(body, { ...support, 'idempotency-key': key }));
  const countFor = async (client: string) => (await s.sql`select count(*)::int as n from call_messages where client_id = ${client}`)[0]!.n as number;
  const messagesOn = async (client: string, day: string) =>
    ((await (await app.request(`/v1/clients/${client}/call-stats?from=${day}&to=${day}`, { headers: support })).json()) as { days: { messages: number }[] }).days[0]?.messages ?? 0;

  it('answers a retry as the first call did, storing and counting one message; another body with the key is refused', async () => {
    const client = await newClient(s, 'Gentag ApS');
    const key = `retry-${randomUUID()}`;
    const body = message({ clientId: client, sentAt: '2026-11-05T09:00:00Z' });
    const first = await keyed(key, body);
    expect(first.status).toBe(201);
    const { id } = (await first.json()) as { id: string };
    // The same request written differently (number spacing, instant offset) is the same request.
    const again = await keyed(key, { ...body, callerNumber: '+45 48 22 10 00', sentAt: '2026-11-05T10:00:00+01:00' });
    expect(again.status).toBe(201);
    expect(await again.json()).toEqual({ id });
    expect(await countFor(client)).toBe(1);
    expect(await messagesOn(client, '2026-11-05')).toBe(1);

    const other = await keyed(key, { ...body, message: 'En anden besked' });
    expect(other.status).toBe(422);
    expect(((await other.json()) as { errors: { field: string }[] }).errors.map((e) => e.field)).toEqual(['Idempotency-Key']);
    expect(await countFor(client)).toBe(1);
    expect(await messagesOn(client, '2026-11-05')).toBe(1);

    // Without a key, or with a fresh one, a second message is a second message.
    expect((await post(body)).status).toBe(201);
    expect((await keyed(`retry-${randomUUID()}`, body)).status).toBe(201);
    expect(await countFor(client)).toBe(3);
    expect(await messagesOn(client, '2026-11-05')).toBe(3);
  });

  it('stores one message when retries race each other', async () => {
    const client = await newClient(s, 'Kapløb ApS');
    const key = `race-${randomUUID()}`;
    const body = message({ clientId: client, sentAt: '2026-11-06T09:00:00Z' });
    const answers = await Promise.all(Array.from({ length: 5 }, () => keyed(key, body)));
    expect(answers.map((r) => r.status)).toEqual([201, 201, 201, 201, 201]);
    const ids = new Set(await Promise.all(answers.map(async (r) => ((await r.json()) as { id: string }).id)));
    expect(ids.size).toBe(1);
    expect(await countFor(client)).toBe(1);
    expect(await messagesOn(client, '2026-11-06')).toBe(1);
  });

  it('keeps only hashes of the key', async () => {
    const key = `secret-looking-${randomUUID()}`;
    expect((await keyed(key, message())).status).toBe(201);
    expect(JSON.stringify(await s.sql`select * from call_messages`)).not.toContain(key);
  });

  it('refuses a key that is not visible ASCII', async () => {
    const res = await keyed('has space', message());
    expect(res.status).toBe(422);
    expect(((await res.json()) as { errors: { field: string }[] }).errors.map((e) => e.field)).toEqual(['idempotency-key']);
  });
});

describe('statistics days are Copenhagen days', () => {
  it('counts a late-evening UTC message and call on the next local day, in winter and summer time', async () => {
    const client = await newClient(s, 'Midnat ApS');
    // 23:30 UTC in November is 00:30 the next day in Copenhagen (UTC+1).
    expect((await post(message({ clientId: client, sentAt: '2026-11-02T23:30:00Z' }))).status).toBe(201);
    // 22:30 UTC on 30 June is 00:30 on 1 July (UTC+2).
    const upload = await app.request('/v1/recordings', { method: 'POST', headers: support, body: uploadForm({ clientId: client, recordedAt: '2026-06-30T22:30:00Z', durationSeconds: '5' }, { data: fakeAudio('m') }) });
    expect(upload.status).toBe(201);
    const days = ((await (await app.request(`/v1/clients/${client}/call-stats?from=2026-06-01&to=2026-11-30`, { headers: support })).json()) as { days: unknown[] }).days;
    expect(days).toEqual([
      { day: '2026-07-01', calls: 1, messages: 0 },
      { day: '2026-11-03', calls: 0, messages: 1 },
    ]);
  });
});

describe('statistics default to the last 90 days', () => {
  it('shows today and leaves out a day 120 days ago unless asked', async () => {
    const client = await newClient(s, 'Kvartal ApS');
    const longAgo = new Date(Date.now() - 120 * 86_400_000);
    expect((await post(message({ clientId: client, sentAt: longAgo.toISOString() }))).status).toBe(201);
    expect((await post(message({ clientId: client }))).status).toBe(201);
    const days = async (query = '') => ((await (await app.request(`/v1/clients/${client}/call-stats${query}`, { headers: support })).json()) as { days: { day: string; messages: number }[] }).days;
    const recent = await days();
    expect(recent).toHaveLength(1);
    expect(recent[0]!.messages).toBe(1);
    const all = await days(`?from=${new Date(longAgo.getTime() - 2 * 86_400_000).toISOString().slice(0, 10)}`);
    expect(all.map((d) => d.messages)).toEqual([1, 1]);
  });
});
