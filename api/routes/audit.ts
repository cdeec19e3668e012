import { createRoute, z } from '@hono/zod-openapi';
import { createRouter } from '../router';
import { access, staffSecurity } from '../auth';
import { problemResponse } from '../problem';
import { LEDGER_ACTIONS, LEDGER_OBJECTS, listLedger, verifyLedger, type LedgerEntry } from '../../db/audit-ledger';

const authErrors = { 401: problemResponse('no or unknown token'), 403: problemResponse('role not allowed') };

const EntrySchema = z
  .object({
    seq: z.number().int(),
    at: z.iso.datetime(),
    actor: z.object({
      type: z.enum(['staff', 'customer', 'system', 'link', 'unknown']),
      id: z.uuid().nullable().openapi({ description: 'staff token id or customer id' }),
      role: z.string().nullable().openapi({ description: 'staff role, the authority of a person’s own step, or the part of the system acting' }),
    }),
    action: z.enum(LEDGER_ACTIONS),
    outcome: z.enum(['done', 'refused']),
    object: z.object({ type: z.enum(LEDGER_OBJECTS), id: z.uuid() }),
    prevHash: z.string(),
    hash: z.string(),
  })
  .openapi('AuditEntry');

const entryJson = (e: LedgerEntry) => ({
  seq: e.seq,
  at: e.at.toISOString(),
  actor: { type: e.actorType, id: e.actorId, role: e.actorRole },
  action: e.action,
  outcome: e.outcome,
  object: { type: e.objectType, id: e.objectId },
  prevHash: e.prevHash,
  hash: e.hash,
});

/** Issue 12: the append-only audit ledger, for privacy officers and admins. */
export function auditRoutes() {
  const app = createRouter();

  app.openapi(
    createRoute({
      method: 'get',
      path: '/audit/verify',
      tags: ['audit'],
      summary: 'Recompute the audit ledger’s hash chain; any edited, removed or forged entry is found',
      security: staffSecurity,
      ...access.staff('privacy_officer'),
      responses: {
        200: {
          description: 'the verdict: `brokenAt` is the seq of the first entry that does not follow from its content and predecessor',
          content: {
            'application/json': {
              schema: z.object({ valid: z.boolean(), entries: z.number().int(), brokenAt: z.number().int().optional(), headHash: z.string() }).openapi('AuditVerification'),
            },
          },
        },
        ...authErrors,
      },
    }),
    async (c) => c.json(await verifyLedger(c.var.deps.sql), 200),
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/audit',
      tags: ['audit'],
      summary: 'Audit ledger entries in chain order: who did what to which record, and refused attempts (ids only, no personal values)',
      security: staffSecurity,
      ...access.staff('privacy_officer'),
      request: {
        query: z.strictObject({
          objectType: z.enum(LEDGER_OBJECTS).optional(),
          objectId: z.uuid().optional(),
          action: z.enum(LEDGER_ACTIONS).optional(),
          afterSeq: z.coerce.number().int().min(0).optional().openapi({ description: 'the `seq` of the last entry of the previous page' }),
          limit: z.coerce.number().int().min(1).max(1000).default(100),
        }),
      },
      responses: {
        200: { description: 'a page', content: { 'application/json': { schema: z.object({ items: z.array(EntrySchema) }) } } },
        422: problemResponse('invalid filter'),
        ...authErrors,
      },
    }),
    async (c) => c.json({ items: (await listLedger(c.var.deps.sql, c.req.valid('query'))).map(entryJson) }, 200),
  );

  return app;
}
