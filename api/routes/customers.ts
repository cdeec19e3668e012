import { randomUUID } from 'node:crypto';
import { createRoute, z } from '@hono/zod-openapi';
import { verifyPassword } from '../passwords';
import { personName } from '../schemas';
import { createRouter } from '../router';
import { access, staffSecurity } from '../auth';
import { AppError, problemResponse } from '../problem';
import { findClient } from '../../db/clients';
import { emailHolder, findCustomer, insertCustomer, type CustomerRow } from '../../db/customers';
import { customerWorkflowId } from '../../workflows/ids';
import { setPreferencesUpdate, type CustomerLifecycleInput } from '../../workflows/customer-lifecycle';
import { fileRequest } from '../file-request';
import { noticeAlreadyRegistered, startAccountEmail } from '../account-emails';
import { commitAndStart, idFor } from '../start';
import { quota } from '../quota';

const ProvidedBy = z.union([
  z.strictObject({ source: z.literal('self'), via: z.enum(['phone', 'email', 'in_person', 'web']) }),
  z.strictObject({ source: z.literal('client') }),
  z.strictObject({ source: z.literal('third_party'), name: personName() }),
  z
    .string()
    .trim()
    .min(1)
    .max(200)
    .regex(/^[^\r\n]*$/, 'must be a single line')
    .refine((v) => v.toLowerCase() !== 'self', 'say {source: "self", via} when the person gave the data themselves'),
]);

const NewCustomer = z
  .strictObject({
    clientId: z.uuid(),
    email: z.email().max(254),
    name: personName(),
    locale: z.enum(['da', 'en']).default('da'),
    providedBy: ProvidedBy.optional().openapi({
      description:
        'D2, required for staff: who gave us this person’s data. `{source: "self", via}` only when the person gave it themselves (by phone, email, in person); `{source: "client"}` when the client handed it over; `{source: "third_party", name}` for anyone else. A plain string is read as a third party’s description (e.g. "Jens Hansen, team lead at Hansen VVS"). A team lead registering a member is recorded as the provider automatically.',
    }),
    teamLead: z.boolean().default(false).openapi({ description: 'staff only: this person may register the members of their team' }),
  })
  .openapi('NewCustomer');

/** What a team lead is answered for every registration that passes validation (issue 11). */
const REGISTRATION_ACCEPTED = {
  status: 'accepted',
  detail: 'The person gets an email: an invitation, or, if the address already has a TopCall account, a notice. This answer is the same either way.',
} as const;
const RegistrationAccepted = z.object({ status: z.literal('accepted'), detail: z.string() }).openapi('RegistrationAccepted');

const Me = z
  .object({
    id: z.uuid(),
    clientId: z.uuid(),
    email: z.string(),
    name: z.string(),
    locale: z.enum(['da', 'en']),
    providedBy: z.string(),
    providedByKind: z.enum(['self', 'client', 'team_lead', 'third_party']).nullable(),
    providedAt: z.iso.datetime(),
    marketingEmails: z.boolean(),
    processingRestricted: z.boolean(),
    objectedToProcessing: z.boolean(),
  })
  .openapi('Me');

const meJson = (c: CustomerRow) => ({
  id: c.id,
  clientId: c.clientId,
  email: c.email ?? '',
  name: c.name ?? '',
  locale: c.locale,
  providedBy: c.providedBy,
  providedByKind: c.providedByKind,
  providedAt: c.providedAt.toISOString(),
  marketingEmails: c.marketingEmails,
  processingRestricted: c.processingRestricted,
  objectedToProcessing: c.objectedToProcessing,
});

