import {
  allHandlersFinished,
  condition,
  continueAsNew,
  defineSignal,
  defineUpdate,
  proxyActivities,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { Activities } from '../activities';
import { ClientId, CustomerId } from './search-attributes';

const { sendInvitation, setMarketingPreference } = proxyActivities<Activities>({
  startToCloseTimeout: '1 minute',
  retry: { initialInterval: '1 second', maximumInterval: '1 minute' },
});

export interface CustomerLifecycleInput {
  customerId: string;
  clientId: string;
  /** Carried across continue-as-new. */
  state?: CustomerState;
}

export interface CustomerState {
  status: 'active' | 'erased';
  marketingEmails: boolean;
  invited: boolean;
  /**
   * Runs before issue 13 kept the last 200 requests here too: a copy of Postgres that nothing
   * read. The field stays for their carried state (docs/workflow-changes.md, rule 3); new runs
   * leave it out and a continue-as-new drops it.
   */
  requests?: { requestId: string; type: string; receivedAt: string }[];
}

export const setPreferencesUpdate = defineUpdate<{ marketingEmails: boolean }, [{ marketingEmails: boolean }]>('setPreferences');
export const requestFiledSignal = defineSignal<[{ requestId: string; type: string; receivedAt: string }]>('requestFiled');
export const marketingOptedOutSignal = defineSignal('marketingOptedOut');
export const erasedSignal = defineSignal('erased');

/**
 * One per person with an account (D1, D2, D10, D11): the invitation that says who gave us the
 * data, marketing preferences and the end of the account at erasure.
 * Lives for years: it continues as new before its history grows large.
 */
export async function customerLifecycle(input: CustomerLifecycleInput): Promise<CustomerState> {
  const state: CustomerState = input.state ?? { status: 'active', marketingEmails: true, invited: false };
  upsertSearchAttributes([
    { key: CustomerId, value: input.customerId },
    { key: ClientId, value: input.clientId },
  ]);

  // No query: the API reads the customer and their requests from Postgres (docs/requests-and-customers.md).
  setHandler(
    setPreferencesUpdate,
    async ({ marketingEmails }) => {
      await setMarketingPreference({ customerId: input.customerId, marketingEmails });
      state.marketingEmails = marketingEmails;
      return { marketingEmails };
    },
    {
      validator: ({ marketingEmails }) => {
        if (typeof marketingEmails !== 'boolean') throw new Error('marketingEmails must be true or false');
        if (state.status !== 'active') throw new Error('the account is erased');
      },
    },
  );
  // Still accepted (requests signal it, and recorded runs carry it); the record of requests is Postgres's.
  setHandler(requestFiledSignal, () => undefined);
  setHandler(marketingOptedOutSignal, () => {
    state.marketingEmails = false;
  });
  setHandler(erasedSignal, () => {
    state.status = 'erased';
  });

  if (!state.invited) {
    await sendInvitation({ customerId: input.customerId });
    state.invited = true;
  }

  await condition(() => state.status === 'erased' || workflowInfo().continueAsNewSuggested);
  await condition(allHandlersFinished);
  if (state.status === 'erased') return state;
  const { requests: _dropped, ...carried } = state;
  return continueAsNew<typeof customerLifecycle>({ ...input, state: carried });
}
