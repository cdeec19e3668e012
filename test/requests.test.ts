import { randomUUID } from 'node:crypto';
import { unzipSync, strFromU8 } from 'fflate';
import { beforeAll, describe, expect, it } from 'vitest';
import { appFor, json } from './support/api';
import type { TestStack } from './support/stack';
import { useStack } from './support/fixture';
import { fakeAudio, uploadForm } from './support/recordings';
import { activate, downloadInAccount, registerCustomer } from './support/customers';
import { messagesTo, waitForMessage } from './support/mailbox';
import { waitFor } from './support/wait';
import { requestWorkflowId } from '../workflows/ids';
import { RequestStatus, SlaBreached } from '../workflows/search-attributes';
import type { SinkMessage } from '../scripts/mail-sink';

// A compressed clock: answer within 8 s, remind staff at 2 s and 4 s, escalate at 6 s.
const SLA_MS = 8_000;

let s: TestStack;
let app: ReturnType<typeof appFor>;
let support: { authorization: string };
let officer: { authorization: string };
let clientId: string;

const fixture = useStack(
  {
    REQUEST_SLA: 'PT8S',
    REQUEST_REMINDERS: 'PT2S,PT4S',
    REQUEST_ESCALATION: 'PT6S',
    EXPORT_LINK_TTL: 'PT4S',
    REQUEST_REPEAT_WINDOW: 'P1D',
    STAFF_EMAIL: `privacy-${randomUUID().slice(0, 8)}@topcall.test`,
  },
  { ownDatabase: true, worker: true, roles: ['support', 'privacy_officer'], client: true },
);
beforeAll(() => {
  ({ s, app, clientId, staff: { support, privacy_officer: officer } } = fixture);
});

async function person(locale: 'da' | 'en' = 'da') {
  const who = await registerCustomer(app, support, { clientId, locale });
  return { ...who, auth: await activate(app, who) };
}

async function file(auth: { authorization: string }, body: Record<string, unknown>) {
  const res = await app.request('/v1/requests', json(body, auth));
  expect(res.status).toBe(202);
  return (await res.json()) as { id: string; status: string; receivedAt: string; dueAt: string };
}

/** A decision that waits for the answer to go out (`Prefer: wait`), as an officer's client may ask. */
const decide = (id: string, body: Record<string, unknown>, who = officer) => app.request(`/v1/requests/${id}/decision`, json(body, { ...who, prefer: 'wait=30' }));
const get = async (id: string, who = officer) => (await (await app.request(`/v1/requests/${id}`, { headers: who })).json()) as Record<string, unknown>;
const mailTo = (address: string, subject: RegExp | string, what: string) =>
  waitForMessage(address, (m) => (typeof subject === 'string' ? m.subject.startsWith(subject) : subject.test(m.subject)), what);

