import { createRoute, z } from '@hono/zod-openapi';
import { createRouter } from '../router';
import { requireStaff, staffSecurity } from '../auth';
import { problemResponse } from '../problem';
import { verifyReceiptChain } from '../../db/receipts';
import { RETENTION_SCHEDULE_ID } from '../../workflows/ids';
import { sweepProgressQuery } from '../../workflows/retention-sweep';

const authErrors = { 401: problemResponse('no or unknown token'), 403: problemResponse('role not allowed') };

export function retentionRoutes() {
  const app = createRouter();

  app.openapi(
    createRoute({
      method: 'get',
      path: '/deletion-receipts/verify',
      tags: ['recordings'],
      summary: 'Recompute the deletion-receipt hash chain; any edited or removed receipt is found',
      security: staffSecurity,
      middleware: [requireStaff('privacy_officer')] as const,
      responses: {
        200: {
          description: 'the verdict',
          content: {
            'application/json': {
              schema: z.object({ valid: z.boolean(), receipts: z.number().int(), brokenAtSeq: z.number().int().optional(), headHash: z.string() }),
            },
          },
        },
        ...authErrors,
      },
    }),
    async (c) => c.json(await verifyReceiptChain(c.var.deps.sql), 200),
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/retention/sweep',
      tags: ['recordings'],
      summary: 'The retention schedule and the progress of a sweep in flight',
      security: staffSecurity,
      middleware: [requireStaff()] as const,
      responses: {
        200: {
          description: 'status',
          content: {
            'application/json': {
              schema: z.object({
                scheduleId: z.string(),
                nextRunAt: z.iso.datetime().nullable(),
                running: z.array(z.object({ workflowId: z.string(), dueBefore: z.string(), deleted: z.number(), batches: z.number() })),
              }),
            },
          },
        },
        ...authErrors,
      },
    }),
    async (c) => {
      const { temporal } = c.var.deps;
      const schedule = await temporal.schedule.getHandle(RETENTION_SCHEDULE_ID).describe().catch(() => undefined);
      const running = [];
      for (const action of schedule?.info.runningActions ?? []) {
        const handle = temporal.workflow.getHandle(action.workflow.workflowId);
        const progress = await handle.query(sweepProgressQuery).catch(() => undefined);
        if (progress) running.push({ workflowId: action.workflow.workflowId, ...progress });
      }
      return c.json(
        {
          scheduleId: RETENTION_SCHEDULE_ID,
          nextRunAt: schedule?.info.nextActionTimes[0]?.toISOString() ?? null,
          running: running.map(({ workflowId, dueBefore, deleted, batches }) => ({ workflowId, dueBefore, deleted, batches })),
        },
        200,
      );
    },
  );

  return app;
}
