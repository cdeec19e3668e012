import { beforeAll, describe, expect, it } from 'vitest';
import { appFor, json } from './support/api';
import type { TestStack } from './support/stack';
import { useStack } from './support/fixture';
import { seedCustomers } from './support/customers';
import { hashToken, newToken } from '../db/access-tokens';

/** Issue 11: headers on every response, safe request ids, and input Postgres refuses answered 4xx, never 500. */
let s: TestStack;
let app: ReturnType<typeof appFor>;
let admin: { authorization: string };
let clientId: string;

const fixture = useStack({ SYSTEM_CHECK_TIMEOUT: 'PT2S' }, { ownDatabase: true, roles: ['admin'], client: true });
beforeAll(() => {
  ({ s, app, clientId, staff: { admin } } = fixture);
});

describe('security headers', () => {
  it('puts a CSP, frame-ancestors none, nosniff and no-referrer on API answers, and no-store on anything under /v1', async () => {
    for (const [path, headers] of [['/v1/clients/' + '00000000-0000-4000-8000-000000000000', admin], ['/healthz', {}], ['/v1/nope', {}]] as const) {
      const res = await app.request(path, { headers });
      expect(res.headers.get('content-security-policy'), path).toContain("default-src 'none'");
      expect(res.headers.get('content-security-policy'), path).toContain("frame-ancestors 'none'");
      expect(res.headers.get('x-content-type-options')).toBe('nosniff');
      expect(res.headers.get('referrer-policy')).toBe('no-referrer');
      expect(res.headers.get('x-frame-options')).toBe('DENY');
      if (path.startsWith('/v1/')) expect(res.headers.get('cache-control')).toBe('no-store');
    }
  });

  it('lets the HTML pages load only their own scripts and styles, and never caches the account pages', async () => {
    const docs = await app.request('/docs');
    expect(docs.status).toBe(200);
    expect(docs.headers.get('content-security-policy')).toContain("script-src 'self'");
    expect(docs.headers.get('content-security-policy')).toContain("frame-ancestors 'none'");
    const page = await app.request('/account/set-password?token=abc');
    expect(page.headers.get('cache-control')).toBe('no-store');
    expect(page.headers.get('content-security-policy')).toContain("default-src 'self'");
  });
});

