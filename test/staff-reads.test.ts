import { randomUUID } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { json, type appFor } from './support/api';
import type { TestStack } from './support/stack';
import { useStack } from './support/fixture';
import { newClient } from './support/recordings';
import { activate, registerCustomer, uniqueEmail } from './support/customers';
import { fileRequest } from './support/requests';
import { hashToken } from '../db/access-tokens';

/**
 * Issue 12 (D9): every read of personal data by staff — and by a client's team lead, who reads
 * other persons' messages — is kept in the audit ledger, one entry per record read, with ids
 * only; a customer reading their own requests is not. Proved by reading through the API and
 * then looking in the ledger table itself.
 */
let s: TestStack;
let app: ReturnType<typeof appFor>;
let support: { authorization: string; token: string };
let officer: { authorization: string; token: string };
let clientId: string;

const CALLER = { callerName: 'Ingeborg Læsevig', callerNumber: '+4531415926', message: 'Ring til mig om fakturaen på Solvej 3' };

const fixture = useStack(
  { REQUEST_SLA: 'PT1H', REQUEST_REMINDERS: 'PT30M', REQUEST_ESCALATION: 'PT50M', STAFF_EMAIL: `privacy-${randomUUID().slice(0, 8)}@topcall.test` },
  { ownDatabase: true, worker: true, roles: ['support', 'privacy_officer'], client: 'Læsevig VVS ApS' },
);
beforeAll(() => {
  ({ s, app, clientId, staff: { support, privacy_officer: officer } } = fixture);
});

const tokenIdOf = async (auth: { token: string }) => (await s.sql<{ id: string }[]>`select id from access_tokens where token_hash = ${hashToken(auth.token)}`)[0]!.id;
const reads = (action: string, objectId: string) =>
  s.sql<{ actorType: string; actorId: string | null; actorRole: string | null; objectType: string }[]>`
    select actor_type as "actorType", actor_id as "actorId", actor_role as "actorRole", object_type as "objectType"
    from audit_ledger where action = ${action} and object_id = ${objectId} order by seq`;

async function callMessage(): Promise<string> {
  const res = await app.request('/v1/call-messages', json({ clientId, ...CALLER, sentAt: new Date().toISOString() }, support));
  expect(res.status).toBe(201);
  return ((await res.json()) as { id: string }).id;
}

describe('reads of personal data are kept in the ledger', () => {
  it('a staff member listing a client’s call messages: one entry per message, naming the token and role', async () => {
    const ids = [await callMessage(), await callMessage()];
    for (const id of ids) expect(await reads('call_message.read', id)).toEqual([]);
    const res = await app.request(`/v1/clients/${clientId}/call-messages`, { headers: support });
    expect(res.status).toBe(200);
    const page = (await res.json()) as { items: { id: string; callerName: string }[] };
    expect(page.items.map((m) => m.id)).toEqual(expect.arrayContaining(ids));
    const supportId = await tokenIdOf(support);
    for (const m of page.items) expect(await reads('call_message.read', m.id)).toEqual([{ actorType: 'staff', actorId: supportId, actorRole: 'support', objectType: 'call_message' }]);
  });

  it('a client’s team lead reading the callers’ messages is recorded too; a page nobody is shown records nothing', async () => {
    const id = await callMessage();
    const lead = await registerCustomer(app, support, { clientId, email: uniqueEmail('lead'), teamLead: true, providedBy: 'Klienten' });
    const auth = await activate(app, lead);
    expect((await app.request(`/v1/clients/${clientId}/call-messages?limit=200`, { headers: auth })).status).toBe(200);
    expect(await reads('call_message.read', id)).toContainEqual({ actorType: 'customer', actorId: lead.id, actorRole: null, objectType: 'call_message' });
    // A refused read (another client's lead gets 404) leaves no read entry.
    const other = await newClient(s, 'Anden Klient ApS');
    const before = (await s.sql<{ n: number }[]>`select count(*)::int as n from audit_ledger where action = 'call_message.read'`)[0]!.n;
    expect((await app.request(`/v1/clients/${other}/call-messages`, { headers: auth })).status).toBe(404);
    expect((await s.sql<{ n: number }[]>`select count(*)::int as n from audit_ledger where action = 'call_message.read'`)[0]!.n).toBe(before);
  });

  it('staff reading a request (single and in a list) are recorded; the person reading their own is not', async () => {
    const person = await registerCustomer(app, support, { clientId, email: uniqueEmail('reader') });
    const auth = await activate(app, person);
    const id = await fileRequest(app, auth, { type: 'access' });
    expect((await app.request(`/v1/requests/${id}`, { headers: auth })).status).toBe(200);
    expect((await app.request('/v1/requests', { headers: auth })).status).toBe(200);
    expect(await reads('request.read', id)).toEqual([]);

    expect((await app.request(`/v1/requests/${id}`, { headers: officer })).status).toBe(200);
    const listed = (await (await app.request(`/v1/requests?customerId=${person.id}`, { headers: support })).json()) as { items: { id: string }[] };
    expect(listed.items.map((r) => r.id)).toContain(id);
    expect(await reads('request.read', id)).toEqual([
      { actorType: 'staff', actorId: await tokenIdOf(officer), actorRole: 'privacy_officer', objectType: 'request' },
      { actorType: 'staff', actorId: await tokenIdOf(support), actorRole: 'support', objectType: 'request' },
    ]);
  });

  it('decoding history payloads through /codec/decode is recorded under the token that asked', async () => {
    const [encoded] = await s.payloadCodec.encode([{ metadata: { encoding: Buffer.from('json/plain') }, data: Buffer.from('{"requestId":"x"}') }]);
    const asJson = {
      metadata: Object.fromEntries(Object.entries(encoded!.metadata ?? {}).map(([k, v]) => [k, Buffer.from(v).toString('base64')])),
      data: Buffer.from(encoded!.data!).toString('base64'),
    };
    const officerId = await tokenIdOf(officer);
    const before = await reads('payload.decode', officerId);
    const res = await app.request('/codec/decode', json({ payloads: [asJson] }, { ...officer, 'x-namespace': s.config.TEMPORAL_NAMESPACE }));
    expect(res.status).toBe(200);
    expect(await reads('payload.decode', officerId)).toHaveLength(before.length + 1);
    // Refused (support may not decode): nothing decoded, nothing recorded as a decode.
    const supportId = await tokenIdOf(support);
    expect((await app.request('/codec/decode', json({ payloads: [asJson] }, { ...support, 'x-namespace': s.config.TEMPORAL_NAMESPACE }))).status).toBe(403);
    expect(await reads('payload.decode', supportId)).toEqual([]);
  });

  it('the read entries hold no personal value and the chain still verifies', async () => {
    const everything = (await s.sql<{ t: string }[]>`select row_to_json(l)::text as t from audit_ledger l where action like '%.read' or action = 'payload.decode'`).map((r) => r.t).join('\n');
    expect(everything.length).toBeGreaterThan(0);
    for (const v of [CALLER.callerName, CALLER.callerNumber, 'Solvej', 'Læsevig']) expect(everything).not.toContain(v);
    const verified = (await (await app.request('/v1/audit/verify', { headers: officer })).json()) as { valid: boolean };
    expect(verified.valid).toBe(true);
  });
});
