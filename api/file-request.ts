import { randomUUID } from 'node:crypto';
import type { ApiDeps } from './context';
import type { Config } from '../lib/config';
import { findRequest, insertRequest, type Requester, type RequestType } from '../db/requests';
import { startCommitted, startCommittedSoon } from './start';
import type { RecordedStart } from '../lib/workflow-starts';
import type { Locale } from '../db/customers';
import { addCalendarDuration, subtractCalendarDuration } from '../lib/durations';
import { requestWorkflowId } from '../workflows/ids';
import { QUOTAS, QuotaExceededError, type QuotaKind } from './quota';
import { AppError } from './problem';
import type { AccessRequestInput } from '../workflows/access-request';

/**
 * The input of a request's workflow: every period of the policy turned into instants from the
 * request's receipt (reminders, escalation, repeat window). One place for the API and the
 * intake benchmark's baseline alike.
 */
export function accessRequestInput(
  config: Pick<Config, 'REQUEST_REMINDERS' | 'REQUEST_ESCALATION' | 'REQUEST_REPEAT_WINDOW'>,
  r: { requestId: string; type: RequestType; customerId: string | null; receivedAt: Date; dueAt: Date; filedAt: Date; autoApprove?: boolean; autoApproveReason?: AccessRequestInput['autoApproveReason'] },
): AccessRequestInput {
  return {
    requestId: r.requestId,
    type: r.type,
    customerId: r.customerId,
    receivedAt: r.receivedAt.toISOString(),
    dueAt: r.dueAt.toISOString(),
    reminderAts: config.REQUEST_REMINDERS.map((d) => addCalendarDuration(r.receivedAt, d).toISOString()),
    escalationAt: addCalendarDuration(r.receivedAt, config.REQUEST_ESCALATION).toISOString(),
    repeatWindowStart: subtractCalendarDuration(r.receivedAt, config.REQUEST_REPEAT_WINDOW).toISOString(),
    autoApprove: r.autoApprove ?? false,
    ...(r.autoApproveReason ? { autoApproveReason: r.autoApproveReason } : {}),
    filedAt: r.filedAt.toISOString(),
  };
}

/**
 * Records a data-subject request and starts its workflow with every period of the policy
 * turned into instants (received + REQUEST_SLA, reminders, escalation, repeat window).
 */
export async function fileRequest(
  deps: ApiDeps,
  r: {
    type: RequestType;
    customerId: string | null;
    details: Record<string, unknown>;
    caller: (Requester & { locale?: Locale }) | null;
    locale: Locale;
    filedBy: 'customer' | 'staff';
    /** Account closure: an erasure the person asked for in their account, with no staff step. */
    autoApprove?: boolean;
    /** Who decided an auto-approved request (the workflow's `autoApproveReason`). */
    autoApproveReason?: 'account-closure' | 'self-service';
    /** When the email or call reached TopCall (staff filing on someone's behalf); now otherwise. */
    receivedAt?: Date;
    /** Derived from an Idempotency-Key; random otherwise. */
    id?: string;
    /** Counted against the caller's hourly quota in the statement that files (429 past it, nothing filed). */
    quota?: { kind: QuotaKind; caller: { id: string; kind: 'customer' | 'staff' } };
    /** The customer must be active (422 otherwise); the request takes their locale. */
    activeCustomer?: boolean;
  },
): Promise<{ id: string; receivedAt: Date; dueAt: Date }> {
  const { config } = deps;
  const id = r.id ?? randomUUID();
  const filedAt = new Date();
  // D10: the clock runs from receipt, which staff state when the request reached TopCall earlier.
  let receivedAt = r.receivedAt ?? filedAt;
  let dueAt = addCalendarDuration(receivedAt, config.REQUEST_SLA);
  let requester: Requester | null = null;
  if (r.caller) {
    const { locale: _locale, ...rest } = r.caller;
    requester = rest;
  }
  const recorded: RecordedStart = {
    workflowId: requestWorkflowId(id),
    workflowType: 'accessRequest',
    taskQueue: config.TEMPORAL_TASK_QUEUE,
    // Context for whoever opens the run in the UI (no personal data: that stays in Postgres).
    memo: { type: r.type, dueAt: dueAt.toISOString() },
    args: [accessRequestInput(config, { requestId: id, type: r.type, customerId: r.customerId, receivedAt, dueAt, filedAt, autoApprove: r.autoApprove, autoApproveReason: r.autoApproveReason })],
  };
  // The authority for an approval with no staff step is recorded here, where the person's own
  // step is known; the workflow's input alone does not suffice (issue 12).
  const autoApprove = r.autoApprove ? (r.autoApproveReason ?? 'account-closure') : null;
  // The row and its start in one statement (commit together, as commitAndStart's transaction does).
  const limit = r.quota ? QUOTAS[r.quota.kind][r.quota.caller.kind] : 0;
  const outcome = await insertRequest(
    deps.sql,
    { id, customerId: r.customerId, type: r.type, receivedAt, dueAt, details: r.details, requester, locale: r.locale, filedBy: r.filedBy, autoApprove },
    recorded,
    { ...(r.quota ? { quota: { kind: r.quota.kind, caller: r.quota.caller.id, limit } } : {}), activeCustomer: r.activeCustomer },
  );
  if (outcome.quota && !outcome.quota.ok) throw new QuotaExceededError(r.quota!.kind, r.quota!.caller.kind, outcome.quota.retryAfterSeconds);
  if (outcome.customerActive === false) {
    throw new AppError('validation-failed', 422, 'Unknown customer.', { errors: [{ field: 'customerId', in: 'body', message: 'no such customer' }] });
  }
  if (outcome.inserted) {
    // Received once committed: the start follows the answer (`PendingStarts`).
    await startCommittedSoon(deps, recorded);
  } else {
    // A retry (same Idempotency-Key) after an answer that never arrived: the first one stands,
    // with the start it recorded.
    const first = await findRequest(deps.sql, id);
    receivedAt = first!.receivedAt;
    dueAt = first!.dueAt;
    await startCommitted(deps, requestWorkflowId(id));
  }
  return { id, receivedAt, dueAt };
}