describe('accessRequest: the 7-day clock (D10)', () => {
  it('acknowledges with the due date, reminds staff, escalates, records the breach, and still answers', async () => {
    const p = await person();
    const r = await file(p.auth, { type: 'access' });
    expect(Date.parse(r.dueAt) - Date.parse(r.receivedAt)).toBe(SLA_MS);
    const ack = await mailTo(p.email, 'Vi har modtaget din anmodning', 'the acknowledgement');
    expect(ack.text).toContain('Vi svarer senest');
    expect(ack.text).toContain(r.id);

    const staffMail = (prefix: string) => mailTo(s.config.STAFF_EMAIL, new RegExp(`^${prefix}.*${r.id}`), `${prefix} for ${r.id}`);
    const [reminder1, escalation, breach] = [await staffMail('Reminder'), await staffMail('ESCALATION'), await staffMail('SLA BREACHED')];
    const staffMessages = (await messagesTo(s.config.STAFF_EMAIL, { contains: r.id })).filter((m) => m.subject.includes(r.id));
    expect(staffMessages.filter((m) => m.subject.startsWith('Reminder'))).toHaveLength(2);
    const at = (m: SinkMessage) => Date.parse(m.receivedAt) - Date.parse(r.receivedAt);
    expect(at(reminder1)).toBeGreaterThanOrEqual(2_000);
    expect(at(escalation)).toBeGreaterThanOrEqual(6_000);
    expect(at(breach)).toBeGreaterThanOrEqual(SLA_MS);

    // The breach stays visible: in the API, in the overdue list, and on the run.
    await waitFor(async () => (await get(r.id)).slaBreached === true, { what: 'slaBreached in the API' });
    const overdue = (await (await app.request('/v1/requests?overdue=true', { headers: officer })).json()) as { items: { id: string }[] };
    expect(overdue.items.map((x) => x.id)).toContain(r.id);
    const handle = s.client.workflow.getHandle(requestWorkflowId(r.id));
    expect((await handle.describe()).typedSearchAttributes.get(SlaBreached)).toBe(true);
    const shown = await get(r.id);
    expect((await handle.describe()).memo).toEqual({ type: shown.type, dueAt: shown.dueAt });

    // The request goes on: approval still exports and answers.
    const decided = await decide(r.id, { decision: 'approve' });
    expect(decided.status).toBe(200);
    expect(await decided.json()).toMatchObject({ status: 'answered', decision: 'approve', slaBreached: true });
    // The run's search attribute follows the answer (the workflow sets it after the email went out).
    await waitFor(async () => (await handle.describe()).typedSearchAttributes.get(RequestStatus) === 'answered', { what: 'RequestStatus answered on the run' });
  });
});

describe('receipt time (D10): the clock runs from when the request reached TopCall', () => {
  const staffMails = async (id: string) => (await messagesTo(s.config.STAFF_EMAIL, { contains: id })).filter((m) => m.subject.includes(id));

  it('moves the due date, reminders and escalation back to receivedAt given by staff', async () => {
    const p = await person();
    const receivedAt = new Date(Date.now() - 3_000).toISOString();
    const r = await file(support, { type: 'access', customerId: p.id, receivedAt });
    expect(r.receivedAt).toBe(receivedAt);
    expect(Date.parse(r.dueAt) - Date.parse(receivedAt)).toBe(SLA_MS);
    expect((await get(r.id)).dueAt).toBe(r.dueAt);
    // The reminder due 2 s after receipt fell before filing and is skipped; the one at 4 s goes.
    await mailTo(s.config.STAFF_EMAIL, new RegExp(`^ESCALATION.*${r.id}`), 'the escalation');
    const reminders = (await staffMails(r.id)).filter((m) => m.subject.startsWith('Reminder'));
    expect(reminders).toHaveLength(1);
    expect(Date.parse(reminders[0]!.receivedAt)).toBeGreaterThanOrEqual(Date.parse(receivedAt) + 4_000);
  });

  it('escalates a request filed already late at once, without stale reminders, and records the breach', async () => {
    const p = await person();
    const filedAt = Date.now();
    const r = await file(support, { type: 'erasure', customerId: p.id, receivedAt: new Date(filedAt - 7_000).toISOString() });
    const escalation = await mailTo(s.config.STAFF_EMAIL, new RegExp(`^ESCALATION.*${r.id}`), 'the escalation');
    expect(Date.parse(escalation.receivedAt) - filedAt).toBeLessThan(5_000);
    await mailTo(s.config.STAFF_EMAIL, new RegExp(`^SLA BREACHED.*${r.id}`), 'the breach');
    expect((await staffMails(r.id)).filter((m) => m.subject.startsWith('Reminder'))).toEqual([]);
    await waitFor(async () => (await get(r.id)).slaBreached === true, { what: 'the breach on the request' });
  });

  it('refuses a receivedAt in the future, more than a year ago, or from a customer', async () => {
    const p = await person();
    const before = (await s.sql`select count(*)::int as n from data_requests`)[0]!.n;
    for (const [who, body] of [
      [support, { type: 'access', customerId: p.id, receivedAt: new Date(Date.now() + 3_600_000).toISOString() }],
      [support, { type: 'access', customerId: p.id, receivedAt: '2020-01-01T00:00:00Z' }],
      [p.auth, { type: 'access', receivedAt: new Date().toISOString() }],
    ] as const) {
      const res = await app.request('/v1/requests', json(body, who));
      expect(res.status).toBe(422);
      expect(((await res.json()) as { errors: { field: string }[] }).errors.map((e) => e.field)).toEqual(['receivedAt']);
    }
    expect((await s.sql`select count(*)::int as n from data_requests`)[0]!.n).toBe(before);
  });
});

