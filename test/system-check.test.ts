import { beforeAll, describe, expect, it } from 'vitest';
import { randomUUID } from 'node:crypto';
import { appFor, staffAuth } from './support/api';
import type { TestStack } from './support/stack';
import { useStack } from './support/fixture';
import { messagesTo, waitForMessage } from './support/mailbox';
import { deliverEmail } from '../activities/email';

let s: TestStack;

const fixture = useStack({ STAFF_EMAIL: `staff-${randomUUID().slice(0, 8)}@topcall.test` }, { worker: true });
beforeAll(() => {
  ({ s } = fixture);
});

describe('systemCheck, a trivial workflow end to end on the real stack', () => {
  it('runs through the dev server, the worker, Postgres and SMTP', async () => {
    const app = appFor(s);
    const admin = await staffAuth(s.sql, 'admin');
    const res = await app.request('/v1/system-checks', { method: 'POST', headers: admin });
    expect(res.status).toBe(201);
    const check = (await res.json()) as { id: string; workflowId: string; emailMessageId: string; databaseTime: string };
    expect(check.workflowId).toBe(`system-check:${check.id}`);

    // Temporal kept the run and says it completed.
    const description = await s.client.workflow.getHandle(check.workflowId).describe();
    expect(description.status.name).toBe('COMPLETED');
    expect(description.type).toBe('systemCheck');

    // The worker wrote to Postgres…
    const [row] = await s.sql`select workflow_id from system_checks where id = ${check.id}`;
    expect(row).toEqual({ workflow_id: check.workflowId });

    // …and the email reached the real SMTP sink with the deterministic Message-ID.
    const mail = await waitForMessage(s.config.STAFF_EMAIL, (m) => m.messageId === check.emailMessageId, 'the system-check email');
    expect(mail.to).toEqual([s.config.STAFF_EMAIL]);
    expect(mail.subject).toBe(`System check ${check.id} passed`);
    expect(mail.text).toContain(check.workflowId);
  });

  it('lets only admins run it', async () => {
    const support = await staffAuth(s.sql, 'support');
    const res = await appFor(s).request('/v1/system-checks', { method: 'POST', headers: support });
    expect(res.status).toBe(403);
  });
});

describe('the email outbox', () => {
  it('sends one email per business key however often it is retried', async () => {
    const to = `once-${randomUUID().slice(0, 8)}@topcall.test`;
    const deps = { sql: s.sql, mailer: s.mailer, mailFrom: s.config.MAIL_FROM };
    const email = { key: `test:${to}`, to, category: 'service' as const, subject: 'Once only', text: 'Hello' };
    const first = await deliverEmail(deps, email);
    const second = await deliverEmail(deps, email);
    expect(first.alreadySent).toBe(false);
    expect(second).toEqual({ messageId: first.messageId, alreadySent: true });
    await waitForMessage(to, () => true, 'the outbox email');
    expect(await messagesTo(to)).toHaveLength(1);
  });

  it('keeps the email pending and sends it on the retry after an SMTP failure', async () => {
    const to = `retry-${randomUUID().slice(0, 8)}@topcall.test`;
    // As nodemailer reports it: the server's text quotes the address; only the codes may leave.
    const failing = { send: async () => Promise.reject(Object.assign(new Error(`421 4.7.0 <${to}> try again later`), { responseCode: 421, command: 'DATA' })), close() {} };
    const email = { key: `test:${to}`, to, category: 'service' as const, subject: 'After a failure', text: 'Hello' };
    const failure = await deliverEmail({ sql: s.sql, mailer: failing, mailFrom: s.config.MAIL_FROM }, { ...email, key: 'test:retry-after-failure' }).catch((err: Error) => err);
    expect((failure as Error).message).toContain('SMTP 421');
    expect((failure as Error).message).not.toContain(to);
    await s.sql`delete from email_outbox where key = 'test:retry-after-failure'`;
    await expect(deliverEmail({ sql: s.sql, mailer: failing, mailFrom: s.config.MAIL_FROM }, email)).rejects.toThrow('421');
    const [pending] = await s.sql`select status, attempts, last_error from email_outbox where key = ${email.key}`;
    expect(pending).toMatchObject({ status: 'pending', attempts: 1, last_error: 'SMTP 421 after DATA' });

    await deliverEmail({ sql: s.sql, mailer: s.mailer, mailFrom: s.config.MAIL_FROM }, email);
    await waitForMessage(to, () => true, 'the retried email');
    expect(await messagesTo(to)).toHaveLength(1);
    const [sent] = await s.sql`select status, attempts from email_outbox where key = ${email.key}`;
    expect(sent).toMatchObject({ status: 'sent', attempts: 2 });
  });
});
