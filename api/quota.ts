import { createHash } from 'node:crypto';
import type { Context, MiddlewareHandler } from 'hono';
import type { AppEnv } from './context';
import type { Db } from '../db/index';
import { problem } from './problem';

/** How many of each thing one caller may create per hour (issue 11). Staff and integrations get more. */
export const QUOTAS = {
  requests: { customer: 10, staff: 1_000 },
  registrations: { customer: 50, staff: 2_000 },
  uploads: { customer: 0, staff: 20_000 },
} as const;
export type QuotaKind = keyof typeof QUOTAS;
const WINDOW_SECONDS = 3_600;

/**
 * Counts one creation against `caller`'s hourly quota of `kind`, in one statement (a fixed
 * window per caller). Answers whether it fits, and if not, how many seconds until it does.
 */
export async function takeQuota(db: Db, kind: QuotaKind, caller: string, limit: number): Promise<{ ok: true } | { ok: false; retryAfterSeconds: number }> {
  const key = createHash('sha256').update(`${kind}\n${caller}`).digest();
  const [row] = await db<{ count: number; retryAfter: number }[]>`
    insert into quota_counters (key_hash, window_start, count)
    values (${key}, to_timestamp(floor(extract(epoch from now()) / ${WINDOW_SECONDS}) * ${WINDOW_SECONDS}), 1)
    on conflict (key_hash, window_start) do update set count = quota_counters.count + 1
    returning count, ceil(${WINDOW_SECONDS} - extract(epoch from now() - window_start))::int as "retryAfter"`;
  return row!.count <= limit ? { ok: true } : { ok: false, retryAfterSeconds: Math.max(1, row!.retryAfter) };
}

/** The caller a quota counts against: the customer, or the staff token. */
export const quotaCaller = (c: Context<AppEnv>) => {
  const p = c.var.principal;
  return !p ? undefined : p.kind === 'customer' ? { id: `customer:${p.customerId}`, kind: 'customer' as const } : { id: `staff:${p.tokenId}`, kind: 'staff' as const };
};

/** Route middleware: 429 with Retry-After once the caller's hourly quota of `kind` is used up; nothing is created. */
export const quota =
  (kind: QuotaKind): MiddlewareHandler<AppEnv> =>
  async (c, next) => {
    const caller = quotaCaller(c);
    if (!caller) return next(); // the route's own guard answers 401
    const taken = await takeQuota(c.var.deps.sql, kind, caller.id, QUOTAS[kind][caller.kind]);
    if (!taken.ok) {
      c.header('Retry-After', String(taken.retryAfterSeconds));
      return problem(c, 429, 'too-many-requests', `This account has used its hourly quota (${QUOTAS[kind][caller.kind]} per hour); try again in ${taken.retryAfterSeconds} second(s).`);
    }
    return next();
  };