describe('access: a machine-readable export behind an expiring link', () => {
  it('contains every category as JSON and CSV, reaches only the person by link (never attached), and expires', async () => {
    const p = await person();
    await s.sql`insert into call_messages (client_id, customer_id, channel, body) values (${clientId}, ${p.id}, 'sms', 'Vi har modtaget din besked')`;
    const disclosure = await s.sql`insert into disclosures (recipient, category, legal_basis) values ('Regnskabsbureau A/S', 'contact', 'processor agreement') returning id`;
    await s.sql`insert into disclosure_subjects (disclosure_id, customer_id) values (${disclosure[0]!.id}, ${p.id})`;
    const upload = await app.request('/v1/recordings', { method: 'POST', headers: support, body: uploadForm({ clientId, customerId: p.id, recordedAt: new Date().toISOString(), durationSeconds: '33' }, { data: fakeAudio('z') }) });
    expect(upload.status).toBe(201);

    const r = await file(p.auth, { type: 'access' });
    expect((await decide(r.id, { decision: 'approve' })).status).toBe(200);
    const answer = await mailTo(p.email, 'Din anmodning', 'the access answer');
    expect(answer.attachments).toBe(0); // a link, never an attachment
    // A person with an account gets the export only on their logged-in page (issue 11, 14).
    expect(answer.text).toContain(`/account/requests/${r.id}`);
    expect(answer.text).not.toMatch(/\/v1\/exports\//);
    expect((await app.request(`/account/requests/${r.id}/export`)).status, 'no session, no export').toBe(303);

    const download = await downloadInAccount(app, p, r.id);
    expect(download.status).toBe(200);
    const files = unzipSync(new Uint8Array(await download.arrayBuffer()));
    // The categories are the personal-data map's (db/personal-data.ts), one CSV each.
    const categories = ['profile', 'email_addresses', 'email_address_changes', 'provenance', 'call_statistics', 'messages', 'recordings', 'requests', 'emails', 'failed_logins', 'restrictions', 'recipients'];
    expect(Object.keys(files).sort()).toEqual(['data.json', ...categories.map((c) => `${c}.csv`)].sort());
    const data = JSON.parse(strFromU8(files['data.json']!)) as Record<string, Record<string, unknown>[]>;
    expect(data.profile![0]).toMatchObject({ id: p.id, email: p.email });
    expect(data.provenance![0]).toMatchObject({ provided_by: 'Testfirma ApS (klient / client)', provided_by_kind: 'client' }); // never 'self' unless it was
    expect(data.call_statistics![0]).toMatchObject({ calls: 1, seconds: 33 });
    expect(data.messages![0]).toMatchObject({ body: 'Vi har modtaget din besked' });
    expect(data.recordings).toHaveLength(1);
    expect(data.requests!.map((x) => x.id)).toContain(r.id);
    expect(data.profile![0]).toMatchObject({ marketing_emails: true, processing_restricted: false });
    expect(data.email_addresses!.map((x) => x.email)).toEqual([p.email.toLowerCase()]);
    expect(data.emails!.map((x) => x.subject)).toEqual(expect.arrayContaining([expect.stringMatching(/./)]));
    expect(data.recipients![0]).toMatchObject({ recipient: 'Regnskabsbureau A/S', legal_basis: 'processor agreement' });
    expect(strFromU8(files['recipients.csv']!)).toContain('Regnskabsbureau A/S');

    // A caller without an account gets a bearer link instead: a few uses
    // (EXPORT_LINK_MAX_DOWNLOADS = 3), then the link is spent; later it also expires.
    const callerEmail = `ringer-${randomUUID().slice(0, 8)}@kunde.test`;
    const callerRequest = await file(support, { type: 'access', caller: { name: 'Ole Ringer', email: callerEmail, identityCheck: 'Called back on the number in the recording' } });
    expect((await decide(callerRequest.id, { decision: 'approve' })).status).toBe(200);
    const callerAnswer = await mailTo(callerEmail, 'Din anmodning', 'the caller’s access answer');
    const link = /\/v1\/exports\/([\w-]+)/.exec(callerAnswer.text)?.[1];
    expect(link).toBeTruthy();
    expect(JSON.stringify(await s.sql`select * from export_packages`)).not.toContain(link!);
    expect((await app.request(`/v1/exports/${link}`)).status).toBe(200);
    expect((await app.request(`/v1/exports/${link}`)).status).toBe(200);
    expect((await app.request(`/v1/exports/${link}`)).status).toBe(200);
    const spent = await app.request(`/v1/exports/${link}`);
    expect(spent.status).toBe(410);
    expect(((await spent.json()) as { detail: string }).detail).toMatch(/used 3 times/);
    await waitFor(async () => /expired/.test(((await (await app.request(`/v1/exports/${link}`)).json()) as { detail: string }).detail), { what: 'the link to expire', timeoutMs: 10_000, intervalMs: 250 });
    expect((await app.request(`/v1/exports/${'x'.repeat(43)}`)).status).toBe(404);
  });
});

describe('decisions and what each one does', () => {
  it('refuses with the policy reason, the explanation and the right to complain to Datatilsynet', async () => {
    const p = await person();
    const r = await file(p.auth, { type: 'rectification', details: { fields: { name: 'Anden Person' } } });
    const res = await decide(r.id, { decision: 'refuse', reasonCode: 'identity_not_verified', reason: 'Navnet tilhører en anden kunde i samme husstand.' });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ status: 'refused', decision: 'refuse', reasonCode: 'identity_not_verified' });
    const mail = await mailTo(p.email, /afvist/, 'the refusal');
    expect(mail.text).toContain('Vi har ikke kunnet bekræfte din identitet (GDPR art. 12, stk. 6).');
    expect(mail.text).toContain('Carl Jacobsens Vej 35, 2500 Valby');
    expect(mail.text).toContain('Navnet tilhører en anden kunde i samme husstand.');
    expect(mail.text).toContain('Datatilsynet');
    expect(mail.text).toContain('Axeltorv 8');
    expect((await (await app.request('/v1/me', { headers: p.auth })).json() as { name: string }).name).toBe('Mette Hansen');
  });

  it('refuses in English for a person who chose English', async () => {
    const p = await person('en');
    const r = await file(p.auth, { type: 'access' });
    expect((await decide(r.id, { decision: 'refuse', reasonCode: 'rights_of_others', reason: 'The recording is of another caller.' })).status).toBe(200);
    const mail = await mailTo(p.email, /refused/, 'the English refusal');
    expect(mail.text).toContain('Danish Data Protection Agency');
    expect(mail.text).toContain('Datatilsynet, Carl Jacobsens Vej 35');
    expect(mail.text).toContain('(GDPR Art. 15(4))');
    expect(mail.text).toContain('Denmark');
  });

  it('rectifies the named fields; the audit log keeps which fields changed, never the values', async () => {
    const p = await person();
    const r = await file(p.auth, { type: 'rectification', details: { fields: { name: 'Mette Hansen-Berg' } } });
    expect((await decide(r.id, { decision: 'approve' })).status).toBe(200);
    expect((await (await app.request('/v1/me', { headers: p.auth })).json() as { name: string }).name).toBe('Mette Hansen-Berg');
    const [audit] = await s.sql`select old_values, new_values, actor from audit_log where subject_id = ${p.id} and action = 'rectification'`;
    expect(audit).toEqual({ old_values: null, new_values: { fields: ['name'] }, actor: `request:${r.id}` });
    expect(JSON.stringify(await s.sql`select * from audit_log where subject_id = ${p.id}`)).not.toMatch(/Mette/);
    expect((await mailTo(p.email, /gennemført/, 'the rectification answer')).text).toContain('Rettede felter: name');
  });

  it('sets the restriction and objection flags the workflows obey', async () => {
    const p = await person();
    for (const type of ['restriction', 'objection']) {
      const r = await file(p.auth, { type });
      expect((await decide(r.id, { decision: 'approve' })).status).toBe(200);
    }
    const me = (await (await app.request('/v1/me', { headers: p.auth })).json()) as Record<string, unknown>;
    expect(me).toMatchObject({ processingRestricted: true, objectedToProcessing: true, marketingEmails: false });
  });

  it('opts out of marketing at once, with no staff step', async () => {
    const p = await person();
    const r = await file(p.auth, { type: 'marketing_opt_out' });
    await waitFor(async () => (await get(r.id)).status === 'answered', { what: 'the opt-out to be answered' });
    expect((await (await app.request('/v1/me', { headers: p.auth })).json() as { marketingEmails: boolean }).marketingEmails).toBe(false);
    expect((await mailTo(p.email, /gennemført/, 'the opt-out answer')).text).toContain('Du får ikke længere markedsføring');
    expect((await decide(r.id, { decision: 'approve' })).status).toBe(409);
  });

  it('erases the account and the person’s recordings, but keeps one a dispute holds and says so (GDPR 17(3)(e))', async () => {
    const p = await person();
    const ids: string[] = [];
    for (const seed of ['a', 'b']) {
      const res = await app.request('/v1/recordings', { method: 'POST', headers: support, body: uploadForm({ clientId, customerId: p.id, recordedAt: new Date().toISOString(), durationSeconds: '10' }, { data: fakeAudio(seed) }) });
      ids.push(((await res.json()) as { id: string }).id);
    }
    const dispute = await app.request('/v1/disputes', json({ clientId, recordingIds: [ids[1]], reason: 'Klient bestrider aftalen' }, support));
    expect(dispute.status).toBe(201);

    // A policy campaign has enqueued this person's notice but not sent it yet.
    const noticeKey = `policy:erasure-test:${p.id}`;
    await s.sql`
      insert into email_outbox (key, message_id, recipient, category, subject, locale, campaign)
      values (${noticeKey}, ${`<${randomUUID()}@topcall.dk>`}, ${p.email}, 'service', 'Ny privatlivspolitik', 'da', 'policy:erasure-test')`;

    const r = await file(p.auth, { type: 'erasure' });
    const res = await decide(r.id, { decision: 'approve' });
    expect(res.status).toBe(200);
    expect(((await res.json()) as { outcome: Record<string, unknown> }).outcome).toMatchObject({
      erased: { recordings: 1, customers: 1 },
      kept: { recordings: { count: 1, ids: [ids[1]], reason: 'legal_claims', until: 'dispute_resolved' } },
    });

    const answer = await mailTo(p.email, /gennemført/, 'the erasure answer');
    expect(answer.text).toContain(ids[1]);
    expect(answer.text).toContain('art. 17, stk. 3, litra e');

    const deleted = (await (await app.request(`/v1/recordings/${ids[0]}`, { headers: support })).json()) as { status: string; receipt: { reason: string } };
    expect(deleted).toMatchObject({ status: 'deleted', receipt: { reason: 'erasure' } });
    expect(await (await app.request(`/v1/recordings/${ids[1]}`, { headers: support })).json()).toMatchObject({ status: 'held' });
    // The account goes right after the answer (forgetContact), so it may still be on its way when the answer is in.
    const row = await waitFor(async () => {
      const [c] = await s.sql`select email, name, password_hash, status from customers where id = ${p.id}`;
      return c?.status === 'erased' ? c : undefined;
    }, { what: 'the account to be erased after the answer' });
    expect(row).toEqual({ email: null, name: null, password_hash: null, status: 'erased' });
    expect((await app.request('/v1/me', { headers: p.auth })).status).toBe(401);
    expect((await app.request('/v1/auth/login', json({ email: p.email, password: 'correct horse battery staple' }))).status).toBe(401);
    // The waiting notice will not go to a person who is gone, and keeps no address.
    const notice = await waitFor(async () => {
      const [o] = await s.sql`select status, recipient from email_outbox where key = ${noticeKey}`;
      return o?.status === 'suppressed' ? o : undefined;
    }, { what: 'the waiting notice to be suppressed' });
    expect(notice).toEqual({ status: 'suppressed', recipient: '[erased]' });
  });
});

