import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../api/app';
import { PendingStarts } from '../api/start';
import { appFor, json, staffAuth } from './support/api';
import { silentLog, type TestStack } from './support/stack';
import { useStack } from './support/fixture';
import { activate, registerCustomer, uniqueEmail } from './support/customers';
import { waitFor } from './support/wait';
import { awaitDecision } from './support/requests';
import { messagesTo, rejectRecipients, releaseRecipients, waitForMessage } from './support/mailbox';
import { createActivities } from '../activities';
import { ensureWorkflowStartsSchedule } from '../worker/schedules';
import { requestWorkflowId, WORKFLOW_STARTS_SCHEDULE_ID } from '../workflows/ids';

/**
 * Issue 13: a POST that starts a workflow is safe to retry (Idempotency-Key), and a row is never
 * left without its workflow — nor deleted under a running one — when the start fails.
 */
let s: TestStack;
let app: ReturnType<typeof appFor>;
let staff: { authorization: string };
let clientId: string;

const fixture = useStack({}, { ownDatabase: true, worker: true, roles: ['support'], client: true });
beforeAll(() => {
  ({ s, app, clientId, staff: { support: staff } } = fixture);
});
// Registered after the fixture, so it runs before the worker stops.
afterAll(async () => {
  await s.client.schedule.getHandle(WORKFLOW_STARTS_SCHEDULE_ID).delete().catch(() => undefined);
});

const runsOf = async (workflowId: string) => {
  let n = 0;
  for await (const _ of s.client.workflow.list({ query: `WorkflowId = '${workflowId}'` })) n += 1;
  return n;
};

describe('Idempotency-Key', () => {
  it('the same POST /v1/requests twice: one request, one run, the same answer; another body with the key is 422', async () => {
    const person = await registerCustomer(app, staff, { clientId });
    const auth = await activate(app, person);
    const send = (body: Record<string, unknown>, key = 'retry-me-1') => app.request('/v1/requests', json(body, { ...auth, 'idempotency-key': key }));

    const first = await send({ type: 'access' });
    expect(first.status).toBe(202);
    const firstBody = (await first.json()) as { id: string; dueAt: string };
    const second = await send({ type: 'access' });
    expect(second.status).toBe(202);
    expect(second.headers.get('idempotent-replayed')).toBe('true');
    expect(await second.json()).toEqual(firstBody);

    expect((await s.sql`select id from data_requests where customer_id = ${person.id}`).map((r) => r.id)).toEqual([firstBody.id]);
    await waitFor(async () => (await runsOf(requestWorkflowId(firstBody.id))) === 1, { what: 'the run to be listed' });
    expect(await runsOf(requestWorkflowId(firstBody.id))).toBe(1);

    const other = await send({ type: 'erasure' });
    expect(other.status).toBe(422);
    expect((await s.sql`select 1 from data_requests where customer_id = ${person.id}`).length, 'nothing new').toBe(1);

    // Keys are the caller's own: another person using the same key files their own request.
    const someoneElse = await activate(app, await registerCustomer(app, staff, { clientId }));
    const theirs = await app.request('/v1/requests', json({ type: 'access' }, { ...someoneElse, 'idempotency-key': 'retry-me-1' }));
    expect(theirs.status).toBe(202);
    expect(((await theirs.json()) as { id: string }).id).not.toBe(firstBody.id);
  });

  it('a retried registration answers the first 201 and sends one invitation', async () => {
    const email = uniqueEmail('once');
    const body = { clientId, email, name: 'Ena Gang', providedBy: { source: 'client' } };
    const a = await app.request('/v1/customers', json(body, { ...staff, 'idempotency-key': `reg-${email}` }));
    const b = await app.request('/v1/customers', json(body, { ...staff, 'idempotency-key': `reg-${email}` }));
    expect(a.status).toBe(201);
    expect(b.status).toBe(201);
    expect(await b.json()).toEqual(await a.json());
    expect((await s.sql`select 1 from customers where email = ${email}`).length).toBe(1);
    expect((await app.request('/v1/requests', json({ type: 'access' }, { ...staff, 'idempotency-key': 'x y' }))).status, 'a key with a space').toBe(400);
  });
});

