import type { Context, MiddlewareHandler } from 'hono';
import { cors } from 'hono/cors';
import { deleteCookie, getCookie, setCookie } from 'hono/cookie';
import { createRoute, z } from '@hono/zod-openapi';
import { createRouter } from '../router';
import { access, recordReads, staffSecurity } from '../auth';
import { AppError, problemResponse } from '../problem';
import type { AppEnv } from '../context';
import { findActiveToken, insertStaffToken, newToken, revokeToken, type StaffRole } from '../../db/access-tokens';
import { temporalUiOrigins } from '../../lib/config';
import { PayloadKeyError, payloadFromJson, payloadToJson } from '../../lib/payload-codec';

/**
 * Issue 12: the codec server of Temporal's Web UI (the remote codec protocol: POST
 * {endpoint}/encode and {endpoint}/decode, body `{payloads: [{metadata, data}]}` with base64
 * values, header X-Namespace), so staff who may read every kind of personal data see decoded
 * payloads in the UI and nobody else does.
 *
 * Who: admin and privacy_officer. Histories carry what every workflow handles (requests and
 * their decisions, disputes, transfers, notices); support staff see requests and customers
 * through the API's own routes, scoped there, so they get 403 here.
 *
 * How the UI authenticates: a bearer token in `Authorization` (a UI behind OIDC with "pass
 * access token" cannot carry our staff token, so it is for scripts and curl), or the cookie
 * `tc_codec` that GET/POST /codec/login sets in the staff member's browser: a staff token of
 * their role that lasts CODEC_SESSION_HOURS, stored hashed like every token, revoked by
 * /codec/logout. The UI sends it when "Include cross-origin credentials" is on in its codec
 * settings; CORS answers only TEMPORAL_UI_ORIGIN, with credentials.
 */
export const CODEC_ROLES: StaffRole[] = ['privacy_officer'];
const CODEC_SESSION_HOURS = 12;
const COOKIE = 'tc_codec';
/** A history's payloads can be large (Temporal allows 2 MB each); the UI sends one event's at a time. Enforced in api/app.ts, before any body is read. */
export const CODEC_BODY_LIMIT = 8 * 1024 * 1024;

const base64 = z.string().max(CODEC_BODY_LIMIT).regex(/^[A-Za-z0-9+/]*={0,2}$/, { message: 'must be base64' });
const JsonPayload = z
  .object({
    metadata: z.record(z.string().max(256), base64).nullish(),
    data: base64.nullish(),
  })
  .openapi('CodecPayload', { description: 'A Temporal Payload in proto JSON: metadata values and data in base64' });
const Payloads = z.object({ payloads: z.array(JsonPayload).max(10_000) }).openapi('CodecPayloads');

const secure = (c: Context<AppEnv>) => c.var.deps.config.PUBLIC_URL.startsWith('https:');

/** Bearer token, or else the codec session cookie; an unknown one is 401, never ignored. */
const authenticateCodec: MiddlewareHandler<AppEnv> = async (c, next) => {
  const header = c.req.header('authorization');
  const token = header !== undefined ? /^Bearer\s+(\S+)\s*$/i.exec(header)?.[1] : getCookie(c, COOKIE);
  if (header !== undefined && !token) throw new AppError('unauthorized', 401, 'The Authorization header must be "Bearer <staff token>".');
  if (token) {
    const row = await findActiveToken(c.var.deps.sql, token);
    if (!row) throw new AppError('unauthorized', 401, 'The bearer token or codec session is unknown, expired or revoked.');
    c.set('principal', row.kind === 'staff' ? { kind: 'staff', tokenId: row.id, role: row.role! } : { kind: 'customer', tokenId: row.id, customerId: row.subjectId! });
  }
  await next();
};

