import { WorkflowFailedError } from '@temporalio/client';
import { TimeoutFailure } from '@temporalio/common';
import { randomUUID } from 'node:crypto';
import { createRoute, z } from '@hono/zod-openapi';
import { createRouter } from '../router';
import { access, staffSecurity } from '../auth';
import { AppError, problemResponse } from '../problem';
import { systemCheckWorkflowId } from '../../workflows/ids';
import { fixedDurationMs } from '../../lib/durations';
import type { systemCheck } from '../../workflows/system-check';

const SystemCheck = z
  .object({
    id: z.uuid(),
    workflowId: z.string(),
    runId: z.string(),
    databaseTime: z.iso.datetime(),
    emailMessageId: z.string().openapi({ description: 'Message-ID of the email sent to STAFF_EMAIL' }),
  })
  .openapi('SystemCheck');

export function systemCheckRoutes() {
  const app = createRouter();

  app.openapi(
    createRoute({
      method: 'post',
      path: '/system-checks',
      tags: ['operations'],
      summary: 'Run a workflow end to end (Temporal, worker, Postgres, SMTP) and wait for it',
      security: staffSecurity,
      ...access.staff('admin'),
      responses: {
        201: { description: 'the check passed', content: { 'application/json': { schema: SystemCheck } } },
        401: problemResponse('no or unknown token'),
        403: problemResponse('not an admin'),
        504: problemResponse('the worker did not finish the check in time'),
      },
    }),
    async (c) => {
      const { temporal, config } = c.var.deps;
      const id = randomUUID();
      const handle = await temporal.workflow.start<typeof systemCheck>('systemCheck', {
        workflowId: systemCheckWorkflowId(id),
        taskQueue: config.TEMPORAL_TASK_QUEUE,
        args: [{ checkId: id }],
        workflowExecutionTimeout: fixedDurationMs(config.SYSTEM_CHECK_TIMEOUT),
      });
      const result = await handle.result().catch((err: unknown) => {
        // The documented answer when the worker did not finish in time (no worker, or a stuck one).
        if (err instanceof WorkflowFailedError && err.cause instanceof TimeoutFailure) {
          throw new AppError('timeout', 504, `The worker did not finish system check ${id} within SYSTEM_CHECK_TIMEOUT (${config.SYSTEM_CHECK_TIMEOUT}); see ${handle.workflowId} in the Temporal UI.`);
        }
        throw err;
      });
      return c.json(
        { id, workflowId: handle.workflowId, runId: handle.firstExecutionRunId, databaseTime: result.databaseTime, emailMessageId: result.emailMessageId },
        201,
      );
    },
  );

  return app;
}