describe('a start that fails after the row is committed', () => {
  it('keeps the row, answers, and the Schedule workflow-starts starts the run within its interval', async () => {
    const person = await registerCustomer(app, staff, { clientId });
    const auth = await activate(app, person);
    // Temporal refuses the start (a crash or an outage between commit and start).
    const failing = new Proxy(s.client, {
      get(target, prop) {
        if (prop !== 'workflow') return Reflect.get(target, prop);
        return new Proxy(target.workflow, {
          get(wf, p) {
            if (p === 'start') return async () => { throw new Error('connection reset (injected)'); };
            return Reflect.get(wf, p);
          },
        });
      },
    });
    const broken = createApp({ config: s.config, sql: s.sql, temporal: failing, store: s.store, log: silentLog, payloadCodec: s.payloadCodec });
    const res = await broken.request('/v1/requests', json({ type: 'access' }, auth));
    expect(res.status, 'the request is received: its row and its start are committed').toBe(202);
    const { id } = (await res.json()) as { id: string };
    expect((await s.sql`select started_at as "startedAt" from workflow_starts where workflow_id = ${requestWorkflowId(id)}`)[0]!.startedAt).toBeNull();
    expect(await runsOf(requestWorkflowId(id))).toBe(0);

    await ensureWorkflowStartsSchedule(s.client, { taskQueue: s.config.TEMPORAL_TASK_QUEUE, intervalMs: 2_000 });
    await waitFor(async () => (await s.sql`select status from data_requests where id = ${id}`)[0]?.status === 'awaiting_decision', {
      what: 'the reconciled run to assess the request',
      timeoutMs: 30_000,
    });
    expect(await runsOf(requestWorkflowId(id))).toBe(1);
    expect((await s.sql`select started_at as "startedAt" from workflow_starts where workflow_id = ${requestWorkflowId(id)}`)[0]!.startedAt).not.toBeNull();
  });
});

describe('decisions answer once recorded (issue 13)', () => {
  it('answers 202 while the answer email cannot go out, and the request completes once it can', async () => {
    const officer = await staffAuth(s.sql, 'privacy_officer');
    const person = await registerCustomer(app, staff, { clientId });
    const auth = await activate(app, person);
    const filed = (await (await app.request('/v1/requests', json({ type: 'access' }, auth))).json()) as { id: string };
    await awaitDecision(app, officer, filed.id);
    await rejectRecipients([person.email]);
    try {
      const res = await app.request(`/v1/requests/${filed.id}/decision`, json({ decision: 'approve' }, officer));
      expect(res.status, 'recorded, not yet carried out').toBe(202);
      expect(((await res.json()) as { status: string }).status).not.toBe('answered');
      // The officer was not held: the answer is still undelivered.
      expect((await s.sql`select 1 from email_outbox where key = ${`request:${filed.id}:answer`} and status = 'sent'`).length).toBe(0);
    } finally {
      await releaseRecipients([person.email]);
    }
    await waitFor(async () => (await s.sql`select status from data_requests where id = ${filed.id}`)[0]?.status === 'answered', { what: 'the answer once SMTP accepts', timeoutMs: 60_000 });
  });

  it('two officers refusing at once: one wins, the other gets 409, and the stored reason is the winner’s', async () => {
    const [a, b] = [await staffAuth(s.sql, 'privacy_officer'), await staffAuth(s.sql, 'privacy_officer')];
    const person = await registerCustomer(app, staff, { clientId });
    const auth = await activate(app, person);
    const filed = (await (await app.request('/v1/requests', json({ type: 'access' }, auth))).json()) as { id: string };
    await awaitDecision(app, a, filed.id);
    const refuse = (who: { authorization: string }, reason: string) =>
      app.request(`/v1/requests/${filed.id}/decision`, json({ decision: 'refuse', reasonCode: 'manifestly_unfounded', reason }, who));
    const [ra, rb] = await Promise.all([refuse(a, 'Begrundelse A.'), refuse(b, 'Begrundelse B.')]);
    expect([ra.status, rb.status].sort()).toEqual([202, 409]);
    const winner = ra.status === 202 ? 'Begrundelse A.' : 'Begrundelse B.';
    const [row] = await s.sql<{ reason: string }[]>`select reason from data_requests where id = ${filed.id}`;
    expect(row!.reason).toBe(winner);
    const answer = await waitForMessage(person.email, (m) => m.text.includes(filed.id) && m.text.includes('Begrundelse'), 'the refusal');
    expect(answer.text).toContain(winner);
    expect(answer.text).not.toContain(winner === 'Begrundelse A.' ? 'Begrundelse B.' : 'Begrundelse A.');
  });
});