export function codecRoutes() {
  const app = createRouter();

  app.use('/codec/*', async (c, next) =>
    cors({
      origin: (origin) => (temporalUiOrigins(c.var.deps.config).includes(origin) ? origin : null),
      allowMethods: ['POST', 'OPTIONS'],
      allowHeaders: ['Content-Type', 'X-Namespace', 'Authorization', 'Authorization-Extras'],
      credentials: true,
      maxAge: 600,
    })(c, next),
  );
  app.use('/codec/encode', authenticateCodec);
  app.use('/codec/decode', authenticateCodec);

  for (const direction of ['encode', 'decode'] as const) {
    app.openapi(
      createRoute({
        method: 'post',
        path: `/codec/${direction}`,
        tags: ['operations'],
        summary:
          direction === 'decode'
            ? 'Decrypt Temporal payloads for the Web UI (Temporal remote codec protocol)'
            : 'Encrypt Temporal payloads for the Web UI (Temporal remote codec protocol)',
        description:
          'The Temporal Web UI calls this with the payloads of a history (the dev server of `npm start` is pointed here with --ui-codec-endpoint). ' +
          'Admin and privacy_officer only: a bearer token, or the codec session cookie from /codec/login sent with "Include cross-origin credentials". ' +
          'CORS allows TEMPORAL_UI_ORIGIN. Payloads without this codec\'s encoding are returned unchanged.',
        security: staffSecurity,
        ...access.staff(...CODEC_ROLES),
        request: {
          headers: z.object({ 'x-namespace': z.string().max(255).optional().openapi({ description: 'The namespace the payloads come from (the key ring is the same for all)' }) }),
          body: { content: { 'application/json': { schema: Payloads } }, required: true },
        },
        responses: {
          200: { description: `the payloads, ${direction}d, in the same order`, content: { 'application/json': { schema: Payloads } } },
          401: problemResponse('no, unknown or expired token or codec session'),
          403: problemResponse('not an admin or privacy officer'),
          422: problemResponse(direction === 'decode' ? 'a payload names a key id that is not in PAYLOAD_KEYS, or does not decrypt' : 'the payloads are not valid'),
        },
      }),
      async (c) => {
        const { payloads } = c.req.valid('json');
        const codec = c.var.deps.payloadCodec;
        try {
          const out = direction === 'decode' ? await codec.decode(payloads.map(payloadFromJson)) : await codec.encode(payloads.map(payloadFromJson));
          // Each decode is a staff read of history payloads: kept in the ledger under the token (or codec session) that made it.
          if (direction === 'decode' && payloads.length > 0) await recordReads(c, 'payload.decode', 'staff_token', [c.var.principal!.tokenId]);
          return c.json({ payloads: out.map(payloadToJson) }, 200);
        } catch (err) {
          if (err instanceof PayloadKeyError) throw new AppError('undecodable', 422, err.message);
          throw err;
        }
      },
    );
  }

  // The browser sign-in for the Web UI: a page, not part of the JSON API (so not in /openapi.json).
  app.get('/codec/login', (c) => c.html(loginPage(c)));
  app.post('/codec/login', async (c) => {
    const form = await c.req.parseBody().catch(() => ({}) as Record<string, unknown>);
    const given = typeof form.token === 'string' ? form.token.trim() : '';
    const row = given ? await findActiveToken(c.var.deps.sql, given) : undefined;
    if (!row || row.kind !== 'staff') return c.html(loginPage(c, 'That token is unknown, expired or revoked, or not a staff token.'), 401);
    if (row.role !== 'admin' && !CODEC_ROLES.includes(row.role!)) return c.html(loginPage(c, 'Only admins and privacy officers see decoded payloads.'), 403);
    // A token of its own, short-lived, so the long-lived one never sits in a cookie.
    const session = newToken('staff');
    await insertStaffToken(c.var.deps.sql, { token: session, role: row.role!, label: `Temporal UI codec session (via ${row.label.slice(0, 60)})`, ttl: `PT${CODEC_SESSION_HOURS}H` });
    setCookie(c, COOKIE, session, { path: '/codec', httpOnly: true, secure: secure(c), sameSite: 'Strict', maxAge: CODEC_SESSION_HOURS * 3600 });
    return c.html(signedInPage(c));
  });
  app.post('/codec/logout', async (c) => {
    const token = getCookie(c, COOKIE);
    const row = token ? await findActiveToken(c.var.deps.sql, token) : undefined;
    if (row) await revokeToken(c.var.deps.sql, row.id);
    deleteCookie(c, COOKIE, { path: '/codec', secure: secure(c) });
    return c.html(loginPage(c, 'Signed out: the Temporal UI no longer decodes payloads in this browser.'));
  });

  return app;
}

const escape = (s: string) => s.replace(/[&<>"']/g, (ch) => `&#${ch.charCodeAt(0)};`);

function page(title: string, body: string) {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${escape(title)}</title></head><body><main><h1>${escape(title)}</h1>${body}</main></body></html>`;
}

function loginPage(c: Context<AppEnv>, message?: string) {
  const origins = temporalUiOrigins(c.var.deps.config).map(escape).join(', ');
  return page(
    'Temporal UI: decoded payloads',
    `${message ? `<p role="alert">${escape(message)}</p>` : ''}
<p>Workflow histories are encrypted. Sign in with an admin or privacy officer staff token to let the Temporal UI (${origins}) decode them in this browser for ${CODEC_SESSION_HOURS} hours.</p>
<form method="post" action="/codec/login"><label>Staff token <input type="password" name="token" autocomplete="off" required></label> <button type="submit">Sign in</button></form>`,
  );
}

function signedInPage(c: Context<AppEnv>) {
  const endpoint = `${c.var.deps.config.PUBLIC_URL}/codec`;
  return page(
    'Temporal UI: decoded payloads',
    `<p>Signed in for ${CODEC_SESSION_HOURS} hours.</p>
<p>In the Temporal UI open <em>Codec Server</em> (the settings of the data encoder), set the endpoint <code>${escape(endpoint)}</code>, and turn on <em>Include cross-origin credentials</em>. Payloads then show decoded.</p>
<form method="post" action="/codec/logout"><button type="submit">Sign out</button></form>`,
  );
}
