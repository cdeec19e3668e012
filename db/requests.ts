import { joinSql, type Db } from './index';
import type { Locale } from './customers';
import { recordStartFrom, type RecordedStart } from '../lib/workflow-starts';
import { quotaTake, quotaVerdict, type QuotaVerdict } from './quotas';

import { REQUEST_TYPES, REFUSAL_CODES, type RequestType } from '../workflows/request-types';

export { REQUEST_TYPES, REFUSAL_CODES, type RequestType };
export const REQUEST_STATUSES = ['received', 'awaiting_decision', 'executing', 'answered', 'refused', 'delivery_failed'] as const;
export type RequestStatus = (typeof REQUEST_STATUSES)[number];

export interface Requester {
  name: string;
  email: string;
  phone?: string;
  identityCheck: string;
}

export interface RequestRow {
  id: string;
  customerId: string | null;
  type: RequestType;
  status: RequestStatus;
  receivedAt: Date;
  dueAt: Date;
  details: Record<string, unknown>;
  requester: Requester | null;
  locale: Locale;
  filedBy: 'customer' | 'staff';
  flags: string[];
  earlierRequestIds: string[];
  decision: 'approve' | 'refuse' | null;
  reasonCode: string | null;
  reason: string | null;
  outcome: Record<string, unknown> | null;
  slaBreached: boolean;
  answeredAt: Date | null;
  /** Filed by the person's own account pages to be approved with no staff step (issue 12: the authority the workflow checks). */
  autoApprove: 'account-closure' | 'self-service' | null;
}

const columns = (sql: Db) => sql`
  id, customer_id as "customerId", type, status, received_at as "receivedAt", due_at as "dueAt", details, requester, locale,
  filed_by as "filedBy", flags, earlier_request_ids::text[] as "earlierRequestIds", decision, reason_code as "reasonCode", reason,
  outcome, sla_breached as "slaBreached", answered_at as "answeredAt", auto_approve as "autoApprove"`;

/** Checks made in the statement that files a request, so a refusal inserts and starts nothing. */
export interface FilingGuards {
  /** The filing counts against this hourly quota (issue 11); past `limit`, nothing is inserted. */
  quota?: { kind: string; caller: string; limit: number };
  /** The request's customer must exist and be active; the row takes the customer's locale. */
  activeCustomer?: boolean;
}

/** Whether the row was inserted (false: it existed, or a guard refused), and what each guard found. */
export interface FilingOutcome {
  inserted: boolean;
  quota?: QuotaVerdict;
  customerActive?: boolean;
}

/**
 * Inserts a request row, with its workflow start recorded in the same statement when given
 * (issue 13, issue 15: one round trip), and the guards checked there too: the caller's quota
 * and the customer's status cost no statement of their own.
 */
export async function insertRequest(
  sql: Db,
  r: Pick<RequestRow, 'id' | 'customerId' | 'type' | 'receivedAt' | 'dueAt' | 'details' | 'requester' | 'locale' | 'filedBy'> & { autoApprove?: RequestRow['autoApprove'] },
  start?: RecordedStart,
  guards: FilingGuards = {},
): Promise<FilingOutcome> {
  const checkCustomer = !!guards.activeCustomer && r.customerId !== null;
  const ctes = [
    ...(guards.quota ? [sql`quota as (${quotaTake(sql, guards.quota.kind, guards.quota.caller)})`] : []),
    ...(checkCustomer ? [sql`customer as (select locale from customers where id = ${r.customerId} and status = 'active')`] : []),
  ];
  const conditions = [
    ...(guards.quota ? [sql`(select count from quota) <= ${guards.quota.limit}`] : []),
    ...(checkCustomer ? [sql`exists (select 1 from customer)`] : []),
  ];
  const insert = sql`
    insert into data_requests (id, customer_id, type, received_at, due_at, details, requester, locale, filed_by, auto_approve)
    select ${r.id}::uuid, ${r.customerId}::uuid, ${r.type}, ${r.receivedAt}::timestamptz, ${r.dueAt}::timestamptz, ${sql.json(r.details as never)}::jsonb,
           ${r.requester ? sql.json(r.requester as never) : null}::jsonb, ${checkCustomer ? sql`(select locale from customer)` : sql`${r.locale}`}, ${r.filedBy}, ${r.autoApprove ?? null}
    ${conditions.length ? sql`where ${joinSql(sql, conditions, ' and ')}` : sql``}
    on conflict (id) do nothing returning 1`;
  const [row] = await sql<{ inserted: number; quotaCount: number | null; retryAfter: number | null; customerActive: boolean | null }[]>`
    with ${joinSql(sql, [...ctes, sql`inserted as (${insert})`, ...(start ? [sql`started as (${recordStartFrom(sql, 'inserted', start)})`] : [])])}
    select (select count(*) from inserted)::int as inserted,
           ${guards.quota ? sql`(select count from quota)` : sql`null::int`} as "quotaCount",
           ${guards.quota ? sql`(select "retryAfter" from quota)` : sql`null::int`} as "retryAfter",
           ${checkCustomer ? sql`exists (select 1 from customer)` : sql`null::boolean`} as "customerActive"`;
  return {
    inserted: row!.inserted > 0,
    ...(guards.quota ? { quota: quotaVerdict({ count: row!.quotaCount!, retryAfter: row!.retryAfter! }, guards.quota.limit) } : {}),
    ...(checkCustomer ? { customerActive: row!.customerActive! } : {}),
  };
}