describe('every type, both ways', () => {
  const decidable = ['access', 'rectification', 'erasure', 'restriction', 'objection'] as const;

  it('answers an approval of each type with an email saying what was done', async () => {
    for (const type of decidable) {
      const p = await person();
      const r = await file(p.auth, type === 'rectification' ? { type, details: { fields: { locale: 'da', name: 'Ny Navn' } } } : { type });
      const res = await decide(r.id, { decision: 'approve' });
      expect(res.status).toBe(200);
      expect(await res.json()).toMatchObject({ status: 'answered', decision: 'approve' });
      const mail = await mailTo(p.email, /er gennemført/, `the ${type} approval`);
      expect(mail.text).toContain(r.id);
      expect(mail.text).toContain('kundeservice@topcall.dk');
    }
  });

  it('answers a refusal of each type with the reason and the right to complain', async () => {
    for (const type of decidable) {
      const p = await person();
      const r = await file(p.auth, type === 'rectification' ? { type, details: { fields: { name: 'X' } } } : { type });
      const res = await decide(r.id, { decision: 'refuse', reasonCode: 'manifestly_unfounded', reason: `Ikke muligt for ${type}.` });
      expect(res.status).toBe(200);
      expect(await res.json()).toMatchObject({ status: 'refused', reasonCode: 'manifestly_unfounded', reason: `Ikke muligt for ${type}.` });
      const mail = await mailTo(p.email, /er afvist/, `the ${type} refusal`);
      expect(mail.text).toContain('åbenbart grundløs (GDPR art. 12, stk. 5)');
      expect(mail.text).toContain('Datatilsynet, Carl Jacobsens Vej 35');
      expect(mail.text).toContain(`Ikke muligt for ${type}.`);
      expect(mail.text).toContain('Datatilsynet');
    }
  });
});

