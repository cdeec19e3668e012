import { randomUUID } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { appFor, json } from './support/api';
import type { TestStack } from './support/stack';
import { useStack } from './support/fixture';
import { seedRecordings, uploadRecording } from './support/recordings';
import { activate, downloadInAccount, registerCustomer, uniqueEmail } from './support/customers';
import { awaitDecision, fileRequest } from './support/requests';
import { waitFor } from './support/wait';
import { hashToken } from '../db/access-tokens';
import { appendLedger } from '../db/audit-ledger';
import { createSql } from '../db/index';
import { accessRequestInput } from '../api/file-request';
import { decideUpdate } from '../workflows/access-request';
import { resolveUpdate } from '../workflows/dispute';
import { disputeWorkflowId, requestWorkflowId } from '../workflows/ids';
import { RequestStatus } from '../workflows/search-attributes';
import { updateRefusal } from './support/updates';

/**
 * Issue 12: the append-only, hash-chained audit ledger, and roles that hold below the API — a
 * decision, a resolution or an automatic approval sent straight to Temporal by someone who may
 * not make it changes nothing in Postgres and is kept in the ledger as a refused attempt.
 */
let s: TestStack;
let app: ReturnType<typeof appFor>;
let support: { authorization: string; token: string };
let officer: { authorization: string; token: string };
let clientId: string;

const PERSON = { name: 'Karen Ledgerby Blixen', phone: '+4520123456' };

const fixture = useStack(
  { REQUEST_SLA: 'PT1H', REQUEST_REMINDERS: 'PT30M', REQUEST_ESCALATION: 'PT50M', STAFF_EMAIL: `privacy-${randomUUID().slice(0, 8)}@topcall.test` },
  { ownDatabase: true, worker: true, roles: ['support', 'privacy_officer'], client: true },
);
beforeAll(() => {
  ({ s, app, clientId, staff: { support, privacy_officer: officer } } = fixture);
});

const tokenIdOf = async (auth: { token: string }) => (await s.sql<{ id: string }[]>`select id from access_tokens where token_hash = ${hashToken(auth.token)}`)[0]!.id;

interface Row {
  seq: number;
  actorType: string;
  actorId: string | null;
  actorRole: string | null;
  action: string;
  outcome: string;
  objectType: string;
  objectId: string;
}
/** The acts on a record; the reads of it (the officer polling a request) are test/staff-reads.test.ts's. */
const ledgerOf = (objectId: string) =>
  s.sql<Row[]>`select seq::int as seq, actor_type as "actorType", actor_id as "actorId", actor_role as "actorRole", action, outcome, object_type as "objectType", object_id as "objectId"
               from audit_ledger where object_id = ${objectId} and action not like '%.read' order by seq`;

const verify = async () => (await (await app.request('/v1/audit/verify', { headers: officer })).json()) as { valid: boolean; entries: number; brokenAt?: number };