export async function findRequest(sql: Db, id: string): Promise<RequestRow | undefined> {
  const [row] = await sql<RequestRow[]>`select ${columns(sql)} from data_requests where id = ${id}`;
  return row;
}

export async function listRequests(
  sql: Db,
  f: { customerId?: string; status?: RequestStatus; overdue?: boolean; limit: number },
): Promise<RequestRow[]> {
  return sql<RequestRow[]>`
    select ${columns(sql)} from data_requests
    where true
      ${f.customerId ? sql`and customer_id = ${f.customerId}` : sql``}
      ${f.status ? sql`and status = ${f.status}` : sql``}
      ${f.overdue === true ? sql`and answered_at is null and due_at < now()` : sql``}
      ${f.overdue === false ? sql`and not (answered_at is null and due_at < now())` : sql``}
    order by received_at desc
    limit ${f.limit}`;
}

/** Earlier requests of the same type by the same person within the window: evidence for Art. 12(5). */
export async function earlierRequests(sql: Db, r: { id: string; customerId: string; type: RequestType; receivedAt: Date; windowStart: Date }): Promise<string[]> {
  const rows = await sql<{ id: string }[]>`
    select id from data_requests
    where customer_id = ${r.customerId} and type = ${r.type} and id <> ${r.id}
      and received_at >= ${r.windowStart} and received_at <= ${r.receivedAt}
    order by received_at`;
  return rows.map((x) => x.id);
}

export async function updateRequest(
  sql: Db,
  id: string,
  patch: Partial<{ status: RequestStatus; flags: string[]; earlierRequestIds: string[]; slaBreached: boolean; outcome: Record<string, unknown>; answeredAt: Date; decision: 'approve' | 'refuse'; reasonCode: string | null; reason: string | null; decidedBy: string }>,
): Promise<void> {
  const values: Record<string, unknown> = {};
  if (patch.status) values.status = patch.status;
  if (patch.flags) values.flags = patch.flags;
  if (patch.earlierRequestIds) values.earlier_request_ids = patch.earlierRequestIds;
  if (patch.slaBreached !== undefined) values.sla_breached = patch.slaBreached;
  if (patch.outcome) values.outcome = sql.json(patch.outcome as never);
  if (patch.answeredAt) values.answered_at = patch.answeredAt;
  if (patch.decision) values.decision = patch.decision;
  if (patch.reasonCode !== undefined) values.reason_code = patch.reasonCode;
  if (patch.reason !== undefined) values.reason = patch.reason;
  if (patch.decidedBy) values.decided_by = patch.decidedBy;
  if (Object.keys(values).length === 0) return;
  await sql`update data_requests set ${sql(values)} where id = ${id}`;
}

/**
 * Reads a request until its answer has gone out (answeredAt set) or `withinMs` has passed, and
 * returns the last read: for callers that may wait a bounded time for a workflow to finish.
 */
export async function awaitAnswer(sql: Db, id: string, withinMs: number): Promise<RequestRow | undefined> {
  const deadline = Date.now() + withinMs;
  let row = await findRequest(sql, id);
  for (let pause = 50; row && !row.answeredAt && Date.now() < deadline; pause = Math.min(pause * 2, 500)) {
    await new Promise((resolve) => setTimeout(resolve, pause));
    row = await findRequest(sql, id);
  }
  return row;
}
