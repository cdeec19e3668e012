import { randomUUID } from 'node:crypto';
import { expect } from 'vitest';
import { json } from './api';
import { waitForMessage } from './mailbox';
import type { SinkMessage } from '../../scripts/mail-sink';

type App = { request: (path: string, init?: RequestInit) => Response | Promise<Response> };

export const uniqueEmail = (tag: string) => `${tag}-${randomUUID().slice(0, 8)}@kunde.test`;

/** Staff register a person; the invitation arrives over real SMTP. */
export async function registerCustomer(
  app: App,
  staff: { authorization: string },
  body: { clientId: string; email?: string; name?: string; locale?: 'da' | 'en'; providedBy?: string | Record<string, string>; teamLead?: boolean },
): Promise<{ id: string; email: string; invitation: SinkMessage }> {
  const email = body.email ?? uniqueEmail('person');
  // Staff must say who gave the data (D2); here, unless a test says otherwise, the client did.
  const res = await app.request('/v1/customers', json({ name: 'Mette Hansen', providedBy: { source: 'client' }, ...body, email }, staff));
  expect(res.status).toBe(201);
  const { id } = (await res.json()) as { id: string };
  const invitation = await waitForMessage(email, (m) => /konto|account/i.test(m.subject), `the invitation to ${email}`);
  return { id, email, invitation };
}

export const linkTokenIn = (text: string) => /set-password\?token=([\w-]+)/.exec(text)?.[1];

export const DEFAULT_PASSWORD = 'correct horse battery staple';

/** Follows the invitation link to set a password, then logs in; returns the customer's bearer header. */
export async function activate(app: App, who: { email: string; invitation: SinkMessage }, password = DEFAULT_PASSWORD) {
  const token = linkTokenIn(who.invitation.text);
  expect(token).toBeTruthy();
  expect((await app.request('/v1/auth/password', json({ token, password }))).status).toBe(204);
  const login = await app.request('/v1/auth/login', json({ email: who.email, password }));
  expect(login.status).toBe(200);
  const { token: bearer } = (await login.json()) as { token: string };
  return { authorization: `Bearer ${bearer}` };
}

/** Persons straight into Postgres (no invitations), for campaigns over many people. */
export async function seedCustomers(
  sql: import('../../db/index').Sql,
  options: { clientId: string; count: number; tag: string; locale?: 'da' | 'en'; marketingEmails?: boolean; /** The addresses' domain (default kunde.test): a file's own lets it scope sink faults to its mail. */ domain?: string },
): Promise<{ id: string; email: string }[]> {
  const people = Array.from({ length: options.count }, (_, i) => ({ id: randomUUID(), email: `${options.tag}-${i}-${randomUUID().slice(0, 6)}@${options.domain ?? 'kunde.test'}` }));
  for (let i = 0; i < people.length; i += 5000) {
    await sql`insert into customers ${sql(
      people.slice(i, i + 5000).map((p) => ({
        id: p.id,
        client_id: options.clientId,
        email: p.email,
        name: 'Person',
        provided_by: 'Testfirma ApS (klient / client)',
        provided_by_kind: 'client',
        locale: options.locale ?? 'da',
        marketing_emails: options.marketingEmails ?? true,
      })),
    )}`;
  }
  return people;
}

/**
 * Logs in on the account pages as a browser would (a form post from our own origin) and
 * downloads an answered access request's export there: for a person with an account it is
 * the only way to it (the answer email links to the page, never to a bearer link).
 */
export async function downloadInAccount(app: App, who: { email: string }, requestId: string, password = DEFAULT_PASSWORD): Promise<Response> {
  const login = await app.request('/account/login', {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', origin: 'http://localhost' },
    body: new URLSearchParams({ email: who.email, password }).toString(),
  });
  expect(login.status, 'logged in on the account pages').toBe(303);
  const cookie = (login.headers.get('set-cookie') ?? '').split(';')[0]!;
  return app.request(`/account/requests/${requestId}/export`, { headers: { cookie } });
}