describe('roles below the API: a request decision sent straight to Temporal', () => {
  it('changes nothing for a support actor, an unknown actor or free text, and is kept as refused; the officer through the API decides', async () => {
    const person = await registerCustomer(app, support, { clientId, email: uniqueEmail('decide') });
    const id = await fileRequest(app, support, { type: 'access', customerId: person.id });
    await awaitDecision(app, officer, id);
    const handle = s.client.workflow.getHandle(requestWorkflowId(id));
    const supportId = await tokenIdOf(support);
    const madeUp = randomUUID();
    for (const decidedBy of [supportId, madeUp, 'mallory@evil.test']) {
      expect(await updateRefusal(handle.executeUpdate(decideUpdate, { args: [{ decision: 'approve', decidedBy }] }))).toBe('ActorNotAllowed');
    }
    // The data: still awaiting a decision, nothing decided, no export built.
    const [row] = await s.sql`select status, decision, decided_by from data_requests where id = ${id}`;
    expect(row).toEqual({ status: 'awaiting_decision', decision: null, decided_by: null });
    expect(await s.sql`select 1 from export_packages where request_id = ${id}`).toHaveLength(0);
    // The run itself still waits for a decision (Postgres answers reads; the run's status is its search attribute).
    expect((await handle.describe()).typedSearchAttributes.get(RequestStatus)).toBe('awaiting_decision');

    const refused = await ledgerOf(id);
    expect(refused.map((r) => [r.action, r.outcome, r.actorType, r.actorId, r.actorRole])).toEqual([
      ['request.decide', 'refused', 'staff', supportId, 'support'],
      ['request.decide', 'refused', 'unknown', madeUp, null],
      ['request.decide', 'refused', 'unknown', null, null],
    ]);

    // The refused attempts block nothing: the privacy officer's decision goes through the API.
    const decided = await app.request(`/v1/requests/${id}/decision`, json({ decision: 'approve' }, { ...officer, prefer: 'wait=30' }));
    expect(decided.status, await decided.clone().text()).toBe(200);
    expect(await s.sql`select 1 from export_packages where request_id = ${id}`).toHaveLength(1);
    const officerId = await tokenIdOf(officer);
    const done = (await ledgerOf(id)).filter((r) => r.outcome === 'done');
    expect(done.map((r) => [r.action, r.actorType, r.actorId, r.actorRole])).toEqual([
      ['request.decide', 'staff', officerId, 'privacy_officer'],
      ['request.execute', 'system', null, 'access_request'],
    ]);
  });

  it('an automatic approval started straight in Temporal for a request not filed that way erases nothing', async () => {
    const person = await registerCustomer(app, support, { clientId, email: uniqueEmail('forged-closure') });
    const id = await fileRequest(app, support, { type: 'erasure', customerId: person.id });
    await awaitDecision(app, officer, id);
    const [r] = await s.sql<{ receivedAt: Date; dueAt: Date }[]>`select received_at as "receivedAt", due_at as "dueAt" from data_requests where id = ${id}`;
    // Someone with Temporal access starts a second run for the same request, claiming the person closed their account.
    const forged = await s.client.workflow.start('accessRequest', {
      workflowId: `forged-${randomUUID()}`,
      taskQueue: s.config.TEMPORAL_TASK_QUEUE,
      args: [accessRequestInput(s.config, { requestId: id, type: 'erasure', customerId: person.id, receivedAt: r!.receivedAt, dueAt: r!.dueAt, filedAt: new Date(), autoApprove: true, autoApproveReason: 'account-closure' })],
    });
    await expect(forged.result()).rejects.toThrow();
    const [after] = await s.sql`select r.status, r.decision, c.status as customer, c.email is not null as "hasEmail" from data_requests r join customers c on c.id = r.customer_id where r.id = ${id}`;
    expect(after).toEqual({ status: 'awaiting_decision', decision: null, customer: 'active', hasEmail: true });
    expect((await ledgerOf(id)).map((e) => [e.action, e.outcome, e.actorType, e.actorRole])).toEqual([['request.decide', 'refused', 'customer', 'account-closure']]);
  });

  it('the person’s own account closure is approved with no staff step, as the ledger says', async () => {
    const person = await registerCustomer(app, support, { clientId, email: uniqueEmail('closure') });
    const bearer = await activate(app, person);
    const res = await app.request('/v1/me', { method: 'DELETE', headers: { ...bearer, 'content-type': 'application/json' }, body: JSON.stringify({ password: 'correct horse battery staple' }) });
    expect(res.status, await res.clone().text()).toBe(202);
    const { requestId } = (await res.json()) as { requestId: string };
    const decided = await waitFor(async () => (await ledgerOf(requestId)).find((e) => e.action === 'request.decide'), { what: 'the closure’s decision in the ledger' });
    expect(decided).toMatchObject({ outcome: 'done', actorType: 'customer', actorId: person.id, actorRole: 'account-closure' });
    await waitFor(async () => (await s.sql`select 1 from customers where id = ${person.id} and status = 'erased'`).length > 0, { what: 'the account erased' });
  });
});

