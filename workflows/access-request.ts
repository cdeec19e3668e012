import {
  ActivityFailure,
  TimeoutFailure,
  patched,
  allHandlersFinished,
  ApplicationFailure,
  condition,
  defineUpdate,
  getExternalWorkflowHandle,
  proxyActivities,
  setHandler,
  upsertSearchAttributes,
} from '@temporalio/workflow';
import type { Activities } from '../activities';
import { customerWorkflowId } from './ids';
import { PERMANENT_SMTP_FAILURE, refusalProblem, type RequestType as RequestTypeName } from './request-types';
import { CustomerId, RequestStatus, RequestType, SlaBreached, SlaDueAt } from './search-attributes';
import { erasedSignal, marketingOptedOutSignal, requestFiledSignal } from './customer-lifecycle';

/**
 * Patch (docs/workflow-changes.md): a decision's update returns once the decision is recorded,
 * and the main flow carries it out. Runs that took a decision before this change (their
 * histories in test/histories/) keep executing inside the update, as they did.
 */
export const DECISION_RETURNS_EARLY = 'decision-returns-before-execution';
/**
 * Patch (docs/workflow-changes.md), issue 12: `recordDecision` checks the deciding actor in
 * Postgres and may refuse. A decision then counts only once it is recorded, so a refused one
 * (an unknown or under-privileged actor sent straight to Temporal) neither stops the reminders,
 * escalation and breach nor blocks the officer's real decision. Runs that took a decision
 * before this change stopped their reminders when the update arrived, and replay that way.
 */
export const DECISION_COUNTS_WHEN_RECORDED = 'decision-counts-when-recorded';

const activities = proxyActivities<Activities>({
  startToCloseTimeout: '5 minutes',
  retry: { initialInterval: '1 second', maximumInterval: '1 minute' },
});
/** Emails to the person retry for a bounded time (issue 13), then staff are told like for a refusal for good. */
const personMail = proxyActivities<Activities>({
  startToCloseTimeout: '5 minutes',
  scheduleToCloseTimeout: '2 days',
  retry: { initialInterval: '1 second', maximumInterval: '10 minutes' },
});


export interface AccessRequestInput {
  requestId: string;
  type: RequestTypeName;
  customerId: string | null;
  receivedAt: string;
  /** REQUEST_SLA after receipt. */
  dueAt: string;
  /** REQUEST_REMINDERS after receipt. */
  reminderAts: string[];
  /** REQUEST_ESCALATION after receipt. */
  escalationAt: string;
  /** Start of REQUEST_REPEAT_WINDOW before receipt. */
  repeatWindowStart: string;
  /** Account closure: the person's own erasure from their account settings, with no staff step. */
  autoApprove?: boolean;
  /**
   * Who decided an auto-approved request: `account-closure` (the default, and the only value
   * runs before issue 14 had), or `self-service` (a person correcting their own name, language
   * or confirmed address on the account pages). Input only: no new commands, replay-safe.
   */
  autoApproveReason?: 'account-closure' | 'self-service';
  /**
   * When staff filed it (receivedAt may be earlier: when the email or call reached TopCall).
   * Reminders that fell due before filing are not sent; a late escalation and a breach are at once.
   */
  filedAt?: string;
}

export interface Decision {
  decision: 'approve' | 'refuse';
  reasonCode?: string | null;
  /** The API stored the free-text reason in Postgres; history carries only that it exists. */
  hasReason?: boolean;
  /** Likewise for the evidence an `excessive` refusal rests on when the request is not flagged repetitive. */
  hasEvidence?: boolean;
  decidedBy: string;
}

export interface AccessRequestState {
  status: 'received' | 'awaiting_decision' | 'executing' | 'answered' | 'refused' | 'delivery_failed';
  slaBreached: boolean;
  flags: string[];
  earlierRequestIds: string[];
  reminders: number;
  escalated: boolean;
  decision?: 'approve' | 'refuse';
  outcome?: Record<string, unknown>;
}

export const decideUpdate = defineUpdate<AccessRequestState, [Decision]>('decide');

/**
 * D10: one per data-subject request. Acknowledges it with its due date, reminds and escalates
 * to staff, records a breach when the SLA passes (and goes on), takes the staff decision,
 * carries it out and answers the person.
 */
