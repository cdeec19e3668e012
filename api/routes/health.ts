import { createRoute, z } from '@hono/zod-openapi';
import { createRouter } from '../router';
import { access } from '../auth';
import { problem, problemResponse } from '../problem';
import { temporalAnswers } from '../../lib/temporal';
import type { Sql } from '../../db/index';

const READINESS_TIMEOUT_MS = 2000;

async function postgresAnswers(sql: Sql): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  try {
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error('timeout')), READINESS_TIMEOUT_MS);
    });
    await Promise.race([sql`select 1`, timeout]);
    return true;
  } catch {
    return false;
  } finally {
    clearTimeout(timer);
  }
}

const Checks = z.object({ postgres: z.enum(['up', 'down']), temporal: z.enum(['up', 'down']) });

export function healthRoutes() {
  const app = createRouter();

  app.openapi(
    createRoute({
      method: 'get',
      path: '/healthz',
      ...access.public(),
      tags: ['operations'],
      summary: 'The API process is up',
      responses: { 200: { description: 'up', content: { 'application/json': { schema: z.object({ status: z.literal('ok') }) } } } },
    }),
    (c) => c.json({ status: 'ok' as const }, 200),
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/readyz',
      ...access.public(),
      tags: ['operations'],
      summary: 'Postgres and Temporal both answer',
      responses: {
        200: { description: 'ready', content: { 'application/json': { schema: z.object({ status: z.literal('ready'), checks: Checks }) } } },
        503: problemResponse('a dependency does not answer; `checks` says which'),
      },
    }),
    async (c) => {
      const { sql, temporal } = c.var.deps;
      const [pg, tp] = await Promise.all([postgresAnswers(sql), temporalAnswers(temporal.connection, READINESS_TIMEOUT_MS)]);
      const checks = { postgres: pg ? 'up' : 'down', temporal: tp ? 'up' : 'down' } as const;
      if (pg && tp) return c.json({ status: 'ready' as const, checks }, 200);
      const down = Object.entries(checks).filter(([, v]) => v === 'down').map(([k]) => k);
      return problem(c, 503, 'not-ready', `Not answering: ${down.join(', ')}.`, { checks }) as never;
    },
  );

  return app;
}