describe('roles below the API: a dispute resolution sent straight to Temporal', () => {
  it('keeps the holds for a support actor, an unknown actor or none, records the attempts; the officer resolves and the deletion is in the ledger', async () => {
    const [recordingId] = await seedRecordings(s, { clientId, count: 1, recordedAt: new Date(Date.now() - 200 * 86_400_000), retention: 'P3M' });
    const opened = await app.request('/v1/disputes', json({ clientId, recordingIds: [recordingId], reason: 'The caller disputes what was agreed' }, support));
    expect(opened.status, await opened.clone().text()).toBe(201);
    const { id: disputeId } = (await opened.json()) as { id: string };
    const handle = s.client.workflow.getHandle(disputeWorkflowId(disputeId));
    const supportId = await tokenIdOf(support);
    expect(await updateRefusal(handle.executeUpdate(resolveUpdate, { args: [{ resolvedBy: supportId }] }))).toBe('ActorNotAllowed');
    expect(await updateRefusal(handle.executeUpdate(resolveUpdate, { args: [{ resolvedBy: randomUUID() }] }))).toBe('ActorNotAllowed');
    expect(await updateRefusal(handle.executeUpdate('resolve'))).toBe('ActorNotAllowed');

    // The data: the dispute is open, its hold in force, the recording (past its deadline) still there.
    expect((await s.sql`select status from disputes where id = ${disputeId}`)[0]).toEqual({ status: 'open' });
    expect(await s.sql`select 1 from recording_holds where dispute_id = ${disputeId} and released_at is null`).toHaveLength(1);
    expect((await s.sql`select status from recordings where id = ${recordingId!}`)[0]).toEqual({ status: 'retained' });
    expect((await (await app.request(`/v1/recordings/${recordingId}`, { headers: support })).json()) as { status: string }).toMatchObject({ status: 'held' });
    expect((await ledgerOf(disputeId)).map((e) => [e.action, e.outcome, e.actorType, e.actorRole])).toEqual([
      ['dispute.resolve', 'refused', 'staff', 'support'],
      ['dispute.resolve', 'refused', 'unknown', null],
      ['dispute.resolve', 'refused', 'unknown', null],
    ]);

    const resolved = await app.request(`/v1/disputes/${disputeId}/resolve`, json({ resolution: 'Settled with the caller' }, officer));
    expect(resolved.status, await resolved.clone().text()).toBe(200);
    expect(((await resolved.json()) as { deleted: string[] }).deleted).toEqual([recordingId]);
    expect((await ledgerOf(disputeId)).filter((e) => e.outcome === 'done')).toMatchObject([{ action: 'dispute.resolve', actorType: 'staff', actorId: await tokenIdOf(officer), actorRole: 'privacy_officer' }]);
    expect(await ledgerOf(recordingId!)).toMatchObject([{ action: 'recording.delete', outcome: 'done', actorType: 'system', actorRole: 'dispute_resolved', objectType: 'recording' }]);
  });
});