describe('lawful refusal grounds (D10)', () => {
  const cases: Array<[string, string, boolean]> = [
    ['legal_claims', 'erasure', true],
    ['legal_claims', 'access', false],
    ['legal_obligation', 'erasure', true],
    ['legal_obligation', 'rectification', false],
    ['rights_of_others', 'access', true],
    ['rights_of_others', 'erasure', false],
    ['compelling_grounds', 'objection', true],
    ['compelling_grounds', 'restriction', false],
  ];
  it('accepts each ground only for the request types it applies to', async () => {
    for (const [reasonCode, type, allowed] of cases) {
      const p = await person();
      const r = await file(p.auth, type === 'rectification' ? { type, details: { fields: { name: 'Nyt Navn' } } } : { type });
      const res = await decide(r.id, { decision: 'refuse', reasonCode, reason: 'Begrundelse til personen.' });
      expect(res.status, `${reasonCode} for ${type}`).toBe(allowed ? 200 : 422);
      if (!allowed) {
        expect(((await res.json()) as { errors: { field: string }[] }).errors[0]!.field).toBe('reasonCode');
        expect((await get(r.id)).decision).toBeUndefined();
      } else {
        const mail = await mailTo(p.email, /er afvist/, `the ${type} refusal on ${reasonCode}`);
        expect(mail.text).toContain('Datatilsynet');
      }
    }
  });

  it('holds the same rules below the API: the workflow refuses an unlawful ground sent to it directly', async () => {
    const p = await person();
    const r = await file(p.auth, { type: 'access' });
    await waitFor(async () => (await get(r.id)).status === 'awaiting_decision', { what: 'the assessment' });
    const handle = s.client.workflow.getHandle(requestWorkflowId(r.id));
    const rejected = (args: Record<string, unknown>) => handle.executeUpdate('decide', { args: [{ decision: 'refuse', hasReason: true, decidedBy: 'operator', ...args }] }).catch((err: { cause?: { message?: string } }) => err.cause?.message);
    expect(await rejected({ reasonCode: 'legal_claims' })).toMatch(/^reasonCode: legal_claims is no ground/);
    expect(await rejected({ reasonCode: 'excessive' })).toMatch(/^evidence: /);
    expect((await get(r.id)).status).toBe('awaiting_decision');
  });

  it('needs evidence for "excessive": the repetitive flag or a note', async () => {
    const p = await person();
    const first = await file(p.auth, { type: 'rectification', details: { fields: { name: 'Et Navn' } } });
    const noEvidence = await decide(first.id, { decision: 'refuse', reasonCode: 'excessive', reason: 'For mange.' });
    expect(noEvidence.status).toBe(422);
    expect(((await noEvidence.json()) as { errors: { field: string }[] }).errors[0]!.field).toBe('evidence');
    expect((await decide(first.id, { decision: 'refuse', reasonCode: 'excessive', reason: 'For mange.', evidence: 'Sendt 40 gange i dag via formularen' })).status).toBe(200);
    // A second one of the same type is flagged repetitive: the flag is the evidence.
    const second = await file(p.auth, { type: 'rectification', details: { fields: { name: 'Et Navn' } } });
    await waitFor(async () => ((await get(second.id)).flags as string[]).includes('repetitive'), { what: 'the repetitive flag' });
    expect((await decide(second.id, { decision: 'refuse', reasonCode: 'excessive', reason: 'Gentagelse.' })).status).toBe(200);
  });
});

