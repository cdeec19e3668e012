import { randomUUID } from 'node:crypto';
import { mkdir, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { appFor, json } from './support/api';
import type { TestStack } from './support/stack';
import { useStack } from './support/fixture';
import { fakeAudio, uploadRecording } from './support/recordings';
import { fileAndApprove as approve } from './support/requests';
import { activate, registerCustomer, uniqueEmail } from './support/customers';
import { waitForMessage } from './support/mailbox';
import { waitFor } from './support/wait';

/**
 * Issue 9: restriction (Art. 18) and objection (Art. 21) are proved by trying the forbidden
 * thing, and retention (D15) by looking at what the Schedule's workflow left.
 */
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

const upload = (fields: Record<string, string>, seed: string) => uploadRecording(app, support, clientId, fields, seed);
const fileAndApprove = (auth: { authorization: string }, body: Record<string, unknown>) => approve(app, auth, officer, body);

const audio = (id: string, who: { authorization: string }, reason?: string) =>
  app.request(`/v1/recordings/${id}/audio${reason ? `?overrideReason=${encodeURIComponent(reason)}` : ''}`, { headers: who });

describe('restriction (Art. 18): stored, not played without an officer’s recorded override', () => {
  it('refuses a restricted account holder’s recording, plays it with an override, and records who and why', async () => {
    const who = await registerCustomer(app, support, { clientId, email: uniqueEmail('restrict'), providedBy: 'Personen selv, telefonisk' });
    const auth = await activate(app, who);
    const rec = await upload({ customerId: who.id }, 'x');
    expect((await audio(rec.id, support)).status).toBe(200); // not restricted yet

    const r = await fileAndApprove(auth, { type: 'restriction' });
    expect(r.outcome).toEqual({ accountRestricted: true, numbersRestricted: 0 });
    const answer = await waitForMessage(who.email, (m) => m.text.includes(r.id) && /gennemført/.test(m.subject), 'the restriction answer');
    expect(answer.text).toContain('begrænset behandlingen af dine kontodata');

    const refused = await audio(rec.id, support);
    expect(refused.status).toBe(403);
    expect(((await refused.json()) as { type: string }).type).toMatch(/restricted$/);
    expect((await audio(rec.id, officer)).status).toBe(403); // an officer too needs a reason
    expect((await audio(rec.id, support, 'Support wants to listen again')).status).toBe(403); // only an officer may override
    const played = await audio(rec.id, officer, 'Klagesag 2026-114: kvalitetskontrol');
    expect(played.status).toBe(200);
    expect(Buffer.from(await played.arrayBuffer()).equals(fakeAudio('x'))).toBe(true);
    const [override] = await s.sql`select recording_id, reason from restriction_overrides where recording_id = ${rec.id}`;
    expect(override).toEqual({ recording_id: rec.id, reason: 'Klagesag 2026-114: kvalitetskontrol' });

    const me = (await (await app.request('/v1/me', { headers: auth })).json()) as { processingRestricted: boolean };
    expect(me.processingRestricted).toBe(true);

    // Lifting it tells the person first (Art. 18(3)), then lifts; asking twice lifts once.
    expect((await app.request(`/v1/requests/${r.id}/lift-restriction`, { method: 'POST', headers: support })).status).toBe(403);
    for (let i = 0; i < 2; i++) expect((await app.request(`/v1/requests/${r.id}/lift-restriction`, { method: 'POST', headers: officer })).status).toBe(202);
    const notice = await waitForMessage(who.email, (m) => /ophæves/.test(m.subject), 'the notice before lifting');
    expect(notice.text).toContain(r.id);
    await waitFor(async () => (await audio(rec.id, support)).status === 200, { what: 'the recording to play again once lifted' });
    const [order] = await s.sql`
      select o.sent_at <= a.at as "toldFirst" from email_outbox o, audit_log a
      where o.key = ${`request:${r.id}:restriction-lifted`} and a.action = 'restriction_lifted' and a.subject_id = ${r.id}`;
    expect(order).toEqual({ toldFirst: true });
    expect((await s.sql`select count(*)::int as n from email_outbox where key = ${`request:${r.id}:restriction-lifted`}`)[0]!.n).toBe(1);
    const other = await fileAndApprove(auth, { type: 'access' });
    expect((await app.request(`/v1/requests/${other.id}/lift-restriction`, { method: 'POST', headers: officer })).status).toBe(409);
  });

  it('restricts a caller without an account by their number, in whatever form it was typed', async () => {
    const rec = await upload({ callerNumber: '+45 31 11 22 33' }, 'y');
    const r = await fileAndApprove(support, { type: 'restriction', caller: { name: 'Ole Opringer', email: uniqueEmail('ole'), phone: '31112233', identityCheck: 'called back' } });
    expect(r.outcome).toEqual({ accountRestricted: false, numbersRestricted: 1 });
    expect((await audio(rec.id, support)).status).toBe(403);
    expect((await s.sql`select count(*)::int as n from restricted_numbers`)[0]!.n).toBeGreaterThanOrEqual(1);
    // Only a keyed hash is kept, never the number.
    expect(JSON.stringify(await s.sql`select encode(phone_hash, 'escape') as h from restricted_numbers`)).not.toContain('31112233');
  });

  it('tells a caller with neither account nor number that nothing could be restricted', async () => {
    const email = uniqueEmail('nobody');
    const r = await fileAndApprove(support, { type: 'restriction', caller: { name: 'Nogen', email, identityCheck: 'email reply' } });
    expect(r.outcome).toEqual({ accountRestricted: false, numbersRestricted: 0 });
    const answer = await waitForMessage(email, (m) => m.text.includes(r.id) && /gennemført/.test(m.subject), 'the answer');
    expect(answer.text).toContain('intet er ændret');
    expect(answer.text).not.toContain('Vi har begrænset');
  });
});

describe('objection to the recording (Art. 21), upheld', () => {
  it('deletes the person’s unheld recordings, keeps a held one, and a later call from their number goes at the next sweep', async () => {
    const who = await registerCustomer(app, support, { clientId, email: uniqueEmail('object'), providedBy: 'Klienten (Hansen VVS)' });
    const mine = await upload({ customerId: who.id }, 'o1');
    const fromNumber = await upload({ callerNumber: '+45 22 33 44 55' }, 'o2');
    const held = await upload({ callerNumber: '22334455' }, 'o3');
    const other = await upload({ callerNumber: '+45 99 88 77 66' }, 'o4');
    expect((await app.request('/v1/disputes', json({ clientId, recordingIds: [held.id], reason: 'Uenighed om en bestilling' }, support))).status).toBe(201);

    const r = await fileAndApprove(support, { type: 'objection', customerId: who.id, details: { phones: ['22 33 44 55'] } });
    expect(r.outcome).toMatchObject({ erased: { recordings: 2 }, kept: { recordings: { ids: [held.id], reason: 'legal_claims' } }, doNotKeepNumbers: 1, accountMarked: true });
    for (const id of [mine.id, fromNumber.id]) {
      expect(await (await app.request(`/v1/recordings/${id}`, { headers: support })).json()).toMatchObject({ status: 'deleted', receipt: { reason: 'objection' } });
    }
    expect(await (await app.request(`/v1/recordings/${held.id}`, { headers: support })).json()).toMatchObject({ status: 'held' });
    expect(await (await app.request(`/v1/recordings/${other.id}`, { headers: support })).json()).toMatchObject({ status: 'retained' });
    const answer = await waitForMessage(who.email, (m) => m.text.includes(r.id) && /gennemført/.test(m.subject), 'the objection answer');
    expect(answer.text).toContain('Fremtidige opkald fra 1 telefonnummer');
    expect(answer.text).toContain(held.id);

    // A later call from the number is due at once and the next sweep deletes it.
    const later = await upload({ callerNumber: '0045 22334455' }, 'o5');
    expect(Date.parse(later.deleteAfter)).toBeLessThanOrEqual(Date.now());
    const laterByAccount = await upload({ customerId: who.id }, 'o6');
    expect(Date.parse(laterByAccount.deleteAfter)).toBeLessThanOrEqual(Date.now());
    await s.client.workflow.execute('retentionSweep', { taskQueue: s.config.TEMPORAL_TASK_QUEUE, workflowId: `sweep-${randomUUID()}`, args: [{ batchSize: 50 }] });
    for (const id of [later.id, laterByAccount.id]) expect(await (await app.request(`/v1/recordings/${id}`, { headers: support })).json()).toMatchObject({ status: 'deleted' });
    expect(await (await app.request(`/v1/recordings/${other.id}`, { headers: support })).json()).toMatchObject({ status: 'retained' });
    expect(await (await app.request(`/v1/recordings/${held.id}`, { headers: support })).json()).toMatchObject({ status: 'held' });
  });
});

describe('retention of everything else (D15): the data-retention Schedule’s workflow', () => {
  it('removes what is past its period and leaves the rest; the counts show in the API', async () => {
    const old = new Date(Date.now() - 2 * 365 * 86_400_000);
    const tag = randomUUID().slice(0, 8);
    await s.sql`insert into email_outbox (key, message_id, recipient, category, subject, text_body, status, created_at)
                values (${`test:${tag}:old`}, ${`<old-${tag}@t>`}, 'old@kunde.test', 'service', 'Gammel', 'Hej Gammel', 'sent', ${old}),
                       (${`test:${tag}:new`}, ${`<new-${tag}@t>`}, 'new@kunde.test', 'service', 'Ny', 'Hej Ny', 'sent', now())`;
    await s.sql`insert into login_failures (key_hash, at) values (decode(md5('old'), 'hex'), ${old}), (decode(md5('new'), 'hex'), now())`;
    const caller = await s.sql`insert into call_messages (client_id, channel, body, sent_at) values (${clientId}, 'sms', 'gammel besked', ${old}), (${clientId}, 'sms', 'ny besked', now()) returning id`;
    expect(caller).toHaveLength(2);
    const request = randomUUID();
    await s.sql`insert into data_requests (id, type, status, received_at, due_at, details, requester, filed_by, answered_at)
                values (${request}, 'access', 'answered', ${old}, ${old}, ${s.sql.json({ note: 'min gamle note' })}, ${s.sql.json({ name: 'Gammel Opringer', email: 'gammel@kunde.test', identityCheck: 'x' })}, 'staff', ${old})`;
    const exportFile = path.join(s.config.DATA_DIR, 'exports', `${tag}.zip`);
    await mkdir(path.dirname(exportFile), { recursive: true });
    await writeFile(exportFile, 'zip');
    await s.sql`insert into export_packages (id, request_id, token_hash, file_key, bytes, sha256, expires_at)
                values (${randomUUID()}, ${request}, decode(md5(${tag}), 'hex'), ${`exports/${tag}.zip`}, 3, 'x', now() - interval '1 minute')`;

    const counts = (await s.client.workflow.execute('dataRetentionSweep', { taskQueue: s.config.TEMPORAL_TASK_QUEUE, workflowId: `data-retention-${tag}`, args: [] })) as Record<string, number>;
    expect(counts).toMatchObject({ email_outbox: 1, login_failures: 1, call_messages: 1, data_requests: 1, export_files: 1 });

    expect(await s.sql`select recipient, text_body from email_outbox where key like ${`test:${tag}:%`} order by key`).toEqual([
      { recipient: 'new@kunde.test', text_body: 'Hej Ny' },
      { recipient: '[erased]', text_body: '[erased]' },
    ]);
    expect(await s.sql`select body from call_messages where client_id = ${clientId} and body like '%besked' order by body`).toEqual([{ body: 'ny besked' }]);
    expect(await s.sql`select details, requester from data_requests where id = ${request}`).toEqual([{ details: {}, requester: { erased: true } }]);
    await expect(stat(exportFile)).rejects.toThrow();

    const view = (await (await app.request('/v1/retention/data', { headers: support })).json()) as { places: { id: string; retention: string }[]; removed: Record<string, number> };
    expect(view.removed).toMatchObject({ email_outbox: 1, login_failures: 1, call_messages: 1, data_requests: 1, export_files: 1 });
    expect(view.places.map((p) => p.id)).toEqual(expect.arrayContaining(['email_outbox', 'login_failures', 'call_messages', 'recordings']));
  });
});