describe('the ledger records acts on personal data, and no personal values', () => {
  it('has a disclosure, an audio download, a decision and an export download, none naming the person', async () => {
    const email = uniqueEmail('ledger-person');
    const person = await registerCustomer(app, support, { clientId, email, name: PERSON.name });
    const recording = await uploadRecording(app, support, clientId, { customerId: person.id, callerNumber: PERSON.phone }, 'l');
    const audio = await app.request(`/v1/recordings/${recording.id}/audio`, { headers: support });
    expect(audio.status).toBe(200);
    await audio.arrayBuffer();
    expect(await ledgerOf(recording.id)).toMatchObject([{ action: 'recording.audio_download', outcome: 'done', actorType: 'staff', actorRole: 'support' }]);

    const rec = await app.request('/v1/recipients', json({ type: 'authority', name: 'Politiet', email: uniqueEmail('politi'), legalBasis: 'retsplejeloven' }, officer));
    expect(rec.status).toBe(201);
    const disclosed = await app.request(
      '/v1/disclosures',
      json({ recipientId: ((await rec.json()) as { id: string }).id, category: 'kontaktoplysninger', legalBasis: 'retskendelse', customerIds: [person.id], callerNumbers: [PERSON.phone], disclosedAt: new Date().toISOString() }, officer),
    );
    expect(disclosed.status, await disclosed.clone().text()).toBe(201);
    const { id: disclosureId } = (await disclosed.json()) as { id: string };
    expect(await ledgerOf(disclosureId)).toMatchObject([{ action: 'disclosure.record', outcome: 'done', actorType: 'staff', actorRole: 'privacy_officer', objectType: 'disclosure' }]);

    await activate(app, person);
    const requestId = await fileRequest(app, support, { type: 'access', customerId: person.id });
    await awaitDecision(app, officer, requestId);
    const decided = await app.request(`/v1/requests/${requestId}/decision`, json({ decision: 'approve' }, { ...officer, prefer: 'wait=30' }));
    expect(decided.status).toBe(200);
    const download = await downloadInAccount(app, person, requestId);
    expect(download.status).toBe(200);
    await download.arrayBuffer();
    const [pkg] = await s.sql<{ id: string }[]>`select id from export_packages where request_id = ${requestId}`;
    expect(await ledgerOf(pkg!.id)).toMatchObject([{ action: 'export.download', outcome: 'done', actorType: 'customer', actorId: person.id, objectType: 'export' }]);
    expect((await ledgerOf(requestId)).map((e) => e.action)).toEqual(['request.decide', 'request.execute']);

    // The whole ledger, every column as text: the person's name, address and number are nowhere.
    const everything = (await s.sql<{ t: string }[]>`select row_to_json(l)::text as t from audit_ledger l`).map((r) => r.t).join('\n');
    expect(everything.length).toBeGreaterThan(0);
    for (const value of [PERSON.name, 'Ledgerby', email, email.split('@')[0]!, PERSON.phone, PERSON.phone.slice(3), 'mallory@evil.test', 'Politiet']) {
      expect(everything.toLowerCase(), `the ledger holds ${value}`).not.toContain(value.toLowerCase());
    }

    // Staff read it through the API, by object.
    const listed = (await (await app.request(`/v1/audit?objectType=request&objectId=${requestId}`, { headers: officer })).json()) as { items: { action: string; actor: { type: string } }[] };
    // The officer's reads while waiting for the assessment are listed too; the acts are these.
    expect(listed.items.map((e) => e.action).filter((a) => a !== 'request.read')).toEqual(['request.decide', 'request.execute']);
    expect((await app.request('/v1/audit', { headers: support })).status).toBe(403);
  });
});

