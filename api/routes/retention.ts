import { createRoute, z } from '@hono/zod-openapi';
import { createRouter } from '../router';
import { access, staffSecurity } from '../auth';
import { problemResponse } from '../problem';
import { verifyReceiptChain } from '../../db/receipts';
import { DATA_RETENTION_SCHEDULE_ID, RETENTION_SCHEDULE_ID } from '../../workflows/ids';
import { PLACES } from '../../db/personal-data';
import { sweepProgressQuery } from '../../workflows/retention-sweep';
import { personKeysFor } from '../../db/person-keys';
import { addCalendarDuration } from '../../lib/durations';

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
      ...access.staff('privacy_officer'),
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
      ...access.staff(),
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

  app.openapi(
    createRoute({
      method: 'get',
      path: '/retention/data',
      tags: ['recordings'],
      summary: 'D15: every place personal data lives, how long it is kept, and what the data-retention Schedule removed',
      description:
        'The personal-data map (db/personal-data.ts) with each place’s retention period as configured, the totals the Schedule `data-retention` has removed per place, and its last runs.',
      security: staffSecurity,
      ...access.staff(),
      responses: {
        200: {
          description: 'the map’s periods and the deletion counts',
          content: {
            'application/json': {
              schema: z.object({
                scheduleId: z.string(),
                nextRunAt: z.iso.datetime().nullable(),
                places: z.array(z.object({ id: z.string(), where: z.string(), retention: z.string(), configured: z.string().optional() })),
                removed: z.record(z.string(), z.number().int()),
                keys: z
                  .object({
                    currentMasterKeyId: z.string(),
                    currentSince: z.iso.datetime(),
                    rotationDueAt: z.iso.datetime(),
                    rotationOverdue: z.boolean(),
                    liveUnderOlderKeys: z.number().int(),
                    liveUnderMissingKeys: z.number().int(),
                    rewrapped: z.number().int(),
                    outboxBodiesSealed: z.number().int(),
                  })
                  .openapi({
                    description:
                      'Issue 12: the master key of DATA_KEYS in use, since when, and when it must be retired (DATA_KEY_MAX_AGE: database backups stop opening erased data then); live data keys still wrapped by older keys (the sweep re-wraps them: at 0 the older keys can be removed) or by keys no longer configured; totals the sweep re-wrapped and sealed',
                  }),
                lastRuns: z.array(z.object({ finishedAt: z.iso.datetime(), counts: z.record(z.string(), z.number().int()) })),
              }),
            },
          },
        },
        ...authErrors,
      },
    }),
    async (c) => {
      const { temporal, sql, config } = c.var.deps;
      const schedule = await temporal.schedule.getHandle(DATA_RETENTION_SCHEDULE_ID).describe().catch(() => undefined);
      const status = await (c.var.deps.keys ?? personKeysFor(sql, config)).masterKeyStatus();
      const rotationDueAt = addCalendarDuration(status.currentSince, config.DATA_KEY_MAX_AGE);
      const [totals] = await sql<{ removed: Record<string, number> | null }[]>`
        select jsonb_object_agg(k, n) as removed from (
          select k, sum((counts ->> k)::int)::int as n from data_retention_runs, jsonb_object_keys(counts) k group by k) t`;
      const runs = await sql<{ finishedAt: Date; counts: Record<string, number> }[]>`
        select finished_at as "finishedAt", counts from data_retention_runs order by finished_at desc limit 10`;
      return c.json(
        {
          scheduleId: DATA_RETENTION_SCHEDULE_ID,
          nextRunAt: schedule?.info.nextActionTimes[0]?.toISOString() ?? null,
          places: PLACES.map((p) => ({
            id: p.id,
            where: p.where,
            retention: p.retention.period,
            ...(p.retention.config ? { configured: `${p.retention.config}=${config[p.retention.config]}` } : {}),
          })),
          removed: Object.fromEntries(Object.entries(totals?.removed ?? {}).filter(([k]) => PLACES.some((p) => p.id === k))),
          keys: {
            currentMasterKeyId: status.currentKeyId,
            currentSince: status.currentSince.toISOString(),
            rotationDueAt: rotationDueAt.toISOString(),
            rotationOverdue: rotationDueAt <= new Date(),
            liveUnderOlderKeys: status.liveUnderOlderKeys,
            liveUnderMissingKeys: status.liveUnderMissingKeys,
            rewrapped: totals?.removed?.person_keys_rewrapped ?? 0,
            outboxBodiesSealed: totals?.removed?.email_outbox_sealed ?? 0,
          },
          lastRuns: runs.map((r) => ({ finishedAt: r.finishedAt.toISOString(), counts: r.counts })),
        },
        200,
      );
    },
  );

  return app;
}
