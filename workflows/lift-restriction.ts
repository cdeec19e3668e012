import { proxyActivities } from '@temporalio/workflow';
import type { Activities } from '../activities';

const { sendRestrictionLiftNotice, liftRestriction } = proxyActivities<Activities>({
  startToCloseTimeout: '5 minutes',
  retry: { initialInterval: '1 second', maximumInterval: '1 minute' },
});

export interface LiftRestrictionInput {
  requestId: string;
  /** Staff token id of the privacy officer who decided to lift it. */
  liftedBy: string;
}

/**
 * Art. 18(3): a restriction is lifted only after the person has been told. The notice goes
 * through the outbox first; only when it has been accepted is the restriction removed. Id
 * `restriction-lift:{requestId}`, so asking twice lifts once.
 */
export async function liftRestrictionWorkflow(input: LiftRestrictionInput): Promise<{ lifted: boolean }> {
  await sendRestrictionLiftNotice({ requestId: input.requestId });
  return liftRestriction(input);
}