describe('the ledger is append-only and hash-chained', () => {
  // Last in the file: the forged entry it leaves cannot be removed (that is the point).
  it('verifies when untouched, and is for privacy officers and admins only', async () => {
    await s.sql.begin((tx) =>
      appendLedger(
        tx,
        Array.from({ length: 5 }, () => ({ actor: { type: 'system', id: null, role: 'retention' }, action: 'recording.delete', outcome: 'done', objectType: 'recording', objectId: randomUUID() }) as const),
      ),
    );
    const verdict = await verify();
    expect(verdict).toMatchObject({ valid: true });
    expect(verdict.entries).toBeGreaterThanOrEqual(5);
    expect(verdict).not.toHaveProperty('brokenAt');
    expect((await app.request('/v1/audit/verify', { headers: support })).status).toBe(403);
  });

  it('stays one valid chain under concurrent appends from separate processes’ pools, and a rolled-back act leaves no entry', async () => {
    const before = (await verify()).entries;
    // Three pools stand in for three API or worker processes, each appending in transactions of its own.
    const pools = [0, 1, 2].map(() => createSql(s.config.DATABASE_URL, { max: 4 }));
    try {
      await Promise.all(
        pools.flatMap((pool) =>
          Array.from({ length: 20 }, () =>
            pool.begin((tx) => appendLedger(tx, [{ actor: { type: 'system', id: null, role: 'retention' }, action: 'recording.delete', outcome: 'done', objectType: 'recording', objectId: randomUUID() }])),
          ),
        ),
      );
      const objectId = randomUUID();
      await expect(
        pools[0]!.begin(async (tx) => {
          await appendLedger(tx, [{ actor: { type: 'system', id: null, role: 'retention' }, action: 'recording.delete', outcome: 'done', objectType: 'recording', objectId }]);
          throw new Error('the act failed after its entry was appended');
        }),
      ).rejects.toThrow('the act failed');
      expect(await ledgerOf(objectId)).toEqual([]);
    } finally {
      await Promise.all(pools.map((p) => p.end()));
    }
    expect(await verify()).toMatchObject({ valid: true, entries: before + 60 });
  });

  it('refuses UPDATE, DELETE and TRUNCATE in the database itself', async () => {
    const seq = (await s.sql<{ seq: number }[]>`select min(seq)::int as seq from audit_ledger`)[0]!.seq;
    await expect(s.sql`update audit_ledger set outcome = 'refused' where seq = ${seq}`).rejects.toThrow(/append-only: UPDATE/);
    await expect(s.sql`delete from audit_ledger where seq = ${seq}`).rejects.toThrow(/append-only: DELETE/);
    await expect(s.sql`truncate audit_ledger`).rejects.toThrow(/append-only: TRUNCATE/);
    await expect(s.sql`insert into audit_ledger (seq, at, actor_type, actor_role, action, outcome, object_type, object_id, prev_hash, hash)
                       values (999999, now(), 'staff', 'karen@example.dk', 'request.decide', 'done', 'request', ${randomUUID()}, ${'0'.repeat(64)}, ${'1'.repeat(64)})`).rejects.toThrow(/check constraint/);
    expect((await verify()).valid).toBe(true);
  });

  it('an entry edited behind the trigger’s back breaks verification at that entry', async () => {
    const seq = (await s.sql<{ seq: number }[]>`select (min(seq) + 2)::int as seq from audit_ledger`)[0]!.seq;
    // A superuser can switch the trigger off; the chain still tells.
    const behindTrigger = (stmt: string) =>
      s.sql.begin(async (tx) => {
        await tx.unsafe('alter table audit_ledger disable trigger audit_ledger_no_update_or_delete');
        await tx.unsafe(stmt);
        await tx.unsafe('alter table audit_ledger enable trigger audit_ledger_no_update_or_delete');
      });
    await behindTrigger(`update audit_ledger set outcome = case outcome when 'done' then 'refused' else 'done' end where seq = ${seq}`);
    try {
      expect(await verify()).toMatchObject({ valid: false, brokenAt: seq });
    } finally {
      await behindTrigger(`update audit_ledger set outcome = case outcome when 'done' then 'refused' else 'done' end where seq = ${seq}`);
    }
    expect((await verify()).valid).toBe(true);
  });

  it('a forged entry added with a plain INSERT breaks verification where it sits', async () => {
    const [head] = await s.sql<{ seq: number; hash: string }[]>`select seq::int as seq, hash from audit_ledger order by seq desc limit 1`;
    const forgedSeq = head!.seq + 1;
    await s.sql`insert into audit_ledger (seq, at, actor_type, actor_id, actor_role, action, outcome, object_type, object_id, prev_hash, hash)
                values (${forgedSeq}, now(), 'staff', ${await tokenIdOf(officer)}, 'privacy_officer', 'request.decide', 'done', 'request', ${randomUUID()}, ${head!.hash}, ${'ab'.repeat(32)})`;
    expect(await verify()).toMatchObject({ valid: false, brokenAt: forgedSeq });
  });
});
