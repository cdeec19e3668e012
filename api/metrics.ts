import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Sql } from '../db/index';
import { DELETION_REASONS, deletionCounts, promiseStats, type PromiseStats } from '../db/stats';
import type { Logger } from '../lib/log';
import { fixedDurationMs } from '../lib/durations';

/**
 * Issue 15: the API's Prometheus metrics. The promise gauges are computed from Postgres when
 * Prometheus scrapes (one statement per scrape, shared by every gauge: `promiseStats`, the same
 * function `GET /v1/stats` answers with), next to HTTP latency per route pattern and the
 * process's default metrics. Labels are route patterns, methods, statuses and deletion reasons:
 * never an id, an address, a number or a raw URL.
 */

/** A scrape waits this long for Postgres; then the promise gauges read NaN and `privacy_stats_up` 0. */
const STATS_TIMEOUT_MS = 5_000;

/** Every promise gauge: its name, what it means, and where its number is in `PromiseStats`. */
export const PROMISE_GAUGES: ReadonlyArray<{ name: string; help: string; value: (s: PromiseStats) => number }> = [
  { name: 'privacy_requests_open', help: 'Data-subject requests not yet answered (D10).', value: (s) => s.requests.open },
  { name: 'privacy_requests_due_soon', help: 'Open data-subject requests due within the next 24 hours.', value: (s) => s.requests.dueSoon },
  { name: 'privacy_requests_overdue', help: 'Open data-subject requests past their due date: the 7-day promise broken (D10).', value: (s) => s.requests.overdue },
  { name: 'privacy_requests_answered_on_time_30d', help: 'Requests answered in the last 30 days by their due date.', value: (s) => s.requests.answeredOnTime30d },
  { name: 'privacy_requests_answered_late_30d', help: 'Requests answered in the last 30 days after their due date.', value: (s) => s.requests.answeredLate30d },
  { name: 'privacy_recordings_retained', help: 'Call recordings stored and not held by a dispute (D4).', value: (s) => s.recordings.retained },
  { name: 'privacy_recordings_held', help: 'Call recordings an open dispute holds (kept past three months if need be, D4).', value: (s) => s.recordings.held },
  {
    name: 'privacy_recordings_overdue_unheld',
    help: 'Call recordings past their deadline that no dispute holds: the retention sweep owes their deletion (D4).',
    value: (s) => s.recordings.overdueUnheld,
  },
  {
    name: 'privacy_recordings_oldest_overdue_seconds',
    help: 'How long the oldest overdue unheld recording has outlived its deadline, in seconds (0 when none). D4 allows at most privacy_retention_sweep_interval_seconds.',
    value: (s) => s.recordings.oldestOverdueSeconds,
  },
  { name: 'privacy_notices_sent', help: 'Policy-change notices sent (D12).', value: (s) => s.notices.sent },
  { name: 'privacy_notices_failed', help: 'Policy-change notices a mailbox refused for good (D12).', value: (s) => s.notices.failed },
];

export const HTTP_DURATION = 'http_request_duration_seconds';

let processRegistry: Registry | undefined;
/** Node's default metrics (CPU, memory, event loop, GC), registered once per process. */
function processMetrics(): Registry {
  if (!processRegistry) {
    processRegistry = new Registry();
    collectDefaultMetrics({ register: processRegistry });
  }
  return processRegistry;
}

export interface Metrics {
  /** The app's own metrics (not the process defaults). */
  registry: Registry;
  /** Records one answered HTTP request: `route` is the matched pattern, never the URL. */
  observeHttp(labels: { method: string; route: string; status: number }, seconds: number): void;
  /** The Prometheus text of everything: app metrics (promise gauges computed now) and process metrics. */
  render(): Promise<string>;
  /** The metric family names /metrics serves (app and process), without scraping. */
  names(): string[];
  contentType: string;
}

export function createMetrics(deps: { sql: Sql; log: Logger; retentionSweepInterval: string }): Metrics {
  const registry = new Registry();

  // Every gauge's collect() runs in the same tick of a scrape (prom-client collects in
  // parallel): they share one in-flight query.
  let inFlight: Promise<PromiseStats | undefined> | undefined;
  const current = () =>
    (inFlight ??= withTimeout(promiseStats(deps.sql), STATS_TIMEOUT_MS)
      .catch((err: Error) => {
        // Name and code only: driver messages may quote data.
        deps.log.warn({ err: { name: err.name, code: (err as { code?: string }).code } }, 'metrics: could not read the promise statistics');
        return undefined;
      })
      .finally(() => {
        inFlight = undefined;
      }));

  new Gauge({
    name: 'privacy_stats_up',
    help: '1 when the promise gauges of this scrape were read from Postgres, 0 when not (they read NaN).',
    registers: [registry],
    async collect() {
      this.set((await current()) ? 1 : 0);
    },
  });
  for (const g of PROMISE_GAUGES) {
    new Gauge({
      name: g.name,
      help: g.help,
      registers: [registry],
      async collect() {
        const stats = await current();
        // No number is better than an old one passed off as now.
        this.set(stats ? g.value(stats) : Number.NaN);
      },
    });
  }

  new Counter({
    name: 'privacy_recording_deletions_total',
    help: 'Call recordings deleted, by the reason on their deletion receipt (receipts are never removed, so this counts from the start).',
    labelNames: ['reason'],
    registers: [registry],
    async collect() {
      const counts = await withTimeout(deletionCounts(deps.sql), STATS_TIMEOUT_MS).catch(() => undefined);
      if (!counts) return; // keep the last count: it is still true, if not the latest
      this.reset();
      for (const reason of DELETION_REASONS) this.inc({ reason }, counts[reason]);
    },
  });

  const sweepInterval = new Gauge({
    name: 'privacy_retention_sweep_interval_seconds',
    help: 'RETENTION_SWEEP_INTERVAL: the longest D4 lets an unheld recording outlive its deadline.',
    registers: [registry],
  });
  sweepInterval.set(fixedDurationMs(deps.retentionSweepInterval) / 1000);

  const http = new Histogram({
    name: HTTP_DURATION,
    help: 'Time to answer an HTTP request, by route pattern (never the URL), method and status.',
    labelNames: ['method', 'route', 'status'],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [registry],
  });

  const defaults = processMetrics();
  return {
    registry,
    observeHttp: ({ method, route, status }, seconds) => http.observe({ method, route, status: String(status) }, seconds),
    render: () => Registry.merge([registry, defaults]).metrics(),
    names: () => [registry, defaults].flatMap((r) => r.getMetricsAsArray().map((m) => m.name)),
    contentType: registry.contentType,
  };
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
