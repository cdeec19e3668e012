import { createRoute, z } from '@hono/zod-openapi';
import { createRouter } from '../router';
import { access, staffSecurity } from '../auth';
import { problemResponse } from '../problem';
import { promiseStats } from '../../db/stats';
import type { Metrics } from '../metrics';

const count = () => z.number().int().min(0);

/** GET /v1/stats (contract): the promises as numbers, the same numbers as /metrics. */
export const PromiseStatsSchema = z
  .object({
    requests: z.object({
      open: count().describe('not yet answered'),
      dueSoon: count().describe('open and due within 24 hours'),
      overdue: count().describe('open and past the due date (D10: 7 days)'),
      answeredOnTime30d: count().describe('answered in the last 30 days by the due date'),
      answeredLate30d: count().describe('answered in the last 30 days after the due date'),
    }),
    recordings: z.object({
      retained: count().describe('stored, held by no dispute'),
      held: count().describe('stored, held by an open dispute'),
      overdueUnheld: count().describe('past the deadline and held by nothing: the retention sweep owes their deletion'),
      oldestOverdueSeconds: count().describe('how long the oldest of those has outlived its deadline (0 when none); D4 allows at most RETENTION_SWEEP_INTERVAL'),
    }),
    notices: z.object({
      sent: count().describe('policy-change notices sent'),
      failed: count().describe('policy-change notices refused for good'),
    }),
  })
  .openapi('PromiseStats');

/** GET /metrics: Prometheus text for scrapers; callers on this machine only unless METRICS_ALLOW_REMOTE. */
export function metricsRoutes(metrics: Metrics) {
  const app = createRouter();
  app.openapi(
    createRoute({
      method: 'get',
      path: '/metrics',
      ...access.scraper(),
      tags: ['operations'],
      summary: 'Prometheus metrics: the promises as gauges, HTTP latency per route, process metrics',
      description:
        'Prometheus text exposition. The promise gauges (`privacy_*`) are read from Postgres at scrape time by the same query as `GET /v1/stats`. ' +
        'Served to callers on this machine only (a loopback peer, not relayed by a proxy) unless `METRICS_ALLOW_REMOTE=true`. Labels never carry personal data.',
      responses: {
        200: { description: 'Prometheus text format 0.0.4', content: { 'text/plain': { schema: z.string() } } },
        403: problemResponse('the caller is not on this machine and METRICS_ALLOW_REMOTE is false'),
      },
    }),
    async (c) => c.text(await metrics.render(), 200, { 'content-type': metrics.contentType }),
  );
  return app;
}

export function statsRoutes() {
  const app = createRouter();
  app.openapi(
    createRoute({
      method: 'get',
      path: '/stats',
      ...access.staff(),
      security: staffSecurity,
      tags: ['operations'],
      summary: 'How the promises stand: requests (D10), recordings (D4), policy notices (D12), as counts',
      description: 'Computed from Postgres on every call by the same query as the gauges of `GET /metrics`. No personal data.',
      responses: {
        200: { description: 'the counts', content: { 'application/json': { schema: PromiseStatsSchema } } },
        401: problemResponse('no or unknown token'),
        403: problemResponse('not staff'),
      },
    }),
    async (c) => c.json(await promiseStats(c.var.deps.sql), 200),
  );
  return app;
}
