import { createHash } from 'node:crypto';
import type { Db } from './index';

/** Quotas count in fixed windows of an hour (issue 11). */
const WINDOW_SECONDS = 3_600;

/** The counter key of `caller`'s quota of `kind`: a hash, never an id in the clear. */
const quotaKey = (kind: string, caller: string) => createHash('sha256').update(`${kind}\n${caller}`).digest();

/**
 * The statement that counts one creation against a quota (a fixed window per caller), returning
 * `count` and `retryAfter`; a CTE of its own where a route counts in the statement that creates
 * (`POST /v1/requests`: the quota, the row and its start in one round trip).
 */
export const quotaTake = (db: Db, kind: string, caller: string) => db<QuotaCount[]>`
  insert into quota_counters (key_hash, window_start, count)
  values (${quotaKey(kind, caller)}, to_timestamp(floor(extract(epoch from now()) / ${WINDOW_SECONDS}) * ${WINDOW_SECONDS}), 1)
  on conflict (key_hash, window_start) do update set count = quota_counters.count + 1
  returning count, ceil(${WINDOW_SECONDS} - extract(epoch from now() - window_start))::int as "retryAfter"`;

/** A counted creation's verdict: whether it fits, and if not, how many seconds until it does. */
export const quotaVerdict = (row: { count: number; retryAfter: number }, limit: number): QuotaVerdict =>
  row.count <= limit ? { ok: true } : { ok: false, retryAfterSeconds: Math.max(1, row.retryAfter) };
export type QuotaVerdict = { ok: true } | { ok: false; retryAfterSeconds: number };

/** A counter after one more creation: its count in the window, and seconds until the window ends. */
export interface QuotaCount {
  count: number;
  retryAfter: number;
}
