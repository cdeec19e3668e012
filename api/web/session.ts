import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Context } from 'hono';
import { deleteCookie, getCookie, setCookie } from 'hono/cookie';
import { hashToken } from '../../db/access-tokens';
import { fixedDurationMs } from '../../lib/durations';
import type { Db } from '../../db/index';
import type { AppEnv } from '../context';

/**
 * The customers' pages keep a cookie session of their own (issue 14), separate from the API's
 * bearer tokens: an opaque random token in an HttpOnly, SameSite=Lax cookie (Secure, and named
 * `__Host-…`, when PUBLIC_URL is https); only its SHA-256 is stored, and logging out or erasure
 * revokes it. Every form a session posts carries a CSRF token derived from the session token.
 */
export interface WebSession {
  id: string;
  customerId: string;
  /** The hidden form field every POST of this session must echo. */
  csrf: string;
}

const secure = (c: Context<AppEnv>) => c.var.deps.config.PUBLIC_URL.startsWith('https:');
export const sessionCookieName = (c: Context<AppEnv>) => (secure(c) ? '__Host-tc_session' : 'tc_session');
const csrfFor = (token: string) => createHmac('sha256', token).update('csrf').digest('base64url');

export async function startSession(c: Context<AppEnv>, customerId: string): Promise<void> {
  const { sql, config } = c.var.deps;
  const token = randomBytes(32).toString('base64url');
  const ttlSeconds = Math.round(fixedDurationMs(config.CUSTOMER_SESSION_TTL) / 1000);
  await sql`insert into web_sessions (token_hash, customer_id, expires_at) values (${hashToken(token)}, ${customerId}, now() + ${ttlSeconds} * interval '1 second')`;
  setCookie(c, sessionCookieName(c), token, { path: '/', httpOnly: true, secure: secure(c), sameSite: 'Lax', maxAge: ttlSeconds });
}

/** The session this request's cookie names, if it is live and its account active. */
export async function currentSession(c: Context<AppEnv>): Promise<WebSession | undefined> {
  const token = getCookie(c, sessionCookieName(c));
  if (!token || !/^[\w-]{20,100}$/.test(token)) return undefined;
  const [row] = await c.var.deps.sql<{ id: string; customerId: string }[]>`
    update web_sessions s set last_seen_at = now()
    from customers cu
    where s.token_hash = ${hashToken(token)} and s.revoked_at is null and s.expires_at > now()
      and cu.id = s.customer_id and cu.status = 'active'
    returning s.id, s.customer_id as "customerId"`;
  return row ? { ...row, csrf: csrfFor(token) } : undefined;
}

export async function endSession(c: Context<AppEnv>, session: WebSession | undefined): Promise<void> {
  if (session) await c.var.deps.sql`update web_sessions set revoked_at = now() where id = ${session.id}`;
  deleteCookie(c, sessionCookieName(c), { path: '/', secure: secure(c) });
}

export function csrfValid(session: WebSession, given: unknown): boolean {
  if (typeof given !== 'string') return false;
  const a = Buffer.from(given);
  const b = Buffer.from(session.csrf);
  return a.length === b.length && timingSafeEqual(a, b);
}

/** Revokes every browser session of a person (erasure, a new password). */
export async function revokeSessions(db: Db, customerId: string): Promise<number> {
  return (await db`update web_sessions set revoked_at = now() where customer_id = ${customerId} and revoked_at is null`).count;
}
