import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashToken, newToken } from '../db/access-tokens';
import { appFor, staffAuth } from './support/api';
import { openStack, type TestStack } from './support/stack';
import { newClient } from './support/recordings';

/**
 * Issue 11: every route × every kind of caller. Each route declares who may call it where it
 * is defined (`...access.staff('privacy_officer')`, rendered as `x-access` in /openapi.json);
 * this test reads the document, so a new route without a declaration fails here, and tries
 * each caller: anonymous, a bad token, an expired token, each staff role, a customer, and a
 * team lead of another client. "Allowed" means the guard let the call through (whatever the
 * empty body then earns); "denied" means 401 or 403 (404 for another client's data).
 */
type Caller = 'anonymous' | 'bad-token' | 'expired-token' | 'support' | 'privacy_officer' | 'admin' | 'customer' | 'other-client-lead';
const CALLERS: Caller[] = ['anonymous', 'bad-token', 'expired-token', 'support', 'privacy_officer', 'admin', 'customer', 'other-client-lead'];
const STAFF: Caller[] = ['support', 'privacy_officer', 'admin'];

let s: TestStack;
let app: ReturnType<typeof appFor>;
let doc: { paths: Record<string, Record<string, { 'x-access'?: string; requestBody?: unknown }>> };
let homeClient: string;
let otherClient: string;

beforeAll(async () => {
  s = await openStack({ SYSTEM_CHECK_TIMEOUT: 'PT1S' }, { ownDatabase: true });
  app = appFor(s);
  homeClient = await newClient(s, 'Hjem ApS');
  otherClient = await newClient(s, 'Anden ApS');
  doc = (await (await app.request('/openapi.json')).json()) as typeof doc;
});
afterAll(() => s.close());

/** A fresh credential per request: some routes (logout, rotate) spend the caller's token. */
async function headersFor(caller: Caller): Promise<Record<string, string>> {
  if (caller === 'anonymous') return {};
  if (caller === 'bad-token') return { authorization: `Bearer ${newToken('staff')}` };
  if (caller === 'expired-token') {
    const { authorization, token } = await staffAuth(s.sql, 'admin');
    await s.sql`update access_tokens set expires_at = now() - interval '1 second' where token_hash = ${hashToken(token)}`;
    return { authorization };
  }
  if (STAFF.includes(caller)) return { authorization: (await staffAuth(s.sql, caller as 'support')).authorization };
  const id = randomUUID();
  await s.sql`insert into customers (id, client_id, email, name, provided_by, provided_by_kind, team_lead)
              values (${id}, ${caller === 'customer' ? homeClient : otherClient}, ${`${id}@kunde.test`}, 'Matrix Person', 'Hjem ApS (klient / client)', 'client', ${caller === 'other-client-lead'})`;
  const token = newToken('cust');
  await s.sql`insert into access_tokens (token_hash, kind, subject_id, label, expires_at) values (${hashToken(token)}, 'customer', ${id}, 'matrix', now() + interval '1 hour')`;
  return { authorization: `Bearer ${token}` };
}

/** What the declaration promises each caller: 'allow', or the status the guard answers. */
function expected(accessDecl: string, caller: Caller, path: string): 'allow' | 'link' | 401 | 403 | 404 {
  const underV1 = path.startsWith('/v1/');
  if ((caller === 'bad-token' || caller === 'expired-token') && underV1) return 401; // an unknown token is never ignored
  if (accessDecl === 'public') return 'allow';
  // No token either; these in-process calls come over no socket, so they are the machine's own
  // (the non-loopback refusal is tried in test/metrics.test.ts).
  if (accessDecl === 'scraper') return 'allow';
  // The link's own secret is the credential: without it 401 or 404, never a role's 403.
  if (accessDecl === 'link-token') return 'link';
  if (caller === 'anonymous' || caller === 'bad-token' || caller === 'expired-token') return 401;
  const customer = caller === 'customer' || caller === 'other-client-lead';
  switch (accessDecl) {
    case 'signed-in':
      return 'allow';
    case 'customer':
      return customer ? 'allow' : 403;
    case 'staff':
      return customer ? 403 : 'allow';
    case 'staff-or-client-user':
      // The path names the customer's own client: 403 (not a team lead); another client's lead learns nothing: 404.
      return caller === 'customer' ? 403 : caller === 'other-client-lead' ? 404 : 'allow';
    default: {
      const roles = accessDecl.replace(/^staff:/, '').split(',');
      if (customer) return 403;
      return caller === 'admin' || roles.includes(caller) ? 'allow' : 403;
    }
  }
}

const concrete = (path: string) =>
  path.replace(/\{token\}/g, 'x'.repeat(43)).replace(/\{version\}/g, 'matrix-v').replace(/\{id\}/g, path.includes('/clients/') ? homeClient : randomUUID());

describe('authorization matrix: every route in /openapi.json × every kind of caller', () => {
  it('declares who may call every route', () => {
    const undeclared = Object.entries(doc.paths).flatMap(([path, ops]) => Object.entries(ops).filter(([, op]) => !op['x-access']).map(([method]) => `${method.toUpperCase()} ${path}`));
    expect(undeclared, 'routes without ...access.*() next to their definition').toEqual([]);
  });

  it('lets through exactly the callers each declaration names, and turns away the rest', async () => {
    const mismatches: string[] = [];
    let checked = 0;
    for (const [path, ops] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(ops)) {
        const declared = op['x-access'];
        if (!declared) continue;
        for (const caller of CALLERS) {
          const url = concrete(path).replace(/\{(\w+)\}/g, 'x');
          const headers: Record<string, string> = { ...(await headersFor(caller)) };
          const init: RequestInit = { method: method.toUpperCase(), headers };
          if (!['GET', 'DELETE'].includes(init.method!) || op.requestBody) {
            headers['content-type'] = 'application/json';
            init.body = '{}';
          }
          const res = await app.request(url, init);
          const want = expected(declared, caller, path);
          const got = res.status;
          // A guard that let the call through may still earn a 504 (a system check with no worker here).
          const ok =
            want === 'allow' ? got !== 401 && got !== 403 && (got < 500 || got === 504) : want === 'link' ? got !== 403 && got < 500 : got === want;
          checked++;
          if (!ok) mismatches.push(`${method.toUpperCase()} ${path} [${declared}] as ${caller}: expected ${want}, got ${got}`);
        }
      }
    }
    expect(mismatches).toEqual([]);
    expect(checked).toBeGreaterThan(300);
  });
});
