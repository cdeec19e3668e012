import { randomUUID } from 'node:crypto';
import { createRoute, z } from '@hono/zod-openapi';
import { boundedTimestamp, personName } from '../schemas';
import { phoneNumberSchema } from '../../lib/phone';
import { createRouter } from '../router';
import { access, recordReads, staffSecurity } from '../auth';
import { AppError, problemResponse } from '../problem';
import { updateFailureToAppError } from '../temporal-errors';
import { idFor, pendingStartsFor } from '../start';
import { quotaCaller } from '../quota';
import { fileRequest } from '../file-request';
import { findRequest, listRequests, REFUSAL_CODES, REQUEST_STATUSES, REQUEST_TYPES, updateRequest, type RequestRow, awaitAnswer } from '../../db/requests';
import { requestWorkflowId } from '../../workflows/ids';
import { decideUpdate } from '../../workflows/access-request';
import { REFUSAL_GROUNDS, refusalProblem, type RefusalCode } from '../../workflows/request-types';
import { liftRestrictionWorkflow } from '../../workflows/lift-restriction';
import { restrictionLiftWorkflowId } from '../../workflows/ids';
import { WorkflowExecutionAlreadyStartedError } from '@temporalio/client';

const Details = z
  .strictObject({
    fields: z
      .strictObject({ name: personName().optional(), email: z.email().optional(), locale: z.enum(['da', 'en']).optional() })
      .optional()
      .openapi({ description: 'rectification: the corrected values' }),
    note: z.string().max(2000).optional(),
    phones: z
      .array(phoneNumberSchema())
      .max(5)
      .optional()
      .openapi({ type: 'array', items: { type: 'string' }, description: 'numbers the person calls from: their recordings and call messages are found by these too (stored as E.164)' }),
  })
  .default({});

const Caller = z
  .strictObject({
    name: personName(),
    email: z.email().openapi({ description: 'where the answer goes' }),
    phone: phoneNumberSchema().optional().openapi({ type: 'string', description: 'finds their call recordings and messages (stored as E.164)' }),
    identityCheck: z.string().trim().min(3).max(500).openapi({ description: 'how staff checked who the caller is' }),
    locale: z.enum(['da', 'en']).default('da'),
  })
  .openapi('Caller');

const NewRequest = z
  .strictObject({
    type: z.enum(REQUEST_TYPES),
    details: Details,
    customerId: z.uuid().optional().openapi({ description: 'staff: the person with an account' }),
    caller: Caller.optional().openapi({ description: 'staff: a caller without an account' }),
    receivedAt: boundedTimestamp()
      .optional()
      .openapi({ description: 'staff: when the email or call reached TopCall (not in the future, at most a year ago); the 7-day clock, reminders and escalation run from it. Customers’ requests are received when filed.' }),
  })
  .refine((r) => r.type !== 'rectification' || Object.keys(r.details.fields ?? {}).length > 0, {
    path: ['details', 'fields'],
    message: 'a rectification names the fields to correct',
  })
  .openapi('NewRequest');

const RequestSchema = z
  .object({
    id: z.uuid(),
    type: z.enum(REQUEST_TYPES),
    status: z.enum(REQUEST_STATUSES),
    receivedAt: z.iso.datetime(),
    dueAt: z.iso.datetime(),
    slaBreached: z.boolean(),
    flags: z.array(z.string()),
    earlierRequestIds: z.array(z.uuid()),
    decision: z.enum(['approve', 'refuse']).optional(),
    reasonCode: z.string().optional(),
    reason: z.string().optional(),
    outcome: z.record(z.string(), z.unknown()).optional(),
    answeredAt: z.iso.datetime().optional(),
  })
  .openapi('DataRequest');

