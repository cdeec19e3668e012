import { strToU8, zipSync } from 'fflate';
import type { Sql } from '../db/index';

/** One category of an access export: rows with the same columns, as JSON and as CSV. */
type Rows = Record<string, string | number | boolean | null>[];

const csvCell = (v: unknown) => {
  const s = v === null || v === undefined ? '' : v instanceof Date ? v.toISOString() : String(v);
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
};

export function toCsv(rows: Rows, columns: string[]): string {
  return [columns.join(','), ...rows.map((r) => columns.map((c) => csvCell(r[c])).join(','))].join('\r\n') + '\r\n';
}

export const EXPORT_CATEGORIES = ['profile', 'provenance', 'call_statistics', 'messages', 'recordings', 'requests', 'preferences', 'recipients'] as const;

const iso = (d: Date | null) => (d ? d.toISOString() : null);

/**
 * Everything the back office holds about a person, by category (Art. 15 and 20): a
 * machine-readable package with data.json and one CSV per category.
 */
export async function buildAccessExport(sql: Sql, subject: { customerId: string | null; callerNumber: string | null }): Promise<{ zip: Uint8Array; categories: Record<string, number> }> {
  const { customerId, callerNumber } = subject;
  const byPerson = customerId ? sql`customer_id = ${customerId}` : sql`caller_number = ${callerNumber}`;
  const profile: Rows = customerId
    ? (await sql`select id, email, name, locale, status, created_at from customers where id = ${customerId}`).map((r) => ({ ...r, created_at: iso(r.created_at) }) as never)
    : [];
  const provenance: Rows = customerId
    ? (await sql`select c.provided_by, c.provided_at, cl.name as client from customers c join clients cl on cl.id = c.client_id where c.id = ${customerId}`).map(
        (r) => ({ provided_by: r.provided_by, provided_at: iso(r.provided_at), client: r.client }),
      )
    : [];
  const recordings: Rows = (
    await sql`select id, client_id, recorded_at, duration_seconds, delete_after, status, deleted_at from recordings where ${byPerson} order by recorded_at`
  ).map((r) => ({ ...r, recorded_at: iso(r.recorded_at), delete_after: iso(r.delete_after), deleted_at: iso(r.deleted_at) }) as never);
  const statistics: Rows = (
    await sql`select client_id, count(*)::int as calls, coalesce(sum(duration_seconds), 0)::int as seconds from recordings where ${byPerson} group by client_id`
  ).map((r) => ({ ...r }) as never);
  const messages: Rows = customerId
    ? (await sql`select id, client_id, sent_at, channel, body from call_messages where customer_id = ${customerId} order by sent_at`).map((r) => ({ ...r, sent_at: iso(r.sent_at) }) as never)
    : [];
  const requests: Rows = customerId
    ? (
        await sql`select id, type, status, received_at, due_at, decision, reason_code, answered_at from data_requests where customer_id = ${customerId} order by received_at`
      ).map((r) => ({ ...r, received_at: iso(r.received_at), due_at: iso(r.due_at), answered_at: iso(r.answered_at) }) as never)
    : [];
  const preferences: Rows = customerId
    ? (
        await sql`select marketing_emails, processing_restricted, objected_to_processing, locale from customers where id = ${customerId}`
      ).map((r) => ({ ...r }) as never)
    : [];
  const recipients: Rows = customerId
    ? (
        await sql`select d.recipient, d.category, d.legal_basis, d.disclosed_at from disclosures d join disclosure_subjects s on s.disclosure_id = d.id
                  where s.customer_id = ${customerId} order by d.disclosed_at`
      ).map((r) => ({ ...r, disclosed_at: iso(r.disclosed_at) }) as never)
    : [];

  const data: Record<(typeof EXPORT_CATEGORIES)[number], Rows> = {
    profile,
    provenance,
    call_statistics: statistics,
    messages,
    recordings,
    requests,
    preferences,
    recipients,
  };
  const columnsOf: Record<string, string[]> = {
    profile: ['id', 'email', 'name', 'locale', 'status', 'created_at'],
    provenance: ['provided_by', 'provided_at', 'client'],
    call_statistics: ['client_id', 'calls', 'seconds'],
    messages: ['id', 'client_id', 'sent_at', 'channel', 'body'],
    recordings: ['id', 'client_id', 'recorded_at', 'duration_seconds', 'delete_after', 'status', 'deleted_at'],
    requests: ['id', 'type', 'status', 'received_at', 'due_at', 'decision', 'reason_code', 'answered_at'],
    preferences: ['marketing_emails', 'processing_restricted', 'objected_to_processing', 'locale'],
    recipients: ['recipient', 'category', 'legal_basis', 'disclosed_at'],
  };
  const files: Record<string, Uint8Array> = {
    'data.json': strToU8(JSON.stringify({ generatedAt: new Date().toISOString(), controller: 'TopCall ApS', ...data }, null, 2)),
  };
  for (const category of EXPORT_CATEGORIES) files[`${category}.csv`] = strToU8(toCsv(data[category], columnsOf[category]!));
  return { zip: zipSync(files), categories: Object.fromEntries(EXPORT_CATEGORIES.map((c) => [c, data[c].length])) };
}
