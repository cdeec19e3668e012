import { randomUUID } from 'node:crypto';
import type { ApiDeps } from './context';
import { findRequest, insertRequest, type Requester, type RequestType } from '../db/requests';
import { commitAndStart } from './start';
import type { Locale } from '../db/customers';
import { addCalendarDuration, subtractCalendarDuration } from '../lib/durations';
import { requestWorkflowId } from '../workflows/ids';
import type { AccessRequestInput } from '../workflows/access-request';

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
  await commitAndStart(
    deps,
    async (tx) => {
      const inserted = await insertRequest(tx, { id, customerId: r.customerId, type: r.type, receivedAt, dueAt, details: r.details, requester, locale: r.locale, filedBy: r.filedBy });
      if (!inserted) {
        // A retry (same Idempotency-Key) after an answer that never arrived: the first one stands.
        const first = await findRequest(tx, id);
        receivedAt = first!.receivedAt;
        dueAt = first!.dueAt;
      }
    },
    () => ({
      workflowId: requestWorkflowId(id),
      workflowType: 'accessRequest',
      taskQueue: config.TEMPORAL_TASK_QUEUE,
      // Context for whoever opens the run in the UI (no personal data: that stays in Postgres).
      memo: { type: r.type, dueAt: dueAt.toISOString() },
      args: [
        {
          requestId: id,
          type: r.type,
          customerId: r.customerId,
          receivedAt: receivedAt.toISOString(),
          dueAt: dueAt.toISOString(),
          reminderAts: config.REQUEST_REMINDERS.map((d) => addCalendarDuration(receivedAt, d).toISOString()),
          escalationAt: addCalendarDuration(receivedAt, config.REQUEST_ESCALATION).toISOString(),
          repeatWindowStart: subtractCalendarDuration(receivedAt, config.REQUEST_REPEAT_WINDOW).toISOString(),
          autoApprove: r.autoApprove ?? false,
          ...(r.autoApproveReason ? { autoApproveReason: r.autoApproveReason } : {}),
          filedAt: filedAt.toISOString(),
        } satisfies AccessRequestInput,
      ],
    }),
  );
  return { id, receivedAt, dueAt };
}
