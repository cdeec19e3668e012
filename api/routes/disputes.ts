import { randomUUID } from 'node:crypto';
import { createRoute, z } from '@hono/zod-openapi';
import { WithStartWorkflowOperation } from '@temporalio/client';
import { createRouter } from '../router';
import { access, staffSecurity } from '../auth';
import { AppError, problemResponse, type FieldError } from '../problem';
import { updateFailureToAppError } from '../temporal-errors';
import type { ApiDeps } from '../context';
import { findClient } from '../../db/clients';
import { deleteDisputeWithoutHolds, findDispute, insertDispute, setResolutionText } from '../../db/disputes';
import { disputeWorkflowId } from '../../workflows/ids';
import { addRecordingsUpdate, dispute, resolveUpdate } from '../../workflows/dispute';
import { fixedDurationMs } from '../../lib/durations';

const RecordingIds = z
  .array(z.uuid())
  .min(1)
  .max(1000)
  .refine((ids) => new Set(ids).size === ids.length, 'must not repeat a recording')
  .openapi({ description: 'recordings to hold (1–1000)' });

const NewDispute = z
  .strictObject({
    clientId: z.uuid(),
    recordingIds: RecordingIds,
    reason: z.string().trim().min(1).max(2000).openapi({ description: 'what the dispute is about (kept in Postgres, never in workflow history)' }),
  })
  .openapi('NewDispute');

const DisputeSchema = z
  .object({
    id: z.uuid(),
    clientId: z.uuid(),
    status: z.enum(['open', 'resolved']),
    recordingIds: z.array(z.uuid()),
    openedAt: z.iso.datetime(),
    resolvedAt: z.iso.datetime().optional(),
  })
  .openapi('Dispute');

const authErrors = { 401: problemResponse('no or unknown token'), 403: problemResponse('role not allowed') };
const Params = z.object({ id: z.uuid() });

/** Checks recordings before anything starts: they exist, are the client's, and still have audio. */
async function recordingProblems(deps: ApiDeps, clientId: string, ids: string[]): Promise<FieldError[]> {
  const rows = await deps.sql<{ id: string; clientId: string; status: string }[]>`
    select id, client_id as "clientId", status from recordings where id = any(${ids}::uuid[])`;
  const byId = new Map(rows.map((r) => [r.id, r]));
  return ids.flatMap((id, i): FieldError[] => {
    const r = byId.get(id);
    const field = `recordingIds.${i}`;
    if (!r) return [{ field, in: 'body', message: 'no such recording' }];
    if (r.clientId !== clientId) return [{ field, in: 'body', message: "is another client's recording" }];
    if (r.status === 'deleted') return [{ field, in: 'body', message: 'is already deleted' }];
    return [];
  });
}

const toJson = (d: NonNullable<Awaited<ReturnType<typeof findDispute>>>) => ({
  id: d.id,
  clientId: d.clientId,
  status: d.status,
  recordingIds: d.recordingIds,
  openedAt: d.openedAt.toISOString(),
  ...(d.resolvedAt ? { resolvedAt: d.resolvedAt.toISOString() } : {}),
});

