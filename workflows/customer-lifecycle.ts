import {
  allHandlersFinished,
  condition,
  continueAsNew,
  defineQuery,
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
  /** The record of past requests (ids, types, times): evidence for Art. 12(5). The last 200 are kept here; all are in Postgres. */
  requests: { requestId: string; type: string; receivedAt: string }[];
}

export const setPreferencesUpdate = defineUpdate<{ marketingEmails: boolean }, [{ marketingEmails: boolean }]>('setPreferences');
export const requestFiledSignal = defineSignal<[{ requestId: string; type: string; receivedAt: string }]>('requestFiled');
export const marketingOptedOutSignal = defineSignal('marketingOptedOut');
export const erasedSignal = defineSignal('erased');
export const customerStateQuery = defineQuery<CustomerState>('customerState');

/**
 * One per person with an account (D1, D2, D10, D11): the invitation that says who gave us the
 * data, marketing preferences, the record of requests, and the end of the account at erasure.
 * Lives for years: it continues as new before its history grows large.
 */
export async function customerLifecycle(input: CustomerLifecycleInput): Promise<CustomerState> {
  const state: CustomerState = input.state ?? { status: 'active', marketingEmails: true, invited: false, requests: [] };
  upsertSearchAttributes([
    { key: CustomerId, value: input.customerId },
    { key: ClientId, value: input.clientId },
  ]);

  setHandler(customerStateQuery, () => state);
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
  setHandler(requestFiledSignal, (r) => {
    if (!state.requests.some((x) => x.requestId === r.requestId)) state.requests = [...state.requests, r].slice(-200);
  });
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
  return continueAsNew<typeof customerLifecycle>({ ...input, state });
}
