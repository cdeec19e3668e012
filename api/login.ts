import type { Context } from 'hono';
import { getConnInfo } from '@hono/node-server/conninfo';
import type { AppEnv } from './context';
import { AppError } from './problem';
import { verifyPassword } from './passwords';
import { findCustomerByEmail, forgetLoginAttempt, loginKey, reserveLoginAttempt } from '../db/customers';

const LOGIN_WINDOW_MS = 15 * 60_000;
/** Failures before the progressive delay starts (1 s, 2 s, 4 s, … up to MAX_LOGIN_DELAY_MS after the last failure). */
const FREE_FAILURES_PER_ACCOUNT = 5;
const FREE_FAILURES_PER_ADDRESS = 30;
const MAX_LOGIN_DELAY_MS = 5 * 60_000;
/** Password-reset links: a few per address, more per source, then the same progressive delay. */
const FREE_RESETS_PER_ACCOUNT = 3;
const FREE_RESETS_PER_ADDRESS = 20;

export function sourceAddress(c: Context<AppEnv>): string {
  try {
    return getConnInfo(c).remote.address ?? 'unknown';
  } catch {
    return 'unknown'; // no socket (in-process requests): the per-account limit still applies
  }
}

/**
 * One login, for the API (`POST /v1/auth/login`) and the account pages alike: counted before
 * the password is checked (issue 11), so guesses are throttled per account and per source.
 * Answers the customer's id, or throws 429 (with seconds to wait) or 401.
 */
export async function checkLogin(c: Context<AppEnv>, email: string, password: string): Promise<string> {
  const { sql } = c.var.deps;
  const attempt = await reserveLoginAttempt(
    sql,
    [
      { key: loginKey('email', email), free: FREE_FAILURES_PER_ACCOUNT },
      { key: loginKey('ip', sourceAddress(c)), free: FREE_FAILURES_PER_ADDRESS },
    ],
    { windowMs: LOGIN_WINDOW_MS, maxDelayMs: MAX_LOGIN_DELAY_MS },
  );
  if (!attempt.ok) {
    const seconds = Math.max(1, Math.ceil(attempt.retryAfterMs / 1000));
    c.header('Retry-After', String(seconds));
    throw new AppError('too-many-attempts', 429, `Too many failed logins. Try again in ${seconds} second(s).`, { retryAfterSeconds: seconds });
  }
  const customer = await findCustomerByEmail(sql, email);
  const ok = await verifyPassword(customer?.passwordHash, password);
  if (!customer?.passwordHash || !ok || customer.status !== 'active') throw new AppError('unauthorized', 401, 'Wrong email or password.');
  await forgetLoginAttempt(sql, attempt.ids);
  return customer.id;
}

/**
 * Whether a password-reset link may be sent now. Every ask counts (it is never "forgotten"), so
 * nobody can flood a person's mailbox; the caller answers the same either way.
 */
export async function resetAllowed(c: Context<AppEnv>, email: string): Promise<boolean> {
  const attempt = await reserveLoginAttempt(
    c.var.deps.sql,
    [
      { key: loginKey('reset-email', email), free: FREE_RESETS_PER_ACCOUNT },
      { key: loginKey('reset-ip', sourceAddress(c)), free: FREE_RESETS_PER_ADDRESS },
    ],
    { windowMs: 60 * 60_000, maxDelayMs: 60 * 60_000 },
  );
  return attempt.ok;
}