export function disputeRoutes() {
  const app = createRouter();

  app.openapi(
    createRoute({
      method: 'post',
      path: '/disputes',
      tags: ['disputes'],
      summary: 'Open a dispute: answers 201 only once every hold is in force',
      security: staffSecurity,
      ...access.staff('privacy_officer', 'support'),
      request: { body: { required: true, content: { 'application/json': { schema: NewDispute } } } },
      responses: {
        201: { description: 'open, with its holds in force', content: { 'application/json': { schema: z.object({ id: z.uuid(), status: z.literal('open'), recordingIds: z.array(z.uuid()) }) } } },
        409: problemResponse('a recording was deleted meanwhile'),
        422: problemResponse('invalid body, unknown client or recordings'),
        ...authErrors,
      },
    }),
    async (c) => {
      const deps = c.var.deps;
      const body = c.req.valid('json');
      if (!(await findClient(deps.sql, body.clientId))) {
        throw new AppError('validation-failed', 422, 'Unknown client.', { errors: [{ field: 'clientId', in: 'body', message: 'no such client' }] });
      }
      const errors = await recordingProblems(deps, body.clientId, body.recordingIds);
      if (errors.length) throw new AppError('validation-failed', 422, `${errors.length} recording(s) cannot be held.`, { errors });

      const id = randomUUID();
      await insertDispute(deps.sql, { id, clientId: body.clientId, reason: body.reason });
      const start = new WithStartWorkflowOperation(dispute, {
        workflowId: disputeWorkflowId(id),
        taskQueue: deps.config.TEMPORAL_TASK_QUEUE,
        workflowIdConflictPolicy: 'FAIL',
        memo: { clientId: body.clientId, recordings: body.recordingIds.length },
        args: [{ disputeId: id, clientId: body.clientId, reviewIntervalMs: fixedDurationMs(deps.config.DISPUTE_REVIEW_INTERVAL) }],
      });
      try {
        const { recordingIds } = await deps.temporal.workflow.executeUpdateWithStart(addRecordingsUpdate, {
          args: [{ recordingIds: body.recordingIds }],
          startWorkflowOperation: start,
        });
        return c.json({ id, status: 'open' as const, recordingIds }, 201);
      } catch (err) {
        // No hold was placed (e.g. a recording was deleted since the check): leave no empty dispute behind.
        const handle = await start.workflowHandle().catch(() => undefined);
        await handle?.terminate('no hold could be placed').catch(() => {});
        await deleteDisputeWithoutHolds(deps.sql, id);
        throw updateFailureToAppError(err);
      }
    },
  );

  app.openapi(
    createRoute({
      method: 'post',
      path: '/disputes/{id}/recordings',
      tags: ['disputes'],
      summary: 'Add recordings to an open dispute (answers once the holds are in force)',
      security: staffSecurity,
      ...access.staff('privacy_officer', 'support'),
      request: { params: Params, body: { required: true, content: { 'application/json': { schema: z.strictObject({ recordingIds: RecordingIds }) } } } },
      responses: {
        200: { description: 'held', content: { 'application/json': { schema: z.object({ id: z.uuid(), status: z.literal('open'), recordingIds: z.array(z.uuid()) }) } } },
        404: problemResponse('no such dispute'),
        409: problemResponse('the dispute is resolved, or a recording was deleted'),
        422: problemResponse('invalid body or recordings'),
        ...authErrors,
      },
    }),
    async (c) => {
      const deps = c.var.deps;
      const { id } = c.req.valid('param');
      const { recordingIds } = c.req.valid('json');
      const existing = await findDispute(deps.sql, id);
      if (!existing) throw new AppError('not-found', 404, 'No dispute with that id.');
      if (existing.status !== 'open') throw new AppError('conflict', 409, 'The dispute is resolved; open a new one.');
      const errors = await recordingProblems(deps, existing.clientId, recordingIds);
      if (errors.length) throw new AppError('validation-failed', 422, `${errors.length} recording(s) cannot be held.`, { errors });
      try {
        const result = await deps.temporal.workflow.getHandle(disputeWorkflowId(id)).executeUpdate(addRecordingsUpdate, { args: [{ recordingIds }] });
        return c.json({ id, status: 'open' as const, recordingIds: result.recordingIds }, 200);
      } catch (err) {
        throw updateFailureToAppError(err);
      }
    },
  );

  app.openapi(
    createRoute({
      method: 'post',
      path: '/disputes/{id}/resolve',
      tags: ['disputes'],
      summary: 'Resolve a dispute: release its holds and delete at once the held recordings already past their deadline',
      security: staffSecurity,
      ...access.staff('privacy_officer'),
      request: {
        params: Params,
        body: { required: true, content: { 'application/json': { schema: z.strictObject({ resolution: z.string().trim().min(1).max(2000) }) } } },
      },
      responses: {
        200: {
          description: 'resolved',
          content: { 'application/json': { schema: z.object({ id: z.uuid(), status: z.literal('resolved'), deleted: z.array(z.uuid()) }) } },
        },
        404: problemResponse('no such dispute'),
        409: problemResponse('already resolved'),
        ...authErrors,
      },
    }),
    async (c) => {
      const deps = c.var.deps;
      const { id } = c.req.valid('param');
      const existing = await findDispute(deps.sql, id);
      if (!existing) throw new AppError('not-found', 404, 'No dispute with that id.');
      if (existing.status !== 'open') throw new AppError('conflict', 409, 'The dispute is already resolved.');
      await setResolutionText(deps.sql, id, c.req.valid('json').resolution);
      try {
        const { deleted } = await deps.temporal.workflow.getHandle(disputeWorkflowId(id)).executeUpdate(resolveUpdate, { args: [{ resolvedBy: (c.var.principal as { tokenId: string }).tokenId }] });
        return c.json({ id, status: 'resolved' as const, deleted }, 200);
      } catch (err) {
        throw updateFailureToAppError(err);
      }
    },
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/disputes/{id}',
      tags: ['disputes'],
      summary: 'A dispute and the recordings it holds (or held)',
      security: staffSecurity,
      ...access.staff(),
      request: { params: Params },
      responses: { 200: { description: 'the dispute', content: { 'application/json': { schema: DisputeSchema } } }, 404: problemResponse('no such dispute'), ...authErrors },
    }),
    async (c) => {
      const d = await findDispute(c.var.deps.sql, c.req.valid('param').id);
      if (!d) throw new AppError('not-found', 404, 'No dispute with that id.');
      return c.json(toJson(d), 200);
    },
  );

  return app;
}
