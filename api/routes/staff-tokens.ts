import { createRoute, z } from '@hono/zod-openapi';
import { createRouter } from '../router';
import { access, staffSecurity } from '../auth';
import { AppError, problemResponse } from '../problem';
import { insertStaffToken, listStaffTokens, newToken, revokeToken, STAFF_ROLES, type StaffRole } from '../../db/access-tokens';

const StaffToken = z
  .object({
    id: z.uuid(),
    role: z.enum(STAFF_ROLES),
    label: z.string(),
    createdAt: z.iso.datetime(),
    expiresAt: z.iso.datetime().nullable().openapi({ description: 'STAFF_TOKEN_TTL after issue; rotate before then' }),
    revokedAt: z.iso.datetime().nullable(),
  })
  .openapi('StaffToken');

const NewStaffToken = z
  .strictObject({
    role: z.enum(STAFF_ROLES).openapi({ description: 'admin: everything; privacy_officer: decisions, disputes, policies; support: day-to-day' }),
    label: z.string().trim().min(1).max(100).openapi({ description: 'who or what uses the token, e.g. "support desk"', example: 'support desk' }),
  })
  .openapi('NewStaffToken');

const toJson = (row: Awaited<ReturnType<typeof listStaffTokens>>[number]) => ({
  id: row.id,
  role: row.role!,
  label: row.label,
  createdAt: row.createdAt.toISOString(),
  expiresAt: row.expiresAt?.toISOString() ?? null,
  revokedAt: row.revokedAt?.toISOString() ?? null,
});

const authErrors = { 401: problemResponse('no or unknown token'), 403: problemResponse('not an admin') };

export function staffTokenRoutes() {
  const app = createRouter();

  app.openapi(
    createRoute({
      method: 'post',
      path: '/staff/tokens',
      tags: ['staff'],
      summary: 'Issue a staff token (shown once; only its hash is kept)',
      security: staffSecurity,
      ...access.staff('admin'),
      request: { body: { required: true, content: { 'application/json': { schema: NewStaffToken } } } },
      responses: {
        201: {
          description: 'issued',
          content: { 'application/json': { schema: StaffToken.extend({ token: z.string().openapi({ description: 'the bearer token; it cannot be shown again' }) }) } },
        },
        422: problemResponse('invalid body'),
        ...authErrors,
      },
    }),
    async (c) => {
      const body = c.req.valid('json');
      const token = newToken('staff');
      const row = await insertStaffToken(c.var.deps.sql, { token, role: body.role, label: body.label, ttl: c.var.deps.config.STAFF_TOKEN_TTL });
      return c.json({ ...toJson(row), token }, 201);
    },
  );

  app.openapi(
    createRoute({
      method: 'post',
      path: '/staff/tokens/{id}/rotate',
      tags: ['staff'],
      summary: 'Rotate a staff token: a new one with the same role and label (shown once), and the old one revoked in the same transaction',
      security: staffSecurity,
      ...access.staff('admin'),
      request: { params: z.object({ id: z.uuid() }) },
      responses: {
        201: { description: 'the new token', content: { 'application/json': { schema: StaffToken.extend({ token: z.string() }) } } },
        404: problemResponse('no such active staff token'),
        ...authErrors,
      },
    }),
    async (c) => {
      const { sql, config } = c.var.deps;
      const token = newToken('staff');
      const row = await sql.begin(async (tx) => {
        const [old] = await tx<{ role: StaffRole; label: string }[]>`
          update access_tokens set revoked_at = now() where id = ${c.req.valid('param').id} and kind = 'staff' and revoked_at is null
          returning role, label`;
        if (!old) return undefined;
        return insertStaffToken(tx, { token, role: old.role, label: old.label, ttl: config.STAFF_TOKEN_TTL });
      });
      if (!row) throw new AppError('not-found', 404, 'No active staff token with that id.');
      return c.json({ ...toJson(row), token }, 201);
    },
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/staff/tokens',
      tags: ['staff'],
      summary: 'List staff tokens (never the tokens themselves)',
      security: staffSecurity,
      ...access.staff('admin'),
      responses: {
        200: { description: 'tokens', content: { 'application/json': { schema: z.object({ items: z.array(StaffToken) }) } } },
        ...authErrors,
      },
    }),
    async (c) => c.json({ items: (await listStaffTokens(c.var.deps.sql)).map(toJson) }, 200),
  );

  app.openapi(
    createRoute({
      method: 'delete',
      path: '/staff/tokens/{id}',
      tags: ['staff'],
      summary: 'Revoke a staff token at once',
      security: staffSecurity,
      ...access.staff('admin'),
      request: { params: z.object({ id: z.uuid() }) },
      responses: { 204: { description: 'revoked' }, 404: problemResponse('no such active token'), 422: problemResponse('invalid id'), ...authErrors },
    }),
    async (c) => {
      if (!(await revokeToken(c.var.deps.sql, c.req.valid('param').id))) throw new AppError('not-found', 404, 'No active token with that id.');
      return c.body(null, 204);
    },
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/staff/me',
      tags: ['staff'],
      summary: 'The role of the calling staff token',
      security: staffSecurity,
      ...access.staff(),
      responses: {
        200: { description: 'the caller', content: { 'application/json': { schema: z.object({ tokenId: z.uuid(), role: z.enum(STAFF_ROLES) }) } } },
        401: problemResponse('no or unknown token'),
        403: problemResponse('not staff'),
      },
    }),
    (c) => {
      const p = c.var.principal as { tokenId: string; role: (typeof STAFF_ROLES)[number] };
      return c.json({ tokenId: p.tokenId, role: p.role }, 200);
    },
  );

  return app;
}