describe('failures reach a person (issue 13)', () => {
  it('a 550 on a caller’s address: the request is carried out, marked delivery_failed, and staff are told', async () => {
    const officer = await staffAuth(s.sql, 'privacy_officer');
    const email = uniqueEmail('tastefejl');
    await rejectRecipients([email]);
    try {
      const res = await app.request('/v1/requests', json({ type: 'access', caller: { name: 'Ole Ringer', email, identityCheck: 'Called back on the number in the recording' } }, staff));
      expect(res.status).toBe(202);
      const { id } = (await res.json()) as { id: string };
      // The acknowledgement is refused for good: staff hear of it, and the request goes on.
      await waitForMessage(s.config.STAFF_EMAIL, (m) => m.subject.startsWith('UNDELIVERABLE') && m.subject.includes(`acknowledgement of access request ${id}`), 'the alert about the acknowledgement');
      await awaitDecision(app, officer, id);
      expect((await app.request(`/v1/requests/${id}/decision`, json({ decision: 'approve' }, officer))).status).toBeLessThan(300);
      await waitFor(async () => (await s.sql`select status from data_requests where id = ${id}`)[0]?.status === 'delivery_failed', { what: 'delivery_failed', timeoutMs: 30_000 });
      const alert = await waitForMessage(s.config.STAFF_EMAIL, (m) => m.subject.includes(`answer of access request ${id}`), 'the alert about the answer');
      expect(alert.text, 'ids only: the address stays in Postgres').not.toContain(email);
      const [row] = await s.sql<{ status: string; lastError: string }[]>`select status, last_error as "lastError" from email_outbox where key = ${`request:${id}:answer`}`;
      expect(row).toMatchObject({ status: 'failed', lastError: expect.stringMatching(/^SMTP 55\d/) });
      const attempts = (await s.sql<{ attempts: number }[]>`select attempts from email_outbox where key = ${`request:${id}:answer`}`)[0]!.attempts;
      expect(attempts, 'a refusal for good is not retried').toBe(1);
      // The run ends instead of retrying for ever.
      await waitFor(async () => (await s.client.workflow.getHandle(requestWorkflowId(id)).describe()).status.name === 'COMPLETED', { what: 'the run to complete' });
    } finally {
      await releaseRecipients([email]);
    }
  });
});

describe('links survive retries (issue 13)', () => {
  it('an invitation sent again after the worker died before marking it carries the same link, and that link works', async () => {
    const person = await registerCustomer(app, staff, { clientId });
    const first = /set-password\?token=([\w-]+)/.exec(person.invitation.text)![1]!;
    // The crash: SMTP accepted the email, the worker died before the outbox said 'sent'; the retry runs.
    await s.sql`update email_outbox set status = 'pending', sent_at = null where key = ${`customer:${person.id}:invitation`}`;
    await createActivities({ sql: s.sql, mailer: s.mailer, store: s.store, config: s.config }).sendInvitation({ customerId: person.id });
    const deliveries = (await messagesTo(person.email, { raw: true })).filter((m) => m.messageId === person.invitation.messageId);
    expect(deliveries, 'two SMTP deliveries under one Message-ID').toHaveLength(2);
    for (const d of deliveries) expect(/set-password\?token=([\w-]+)/.exec(d.text)![1], 'the same link in both').toBe(first);
    expect((await app.request('/v1/auth/password', json({ token: first, password: 'correct horse battery staple' }))).status).toBe(204);
  });
});

