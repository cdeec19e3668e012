import { proxyActivities } from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { AccountEmailInput } from '../activities/account';

const { sendAccountEmail } = proxyActivities<Activities>({
  startToCloseTimeout: '1 minute',
  retry: { initialInterval: '1 second', maximumInterval: '1 minute' },
});

/**
 * An email the account pages owe a person (a set-password link; a new address's confirmation
 * and the notice to the old one; the notice that someone asked to register their address),
 * sent durably: the page answers at once, and an SMTP outage delays the email instead of
 * losing it. Workflow id `account-email:{ref}`; ids only in history.
 */
export async function accountEmail(input: AccountEmailInput): Promise<{ sent: boolean }> {
  return sendAccountEmail(input);
}
