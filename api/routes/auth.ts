import { createRoute, z } from '@hono/zod-openapi';
import { hashPassword } from '../passwords';
import { createRouter } from '../router';
import { access, staffSecurity } from '../auth';
import { AppError, problemResponse } from '../problem';
import { newToken, hashToken } from '../../db/access-tokens';
import { consumePasswordToken, passwordTokenUsable } from '../../db/customers';
import { checkLogin } from '../login';
import { requestPasswordReset } from '../account-emails';
import { fixedDurationMs } from '../../lib/durations';

const Password = z.string().min(10, 'must be at least 10 characters').max(200);

export function authRoutes() {
  const app = createRouter();

  app.openapi(
    createRoute({
      method: 'post',
      path: '/auth/password',
      ...access.public(),
      tags: ['auth'],
      summary: 'Set a password with the one-time token from the invitation link',
      request: { body: { required: true, content: { 'application/json': { schema: z.strictObject({ token: z.string().min(20).max(200), password: Password }).openapi('SetPassword') } } } },
      responses: { 204: { description: 'set; the link is used up' }, 400: problemResponse('the link is unknown, used or expired'), 422: problemResponse('invalid body') },
    }),
    async (c) => {
      const { token, password } = c.req.valid('json');
      // The token is looked up before any hashing: an unknown link costs one indexed read, not argon2.
      if (!(await passwordTokenUsable(c.var.deps.sql, token))) throw new AppError('invalid-link', 400, 'This link is unknown, already used or expired. Ask TopCall for a new one.');
      const customerId = await consumePasswordToken(c.var.deps.sql, token, await hashPassword(password));
      if (!customerId) throw new AppError('invalid-link', 400, 'This link is unknown, already used or expired. Ask TopCall for a new one.');
      return c.body(null, 204);
    },
  );

  app.openapi(
    createRoute({
      method: 'post',
      path: '/auth/login',
      ...access.public(),
      tags: ['auth'],
      summary: 'Log in with email and password; answers a revocable customer token',
      request: { body: { required: true, content: { 'application/json': { schema: z.strictObject({ email: z.email(), password: z.string().min(1).max(200) }).openapi('Login') } } } },
      responses: {
        200: { description: 'logged in', content: { 'application/json': { schema: z.object({ token: z.string(), expiresAt: z.iso.datetime() }) } } },
        401: problemResponse('wrong email or password'),
        429: problemResponse('too many failed attempts; try again later'),
        422: problemResponse('invalid body'),
      },
    }),
    async (c) => {
      const { sql, config } = c.var.deps;
      const { email, password } = c.req.valid('json');
      const customerId = await checkLogin(c, email, password);
      const token = newToken('cust');
      const expiresAt = new Date(Date.now() + fixedDurationMs(config.CUSTOMER_SESSION_TTL));
      await sql`
        insert into access_tokens (token_hash, kind, subject_id, label, expires_at)
        values (${hashToken(token)}, 'customer', ${customerId}, 'login', ${expiresAt})`;
      return c.json({ token, expiresAt: expiresAt.toISOString() }, 200);
    },
  );

  app.openapi(
    createRoute({
      method: 'post',
      path: '/auth/password-reset',
      ...access.public(),
      tags: ['auth'],
      summary: 'Ask for a one-time set-password link (answers 202 whether or not the address has an account)',
      description: 'A known, active account gets a link by email that works once (earlier unused links stop working). Asks are rate-limited per address and per source; the answer never says whether the address exists or whether the limit was hit.',
      request: { body: { required: true, content: { 'application/json': { schema: z.strictObject({ email: z.email().max(254) }).openapi('PasswordReset') } } } },
      responses: { 202: { description: 'accepted (always)' }, 422: problemResponse('invalid body') },
    }),
    async (c) => {
      await requestPasswordReset(c, c.req.valid('json').email);
      return c.body(null, 202);
    },
  );

  app.openapi(
    createRoute({
      method: 'post',
      path: '/auth/logout',
      tags: ['auth'],
      summary: 'Revoke the token this request carries',
      security: staffSecurity,
      ...access.signedIn(),
      responses: { 204: { description: 'revoked' }, 401: problemResponse('not signed in') },
    }),
    async (c) => {
      await c.var.deps.sql`update access_tokens set revoked_at = now() where id = ${c.var.principal!.tokenId}`;
      return c.body(null, 204);
    },
  );

  return app;
}