const toJson = (r: RequestRow) => ({
  id: r.id,
  type: r.type,
  status: r.status,
  receivedAt: r.receivedAt.toISOString(),
  dueAt: r.dueAt.toISOString(),
  slaBreached: r.slaBreached,
  flags: r.flags,
  earlierRequestIds: r.earlierRequestIds,
  ...(r.decision ? { decision: r.decision } : {}),
  ...(r.reasonCode ? { reasonCode: r.reasonCode } : {}),
  ...(r.reason ? { reason: r.reason } : {}),
  ...(r.outcome ? { outcome: r.outcome } : {}),
  ...(r.answeredAt ? { answeredAt: r.answeredAt.toISOString() } : {}),
});

const Params = z.object({ id: z.uuid() });

export function requestRoutes() {
  const app = createRouter();

  app.openapi(
    createRoute({
      method: 'post',
      path: '/requests',
      tags: ['requests'],
      summary: 'File a data-subject request (D10): answered within REQUEST_SLA',
      description: 'A customer files for themselves; staff file for a customer (`customerId`) or for a caller without an account (`caller`, with how identity was checked).',
      security: staffSecurity,
      ...access.signedIn(),
      request: { body: { required: true, content: { 'application/json': { schema: NewRequest } } } },
      responses: {
        202: {
          description: 'received; the acknowledgement states the due date',
          content: { 'application/json': { schema: z.object({ id: z.uuid(), status: z.literal('received'), receivedAt: z.iso.datetime(), dueAt: z.iso.datetime() }) } },
        },
        401: problemResponse('not signed in'),
        403: problemResponse('a customer filing for someone else'),
        422: problemResponse('invalid body, unknown customer'),
        429: problemResponse('the caller’s hourly quota of requests is used up (Retry-After); nothing was filed'),
      },
    }),
    async (c) => {
      const body = c.req.valid('json');
      const principal = c.var.principal!;
      let customerId: string | null = null;
      let locale: 'da' | 'en' = 'da';
      if (principal.kind === 'customer') {
        if (body.customerId || body.caller) throw new AppError('forbidden', 403, 'Customers file requests for themselves only.');
        customerId = principal.customerId;
      } else if (!!body.customerId === !!body.caller) {
        throw new AppError('validation-failed', 422, 'Name either customerId or caller.', {
          errors: [{ field: body.customerId ? 'caller' : 'customerId', in: 'body', message: 'give exactly one of customerId and caller' }],
        });
      } else {
        customerId = body.customerId ?? null;
      }
      // The customer's status and locale are read, and the quota counted, in the statement that
      // files the request (`insertRequest`'s guards): no round trip of their own.
      if (!customerId && body.caller) locale = body.caller.locale;

      let receivedAt: Date | undefined;
      if (body.receivedAt) {
        receivedAt = new Date(body.receivedAt);
        const problem =
          principal.kind === 'customer'
            ? 'is set by TopCall: a customer’s request is received when it is filed'
            : receivedAt.getTime() > Date.now() + 60_000
              ? 'is in the future'
              : receivedAt.getTime() < Date.now() - 366 * 86_400_000
                ? 'is more than a year ago'
                : undefined;
        if (problem) throw new AppError('validation-failed', 422, `receivedAt ${problem}.`, { errors: [{ field: 'receivedAt', in: 'body', message: problem }] });
      }
      const filed = await fileRequest(c.var.deps, {
        id: idFor(c, 'request', randomUUID),
        receivedAt,
        type: body.type,
        customerId,
        details: body.details,
        caller: body.caller ?? null,
        locale,
        filedBy: principal.kind === 'customer' ? 'customer' : 'staff',
        quota: { kind: 'requests', caller: quotaCaller(c)! },
        activeCustomer: true,
      });
      return c.json({ id: filed.id, status: 'received' as const, receivedAt: filed.receivedAt.toISOString(), dueAt: filed.dueAt.toISOString() }, 202);
    },
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/requests/{id}',
      tags: ['requests'],
      summary: 'A request: its status, due date, breach, flags and decision. A customer sees only their own.',
      security: staffSecurity,
      ...access.signedIn(),
      request: { params: Params },
      responses: { 200: { description: 'the request', content: { 'application/json': { schema: RequestSchema } } }, 404: problemResponse('no such request (or not yours)'), 401: problemResponse('not signed in') },
    }),
    async (c) => {
      const r = await findRequest(c.var.deps.sql, c.req.valid('param').id);
      const principal = c.var.principal!;
      // Another customer's request is answered exactly like one that does not exist.
      if (!r || (principal.kind === 'customer' && r.customerId !== principal.customerId)) throw new AppError('not-found', 404, 'No request with that id.');
      await recordReads(c, 'request.read', 'request', [r.id]);
      return c.json(toJson(r), 200);
    },
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/requests',
      tags: ['requests'],
      summary: 'Requests: a customer’s own; staff filter by status, overdue and customer',
      security: staffSecurity,
      ...access.signedIn(),
      request: {
        query: z.strictObject({
          status: z.enum(REQUEST_STATUSES).optional(),
          overdue: z.enum(['true', 'false']).optional().transform((v) => (v === undefined ? undefined : v === 'true')),
          customerId: z.uuid().optional(),
          limit: z.coerce.number().int().min(1).max(500).default(100),
        }),
      },
      responses: { 200: { description: 'list', content: { 'application/json': { schema: z.object({ items: z.array(RequestSchema) }) } } }, 401: problemResponse('not signed in') },
    }),
    async (c) => {
      const q = c.req.valid('query');
      const principal = c.var.principal!;
      const customerId = principal.kind === 'customer' ? principal.customerId : q.customerId;
      const rows = await listRequests(c.var.deps.sql, { customerId, status: q.status, overdue: q.overdue, limit: q.limit });
      await recordReads(c, 'request.read', 'request', rows.map((r) => r.id));
      return c.json({ items: rows.map(toJson) }, 200);
    },
  );

  app.openapi(
    createRoute({
      method: 'post',
      path: '/requests/{id}/decision',
      tags: ['requests'],
      summary: 'Approve, or refuse with one of the policy’s reasons and an explanation: 202 once recorded, or 200 when carried out within `Prefer: wait=N`',
      security: staffSecurity,
      ...access.staff('privacy_officer'),
      request: {
        params: Params,
        body: {
          required: true,
          content: {
            'application/json': {
              schema: z
                .strictObject({
                  decision: z.enum(['approve', 'refuse']),
                  reasonCode: z
                    .enum(REFUSAL_CODES as [RefusalCode, ...RefusalCode[]])
                    .optional()
                    .openapi({
                      description: `the lawful ground: ${Object.entries(REFUSAL_GROUNDS)
                        .map(([code, g]) => `\`${code}\` (${g.article}; ${g.types.join(', ')})`)
                        .join(', ')}`,
                    }),
                  reason: z.string().trim().min(1).max(2000).optional().openapi({ description: 'the explanation the person gets' }),
                  evidence: z
                    .string()
                    .trim()
                    .min(10)
                    .max(2000)
                    .optional()
                    .openapi({ description: '`excessive` without the repetitive flag: what makes the request excessive (kept with the request, not sent)' }),
                })
                .refine((d) => d.decision !== 'refuse' || (d.reasonCode && d.reason), { path: ['reason'], message: 'a refusal needs reasonCode and reason' })
                .openapi('Decision'),
            },
          },
        },
      },
      responses: {
        200: { description: 'decided, carried out and answered (within the `Prefer: wait=N` the caller allowed)', content: { 'application/json': { schema: RequestSchema } } },
        202: { description: 'decided; being carried out (the request shows its status; send `Prefer: wait=N` to wait for the answer)', content: { 'application/json': { schema: RequestSchema } } },
        404: problemResponse('no such request'),
        409: problemResponse('already decided'),
        422: problemResponse('invalid decision'),
        401: problemResponse('not signed in'),
        403: problemResponse('only privacy officers decide'),
      },
    }),
    async (c) => {
      const { sql, temporal } = c.var.deps;
      const { id } = c.req.valid('param');
      const body = c.req.valid('json');
      const r = await findRequest(sql, id);
      if (!r) throw new AppError('not-found', 404, 'No request with that id.');
      if (r.decision || r.answeredAt) throw new AppError('conflict', 409, 'The request has already been decided.');
      if (r.type === 'marketing_opt_out') throw new AppError('conflict', 409, 'Opting out of marketing needs no decision.');
      if (body.decision === 'refuse') {
        const problem = refusalProblem({ type: r.type, reasonCode: body.reasonCode, hasReason: !!body.reason, repetitive: r.flags.includes('repetitive'), hasEvidence: !!body.evidence });
        if (problem) throw new AppError('validation-failed', 422, `This refusal is not lawful as given: ${problem.message}.`, { errors: [{ ...problem, in: 'body' }] });
        // A draft under this officer's token: only the decision the workflow accepts has its reason copied.
        await sql`insert into decision_drafts (request_id, token_id, reason, evidence) values (${id}, ${c.var.principal!.tokenId}, ${body.reason!}, ${body.evidence ?? null})
                  on conflict (request_id, token_id) do update set reason = excluded.reason, evidence = excluded.evidence, created_at = now()`;
      }
      // A decision right after filing finds the run this process is still starting.
      await pendingStartsFor(c.var.deps).settled(requestWorkflowId(id));
      try {
        await temporal.workflow.getHandle(requestWorkflowId(id)).executeUpdate(decideUpdate, {
          args: [{ decision: body.decision, reasonCode: body.reasonCode ?? null, hasReason: !!body.reason, hasEvidence: !!body.evidence, decidedBy: c.var.principal!.tokenId }],
        });
      } catch (err) {
        throw updateFailureToAppError(err);
      }
      // The decision is recorded; the workflow carries it out. `Prefer: wait=N` (RFC 7240) waits up
      // to N seconds (at most 60) for the answer to go out; otherwise the answer is 202 at once.
      const wait = Math.min(60, Number(/\bwait=(\d+)/.exec(c.req.header('prefer') ?? '')?.[1] ?? 0)) * 1000;
      const row = (await awaitAnswer(sql, id, wait))!;
      return c.json(toJson(row), row.answeredAt ? 200 : 202);
    },
  );

  app.openapi(
    createRoute({
      method: 'post',
      path: '/requests/{id}/lift-restriction',
      tags: ['requests'],
      summary: 'Lift a restriction of processing (Art. 18(3)): the person is told first, then it is lifted',
      description:
        'Starts `restriction-lift:{id}`: the notice goes out through the outbox, and only then is the restriction the request put in place removed. Asking again answers the same and lifts once.',
      security: staffSecurity,
      ...access.staff('privacy_officer'),
      request: { params: Params },
      responses: {
        202: { description: 'the person is being told; the restriction is lifted right after', content: { 'application/json': { schema: z.object({ id: z.uuid(), workflowId: z.string() }) } } },
        404: problemResponse('no such request'),
        409: problemResponse('not an approved restriction that restricted anything'),
        401: problemResponse('not signed in'),
        403: problemResponse('not a privacy officer'),
      },
    }),
    async (c) => {
      const { sql, temporal, config } = c.var.deps;
      const r = await findRequest(sql, c.req.valid('param').id);
      if (!r) throw new AppError('not-found', 404, 'No request with that id.');
      const o = (r.outcome ?? {}) as { accountRestricted?: boolean; numbersRestricted?: number };
      if (r.type !== 'restriction' || r.decision !== 'approve' || !(o.accountRestricted || (o.numbersRestricted ?? 0) > 0)) {
        throw new AppError('conflict', 409, 'Only an approved restriction that restricted something can be lifted.');
      }
      const workflowId = restrictionLiftWorkflowId(r.id);
      await temporal.workflow
        .start(liftRestrictionWorkflow, {
          workflowId,
          taskQueue: config.TEMPORAL_TASK_QUEUE,
          args: [{ requestId: r.id, liftedBy: (c.var.principal as { tokenId: string }).tokenId }],
        })
        .catch((err: unknown) => {
          if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err; // asked before: the same lift
        });
      return c.json({ id: r.id, workflowId }, 202);
    },
  );

  return app;
}