describe('closing an account (D1, D10)', () => {
  it('ends in erasure with no staff step, and the lifecycle workflow ends', async () => {
    const p = await person();
    const close = (password?: string) => app.request('/v1/me', { method: 'DELETE', headers: { ...p.auth, 'content-type': 'application/json' }, body: JSON.stringify(password === undefined ? {} : { password }) });
    // The bearer token alone does not erase an account for good: the password is asked again.
    expect((await close()).status).toBe(422);
    expect((await close('not my password')).status).toBe(403);
    expect((await s.sql`select count(*)::int as n from data_requests where customer_id = ${p.id}`)[0]!.n).toBe(0);
    const res = await close('correct horse battery staple');
    expect(res.status).toBe(202);
    const { requestId } = (await res.json()) as { requestId: string };
    await waitFor(async () => (await get(requestId)).status === 'answered', { what: 'the closure to be carried out' });
    expect(await get(requestId)).toMatchObject({ type: 'erasure', decision: 'approve' });
    await mailTo(p.email, /er gennemført/, 'the closure answer');
    // The answer goes out first; the contact details go right after it.
    const row = await waitFor(async () => {
      const [r] = await s.sql`select status, email from customers where id = ${p.id}`;
      return r?.status === 'erased' ? r : undefined;
    }, { what: 'the account to be erased' });
    expect(row).toEqual({ status: 'erased', email: null });
    const lifecycle = s.client.workflow.getHandle(`customer:${p.id}`);
    await waitFor(async () => (await lifecycle.describe()).status.name === 'COMPLETED', { what: 'the lifecycle to end' });
  });
});

