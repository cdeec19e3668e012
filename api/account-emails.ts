import { randomUUID } from 'node:crypto';
import type { Context } from 'hono';
import type { AppEnv } from './context';
import { resetAllowed } from './login';
import { emailTaken, findCustomerByEmail } from '../db/customers';
import { fixedDurationMs } from '../lib/durations';
import { accountEmailWorkflowId } from '../workflows/ids';
import { commitAndStart, idFor } from './start';
import type { accountEmail } from '../workflows/account-email';
import type { AccountEmailInput } from '../activities/account';

const accountEmailStart = (c: Context<AppEnv>, input: AccountEmailInput) => ({
  workflowId: accountEmailWorkflowId(input.ref),
  workflowType: 'accountEmail',
  taskQueue: c.var.deps.config.TEMPORAL_TASK_QUEUE,
  args: [input] satisfies Parameters<typeof accountEmail>,
});

/** Sends an account email durably: recorded first, so a crash or an unreachable Temporal delays it, never loses it. */
export async function startAccountEmail(c: Context<AppEnv>, input: AccountEmailInput): Promise<void> {
  await commitAndStart(c.var.deps, async () => undefined, accountEmailStart(c, input));
}

/**
 * Issue 11: a team lead asked to register an address that already has an account (theirs or any
 * client's). Nothing is created; the holder is told who asked, through the same durable start a
 * new person's invitation takes, so the asker's answer and its timing say nothing either way.
 * With an Idempotency-Key, a retry lands on the same run.
 */
export async function noticeAlreadyRegistered(c: Context<AppEnv>, holderId: string, askedBy: string): Promise<void> {
  const ref = idFor(c, 'already-registered', randomUUID);
  await startAccountEmail(c, { kind: 'already_registered', customerId: holderId, ref, askedBy, askedAt: new Date().toISOString() });
}

/**
 * Forgot password: a known, active account gets a one-time link; the caller learns nothing
 * either way (same answer, and the lookup happens whatever the rate limit says).
 */
export async function requestPasswordReset(c: Context<AppEnv>, email: string): Promise<void> {
  const allowed = await resetAllowed(c, email);
  const customer = await findCustomerByEmail(c.var.deps.sql, email);
  if (!allowed || !customer || customer.status !== 'active') return;
  await startAccountEmail(c, { kind: 'password_reset', customerId: customer.id, ref: randomUUID() });
}

/**
 * A new address waits for its confirmation link (sent to it, with a notice to the current
 * address). An address another account has gets nothing, and the page answers the same
 * (issue 11: no page tells anyone whether an address is registered).
 */
export async function requestEmailChange(c: Context<AppEnv>, customerId: string, newEmail: string): Promise<void> {
  const { sql, config } = c.var.deps;
  if (await emailTaken(sql, newEmail)) return;
  const ttlSeconds = Math.round(fixedDurationMs(config.PASSWORD_LINK_TTL) / 1000);
  const id = randomUUID();
  // The row and its email's start commit together; the row is inert until the workflow mints its link.
  await commitAndStart(
    c.var.deps,
    (tx) => tx`insert into email_changes (id, customer_id, new_email, expires_at) values (${id}, ${customerId}, ${newEmail}, now() + ${ttlSeconds} * interval '1 second')`,
    accountEmailStart(c, { kind: 'email_change', customerId, ref: id }),
  );
}
