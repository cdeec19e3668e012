import type { Db } from './index';

/**
 * Issue 15: how the policy's promises stand right now, as counts. `GET /v1/stats` answers
 * exactly this, and the Prometheus gauges of `GET /metrics` are set from it, so the two never
 * disagree. Counts only: nothing here names a person.
 */
export interface PromiseStats {
  /** D10: the 7-day answer. */
  requests: {
    /** Not yet answered (answered or refused both count as answered). */
    open: number;
    /** Open and due within the next 24 hours. */
    dueSoon: number;
    /** Open and past their due date: the promise is broken. */
    overdue: number;
    /** Answered in the last 30 days, by their due date. */
    answeredOnTime30d: number;
    /** Answered in the last 30 days, after their due date. */
    answeredLate30d: number;
  };
  /** D4: three months, then deleted, unless a dispute holds them. Held and retained do not overlap. */
  recordings: {
    /** Stored and not held by a dispute (the status `retained` of GET /v1/recordings/:id). */
    retained: number;
    /** Stored and held by at least one open dispute (status `held`). */
    held: number;
    /** Past their deadline and held by nothing: the retention sweep owes their deletion. */
    overdueUnheld: number;
    /** How long the oldest of those has outlived its deadline, in whole seconds; 0 when none. D4 allows at most the sweep interval. */
    oldestOverdueSeconds: number;
  };
  /** D12: policy-change notices (the outbox rows of notice campaigns). */
  notices: {
    sent: number;
    /** Refused for good by the mailbox (retryable from the policy's failed-notices list). */
    failed: number;
  };
}

/**
 * One statement, so every number comes from the same snapshot and the same `now()`, cheap
 * enough for every scrape: the recording parts read partial indexes (stored ones:
 * `recordings_due`; holds in force: `recording_holds_active`; overdue ones: the range
 * `delete_after < now()` of `recordings_due`), notices read the campaign rows
 * (`email_outbox_by_campaign`), and the request counts are one pass over `data_requests`, a
 * table of thousands of rows, not millions.
 */
export async function promiseStats(sql: Db): Promise<PromiseStats> {
  const [row] = await sql<
    {
      open: number;
      dueSoon: number;
      overdue: number;
      onTime: number;
      late: number;
      stored: number;
      held: number;
      overdueUnheld: number;
      oldestOverdueSeconds: number;
      sent: number;
      failed: number;
    }[]
  >`
    with req as (
      select
        count(*) filter (where answered_at is null)::int as open,
        count(*) filter (where answered_at is null and due_at >= now() and due_at < now() + interval '1 day')::int as "dueSoon",
        count(*) filter (where answered_at is null and due_at < now())::int as overdue,
        count(*) filter (where answered_at >= now() - interval '30 days' and answered_at <= due_at)::int as "onTime",
        count(*) filter (where answered_at >= now() - interval '30 days' and answered_at > due_at)::int as late
      from data_requests
    ),
    overdue_unheld as (
      select count(*)::int as n, min(r.delete_after) as oldest
      from recordings r
      where r.status = 'retained' and r.delete_after < now()
        and not exists (select 1 from recording_holds h where h.recording_id = r.id and h.released_at is null)
    ),
    notices as (
      select count(*) filter (where status = 'sent')::int as sent, count(*) filter (where status = 'failed')::int as failed
      from email_outbox where campaign is not null
    )
    select
      req.*,
      (select count(*)::int from recordings where status = 'retained') as stored,
      (select count(distinct h.recording_id)::int from recording_holds h join recordings r on r.id = h.recording_id
        where h.released_at is null and r.status = 'retained') as held,
      overdue_unheld.n as "overdueUnheld",
      coalesce(floor(extract(epoch from now() - overdue_unheld.oldest)), 0)::float8 as "oldestOverdueSeconds",
      notices.sent,
      notices.failed
    from req, overdue_unheld, notices`;
  const r = row!;
  return {
    requests: { open: r.open, dueSoon: r.dueSoon, overdue: r.overdue, answeredOnTime30d: r.onTime, answeredLate30d: r.late },
    recordings: { retained: r.stored - r.held, held: r.held, overdueUnheld: r.overdueUnheld, oldestOverdueSeconds: r.oldestOverdueSeconds },
    notices: { sent: r.sent, failed: r.failed },
  };
}

export const DELETION_REASONS = ['retention', 'dispute_resolved', 'erasure', 'objection'] as const;

/**
 * Recordings deleted so far, by the reason on their receipt. Receipts are never removed (the
 * hash chain proves it), so these only grow: a counter that survives restarts of the API.
 */
export async function deletionCounts(sql: Db): Promise<Record<(typeof DELETION_REASONS)[number], number>> {
  const rows = await sql<{ reason: string; n: number }[]>`select reason, count(*)::int as n from deletion_receipts group by reason`;
  const counts = Object.fromEntries(DELETION_REASONS.map((r) => [r, 0])) as Record<(typeof DELETION_REASONS)[number], number>;
  for (const { reason, n } of rows) if (reason in counts) counts[reason as (typeof DELETION_REASONS)[number]] = n;
  return counts;
}