describe('repetitive requests (Art. 12(5))', () => {
  it('flags a second request of the same type and shows staff the earlier one; refusing stays a staff decision', async () => {
    const p = await person();
    const first = await file(p.auth, { type: 'access' });
    const second = await file(p.auth, { type: 'access' });
    await waitFor(async () => ((await get(second.id)).flags as string[]).includes('repetitive'), { what: 'the repetitive flag' });
    expect(await get(second.id)).toMatchObject({ flags: ['repetitive'], earlierRequestIds: [first.id], status: 'awaiting_decision' });
    expect((await get(first.id)).flags).toEqual([]);
    const other = await file(p.auth, { type: 'restriction' });
    await waitFor(async () => (await get(other.id)).status === 'awaiting_decision', { what: 'the assessment' });
    expect((await get(other.id)).flags).toEqual([]);
  });
});

describe('privacy of the API', () => {
  it('shows a customer only their own requests: another’s id is 404, lists hold only their own', async () => {
    const a = await person();
    const b = await person();
    const ra = await file(a.auth, { type: 'access' });
    expect((await app.request(`/v1/requests/${ra.id}`, { headers: b.auth })).status).toBe(404);
    expect((await app.request(`/v1/requests/${ra.id}`, { headers: a.auth })).status).toBe(200);
    const listB = (await (await app.request('/v1/requests', { headers: b.auth })).json()) as { items: unknown[] };
    expect(listB.items).toEqual([]);
    expect((await decide(ra.id, { decision: 'approve' }, a.auth)).status).toBe(403);
    expect((await decide(ra.id, { decision: 'approve' }, support)).status).toBe(403);
    expect((await app.request('/v1/requests', json({ type: 'access', customerId: a.id }, b.auth))).status).toBe(403);
  });

  it('refuses bad requests and decisions with clear 4xx, starting nothing', async () => {
    const p = await person();
    const before = (await s.sql`select count(*)::int as n from data_requests`)[0]!.n;
    expect((await app.request('/v1/requests', json({ type: 'everything' }, p.auth))).status).toBe(422);
    expect((await app.request('/v1/requests', json({ type: 'rectification' }, p.auth))).status).toBe(422);
    expect((await app.request('/v1/requests', json({ type: 'access' }, support))).status).toBe(422);
    expect((await s.sql`select count(*)::int as n from data_requests`)[0]!.n).toBe(before);

    const r = await file(p.auth, { type: 'access' });
    const noReason = await decide(r.id, { decision: 'refuse', reasonCode: 'manifestly_unfounded' });
    expect(noReason.status).toBe(422);
    expect(((await noReason.json()) as { errors: { field: string }[] }).errors[0]!.field).toBe('reason');
    expect((await decide(r.id, { decision: 'refuse', reasonCode: 'because', reason: 'x' })).status).toBe(422);
    // Grounds beyond the law are refused outright (D10): "impractical" is no ground on its own.
    for (const old of ['impractical', 'disproportionate_effort', 'not_required_by_law']) expect((await decide(r.id, { decision: 'refuse', reasonCode: old, reason: 'x' })).status).toBe(422);
    expect((await decide(r.id, { decision: 'approve' })).status).toBe(200);
    expect((await decide(r.id, { decision: 'approve' })).status).toBe(409);
  });
});

describe('a caller without an account', () => {
  it('can have staff file a request, noting how identity was checked; the answer goes to the caller', async () => {
    const email = `caller-${randomUUID().slice(0, 8)}@ring.test`;
    const r = await file(support, { type: 'access', caller: { name: 'Ole Ringer', email, phone: '+45 20 30 40 50', identityCheck: 'Called back on the number in the recording', locale: 'en' } });
    await mailTo(email, 'We have received your request', 'the caller acknowledgement');
    const [row] = await s.sql`select requester, filed_by from data_requests where id = ${r.id}`;
    expect(row).toMatchObject({ filed_by: 'staff', requester: { identityCheck: 'Called back on the number in the recording' } });
    expect((await decide(r.id, { decision: 'approve' })).status).toBe(200);
    const answer = await mailTo(email, /carried out/, 'the caller export');
    expect(answer.text).toMatch(/\/v1\/exports\/[\w-]+/);
  });
});