describe('request ids', () => {
  it('keeps a safe incoming X-Request-Id and replaces anything else', async () => {
    const kept = await app.request('/healthz', { headers: { 'x-request-id': 'abc-123_DEF' } });
    expect(kept.headers.get('x-request-id')).toBe('abc-123_DEF');
    for (const bad of ['a b', 'x'.repeat(65), '<script>', 'id\u00e6']) {
      const res = await app.request('/healthz', { headers: { 'x-request-id': bad } });
      expect(res.headers.get('x-request-id')).not.toBe(bad);
      expect(res.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
    }
  });
});

describe('text Postgres cannot store is a 4xx, never a 500', () => {
  it('answers a NUL character or a lone surrogate anywhere with 400 naming the field, and stores nothing', async () => {
    const bodies = [
      ['/v1/clients', { name: 'Nul\u0000Firma' }, 'name'],
      ['/v1/customers', { clientId, email: 'nul@kunde.test', name: 'Mette', providedBy: 'Jens\u0000Hansen' }, 'providedBy'],
      ['/v1/call-messages', { clientId, message: 'hej\ud800', sentAt: new Date().toISOString() }, 'message'],
      ['/v1/requests', { type: 'access', details: { phones: ['x\u0000'] } }, 'details.phones.0'],
    ] as const;
    for (const [path, body, field] of bodies) {
      const res = await app.request(path, json(body, admin));
      expect(res.status, path).toBe(400);
      expect(res.headers.get('content-type')).toBe('application/problem+json');
      expect(((await res.json()) as { errors: { field: string }[] }).errors.map((e) => e.field)).toEqual([field]);
    }
    const query = await app.request('/v1/recordings?clientId=%00', { headers: admin });
    expect(query.status).toBe(400);
    expect((await s.sql`select count(*)::int as n from customers`)[0]!.n).toBe(0);
    expect((await s.sql`select count(*)::int as n from call_messages`)[0]!.n).toBe(0);
  });
});

describe('names in emails are single-line and carry no links', () => {
  it('refuses a multi-line name or one with a link, naming the field', async () => {
    for (const name of ['Mette\nKlik her for at vinde', 'Mette www.evil.example', 'Se https://evil.example/login', 'Mette\u0007']) {
      const res = await app.request('/v1/customers', json({ clientId, email: 'x@kunde.test', name, providedBy: { source: 'client' } }, admin));
      expect(res.status, JSON.stringify(name)).toBe(422);
      expect(((await res.json()) as { errors: { field: string }[] }).errors.map((e) => e.field)).toContain('name');
    }
    expect((await s.sql`select count(*)::int as n from customers`)[0]!.n).toBe(0);
  });
});

describe('other answers that used to be 500', () => {
  it('timestamps out of any sane range are a 422 naming the field', async () => {
    for (const effectiveAt of ['0000-01-01T00:00:00Z', '9999-12-31T00:00:00Z']) {
      const res = await app.request('/v1/policies', json({ version: 'x', effectiveAt, material: false, summary: 's', text: 't' }, admin));
      expect(res.status).toBe(422);
      expect(((await res.json()) as { errors: { field: string }[] }).errors.map((e) => e.field)).toContain('effectiveAt');
    }
  });

  it('a forged list cursor is a 422 naming it', async () => {
    for (const cursor of ['Zm9yZ2Vk', Buffer.from('99999999999999999|not-a-uuid').toString('base64url'), Buffer.from('1|00000000-0000-4000-8000-000000000000x').toString('base64url')]) {
      const res = await app.request(`/v1/recordings?cursor=${cursor}`, { headers: admin });
      expect(res.status, cursor).toBe(422);
      expect(((await res.json()) as { errors: { field: string }[] }).errors.map((e) => e.field)).toEqual(['cursor']);
    }
  });

  it('a system check the worker does not finish in time answers the documented 504', async () => {
    // No worker polls this file's task queue.
    const res = await app.request('/v1/system-checks', { method: 'POST', headers: admin });
    expect(res.status).toBe(504);
    expect(res.headers.get('content-type')).toBe('application/problem+json');
  });
});

describe('per-caller quotas (issue 11)', () => {
  it('a customer’s 11th request within the hour is 429 with Retry-After and creates nothing; a replayed key does not count', async () => {
    const [person] = await seedCustomers(s.sql, { clientId, count: 1, tag: 'quota' });
    const token = newToken('cust');
    await s.sql`insert into access_tokens (token_hash, kind, subject_id, label, expires_at) values (${hashToken(token)}, 'customer', ${person!.id}, 'login', now() + interval '1 hour')`;
    const auth = { authorization: `Bearer ${token}` };
    const first = await app.request('/v1/requests', json({ type: 'access' }, { ...auth, 'idempotency-key': 'quota-1' }));
    expect(first.status).toBe(202);
    for (let i = 0; i < 3; i++) expect((await app.request('/v1/requests', json({ type: 'access' }, { ...auth, 'idempotency-key': 'quota-1' }))).status, 'a replay').toBe(202);
    for (let i = 0; i < 9; i++) expect((await app.request('/v1/requests', json({ type: 'access', details: { note: `#${i}` } }, auth))).status).toBe(202);
    const refused = await app.request('/v1/requests', json({ type: 'erasure' }, auth));
    expect(refused.status).toBe(429);
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(refused.headers.get('content-type')).toContain('application/problem+json');
    expect((await s.sql`select count(*)::int as n from data_requests where customer_id = ${person!.id}`)[0]!.n, 'ten, not eleven').toBe(10);
    // Staff filing for that person are counted against their own token, not the person's.
    expect((await app.request('/v1/requests', json({ type: 'erasure', customerId: person!.id }, admin))).status).toBe(202);
  });
});
