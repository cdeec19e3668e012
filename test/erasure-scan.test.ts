import { randomUUID } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { temporal } from '@temporalio/proto';
import { beforeAll, describe, expect, it } from 'vitest';
import { createActivities } from '../activities';
import { PLACES } from '../db/personal-data';
import { loginKey } from '../db/customers';
import { hashToken } from '../db/access-tokens';
import type { RecordingStore } from '../lib/recording-store';
import { appFor, json } from './support/api';
import type { TestStack } from './support/stack';
import { useStack } from './support/fixture';
import { uploadRecording } from './support/recordings';
import { awaitDecision, fileAndApprove, fileRequest } from './support/requests';
import { activate, registerCustomer, uniqueEmail, downloadInAccount } from './support/customers';
import { waitForMessage } from './support/mailbox';
import { waitFor } from './support/wait';
import { customerWorkflowId, disputeWorkflowId, policyWorkflowId, requestWorkflowId } from '../workflows/ids';

/**
 * Issue 9, D10, D15: erasure is proved by looking at the data. One person is put into every
 * place the personal-data map names, through the real API and workflows; after the erasure
 * every text and json column of every table, every file under DATA_DIR and the Temporal
 * histories of their runs are scanned for their name, addresses and number. The only hits
 * allowed are what the map keeps with a reason (a recording a dispute holds), and those go
 * when the dispute is resolved.
 */
let s: TestStack;
let app: ReturnType<typeof appFor>;
let support: { authorization: string };
let officer: { authorization: string };
let clientId: string;

const fixture = useStack(
  {
    REQUEST_SLA: 'PT1H',
    REQUEST_REMINDERS: 'PT30M',
    REQUEST_ESCALATION: 'PT50M',
    POLICY_NOTICE_PERIOD: 'PT2S',
    STAFF_EMAIL: `privacy-${randomUUID().slice(0, 8)}@topcall.test`,
  },
  { ownDatabase: true, worker: true, roles: ['support', 'privacy_officer'], client: true },
);
beforeAll(() => {
  ({ s, app, clientId, staff: { support, privacy_officer: officer } } = fixture);
});

/** Files a request as `auth` and, unless told otherwise, has the officer approve it. */
async function fileAndAnswer(auth: { authorization: string }, body: Record<string, unknown>, decide = true) {
  return decide ? (await fileAndApprove(app, auth, officer, body)).id : fileRequest(app, auth, body);
}

const upload = async (fields: Record<string, string>, seed: string) => (await uploadRecording(app, support, clientId, fields, seed)).id;

/** Every row of every table as text, with the table's name. */
async function everyRow(): Promise<{ table: string; row: Record<string, unknown>; text: string }[]> {
  const tables = await s.sql<{ name: string }[]>`select table_name as name from information_schema.tables where table_schema = 'public' and table_type = 'BASE TABLE'`;
  const out: { table: string; row: Record<string, unknown>; text: string }[] = [];
  for (const { name } of tables) {
    for (const row of await s.sql.unsafe(`select * from "${name}"`)) out.push({ table: name, row, text: JSON.stringify(row).toLowerCase() });
  }
  return out;
}

async function everyFile(dir: string): Promise<{ file: string; text: string }[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true }).catch(() => []);
  const files = entries.filter((e) => e.isFile()).map((e) => path.join(e.parentPath, e.name));
  return Promise.all(files.map(async (file) => ({ file, text: (await readFile(file)).toString('latin1').toLowerCase() + (await readFile(file, 'utf8')).toLowerCase() })));
}

async function historyBytes(workflowId: string): Promise<string> {
  const history = await s.client.workflow.getHandle(workflowId).fetchHistory();
  return Buffer.from(temporal.api.history.v1.History.encode(history).finish()).toString('utf8').toLowerCase();
}

