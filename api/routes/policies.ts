import { createRoute, z } from '@hono/zod-openapi';
import { boundedTimestamp } from '../schemas';
import { createRouter } from '../router';
import { commitAndStart } from '../start';
import { access, staffSecurity } from '../auth';
import { AppError, problemResponse } from '../problem';
import { currentPolicy, failedNotices, findPolicy, insertPolicy, noticeProgress, type PolicyRow } from '../../db/policies';
import { addCalendarDuration, fixedDurationMs } from '../../lib/durations';
import { policyWorkflowId } from '../../workflows/ids';
import type { policyChange } from '../../workflows/policy-change';

const Version = z.string().regex(/^[\w.-]{1,40}$/, 'letters, digits, dots, dashes and underscores (at most 40)');

const NewPolicy = z
  .strictObject({
    version: Version.openapi({ example: '2027-01-01' }),
    effectiveAt: boundedTimestamp(),
    material: z.boolean().openapi({ description: 'a material change: every registered person is told before it takes effect' }),
    summary: z.string().trim().min(1).max(4000).openapi({ description: 'what changes, as the notice email says it' }),
    text: z.string().trim().min(1).max(200_000).openapi({ description: 'the full text of the new policy' }),
  })
  .openapi('NewPolicy');

const PublicPolicy = z
  .object({ version: z.string(), effectiveAt: z.iso.datetime(), material: z.boolean(), summary: z.string(), text: z.string() })
  .openapi('Policy');

const publicJson = (p: PolicyRow) => ({ version: p.version, effectiveAt: p.effectiveAt.toISOString(), material: p.material, summary: p.summary, text: p.body });

export function policyRoutes() {
  const app = createRouter();

  app.openapi(
    createRoute({
      method: 'post',
      path: '/policies',
      tags: ['policies'],
      summary: 'Publish a policy version (D12); a material one is noticed to every registered person before effectiveAt',
      security: staffSecurity,
      ...access.staff('privacy_officer'),
      request: { body: { required: true, content: { 'application/json': { schema: NewPolicy } } } },
      responses: {
        202: { description: 'scheduled; notices go out now, the version becomes current at effectiveAt', content: { 'application/json': { schema: z.object({ version: z.string(), status: z.literal('scheduled'), effectiveAt: z.iso.datetime() }) } } },
        409: problemResponse('that version exists'),
        422: problemResponse('invalid body, or a material change with less notice than POLICY_NOTICE_PERIOD'),
        401: problemResponse('no or unknown token'),
        403: problemResponse('only privacy officers publish policies'),
      },
    }),
    async (c) => {
      const { sql, temporal, config } = c.var.deps;
      const body = c.req.valid('json');
      const effectiveAt = new Date(body.effectiveAt);
      const earliest = addCalendarDuration(new Date(), config.POLICY_NOTICE_PERIOD);
      if (effectiveAt.getTime() <= Date.now()) {
        throw new AppError('validation-failed', 422, 'A new version takes effect in the future.', { errors: [{ field: 'effectiveAt', in: 'body', message: 'must be in the future' }] });
      }
      if (body.material && effectiveAt < earliest) {
        throw new AppError('validation-failed', 422, `A material change needs at least ${config.POLICY_NOTICE_PERIOD} notice: effectiveAt must be on or after ${earliest.toISOString()}.`, {
          errors: [{ field: 'effectiveAt', in: 'body', message: `too short notice; earliest ${earliest.toISOString()}` }],
        });
      }
      const inserted = await commitAndStart(
        c.var.deps,
        (tx) => insertPolicy(tx, { version: body.version, effectiveAt, material: body.material, summary: body.summary, body: body.text }),
        (fresh) =>
          fresh
            ? {
                workflowId: policyWorkflowId(body.version),
                workflowType: 'policyChange',
                taskQueue: config.TEMPORAL_TASK_QUEUE,
                memo: { material: body.material, effectiveAt: effectiveAt.toISOString() },
                args: [
                  {
                    version: body.version,
                    effectiveAt: effectiveAt.toISOString(),
                    material: body.material,
                    concurrency: config.MAIL_CONCURRENCY,
                    catchUpIntervalMs: fixedDurationMs(config.POLICY_CATCHUP_INTERVAL),
                  } satisfies Parameters<typeof policyChange>[0],
                ],
              }
            : undefined,
      );
      if (!inserted) throw new AppError('conflict', 409, `Version ${body.version} exists already.`);
      return c.json({ version: body.version, status: 'scheduled' as const, effectiveAt: effectiveAt.toISOString() }, 202);
    },
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/policies/current',
      ...access.public(),
      tags: ['policies'],
      summary: 'The policy in force (public)',
      responses: { 200: { description: 'the version in force', content: { 'application/json': { schema: PublicPolicy } } } },
    }),
    async (c) => {
      const p = await currentPolicy(c.var.deps.sql);
      if (!p) throw new AppError('not-found', 404, 'No policy is in force.');
      return c.json(publicJson(p), 200);
    },
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/policies/{version}/text',
      ...access.public(),
      tags: ['policies'],
      summary: 'The full text of a version (public; the notice email links here)',
      request: { params: z.object({ version: Version }) },
      responses: { 200: { description: 'the version', content: { 'application/json': { schema: PublicPolicy } } }, 404: problemResponse('no such version') },
    }),
    async (c) => {
      const p = await findPolicy(c.var.deps.sql, c.req.valid('param').version);
      if (!p) throw new AppError('not-found', 404, 'No such policy version.');
      return c.json(publicJson(p), 200);
    },
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/policies/{version}',
      tags: ['policies'],
      summary: 'A version and the progress of its notices',
      security: staffSecurity,
      ...access.staff(),
      request: { params: z.object({ version: Version }) },
      responses: {
        200: {
          description: 'status and progress',
          content: {
            'application/json': {
              schema: z.object({
                version: z.string(),
                status: z.enum(['scheduled', 'current', 'superseded']),
                material: z.boolean(),
                effectiveAt: z.iso.datetime(),
                notices: z.object({ total: z.number().int(), sent: z.number().int(), failed: z.number().int() }),
              }),
            },
          },
        },
        404: problemResponse('no such version'),
      },
    }),
    async (c) => {
      const { sql } = c.var.deps;
      const p = await findPolicy(sql, c.req.valid('param').version);
      if (!p) throw new AppError('not-found', 404, 'No such policy version.');
      const progress = p.material ? await noticeProgress(sql, p.version) : { total: 0, sent: 0, failed: 0 };
      return c.json(
        { version: p.version, status: p.status, material: p.material, effectiveAt: p.effectiveAt.toISOString(), notices: { total: progress.total, sent: progress.sent, failed: progress.failed } },
        200,
      );
    },
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/policies/{version}/failed-notices',
      tags: ['policies'],
      summary: 'Notices that still failed after retries, for staff to follow up',
      security: staffSecurity,
      ...access.staff(),
      request: { params: z.object({ version: Version }) },
      responses: {
        200: { description: 'failures', content: { 'application/json': { schema: z.object({ items: z.array(z.object({ customerId: z.string(), error: z.string().nullable(), attempts: z.number() })) }) } } },
      },
    }),
    async (c) => c.json({ items: await failedNotices(c.var.deps.sql, c.req.valid('param').version) }, 200),
  );

  return app;
}
