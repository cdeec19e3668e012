import { createRoute, z } from '@hono/zod-openapi';
import { createRouter } from '../router';
import { access, ledgerActorOf, staffSecurity } from '../auth';
import { appendLedger } from '../../db/audit-ledger';
import { AppError, problemResponse, type FieldError } from '../problem';
import { boundedTimestamp, personName } from '../schemas';
import { phoneNumberSchema } from '../../lib/phone';
import { findRecipient, insertRecipient, listRecipients, recordDisclosure, RECIPIENT_TYPES, type RecipientRow } from '../../db/disclosures';

/** Recipients that are third parties in the sense of a client's `no_third_party_transfer` (D6): not processors acting for TopCall, not authorities. */
const THIRD_PARTY_TYPES = new Set(['affiliate', 'referral_partner', 'acquirer', 'network_advertiser']);

const NewRecipient = z
  .strictObject({
    type: z.enum(RECIPIENT_TYPES),
    name: personName().openapi({ example: 'Regnskabsbureau A/S' }),
    email: z.email().max(254).openapi({ description: 'where the person (and Art. 19 notices) can reach them' }),
    address: z.string().trim().min(3).max(300).regex(/^[^\p{Cc}]*$/u, 'must be a single line').optional(),
    legalBasis: z.string().trim().min(3).max(300).openapi({ example: 'databehandleraftale / processor agreement (Art. 28)' }),
  })
  .openapi('NewRecipient');

const Recipient = z
  .object({ id: z.uuid(), type: z.enum(RECIPIENT_TYPES), name: z.string(), email: z.string(), address: z.string().nullable(), legalBasis: z.string(), createdAt: z.iso.datetime() })
  .openapi('Recipient');

const recipientJson = (r: RecipientRow) => ({ ...r, createdAt: r.createdAt.toISOString() });

const NewDisclosure = z
  .strictObject({
    recipientId: z.uuid(),
    category: z.string().trim().min(2).max(200).openapi({ example: 'contact details and call recordings' }),
    legalBasis: z.string().trim().min(3).max(300).openapi({ example: 'retskendelse / court order (Art. 6(1)(c))' }),
    customerIds: z.array(z.uuid()).max(1000).default([]),
    callerNumbers: z.array(phoneNumberSchema()).max(1000).default([]).openapi({ type: 'array', items: { type: 'string' } }),
    disclosedAt: boundedTimestamp(),
  })
  .openapi('NewDisclosure');

const authErrors = { 401: problemResponse('no or unknown token'), 403: problemResponse('role not allowed') };