describe('erasure leaves no trace outside what the map keeps with a reason', () => {
  it('puts one person into every place, erases them, and finds them nowhere else; resolving the dispute removes the held recording', async () => {
    const name = `Ingeborg Sletmig-${randomUUID().slice(0, 6)}`;
    const firstEmail = uniqueEmail('ingeborg');
    const secondEmail = uniqueEmail('ingeborg-ny');
    const phone = '+4548221077';
    const phoneAsTyped = '48 22 10 77';

    // Account and invitation (customerLifecycle, outbox), set password, log in.
    const who = await registerCustomer(app, support, { clientId, email: firstEmail, name, providedBy: 'Kunden selv, telefonisk' });
    const auth = await activate(app, who);
    // Failed logins, before and after the address changes.
    for (let i = 0; i < 2; i++) expect((await app.request('/v1/auth/login', json({ email: firstEmail, password: 'wrong password!' }))).status).toBe(401);

    // Recordings by account, by caller number only, and one a dispute holds.
    const byAccount = await upload({ customerId: who.id }, 'a');
    const byNumber = await upload({ callerNumber: phoneAsTyped }, 'b');
    const held = await upload({ customerId: who.id, callerNumber: phone }, 'c');
    const dispute = await app.request('/v1/disputes', json({ clientId, recordingIds: [held], reason: 'Klienten bestrider en aftale indgået i samtalen' }, support));
    expect(dispute.status).toBe(201);
    const disputeId = ((await dispute.json()) as { id: string }).id;

    // Call messages (D3), by account and by number.
    for (const body of [
      { clientId, customerId: who.id, callerName: name, callerNumber: phone, message: `${name} ringede om sin faktura`, sentAt: new Date().toISOString() },
      { clientId, callerName: name, callerNumber: phoneAsTyped, message: 'Ring venligst tilbage', sentAt: new Date().toISOString() },
    ]) {
      const res = await app.request('/v1/call-messages', json(body, support));
      expect(res.status, await res.clone().text()).toBe(201);
    }

    // A policy notice (policyChange campaign).
    const version = `erasure-${randomUUID().slice(0, 6)}`;
    const policy = await app.request('/v1/policies', json({ version, effectiveAt: new Date(Date.now() + 4_000).toISOString(), material: true, summary: 'Nye regler', text: 'Ny tekst' }, officer));
    expect(policy.status).toBe(202);
    await waitForMessage(firstEmail, (m) => m.text.includes(version), 'the policy notice');

    // Each request type; an email change (rectification); an export, downloaded.
    await fileAndAnswer(auth, { type: 'restriction', details: { note: `Jeg hedder ${name}` } });
    await fileAndAnswer(auth, { type: 'marketing_opt_out' }, false);
    const access = await fileAndAnswer(auth, { type: 'access' });
    await waitForMessage(firstEmail, (m) => m.text.includes(`/account/requests/${access}`), 'the access answer');
    const download = await downloadInAccount(app, { email: firstEmail }, access);
    expect(download.status).toBe(200);
    expect(Buffer.from(await download.arrayBuffer()).length).toBeGreaterThan(100);
    await fileAndAnswer(auth, { type: 'rectification', details: { fields: { email: secondEmail } } });
    await waitFor(async () => (await s.sql`select 1 from customers where id = ${who.id} and email = ${secondEmail}`).length > 0, { what: 'the new address' });
    expect((await app.request('/v1/auth/login', json({ email: secondEmail, password: 'another wrong one' }))).status).toBe(401);
    // A restricted person's recording is not played without an override (Art. 18).
    expect((await app.request(`/v1/recordings/${byAccount}/audio`, { headers: support })).status).toBe(403);
    expect((await app.request(`/v1/recordings/${byAccount}/audio?overrideReason=${encodeURIComponent('Klagesag: kvalitetskontrol af samtalen')}`, { headers: officer })).status).toBe(200);

    // An objection to the recording, refused on compelling grounds: every request type is in the data.
    const objectionId = await fileRequest(app, auth, { type: 'objection', details: { note: `${name} vil ikke optages` } });
    await awaitDecision(app, officer, objectionId);
    expect((await app.request(`/v1/requests/${objectionId}/decision`, json({ decision: 'refuse', reasonCode: 'compelling_grounds', reason: 'Optagelsen indgår i en verserende sag.' }, { ...officer, prefer: 'wait=30' }))).status).toBe(200);
    expect((await waitForMessage(secondEmail, (m) => m.text.includes(objectionId) && /afvist/.test(m.subject), 'the objection refusal')).text).toContain('GDPR art. 21, stk. 1');

    // A caller request by phone (staff), then the erasure, filed by staff with the number.
    await fileAndAnswer(support, { type: 'access', caller: { name, email: secondEmail, phone: phoneAsTyped, identityCheck: 'called back on the number' } });
    const erasure = await fileAndAnswer(support, { type: 'erasure', customerId: who.id, details: { phones: [phoneAsTyped] } });
    await waitFor(async () => ((await (await app.request(`/v1/requests/${erasure}`, { headers: officer })).json()) as { status: string }).status === 'answered', { what: 'the erasure to be answered' });
    const answer = await waitForMessage(secondEmail, (m) => m.text.includes(erasure) && /gennemført/.test(m.subject), 'the erasure answer');
    // 'answered' is recorded when the answer goes out; the contact details (that answer's outbox row among them) go just after.
    await waitFor(async () => (await s.sql<{ status: string }[]>`select status from customers where id = ${who.id}`)[0]?.status === 'erased', { what: 'the last contact details to go (forgetContact)' });
    expect(answer.text).toContain('2 samtaleoptagelse(r)');
    expect(answer.text).toContain(held);
    expect(answer.text).toContain('Datatilsynet');

    const outcome = ((await (await app.request(`/v1/requests/${erasure}`, { headers: officer })).json()) as { outcome: { erased: Record<string, number>; kept: Record<string, { ids?: string[] }> } }).outcome;
    expect(outcome.erased).toMatchObject({ customers: 1, recordings: 2, call_messages: 2, export_files: 2, customer_emails: 2 }); // two exports: their own and the one staff filed for them as a caller
    expect(outcome.erased.email_outbox).toBeGreaterThanOrEqual(8);
    expect(outcome.erased.login_failures).toBeGreaterThanOrEqual(3);
    expect(outcome.kept.recordings?.ids).toEqual([held]);

    // The scan: name, both addresses, the number in both forms.
    const needles = [name.toLowerCase(), firstEmail.toLowerCase(), secondEmail.toLowerCase(), phone, phone.slice(3)];
    const hits = (text: string) => needles.filter((n) => text.includes(n));
    const rowHits = (await everyRow()).filter((r) => hits(r.text).length > 0);
    // Kept with a reason: the held recording's row (GDPR 17(3)(e)), until its dispute is resolved.
    const unexpected = rowHits.filter((r) => !(r.table === 'recordings' && r.row.id === held));
    expect(unexpected.map((r) => `${r.table}: ${hits(r.text).join(', ')}`)).toEqual([]);
    const keys = [firstEmail, secondEmail].map((e) => loginKey('email', e).toString('hex'));
    expect(await s.sql`select 1 from login_failures where key_hash in (select decode(h, 'hex') from unnest(${keys}::text[]) h)`).toHaveLength(0);

    // Every file under DATA_DIR is of a kind the map names, and none names the person.
    const files = await everyFile(s.config.DATA_DIR);
    const fileKinds = PLACES.filter((p) => p.kind === 'files').map((p) => p.where);
    for (const { file } of files) {
      const rel = path.relative(s.config.DATA_DIR, file);
      expect(fileKinds.some((k) => rel === k || rel.startsWith(`${k}/`)), `${rel} is a kind of file the map names`).toBe(true);
    }
    expect(files.filter((f) => hits(f.text).length).map((f) => f.file)).toEqual([]);
    expect(await readdir(path.join(s.config.DATA_DIR, 'exports')).catch(() => [])).toEqual([]);

    // The histories of every run that concerned them.
    const requestIds = (await s.sql<{ id: string }[]>`select id from data_requests where customer_id = ${who.id} or id = ${erasure} or requester is not null`).map((r) => r.id);
    for (const id of [customerWorkflowId(who.id), disputeWorkflowId(disputeId), policyWorkflowId(version), ...requestIds.map(requestWorkflowId)]) {
      expect(hits(await historyBytes(id)), `history of ${id}`).toEqual([]);
    }

    // Resolving the dispute deletes the held recording at once, though its three months have not passed.
    const resolved = await app.request(`/v1/disputes/${disputeId}/resolve`, json({ resolution: 'Forliget' }, officer));
    expect(resolved.status).toBe(200);
    expect(((await resolved.json()) as { deleted: string[] }).deleted).toEqual([held]);
    const left = (await everyRow()).filter((r) => hits(r.text).length > 0);
    expect(left.map((r) => r.table)).toEqual([]);
    expect(await s.store.exists(`${held.slice(0, 2)}/${held}.audio`)).toBe(false);
    expect(byNumber).toBeTruthy();
  });
});

