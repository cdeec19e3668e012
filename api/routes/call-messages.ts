import { createHash } from 'node:crypto';
import { createRoute, z } from '@hono/zod-openapi';
import { boundedTimestamp, personName } from '../schemas';
import { createRouter } from '../router';
import { access, recordReads, staffSecurity } from '../auth';
import { AppError, problemResponse } from '../problem';
import { findClient } from '../../db/clients';
import { findCustomer } from '../../db/customers';
import { callStats, findByIdempotencyKey, insertCallMessage, listCallMessages, type IdempotencyHashes, type NewCallMessage as NewRow } from '../../db/call-messages';
import { phoneNumberSchema } from '../../lib/phone';

/** Telephony clocks drift a little; a message further in the future than this is refused. */
const CLOCK_SKEW_MS = 5 * 60_000;

const NewCallMessage = z
  .strictObject({
    clientId: z.uuid(),
    callerName: personName().optional(),
    callerNumber: phoneNumberSchema().optional().openapi({ type: 'string', description: 'stored as E.164', example: '+45 48 22 10 00' }),
    customerId: z.uuid().optional().openapi({ description: 'the caller’s account, when known (must belong to the client)' }),
    message: z.string().trim().min(1).max(4000).openapi({ description: 'what TopCall sent the client after the call' }),
    sentAt: boundedTimestamp(),
  })
  .openapi('NewCallMessage');

const CallMessage = z
  .object({
    id: z.uuid(),
    customerId: z.uuid().nullable(),
    callerName: z.string().nullable(),
    callerNumber: z.string().nullable(),
    message: z.string(),
    sentAt: z.iso.datetime(),
  })
  .openapi('CallMessage');

const Range = {
  from: boundedTimestamp().optional(),
  to: boundedTimestamp().optional(),
};
const Cursor = z.string().regex(/^[A-Za-z0-9_-]{1,200}$/);
const encodeCursor = (m: { sentAt: Date; id: string }) => Buffer.from(`${m.sentAt.toISOString()}|${m.id}`).toString('base64url');
function decodeCursor(cursor: string): { sentAt: Date; id: string } {
  const [at, id] = Buffer.from(cursor, 'base64url').toString('utf8').split('|');
  const sentAt = new Date(at ?? '');
  if (Number.isNaN(sentAt.getTime()) || !/^[0-9a-f-]{36}$/.test(id ?? '')) {
    throw new AppError('validation-failed', 422, 'The cursor is not one this API gave out.', { errors: [{ field: 'cursor', in: 'query', message: 'invalid cursor' }] });
  }
  return { sentAt, id: id! };
}

const IdempotencyHeaders = z.object({
  'idempotency-key': z
    .string()
    .min(1)
    .max(255)
    .regex(/^[\x21-\x7e]+$/, 'must be 1–255 visible ASCII characters, e.g. a UUID')
    .optional()
    .openapi({ description: 'optional: a retry with the same key and body gets the first answer and stores nothing new; another body with it gets 422' }),
});

const sha256 = (text: string) => createHash('sha256').update(text).digest();
/** The request as stored (number in E.164, instant in UTC), so a retry that writes it differently is still the same request. */
const requestHash = (m: NewRow) => sha256(JSON.stringify([m.clientId, m.customerId, m.callerName, m.callerNumber, m.body, m.sentAt.toISOString()]));

function keyReused(): never {
  throw new AppError('validation-failed', 422, 'This Idempotency-Key was already used with another request; nothing was stored.', {
    errors: [{ field: 'Idempotency-Key', in: 'header', message: 'already used with another body' }],
  });
}

const authErrors = { 401: problemResponse('no or unknown token'), 403: problemResponse('not allowed') };

