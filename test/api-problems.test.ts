import { beforeAll, describe, expect, it } from 'vitest';
import { appFor, json } from './support/api';
import type { TestStack } from './support/stack';
import { useStack } from './support/fixture';
import { JSON_BODY_LIMIT } from '../api/app';

let s: TestStack;
let app: ReturnType<typeof appFor>;
let admin: { authorization: string };

const fixture = useStack({}, { roles: ['admin'] });
beforeAll(() => {
  ({ s, app, staff: { admin } } = fixture);
});

const expectProblem = async (res: Response, status: number, type: string) => {
  expect(res.status).toBe(status);
  expect(res.headers.get('content-type')).toBe('application/problem+json');
  const body = (await res.json()) as Record<string, unknown>;
  expect(body).toMatchObject({ type: `https://privacy.topcall.dk/problems/${type}`, status });
  expect(typeof body.title).toBe('string');
  expect(typeof body.detail).toBe('string');
  expect(JSON.stringify(body)).not.toMatch(/at .*\.ts:\d+/); // never a stack trace
  return body;
};

const tokenCount = async () => Number((await s.sql`select count(*)::int as n from access_tokens`)[0]!.n);

describe('bad input gets a clear problem+json and changes nothing', () => {
  it('answers malformed JSON with 400', async () => {
    const before = await tokenCount();
    const res = await app.request('/v1/staff/tokens', { method: 'POST', headers: { 'content-type': 'application/json', ...admin }, body: '{"role": "support",' });
    await expectProblem(res, 400, 'malformed-json');
    expect(await tokenCount()).toBe(before);
  });

  it('names an unknown field', async () => {
    const before = await tokenCount();
    const res = await app.request('/v1/staff/tokens', json({ role: 'support', label: 'desk', isAdmin: true }, admin));
    const body = await expectProblem(res, 422, 'validation-failed');
    expect(body.errors).toEqual([{ field: 'isAdmin', in: 'body', message: 'unknown field' }]);
    expect(await tokenCount()).toBe(before);
  });

  it('names a field of the wrong type and a missing one', async () => {
    const res = await app.request('/v1/staff/tokens', json({ role: 42 }, admin));
    const body = await expectProblem(res, 422, 'validation-failed');
    const fields = (body.errors as { field: string }[]).map((e) => e.field).sort();
    expect(fields).toEqual(['label', 'role']);
  });

  it('refuses a body over the limit with 413 before reading it all', async () => {
    const res = await app.request('/v1/staff/tokens', json({ role: 'support', label: 'x'.repeat(JSON_BODY_LIMIT + 1) }, admin));
    await expectProblem(res, 413, 'payload-too-large');
  });

  it('refuses a body that is not JSON with 415', async () => {
    const res = await app.request('/v1/staff/tokens', { method: 'POST', headers: { 'content-type': 'text/plain', ...admin }, body: 'role=support' });
    await expectProblem(res, 415, 'unsupported-media-type');
  });

  it('answers an unknown route with 404', async () => {
    await expectProblem(await app.request('/v1/no-such-thing'), 404, 'not-found');
    await expectProblem(await app.request('/healthz', { method: 'DELETE' }), 404, 'not-found');
  });

  it('answers an invalid path parameter with 422', async () => {
    const res = await app.request('/v1/staff/tokens/not-a-uuid', { method: 'DELETE', headers: admin });
    const body = await expectProblem(res, 422, 'validation-failed');
    expect(body.errors).toMatchObject([{ field: 'id', in: 'param' }]);
  });
});

describe('request ids', () => {
  it('gives every answer a request id, and the problem carries the same one', async () => {
    const res = await app.request('/v1/no-such-thing');
    const id = res.headers.get('x-request-id');
    expect(id).toMatch(/^[0-9a-f-]{36}$/);
    expect(((await res.json()) as { requestId: string }).requestId).toBe(id);
  });

  it('keeps a well-formed request id the caller sent', async () => {
    const res = await app.request('/healthz', { headers: { 'x-request-id': 'edge-1234' } });
    expect(res.headers.get('x-request-id')).toBe('edge-1234');
  });
});

describe('the API describes itself', () => {
  it('serves an OpenAPI 3.1 document with every route, its bearer auth and the problem schema', async () => {
    const res = await app.request('/openapi.json');
    expect(res.status).toBe(200);
    const doc = (await res.json()) as { openapi: string; paths: Record<string, unknown>; components: { securitySchemes: object; schemas: Record<string, unknown> } };
    expect(doc.openapi).toBe('3.1.0');
    expect(Object.keys(doc.paths)).toEqual(expect.arrayContaining(['/healthz', '/readyz', '/v1/staff/tokens', '/v1/staff/tokens/{id}', '/v1/system-checks']));
    expect(doc.components.securitySchemes).toHaveProperty('bearerAuth');
    expect(doc.components.schemas).toHaveProperty('Problem');
    // The same zod schema that validates requests documents them, unknown fields included.
    expect(doc.components.schemas.NewStaffToken).toMatchObject({ additionalProperties: false, required: ['role', 'label'] });
  });

  it('renders a browsable reference at /docs from local assets (no CDN)', async () => {
    const page = await app.request('/docs');
    expect(page.status).toBe(200);
    const html = await page.text();
    expect(html).toContain('/openapi.json');
    expect(html).not.toMatch(/https?:\/\/(?!127)/);
    const script = await app.request('/docs/assets/swagger-ui-bundle.js');
    expect(script.status).toBe(200);
    expect((await script.text()).length).toBeGreaterThan(100_000);
  });
});
