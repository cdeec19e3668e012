import { randomUUID } from 'node:crypto';
import { strFromU8, unzipSync } from 'fflate';
import { beforeAll, describe, expect, it } from 'vitest';
import { insertClient } from '../db/clients';
import { createActivities } from '../activities';
import { appFor, json } from './support/api';
import type { TestStack } from './support/stack';
import { useStack } from './support/fixture';
import { activate, registerCustomer, uniqueEmail, downloadInAccount } from './support/customers';
import { messagesTo, waitForMessage } from './support/mailbox';
import { fileAndApprove } from './support/requests';

/** D7: the recipient register, disclosures, the access answer's recipients, and Art. 19 notices. */
let s: TestStack;
let app: ReturnType<typeof appFor>;
let support: { authorization: string };
let officer: { authorization: string };
let clientId: string;

const fixture = useStack(
  { REQUEST_SLA: 'PT1H', REQUEST_REMINDERS: 'PT30M', REQUEST_ESCALATION: 'PT50M', STAFF_EMAIL: `privacy-${randomUUID().slice(0, 8)}@topcall.test` },
  { ownDatabase: true, worker: true, roles: ['support', 'privacy_officer'], client: true },
);
beforeAll(() => {
  ({ s, app, clientId, staff: { support, privacy_officer: officer } } = fixture);
});

async function recipient(type: string, name = `Modtager ${randomUUID().slice(0, 6)}`) {
  const email = uniqueEmail('recipient');
  const res = await app.request('/v1/recipients', json({ type, name, email, address: 'Vestergade 1, 1456 København K', legalBasis: 'databehandleraftale (Art. 28)' }, officer));
  expect(res.status, await res.clone().text()).toBe(201);
  return { ...((await res.json()) as { id: string }), name, email };
}

const disclose = (body: Record<string, unknown>) =>
  app.request('/v1/disclosures', json({ category: 'kontaktoplysninger', legalBasis: 'retskendelse', disclosedAt: new Date().toISOString(), ...body }, officer));

const decideApprove = async (auth: { authorization: string }, body: Record<string, unknown>) => (await fileAndApprove(app, auth, officer, body)).id;

describe('the recipient register', () => {
  it('is kept by privacy officers and read by staff', async () => {
    const r = await recipient('processor', 'Regnskabsbureau A/S');
    expect((await app.request('/v1/recipients', json({ type: 'processor', name: 'X', email: 'x@y.dk', legalBasis: 'aftale' }, support))).status).toBe(403);
    const list = (await (await app.request('/v1/recipients', { headers: support })).json()) as { items: { id: string; email: string }[] };
    expect(list.items.find((x) => x.id === r.id)).toMatchObject({ email: r.email });
  });
});

describe('disclosures obey restrictions (Art. 18, D6)', () => {
  it('refuses a restricted person except to an authority, and a no-transfer client’s people except to processors and authorities', async () => {
    const restricted = await registerCustomer(app, support, { clientId, email: uniqueEmail('restricted') });
    await s.sql`update customers set processing_restricted = true where id = ${restricted.id}`;
    const processor = await recipient('processor');
    const authority = await recipient('authority');
    const partner = await recipient('referral_partner');
    expect((await disclose({ recipientId: processor.id, customerIds: [restricted.id] })).status).toBe(422);
    expect((await disclose({ recipientId: authority.id, customerIds: [restricted.id] })).status).toBe(201);

    const closed = (await insertClient(s.sql, { name: 'Lukket ApS', restrictions: ['no_third_party_transfer'] })).id;
    const bound = await registerCustomer(app, support, { clientId: closed, email: uniqueEmail('bound') });
    const refused = await disclose({ recipientId: partner.id, customerIds: [bound.id] });
    expect(refused.status).toBe(422);
    expect(((await refused.json()) as { errors: { message: string }[] }).errors[0]!.message).toMatch(/D6/);
    expect((await disclose({ recipientId: processor.id, customerIds: [bound.id] })).status).toBe(201);
    expect((await disclose({ recipientId: processor.id })).status).toBe(422); // whose data?
  });
});

describe('a person sees their recipients, and recipients hear of rectification and erasure (Art. 19)', () => {
  it('lists recipients with contact details in the export and the answer; tells each recipient once of a rectification and of the erasure', async () => {
    const who = await registerCustomer(app, support, { clientId, email: uniqueEmail('shared') });
    const auth = await activate(app, who);
    const processor = await recipient('processor', 'Lønbureauet ApS');
    const police = await recipient('authority', 'Midt- og Vestsjællands Politi');
    expect((await disclose({ recipientId: processor.id, customerIds: [who.id] })).status).toBe(201);
    expect((await disclose({ recipientId: police.id, customerIds: [who.id], category: 'samtaleoptagelse' })).status).toBe(201);

    const access = await decideApprove(auth, { type: 'access' });
    const answer = await waitForMessage(who.email, (m) => m.text.includes(access) && /gennemført/.test(m.subject), 'the access answer');
    expect(answer.text).toContain('kontakte dem direkte');
    expect(answer.text).toContain(`Lønbureauet ApS (processor): ${processor.email}`);
    expect(answer.text).toContain(police.email);
    const files = unzipSync(new Uint8Array(await (await downloadInAccount(app, who, access)).arrayBuffer()));
    const data = JSON.parse(strFromU8(files['data.json']!)) as { recipients: { recipient: string; email: string; address: string }[] };
    expect(data.recipients.map((r) => r.email).sort()).toEqual([processor.email, police.email].sort());
    expect(strFromU8(files['recipients.csv']!)).toContain('Vestergade 1');

    const rectification = await decideApprove(auth, { type: 'rectification', details: { fields: { name: 'Mette Hansen-Berg' } } });
    const rectified = await waitForMessage(who.email, (m) => m.text.includes(rectification) && /gennemført/.test(m.subject), 'the rectification answer');
    expect(rectified.text).toContain('givet besked til 2 modtager(e)');
    const notice = await waitForMessage(processor.email, (m) => m.text.includes(rectification), 'the Art. 19 notice');
    expect(notice.text).toContain(`TopCall person id ${who.id}`);
    expect(notice.text).not.toContain('Mette');
    // A retried answer activity sends no second notice.
    await createActivities({ sql: s.sql, mailer: s.mailer, store: s.store, config: s.config }).sendRequestAnswer({ requestId: rectification });
    expect((await messagesTo(processor.email)).filter((m) => m.text.includes(rectification))).toHaveLength(1);

    const erasure = await decideApprove(support, { type: 'erasure', customerId: who.id });
    await waitForMessage(police.email, (m) => m.text.includes(erasure) && m.text.includes('slettet'), 'the erasure notice to the police');
    await waitForMessage(processor.email, (m) => m.text.includes(erasure), 'the erasure notice to the processor');
    expect((await messagesTo(processor.email)).filter((m) => m.text.includes(erasure))).toHaveLength(1);
  });

  it('finds a caller’s recipients by their number', async () => {
    const authority = await recipient('authority');
    expect((await disclose({ recipientId: authority.id, callerNumbers: ['+45 31 22 33 44'] })).status).toBe(201);
    const email = uniqueEmail('caller');
    const access = await decideApprove(support, { type: 'access', caller: { name: 'Ole Opringer', email, phone: '31223344', identityCheck: 'called back' } });
    const answer = await waitForMessage(email, (m) => m.text.includes(access) && /gennemført/.test(m.subject), 'the caller’s access answer');
    expect(answer.text).toContain(authority.email);
  });
});