export function customerRoutes() {
  const app = createRouter();

  app.openapi(
    createRoute({
      method: 'post',
      path: '/customers',
      tags: ['customers'],
      summary: 'Register a person: records who provided the data (D2) and sends the invitation with a one-time link',
      description:
        'Staff register anyone and are told when the address is taken (409). A team lead (a customer with teamLead) registers members of their own client, is recorded as the provider, and gets 202 whether or not the address already has an account anywhere: nothing tells them whom another client has (issue 11).',
      security: staffSecurity,
      ...access.signedIn(quota('registrations')),
      request: { body: { required: true, content: { 'application/json': { schema: NewCustomer } } } },
      responses: {
        201: { description: 'staff: registered; the customerLifecycle workflow sends the invitation', content: { 'application/json': { schema: z.object({ id: z.uuid() }) } } },
        202: {
          description:
            'a team lead: accepted. A new address gets the invitation; an address that already has an account (at any client) gets a notice that someone asked, and nothing is created. The answer is the same either way.',
          content: { 'application/json': { schema: RegistrationAccepted } },
        },
        409: problemResponse('staff: the email address is already registered'),
        422: problemResponse('invalid body or unknown client'),
        401: problemResponse('no or unknown token'),
        403: problemResponse('neither staff nor a team lead of that client'),
      },
    }),
    async (c) => {
      const { sql, config } = c.var.deps;
      const body = c.req.valid('json');
      const principal = c.var.principal!;
      let provenance: { providedBy: string; kind: 'self' | 'client' | 'team_lead' | 'third_party'; via: string | null };
      if (principal.kind === 'customer') {
        const lead = await findCustomer(sql, principal.customerId);
        if (!lead?.teamLead || lead.status !== 'active') throw new AppError('forbidden', 403, 'Only staff and team leads register people.');
        if (lead.clientId !== body.clientId) throw new AppError('forbidden', 403, 'A team lead registers members of their own team only.');
        if (body.teamLead) throw new AppError('forbidden', 403, 'Only staff make team leads.');
        provenance = { providedBy: `${lead.name} (teamansvarlig / team lead)`, kind: 'team_lead', via: 'web' };
      } else if (!body.providedBy) {
        throw new AppError('validation-failed', 422, 'Say who gave us this person’s data (D2).', {
          errors: [{ field: 'providedBy', in: 'body', message: 'required for staff: {source: "self", via}, {source: "client"} or {source: "third_party", name}' }],
        });
      } else {
        provenance = { providedBy: '', kind: 'third_party', via: null };
      }
      const client = await findClient(sql, body.clientId);
      if (!client) {
        throw new AppError('validation-failed', 422, 'Unknown client.', { errors: [{ field: 'clientId', in: 'body', message: 'no such client' }] });
      }
      if (principal.kind === 'staff') {
        const given = body.providedBy!;
        provenance =
          typeof given === 'string'
            ? { providedBy: given, kind: 'third_party', via: null }
            : given.source === 'self'
              ? { providedBy: 'self', kind: 'self', via: given.via }
              : given.source === 'client'
                ? { providedBy: `${client.name} (klient / client)`, kind: 'client', via: null }
                : { providedBy: given.name, kind: 'third_party', via: null };
      }
      const id = idFor(c, 'customer', randomUUID);
      // Issue 11: staff (TopCall's own people, who see every client) learn of a taken address.
      // A team lead gets one answer whatever the address — new, their own client's, or another
      // client's — so registering cannot tell them whom another client has; when the address
      // has an account, nothing is created and its holder is told instead. Not even their own
      // client's duplicates are named: a second try at an address would then say "yours now"
      // (it was free) or "accepted" (another client has it).
      const lead = principal.kind === 'customer' ? principal.customerId : undefined;
      const answer = () => (lead ? c.json(REGISTRATION_ACCEPTED, 202) : c.json({ id }, 201));
      // A retry of a registration whose answer was lost (same Idempotency-Key): the first stands.
      if (c.var.idempotencyScope && (await findCustomer(sql, id))) return answer();
      const holder = await emailHolder(sql, body.email);
      if (holder) {
        if (!lead) throw new AppError('conflict', 409, 'That email address is already registered.');
        await noticeAlreadyRegistered(c, holder, lead);
        return answer();
      }
      try {
        await commitAndStart(
          c.var.deps,
          (tx) =>
            insertCustomer(tx, {
              id,
              clientId: body.clientId,
              email: body.email,
              name: body.name,
              locale: body.locale,
              providedBy: provenance.providedBy,
              providedByKind: provenance.kind,
              providedVia: provenance.via,
              registeredByToken: principal.tokenId,
              teamLead: body.teamLead,
            }),
          {
            workflowId: customerWorkflowId(id),
            workflowType: 'customerLifecycle',
            taskQueue: config.TEMPORAL_TASK_QUEUE,
            memo: { clientId: body.clientId },
            args: [{ customerId: id, clientId: body.clientId } satisfies CustomerLifecycleInput],
          },
        );
      } catch (err) {
        // The same address registered at the same moment by someone else: for a team lead, the
        // same as finding it taken (a 409 here would answer the question the 202 hides).
        const raced = lead && (err as { constraint_name?: string }).constraint_name === 'customers_email' ? await emailHolder(sql, body.email) : undefined;
        if (!raced) throw err;
        await noticeAlreadyRegistered(c, raced, lead!);
      }
      return answer();
    },
  );

  app.openapi(
    createRoute({
      method: 'post',
      path: '/customers/{id}/invitation',
      tags: ['customers'],
      summary: 'Send a fresh invitation with a new one-time link (earlier unused links stop working)',
      description: 'For a person whose link was lost or expired. The email says again who gave us the data (D2).',
      security: staffSecurity,
      ...access.staff(),
      request: { params: z.object({ id: z.uuid() }) },
      responses: {
        202: { description: 'the invitation is on its way', content: { 'application/json': { schema: z.object({ id: z.uuid() }) } } },
        404: problemResponse('no such active person'),
        401: problemResponse('no or unknown token'),
        403: problemResponse('not staff'),
      },
    }),
    async (c) => {
      const { id } = c.req.valid('param');
      const customer = await findCustomer(c.var.deps.sql, id);
      if (!customer || customer.status !== 'active') throw new AppError('not-found', 404, 'No such person.');
      await startAccountEmail(c, { kind: 'invitation', customerId: id, ref: randomUUID() });
      return c.json({ id }, 202);
    },
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/me',
      tags: ['customers'],
      summary: 'The signed-in person’s profile, provenance and preferences',
      security: staffSecurity,
      ...access.customer(),
      responses: { 200: { description: 'profile', content: { 'application/json': { schema: Me } } }, 401: problemResponse('not signed in'), 403: problemResponse('not a customer') },
    }),
    async (c) => {
      const principal = c.var.principal as { customerId: string };
      const row = await findCustomer(c.var.deps.sql, principal.customerId);
      if (!row || row.status !== 'active') throw new AppError('not-found', 404, 'The account no longer exists.');
      return c.json(meJson(row), 200);
    },
  );

  app.openapi(
    createRoute({
      method: 'patch',
      path: '/me/preferences',
      tags: ['customers'],
      summary: 'Marketing email on or off (D11); account and service emails are always sent',
      security: staffSecurity,
      ...access.customer(),
      request: { body: { required: true, content: { 'application/json': { schema: z.strictObject({ marketingEmails: z.boolean() }).openapi('Preferences') } } } },
      responses: {
        200: { description: 'in force', content: { 'application/json': { schema: z.object({ marketingEmails: z.boolean() }) } } },
        401: problemResponse('not signed in'),
        403: problemResponse('not a customer'),
        422: problemResponse('invalid body'),
      },
    }),
    async (c) => {
      const principal = c.var.principal as { customerId: string };
      const result = await c.var.deps.temporal.workflow
        .getHandle(customerWorkflowId(principal.customerId))
        .executeUpdate(setPreferencesUpdate, { args: [c.req.valid('json')] });
      return c.json(result, 200);
    },
  );

  app.openapi(
    createRoute({
      method: 'delete',
      path: '/me',
      tags: ['customers'],
      summary: 'Close the account: an erasure of the person’s data with no staff step (recordings a dispute holds are kept, and the answer says so)',
      description: 'Needs the password again: a bearer token alone (a session left open on a shared computer) cannot erase an account for good.',
      security: staffSecurity,
      ...access.customer(),
      request: { body: { required: true, content: { 'application/json': { schema: z.strictObject({ password: z.string().min(1).max(200) }).openapi('CloseAccount') } } } },
      responses: {
        202: { description: 'closing; the answer email follows', content: { 'application/json': { schema: z.object({ requestId: z.uuid(), dueAt: z.iso.datetime() }) } } },
        422: problemResponse('no password given'),
        401: problemResponse('not signed in'),
        403: problemResponse('not a customer'),
      },
    }),
    async (c) => {
      const principal = c.var.principal as { customerId: string };
      const customer = await findCustomer(c.var.deps.sql, principal.customerId);
      if (!customer || customer.status !== 'active') throw new AppError('not-found', 404, 'The account no longer exists.');
      const [stored] = await c.var.deps.sql<{ hash: string | null }[]>`select password_hash as hash from customers where id = ${customer.id}`;
      if (!(await verifyPassword(stored?.hash, c.req.valid('json').password))) {
        throw new AppError('forbidden', 403, 'The password is not right; the account stays open.');
      }
      const filed = await fileRequest(c.var.deps, {
        type: 'erasure',
        customerId: customer.id,
        details: { note: 'account closure' },
        caller: null,
        locale: customer.locale,
        filedBy: 'customer',
        autoApprove: true,
      });
      return c.json({ requestId: filed.id, dueAt: filed.dueAt.toISOString() }, 202);
    },
  );

  return app;
}