export async function accessRequest(input: AccessRequestInput): Promise<AccessRequestState> {
  const state: AccessRequestState = { status: 'received', slaBreached: false, flags: [], earlierRequestIds: [], reminders: 0, escalated: false };
  let decision: Decision | undefined;
  /** A decision being handled: the validator refuses a second one meanwhile. */
  let pending: Decision | undefined;
  /** The accepted decision, once recorded (the main flow carries it out: DECISION_RETURNS_EARLY). */
  let recorded: Decision | undefined;

  const setStatus = async (status: AccessRequestState['status']) => {
    state.status = status;
    upsertSearchAttributes([{ key: RequestStatus, value: status }]);
  };

  upsertSearchAttributes([
    { key: RequestType, value: input.type },
    { key: RequestStatus, value: 'received' },
    { key: SlaDueAt, value: new Date(input.dueAt) },
    { key: SlaBreached, value: false },
    ...(input.customerId ? [{ key: CustomerId, value: input.customerId }] : []),
  ]);
  // No query: the API reads the request from Postgres (one source per fact, docs/requests-and-customers.md).

  const customer = input.customerId ? getExternalWorkflowHandle(customerWorkflowId(input.customerId)) : undefined;
  /**
   * Sends an email to the person; false when it cannot be delivered — refused for good, or not
   * accepted within the bounded retry — after marking the request and alerting staff (issue 13).
   */
  const delivered = async (send: () => Promise<void>, stage: 'acknowledgement' | 'answer'): Promise<boolean> => {
    try {
      await send();
      return true;
    } catch (err) {
      const cause = err instanceof ActivityFailure ? err.cause : undefined;
      const undeliverable = (cause instanceof ApplicationFailure && cause.type === PERMANENT_SMTP_FAILURE) || cause instanceof TimeoutFailure;
      if (!undeliverable) throw err;
      await activities.markDeliveryFailed({ requestId: input.requestId, stage });
      return false;
    }
  };
  const answer = () => delivered(() => personMail.sendRequestAnswer({ requestId: input.requestId }), 'answer');

  const carryOut = async () => {
    await setStatus('executing');
    state.outcome = await activities.executeRequest({ requestId: input.requestId });
    const answered = await answer();
    if (input.type === 'marketing_opt_out' || input.type === 'objection') await customer?.signal(marketingOptedOutSignal).catch(() => undefined);
    if (input.type === 'erasure') {
      await activities.forgetContact({ requestId: input.requestId });
      await customer?.signal(erasedSignal).catch(() => undefined);
    }
    await setStatus(answered ? 'answered' : 'delivery_failed');
  };

  /** Why a refusal is not lawful as given (D10), or undefined: the same rules as the API's. */
  const refusalOf = (d: Decision, repetitive: boolean) =>
    refusalProblem({ type: input.type, reasonCode: d.reasonCode, hasReason: !!d.hasReason, repetitive, hasEvidence: !!d.hasEvidence });

  setHandler(
    decideUpdate,
    async (d) => {
      const countsWhenRecorded = patched(DECISION_COUNTS_WHEN_RECORDED);
      pending = d;
      if (!countsWhenRecorded) decision = d;
      // Registered from the start so no decision is ever refused for arriving early; it waits for the assessment.
      await condition(() => state.status === 'awaiting_decision');
      if (d.decision === 'refuse') {
        // Decided before the assessment was in: the repetitive flag is known only now.
        const problem = refusalOf(d, state.flags.includes('repetitive'));
        if (problem) {
          decision = pending = undefined;
          throw ApplicationFailure.nonRetryable(`${problem.field}: ${problem.message}`, 'InvalidDecision');
        }
      }
      if (!countsWhenRecorded) state.decision = d.decision;
      try {
        await activities.recordDecision({ requestId: input.requestId, decision: d.decision, reasonCode: d.reasonCode ?? null, decidedBy: d.decidedBy });
      } catch (err) {
        // Refused below the API (the actor may not decide, issue 12): nothing was recorded, the
        // request still awaits a decision, and the caller sees why.
        decision = pending = undefined;
        state.decision = undefined;
        if (err instanceof ActivityFailure && err.cause instanceof ApplicationFailure) throw err.cause;
        throw err;
      }
      decision = d;
      state.decision = d.decision;
      if (patched(DECISION_RETURNS_EARLY)) {
        // Issue 13: the officer's call returns once the decision is recorded; the main flow
        // carries it out, so an SMTP outage delays the answer, not the officer.
        recorded = d;
        return state;
      }
      if (d.decision === 'refuse') {
        await setStatus((await answer()) ? 'refused' : 'delivery_failed');
      } else {
        await carryOut();
      }
      return state;
    },
    {
      validator: (d) => {
        if (decision || pending) throw ApplicationFailure.nonRetryable('the request has already been decided', 'AlreadyDecided');
        if (input.type === 'marketing_opt_out' || input.autoApprove) throw ApplicationFailure.nonRetryable('this request needs no decision', 'AlreadyDecided');
        if (d.decision !== 'approve' && d.decision !== 'refuse') throw ApplicationFailure.nonRetryable('decision must be approve or refuse', 'InvalidDecision');
        if (d.decision === 'refuse') {
          // The same lawful grounds as the API: roles and rules hold below the API too.
          // Until the assessment is in, the repetitive flag is unknown: the handler checks again then.
          const repetitive = state.flags.includes('repetitive') || state.status === 'received';
          const problem = refusalOf(d, repetitive);
          if (problem) throw ApplicationFailure.nonRetryable(`${problem.field}: ${problem.message}`, 'InvalidDecision');
        }
      },
    },
  );

  // The customer's own record of requests; a missing lifecycle (e.g. erased) must not stop the request.
  await customer?.signal(requestFiledSignal, { requestId: input.requestId, type: input.type, receivedAt: input.receivedAt }).catch(() => undefined);
  await delivered(() => personMail.acknowledgeRequest({ requestId: input.requestId }), 'acknowledgement');

  if (input.type === 'marketing_opt_out' || input.autoApprove) {
    // D11: opting out needs no staff step; nor does closing one's own account.
    const decidedBy = input.autoApprove ? (input.autoApproveReason ?? 'account-closure') : 'opt-out';
    decision = { decision: 'approve', decidedBy };
    state.decision = 'approve';
    if (input.autoApprove) await activities.recordDecision({ requestId: input.requestId, decision: 'approve', reasonCode: null, decidedBy });
    await carryOut();
    return state;
  }

  const assessment = await activities.assessRequest({ requestId: input.requestId, repeatWindowStart: input.repeatWindowStart });
  state.flags = assessment.flags;
  state.earlierRequestIds = assessment.earlierRequestIds;
  await setStatus('awaiting_decision');

  // Staff are reminded, then the request is escalated, then a breach is recorded: each only if
  // no decision came first. The request goes on after a breach.
  const points = [
    ...input.reminderAts.map((at) => ({ at, kind: 'reminder' as const })),
    { at: input.escalationAt, kind: 'escalation' as const },
    { at: input.dueAt, kind: 'breach' as const },
  ].sort((a, b) => Date.parse(a.at) - Date.parse(b.at));

  const filedAt = Date.parse(input.filedAt ?? input.receivedAt);
  for (const point of points) {
    // Filed already late: stale reminders would only bury the escalation that matters now.
    if (point.kind === 'reminder' && Date.parse(point.at) <= filedAt) continue;
    const wait = Date.parse(point.at) - Date.now();
    if (wait > 0 && (await condition(() => decision !== undefined, wait))) break;
    if (decision) break;
    if (point.kind === 'reminder') {
      state.reminders += 1;
      await activities.sendStaffEmail({
        key: `request:${input.requestId}:reminder:${state.reminders}`,
        subject: `Reminder: ${input.type} request ${input.requestId} is due ${input.dueAt}`,
        text: `The ${input.type} request ${input.requestId} awaits a decision. It must be answered by ${input.dueAt} (7-day promise, D10).${state.flags.length ? `\nFlags: ${state.flags.join(', ')}; earlier requests: ${state.earlierRequestIds.join(', ')}` : ''}\n`,
      });
    } else if (point.kind === 'escalation') {
      state.escalated = true;
      await activities.sendStaffEmail({
        key: `request:${input.requestId}:escalation`,
        subject: `ESCALATION: ${input.type} request ${input.requestId} is unanswered, due ${input.dueAt}`,
        text: `The ${input.type} request ${input.requestId} is still unanswered and is due ${input.dueAt}. Decide it now.\n`,
      });
    } else {
      state.slaBreached = true;
      upsertSearchAttributes([{ key: SlaBreached, value: true }]);
      await activities.markSlaBreached({ requestId: input.requestId });
      await activities.sendStaffEmail({
        key: `request:${input.requestId}:breach`,
        subject: `SLA BREACHED: ${input.type} request ${input.requestId} was due ${input.dueAt}`,
        text: `The ${input.type} request ${input.requestId} was not answered by ${input.dueAt}. The breach is recorded; answer it as soon as possible.\n`,
      });
    }
  }

  if (patched(DECISION_RETURNS_EARLY)) {
    await condition(() => recorded !== undefined);
    if (recorded!.decision === 'refuse') {
      await setStatus((await answer()) ? 'refused' : 'delivery_failed');
    } else {
      await carryOut();
    }
  }
  await condition(() => state.status === 'answered' || state.status === 'refused' || state.status === 'delivery_failed');
  await condition(allHandlersFinished);
  return state;
}