describe('a retried erasure reports the same counts', () => {
  it('an attempt that dies half-way changes nothing; the retry does and says everything', async () => {
    const who = await registerCustomer(app, support, { clientId, email: uniqueEmail('retry'), name: 'Retry Person', providedBy: 'Klienten' });
    const recordings = [await upload({ customerId: who.id }, 'r1'), await upload({ customerId: who.id }, 'r2'), await upload({ customerId: who.id }, 'r3')];
    const id = await fileRequest(app, support, { type: 'erasure', customerId: who.id });
    await awaitDecision(app, officer, id);

    // The first attempt's store fails after the first audio file (a fake only to inject the fault).
    const failing: RecordingStore = {
      ...s.store,
      deleteMany: async (keys, db) => {
        await s.store.deleteMany(keys.slice(0, 1), db);
        throw new Error('disk went away');
      },
    };
    const activities = (store: RecordingStore) => createActivities({ sql: s.sql, mailer: { send: async () => undefined, close() {} } as never, store, config: s.config });
    const attempt = (store: RecordingStore) => activities(store).executeRequest({ requestId: id });
    // Only an approved request is carried out (issue 12): the officer's decision, recorded as the workflow would.
    const [officerToken] = await s.sql<{ id: string }[]>`select id from access_tokens where token_hash = ${hashToken(officer.authorization.replace('Bearer ', ''))}`;
    await activities(s.store).recordDecision({ requestId: id, decision: 'approve', reasonCode: null, decidedBy: officerToken!.id });
    await expect(attempt(failing)).rejects.toThrow('disk went away');
    expect((await s.sql`select count(*)::int as n from recordings where customer_id = ${who.id} and status = 'retained'`)[0]!.n).toBe(3);
    expect((await s.sql`select email from customers where id = ${who.id}`)[0]!.email).toBe(who.email);

    const first = (await attempt(s.store)) as { erased: Record<string, number> };
    expect(first.erased.recordings).toBe(3);
    expect(await attempt(s.store)).toEqual(first);
    const receipts = await s.sql`select recording_id from deletion_receipts where recording_id = any(${recordings}::uuid[]) and reason = 'erasure'`;
    expect(receipts).toHaveLength(3);
  });
});