describe('the start follows the answer (issue 15)', () => {
  /** A client whose starts wait until `release()`: Temporal slow to answer, not failing. */
  const gated = () => {
    let release!: () => void;
    const open = new Promise<void>((resolve) => (release = resolve));
    let held = 0;
    const client = new Proxy(s.client, {
      get(target, prop) {
        if (prop !== 'workflow') return Reflect.get(target, prop);
        return new Proxy(target.workflow, {
          get(wf, p) {
            if (p !== 'start') return Reflect.get(wf, p);
            return async (...args: Parameters<typeof wf.start>) => {
              held += 1;
              await open;
              return wf.start(...args);
            };
          },
        });
      },
    });
    return { client, release, held: () => held };
  };

  it('answers 202 once the request is filed, before its run is started; the run starts right after', async () => {
    const auth = await activate(app, await registerCustomer(app, staff, { clientId }));
    const gate = gated();
    const slow = createApp({ config: s.config, sql: s.sql, temporal: gate.client, store: s.store, log: silentLog, payloadCodec: s.payloadCodec });
    const res = await slow.request('/v1/requests', json({ type: 'access' }, auth));
    expect(res.status, 'received while Temporal has not yet answered the start').toBe(202);
    const { id } = (await res.json()) as { id: string };
    expect(gate.held(), 'the start was asked for').toBe(1);
    expect((await s.sql`select status from data_requests where id = ${id}`)[0]?.status, 'the row is committed').toBeDefined();
    expect(await runsOf(requestWorkflowId(id))).toBe(0);

    gate.release();
    await waitFor(async () => (await s.sql`select status from data_requests where id = ${id}`)[0]?.status === 'awaiting_decision', {
      what: 'the run started after the answer to assess the request',
      timeoutMs: 30_000,
    });
    expect(await runsOf(requestWorkflowId(id))).toBe(1);
    await waitFor(async () => (await s.sql`select started_at as "startedAt" from workflow_starts where workflow_id = ${requestWorkflowId(id)}`)[0]!.startedAt !== null, {
      what: 'the start to be marked',
    });
  });
});

describe('PendingStarts', () => {
  const gate = () => {
    let open!: () => void;
    const opened = new Promise<void>((resolve) => (open = resolve));
    return { open, opened };
  };
  const state = (p: Promise<unknown>) => Promise.race([p.then(() => 'settled'), new Promise((r) => setImmediate(() => r('pending')))]);

  it('answers at once while under its bound; settled and drain wait for the start itself', async () => {
    const pending = new PendingStarts(4);
    const g = gate();
    let made = false;
    await pending.dispatch('wf-a', async () => {
      await g.opened;
      made = true;
    });
    expect(made, 'dispatch did not wait for the start').toBe(false);
    expect(await state(pending.settled('wf-a'))).toBe('pending');
    expect(await state(pending.settled('wf-other')), 'nothing pending under another id').toBe('settled');
    const drained = pending.drain();
    expect(await state(drained)).toBe('pending');
    g.open();
    await drained;
    expect(made).toBe(true);
    expect(pending.size).toBe(0);
  });

  it('past its bound, a caller waits for its own start', async () => {
    const pending = new PendingStarts(1);
    const first = gate();
    const second = gate();
    await pending.dispatch('wf-1', () => first.opened);
    const waiting = pending.dispatch('wf-2', () => second.opened);
    expect(await state(waiting), 'two pending, bound one: the second caller waits').toBe('pending');
    first.open();
    expect(await state(waiting), 'not for the first start: for its own').toBe('pending');
    second.open();
    await waiting;
    expect(pending.size).toBe(0);
  });
});
