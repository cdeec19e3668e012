import type { Context, MiddlewareHandler } from 'hono';
import type { AppEnv } from './context';
import type { Db } from '../db/index';
import { problem } from './problem';
import { quotaTake, quotaVerdict, type QuotaVerdict } from '../db/quotas';

/** How many of each thing one caller may create per hour (issue 11). Staff and integrations get more. */
export const QUOTAS = {
  requests: { customer: 10, staff: 1_000 },
  registrations: { customer: 50, staff: 2_000 },
  uploads: { customer: 0, staff: 20_000 },
} as const;
export type QuotaKind = keyof typeof QUOTAS;

/** Counts one creation against `caller`'s hourly quota of `kind`, in one statement. */
export async function takeQuota(db: Db, kind: QuotaKind, caller: string, limit: number): Promise<QuotaVerdict> {
  const [row] = await quotaTake(db, kind, caller);
  return quotaVerdict(row!, limit);
}

/** Thrown where a quota is counted inside the statement that creates (not the middleware); the app answers 429. */
export class QuotaExceededError extends Error {
  constructor(
    readonly kind: QuotaKind,
    readonly callerKind: 'customer' | 'staff',
    readonly retryAfterSeconds: number,
  ) {
    super(`hourly quota of ${kind} used up`);
    this.name = 'QuotaExceededError';
  }
}

/** 429 with Retry-After: the caller's hourly quota of `kind` is used up; nothing was created. */
export function quotaExceeded(c: Context<AppEnv>, kind: QuotaKind, callerKind: 'customer' | 'staff', retryAfterSeconds: number) {
  c.header('Retry-After', String(retryAfterSeconds));
  return problem(c, 429, 'too-many-requests', `This account has used its hourly quota (${QUOTAS[kind][callerKind]} per hour); try again in ${retryAfterSeconds} second(s).`);
}

/** The caller a quota counts against: the customer, or the staff token. */
export const quotaCaller = (c: Context<AppEnv>): { id: string; kind: 'customer' | 'staff' } | undefined => {
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
    if (!taken.ok) return quotaExceeded(c, kind, caller.kind, taken.retryAfterSeconds);
    return next();
  };