export function callMessageRoutes() {
  const app = createRouter();

  app.openapi(
    createRoute({
      method: 'post',
      path: '/call-messages',
      tags: ['clients'],
      summary: 'D3: record the message TopCall sent a client after a call (the caller’s personal data)',
      description: 'Counts towards the client’s daily statistics. The caller finds it in their access export; erasure deletes it (by account or caller number).',
      security: staffSecurity,
      ...access.staff(),
      request: { headers: IdempotencyHeaders, body: { required: true, content: { 'application/json': { schema: NewCallMessage } } } },
      responses: {
        201: { description: 'recorded (or, for a retry with the same Idempotency-Key and body, the first answer again)', content: { 'application/json': { schema: z.object({ id: z.uuid() }) } } },
        422: problemResponse('invalid body, unknown client, a customer of another client, a time in the future, or an Idempotency-Key used with another body'),
        ...authErrors,
      },
    }),
    async (c) => {
      const { sql } = c.var.deps;
      const body = c.req.valid('json');
      const key = c.req.valid('header')['idempotency-key'];
      const sentAt = new Date(body.sentAt);
      const row: NewRow = {
        clientId: body.clientId,
        customerId: body.customerId ?? null,
        callerName: body.callerName ?? null,
        callerNumber: body.callerNumber ?? null,
        body: body.message,
        sentAt,
      };
      const idempotency: IdempotencyHashes | undefined = key ? { keyHash: sha256(key), requestSha256: requestHash(row) } : undefined;
      // A retry answers as the first call did, even if a check below would now come out otherwise.
      if (idempotency) {
        const first = await findByIdempotencyKey(sql, idempotency.keyHash);
        if (first) return first.requestSha256.equals(idempotency.requestSha256) ? c.json({ id: first.id }, 201) : keyReused();
      }
      const errors: { field: string; in: 'body'; message: string }[] = [];
      if (sentAt.getTime() > Date.now() + CLOCK_SKEW_MS) errors.push({ field: 'sentAt', in: 'body', message: 'is in the future' });
      if (!(await findClient(sql, body.clientId))) errors.push({ field: 'clientId', in: 'body', message: 'no such client' });
      if (body.customerId) {
        const customer = await findCustomer(sql, body.customerId);
        if (!customer || customer.clientId !== body.clientId || customer.status !== 'active') errors.push({ field: 'customerId', in: 'body', message: 'no such customer of this client' });
      }
      if (errors.length) throw new AppError('validation-failed', 422, `${errors.length} field(s) failed validation; nothing was stored.`, { errors });
      const stored = await insertCallMessage(sql, row, idempotency);
      if (stored.outcome === 'key-reused') keyReused();
      return c.json({ id: stored.id }, 201);
    },
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/clients/{id}/call-messages',
      tags: ['clients'],
      summary: 'D3: a client’s call messages, newest first (staff; the client’s own users)',
      description: 'A team lead of the client sees its messages, except those of persons who restricted processing (Art. 18). A user of another client gets 404.',
      security: staffSecurity,
      ...access.staffOrClientUser('id'),
      request: {
        params: z.object({ id: z.uuid() }),
        query: z.strictObject({ ...Range, cursor: Cursor.optional(), limit: z.coerce.number().int().min(1).max(200).default(50) }),
      },
      responses: {
        200: { description: 'a page', content: { 'application/json': { schema: z.object({ items: z.array(CallMessage), nextCursor: z.string().nullable() }) } } },
        404: problemResponse('no such client (or not yours)'),
        422: problemResponse('invalid query'),
        ...authErrors,
      },
    }),
    async (c) => {
      const { sql } = c.var.deps;
      const clientId = c.req.valid('param').id;
      const q = c.req.valid('query');
      if (!(await findClient(sql, clientId))) throw new AppError('not-found', 404, 'No client with that id.');
      const rows = await listCallMessages(sql, {
        clientId,
        from: q.from ? new Date(q.from) : undefined,
        to: q.to ? new Date(q.to) : undefined,
        before: q.cursor ? decodeCursor(q.cursor) : undefined,
        limit: q.limit + 1,
        forClientUser: c.get('clientUser' as never) === true,
      });
      const page = rows.slice(0, q.limit);
      await recordReads(c, 'call_message.read', 'call_message', page.map((m) => m.id), { always: true });
      c.header('cache-control', 'no-store');
      return c.json(
        {
          items: page.map((m) => ({ id: m.id, customerId: m.customerId, callerName: m.callerName, callerNumber: m.callerNumber, message: m.body, sentAt: m.sentAt.toISOString() })),
          nextCursor: rows.length > q.limit ? encodeCursor(page[page.length - 1]!) : null,
        },
        200,
      );
    },
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/clients/{id}/call-stats',
      tags: ['clients'],
      summary: 'D3: calls answered and messages sent per day (Copenhagen days), counts only',
      security: staffSecurity,
      ...access.staffOrClientUser('id'),
      request: {
        params: z.object({ id: z.uuid() }),
        query: z.strictObject({
          from: z.iso.date().optional().openapi({ description: 'first day, default 90 days ago' }),
          to: z.iso.date().optional().openapi({ description: 'last day, default today' }),
        }),
      },
      responses: {
        200: { description: 'per day', content: { 'application/json': { schema: z.object({ days: z.array(z.object({ day: z.iso.date(), calls: z.number().int(), messages: z.number().int() })) }) } } },
        404: problemResponse('no such client (or not yours)'),
        422: problemResponse('invalid query'),
        ...authErrors,
      },
    }),
    async (c) => {
      const { sql } = c.var.deps;
      const clientId = c.req.valid('param').id;
      if (!(await findClient(sql, clientId))) throw new AppError('not-found', 404, 'No client with that id.');
      const q = c.req.valid('query');
      const today = new Date();
      const from = q.from ?? new Date(today.getTime() - 90 * 86_400_000).toISOString().slice(0, 10);
      const to = q.to ?? new Date(today.getTime() + 86_400_000).toISOString().slice(0, 10);
      return c.json({ days: await callStats(sql, { clientId, from, to }) }, 200);
    },
  );

  return app;
}
