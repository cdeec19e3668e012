import { createHash } from 'node:crypto';
import type { MiddlewareHandler } from 'hono';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import type { AppEnv } from './context';
import { problem } from './problem';

/** POSTs that start or change a workflow (contract.md): they take an optional Idempotency-Key. */
const IDEMPOTENT = [
  /^\/v1\/requests$/,
  /^\/v1\/requests\/[^/]+\/(decision|lift-restriction)$/,
  /^\/v1\/customers$/,
  /^\/v1\/customers\/[^/]+\/invitation$/,
  /^\/v1\/disputes$/,
  /^\/v1\/disputes\/[^/]+\/(recordings|resolve)$/,
  /^\/v1\/policies$/,
  /^\/v1\/transfers$/,
  /^\/v1\/transfers\/[^/]+\/approvals$/,
  /^\/v1\/system-checks$/,
];
/** An attempt that has not answered after this long is taken to have died; a retry runs again. */
const ABANDONED_AFTER_SECONDS = 60;
const KEY = /^[\x21-\x7e]{1,200}$/;

const sha256 = (s: string) => createHash('sha256').update(s).digest();

/**
 * Idempotency-Key (issue 13): the same key with the same body answers as the first call did and
 * starts nothing new; with another body, 422; while the first is still running, 409. Keys are
 * scoped to the caller and the path and stored as hashes; answers with 5xx are not kept, so a
 * retry after a failure runs again. Routes derive their new ids from the key (`idFor`), so a
 * retry after a lost answer lands on the same row and the same workflow run.
 */
export const idempotency: MiddlewareHandler<AppEnv> = async (c, next) => {
  const key = c.req.header('idempotency-key');
  if (key === undefined || c.req.method !== 'POST' || !IDEMPOTENT.some((r) => r.test(c.req.path))) return next();
  if (!KEY.test(key)) {
    return problem(c, 400, 'bad-request', 'Idempotency-Key must be 1–200 visible ASCII characters.', { errors: [{ field: 'Idempotency-Key', in: 'header', message: 'invalid' }] });
  }
  const { sql } = c.var.deps;
  const p = c.var.principal;
  const caller = !p ? 'anonymous' : p.kind === 'customer' ? `customer:${p.customerId}` : `staff:${p.tokenId}`;
  const scope = sha256(`${caller}\n${c.req.path}\n${key}`);
  const requestHash = sha256(await c.req.text());

  const claimed = await sql`
    insert into idempotency_keys (key_hash, request_sha256) values (${scope}, ${requestHash}) on conflict do nothing returning 1`;
  if (!claimed.length) {
    const [row] = await sql<{ requestSha256: Buffer; status: number | null; response: unknown; abandoned: boolean }[]>`
      select request_sha256 as "requestSha256", status, response, created_at < now() - ${ABANDONED_AFTER_SECONDS} * interval '1 second' as abandoned
      from idempotency_keys where key_hash = ${scope}`;
    if (row && !row.requestSha256.equals(requestHash)) {
      return problem(c, 422, 'validation-failed', 'This Idempotency-Key was already used with another request; nothing was done.', {
        errors: [{ field: 'Idempotency-Key', in: 'header', message: 'already used with another body' }],
      });
    }
    if (row?.status != null) {
      c.header('Idempotent-Replayed', 'true');
      return c.json(row.response as object, row.status as ContentfulStatusCode);
    }
    const retaken = row?.abandoned ? await sql`update idempotency_keys set created_at = now() where key_hash = ${scope} and status is null returning 1` : [];
    if (!retaken.length) {
      c.header('Retry-After', '1');
      return problem(c, 409, 'conflict', 'A request with this Idempotency-Key is still being carried out; retry in a moment for its answer.');
    }
  }
  c.set('idempotencyScope', scope.toString('hex'));
  try {
    await next();
  } finally {
    const status = c.res?.status ?? 500;
    if (status < 500 && c.res?.headers.get('content-type')?.includes('json')) {
      const body = await c.res.clone().json().catch(() => null);
      await sql`update idempotency_keys set status = ${status}, response = ${sql.json(body as never)}, completed_at = now() where key_hash = ${scope}`;
    } else {
      await sql`delete from idempotency_keys where key_hash = ${scope} and status is null`;
    }
  }
};