export function disclosureRoutes() {
  const app = createRouter();

  app.openapi(
    createRoute({
      method: 'post',
      path: '/recipients',
      tags: ['disclosures'],
      summary: 'D7: add a recipient to the register, with contact details and legal basis',
      security: staffSecurity,
      ...access.staff('privacy_officer'),
      request: { body: { required: true, content: { 'application/json': { schema: NewRecipient } } } },
      responses: { 201: { description: 'registered', content: { 'application/json': { schema: Recipient } } }, 422: problemResponse('invalid body'), ...authErrors },
    }),
    async (c) => {
      const body = c.req.valid('json');
      const row = await insertRecipient(c.var.deps.sql, { type: body.type, name: body.name, email: body.email, address: body.address ?? null, legalBasis: body.legalBasis });
      return c.json(recipientJson(row), 201);
    },
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/recipients',
      tags: ['disclosures'],
      summary: 'D7: the recipient register with contact details',
      security: staffSecurity,
      ...access.staff(),
      responses: { 200: { description: 'the register', content: { 'application/json': { schema: z.object({ items: z.array(Recipient) }) } } }, ...authErrors },
    }),
    async (c) => c.json({ items: (await listRecipients(c.var.deps.sql)).map(recipientJson) }, 200),
  );

  app.openapi(
    createRoute({
      method: 'post',
      path: '/disclosures',
      tags: ['disclosures'],
      summary: 'D7: record a disclosure made outside a business transfer (e.g. in answer to legal process)',
      description:
        'Whose data went where, what and why. Restricted persons (Art. 18) may be disclosed only to an authority; people of a client whose contract forbids transfer to third parties (D6) only to processors and authorities. The persons find the recipient, with contact details, in their access export; rectification and erasure notify the recipient (Art. 19).',
      security: staffSecurity,
      ...access.staff('privacy_officer'),
      request: { body: { required: true, content: { 'application/json': { schema: NewDisclosure } } } },
      responses: {
        201: { description: 'recorded', content: { 'application/json': { schema: z.object({ id: z.uuid() }) } } },
        422: problemResponse('invalid body, unknown recipient or person, or a disclosure the restrictions forbid'),
        ...authErrors,
      },
    }),
    async (c) => {
      const { sql } = c.var.deps;
      const body = c.req.valid('json');
      const errors: FieldError[] = [];
      const recipient = await findRecipient(sql, body.recipientId);
      if (!recipient) errors.push({ field: 'recipientId', in: 'body', message: 'no such recipient' });
      if (!body.customerIds.length && !body.callerNumbers.length) errors.push({ field: 'customerIds', in: 'body', message: 'name whose data was disclosed (customerIds or callerNumbers)' });
      if (Date.parse(body.disclosedAt) > Date.now() + 60_000) errors.push({ field: 'disclosedAt', in: 'body', message: 'is in the future' });
      const customerIds = [...new Set(body.customerIds)];
      if (customerIds.length) {
        const found = await sql<{ id: string; restricted: boolean; noTransfer: boolean }[]>`
          select c.id, c.processing_restricted as restricted, 'no_third_party_transfer' = any(cl.restrictions) as "noTransfer"
          from customers c join clients cl on cl.id = c.client_id where c.id = any(${customerIds}::uuid[])`;
        if (found.length !== customerIds.length) errors.push({ field: 'customerIds', in: 'body', message: 'unknown person(s)' });
        if (recipient && recipient.type !== 'authority' && found.some((f) => f.restricted)) {
          errors.push({ field: 'customerIds', in: 'body', message: 'includes a person who restricted processing (Art. 18): only an authority may receive their data' });
        }
        if (recipient && THIRD_PARTY_TYPES.has(recipient.type) && found.some((f) => f.noTransfer)) {
          errors.push({ field: 'customerIds', in: 'body', message: 'includes people of a client whose contract forbids transfer to third parties (D6)' });
        }
      }
      if (body.callerNumbers.length && recipient && recipient.type !== 'authority') {
        const [restricted] = await sql<{ n: number }[]>`
          select count(*)::int as n from restricted_numbers where phone_hash in (select phone_hash(p) from unnest(${body.callerNumbers}::text[]) p)`;
        if (restricted!.n > 0) errors.push({ field: 'callerNumbers', in: 'body', message: 'includes a caller who restricted processing (Art. 18): only an authority may receive their data' });
      }
      if (errors.length || !recipient) throw new AppError('validation-failed', 422, `${errors.length} problem(s); nothing was recorded.`, { errors });
      const id = await sql.begin(async (tx) => {
        const disclosureId = await recordDisclosure(tx, {
          recipient,
          category: body.category,
          legalBasis: body.legalBasis,
          customerIds,
          callerNumbers: [...new Set(body.callerNumbers)],
          disclosedAt: new Date(body.disclosedAt),
          recordedBy: (c.var.principal as { tokenId: string }).tokenId,
        });
        await appendLedger(tx, [{ actor: ledgerActorOf(c.var.principal), action: 'disclosure.record', outcome: 'done', objectType: 'disclosure', objectId: disclosureId }]);
        return disclosureId;
      });
      return c.json({ id }, 201);
    },
  );

  return app;
}
