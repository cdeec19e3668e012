import { randomUUID } from 'node:crypto';
import type { Context } from 'hono';
import type { AppEnv } from './context';
import { resetAllowed } from './login';
import { emailTaken, findCustomerByEmail } from '../db/customers';
import { fixedDurationMs } from '../lib/durations';
import { accountEmailWorkflowId } from '../workflows/ids';
import type { accountEmail } from '../workflows/account-email';
import type { AccountEmailInput } from '../activities/account';

export async function startAccountEmail(c: Context<AppEnv>, input: AccountEmailInput): Promise<void> {
  const { temporal, config } = c.var.deps;
  await temporal.workflow.start<typeof accountEmail>('accountEmail', {
    workflowId: accountEmailWorkflowId(input.ref),
    taskQueue: config.TEMPORAL_TASK_QUEUE,
    args: [input],
  });
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
  const [row] = await sql<{ id: string }[]>`
    insert into email_changes (customer_id, new_email, expires_at) values (${customerId}, ${newEmail}, now() + ${ttlSeconds} * interval '1 second') returning id`;
  // The row is inert until the workflow mints its link: a failed start leaves nothing usable.
  await startAccountEmail(c, { kind: 'email_change', customerId, ref: row!.id });
}
