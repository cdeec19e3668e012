import { beforeAll, describe, expect, it } from 'vitest';
import { appFor, json, staffAuth } from './support/api';
import { silentLog, withScratchDatabase, type TestStack } from './support/stack';
import { useStack } from './support/fixture';
import { createApp } from '../api/app';
import { ensureBootstrapAdmin, findActiveToken, hashToken } from '../db/access-tokens';

let s: TestStack;
let app: ReturnType<typeof appFor>;

const fixture = useStack();
beforeAll(() => {
  ({ s, app } = fixture);
});

describe('staff bearer tokens', () => {
  it('answers 401 with a Bearer challenge when no token is sent', async () => {
    const res = await app.request('/v1/staff/tokens');
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toMatch(/^Bearer/);
    expect(res.headers.get('content-type')).toBe('application/problem+json');
  });

  it('answers 401 to an unknown token', async () => {
    const res = await app.request('/v1/staff/tokens', { headers: { authorization: 'Bearer tc_staff_not-a-real-token' } });
    expect(res.status).toBe(401);
  });

  it('answers 403 when the role is not allowed (support on an admin route)', async () => {
    const support = await staffAuth(s.sql, 'support');
    const res = await app.request('/v1/staff/tokens', json({ role: 'admin', label: 'escalate myself' }, support));
    expect(res.status).toBe(403);
    expect(((await res.json()) as { type: string }).type).toMatch(/forbidden$/);
    const who = await app.request('/v1/staff/me', { headers: support });
    expect(await who.json()).toMatchObject({ role: 'support' });
  });

  it('lets an admin issue a token that works at once, and stores only its hash', async () => {
    const admin = await staffAuth(s.sql, 'admin');
    const res = await app.request('/v1/staff/tokens', json({ role: 'privacy_officer', label: 'DPO' }, admin));
    expect(res.status).toBe(201);
    const issued = (await res.json()) as { id: string; token: string; role: string };
    expect(issued.role).toBe('privacy_officer');

    const me = await app.request('/v1/staff/me', { headers: { authorization: `Bearer ${issued.token}` } });
    expect(await me.json()).toMatchObject({ tokenId: issued.id, role: 'privacy_officer' });

    const [row] = await s.sql`select * from access_tokens where id = ${issued.id}`;
    expect(Buffer.from(row!.token_hash as Uint8Array).equals(hashToken(issued.token))).toBe(true);
    const everything = JSON.stringify(await s.sql`select * from access_tokens`);
    expect(everything).not.toContain(issued.token);

    const listed = await app.request('/v1/staff/tokens', { headers: admin });
    expect(JSON.stringify(await listed.json())).not.toContain(issued.token);
  });

  it('stops honouring a revoked token', async () => {
    const admin = await staffAuth(s.sql, 'admin');
    const victim = await staffAuth(s.sql, 'support');
    const row = await findActiveToken(s.sql, victim.token);
    expect((await app.request('/v1/staff/me', { headers: victim })).status).toBe(200);
    const res = await app.request(`/v1/staff/tokens/${row!.id}`, { method: 'DELETE', headers: admin });
    expect(res.status).toBe(204);
    expect((await app.request('/v1/staff/me', { headers: victim })).status).toBe(401);
    expect((await app.request(`/v1/staff/tokens/${row!.id}`, { method: 'DELETE', headers: admin })).status).toBe(404);
  });

  it('issues tokens that expire after STAFF_TOKEN_TTL, refuses an expired one, and rotates (the old one stops at once)', async () => {
    const admin = await staffAuth(s.sql, 'admin');
    const issued = (await (await app.request('/v1/staff/tokens', json({ role: 'support', label: 'desk' }, admin))).json()) as { id: string; token: string; expiresAt: string };
    const days = (Date.parse(issued.expiresAt) - Date.now()) / 86_400_000;
    expect(days).toBeGreaterThan(89.9);
    expect(days).toBeLessThanOrEqual(90);
    const as = (token: string) => app.request('/v1/staff/me', { headers: { authorization: `Bearer ${token}` } });
    expect((await as(issued.token)).status).toBe(200);

    const rotated = await app.request(`/v1/staff/tokens/${issued.id}/rotate`, { method: 'POST', headers: admin });
    expect(rotated.status).toBe(201);
    const next = (await rotated.json()) as { id: string; token: string; role: string; label: string };
    expect(next).toMatchObject({ role: 'support', label: 'desk' });
    expect((await as(issued.token)).status).toBe(401);
    expect((await as(next.token)).status).toBe(200);
    expect((await app.request(`/v1/staff/tokens/${issued.id}/rotate`, { method: 'POST', headers: admin })).status).toBe(404);

    await s.sql`update access_tokens set expires_at = now() - interval '1 second' where id = ${next.id}`;
    expect((await as(next.token)).status).toBe(401);
  });

  it('needs no token for health, readiness and the API reference', async () => {
    for (const path of ['/healthz', '/openapi.json', '/docs']) expect((await app.request(path)).status).toBe(200);
  });
});

describe('the bootstrap admin token', () => {
  it('seeds STAFF_BOOTSTRAP_TOKEN as an admin, idempotently', async () => {
    const token = 'bootstrap-token-for-tests-0123456789';
    expect(await ensureBootstrapAdmin(s.sql, token)).toBeUndefined();
    expect(await ensureBootstrapAdmin(s.sql, token)).toBeUndefined();
    const rows = await s.sql`select role from access_tokens where token_hash = ${hashToken(token)}`;
    expect(rows).toEqual([{ role: 'admin' }]);
    const me = await app.request('/v1/staff/me', { headers: { authorization: `Bearer ${token}` } });
    expect(await me.json()).toMatchObject({ role: 'admin' });
  });

  it('generates one admin token when none exists, and never a second', async () => {
    // A database of its own: other test files share the run's database and hold admin tokens.
    await withScratchDatabase(async (sql) => {
      const generated = await ensureBootstrapAdmin(sql, undefined);
      expect(generated).toMatch(/^tc_staff_[\w-]{43}$/);
      expect(await ensureBootstrapAdmin(sql, undefined)).toBeUndefined();
      const scratchApp = createApp({ config: s.config, sql, temporal: s.client, store: s.store, log: silentLog, payloadCodec: s.payloadCodec });
      const me = await scratchApp.request('/v1/staff/me', { headers: { authorization: `Bearer ${generated}` } });
      expect(await me.json()).toMatchObject({ role: 'admin' });
      expect(await sql`select count(*)::int as n from access_tokens`).toEqual([{ n: 1 }]);
    });
  });
});
