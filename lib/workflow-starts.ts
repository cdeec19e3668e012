import { WorkflowExecutionAlreadyStartedError, type Client } from '@temporalio/client';
import type { Db, Sql } from '../db/index';

/** A workflow start written beside the row it belongs to, in the same transaction. */
export interface RecordedStart {
  workflowId: string;
  workflowType: string;
  taskQueue: string;
  args: unknown[];
  memo?: Record<string, unknown>;
}

/**
 * Issue 13: never "write, then start, then delete if the start threw". The row and its start
 * commit together; `startRecorded` then starts it (a retry lands on the same run), and the
 * Schedule `workflow-starts` (`startPendingWorkflows`) starts whatever a crash left behind.
 * Nothing is ever deleted on an ambiguous start error.
 */
export async function recordStart(tx: Db, s: RecordedStart): Promise<void> {
  await recordStartFrom(tx, null, s);
}

/**
 * The statement `recordStart` runs. With a `source` (a CTE of the same statement that inserted
 * the row the workflow keeps) the start is recorded only if that row was, so a row and its
 * start still commit together, in one round trip instead of a transaction's four.
 */
export const recordStartFrom = (tx: Db, source: string | null, s: RecordedStart) => tx`
  insert into workflow_starts (workflow_id, workflow_type, task_queue, args, memo)
  select ${s.workflowId}, ${s.workflowType}, ${s.taskQueue}, ${tx.json(s.args as never)}, ${s.memo ? tx.json(s.memo as never) : null}
  ${source ? tx`from ${tx(source)}` : tx``}
  on conflict (workflow_id) do nothing`;

/** Marks runs as started; `started_at` is set once (the first mark stands). */
const markStarted = (sql: Sql, workflowIds: string[]) =>
  sql`update workflow_starts set started_at = now() where workflow_id = any(${workflowIds}::text[]) and started_at is null`;

/**
 * How long a mark waits for others to share its UPDATE. The Schedule only looks at starts older
 * than its interval (WORKFLOW_START_RECONCILE_INTERVAL, a minute by default), and one that beats
 * a mark finds the run started: an `existed`, nothing more.
 */
const MARK_DELAY_MS = 100;

/**
 * The `started_at` marks of runs the API has just started, written in batches off the answer's
 * path: one UPDATE for the starts that complete within MARK_DELAY_MS of each other (and while
 * the previous UPDATE runs), instead of a statement (and a commit) per request. A mark lost to
 * a crash or an outage costs nothing but a later `existed` from the Schedule: the start itself
 * is what counts, and it is idempotent.
 */
export class StartedMarks {
  private pending: string[] = [];
  private flushing: Promise<void> | undefined;
  constructor(
    private readonly sql: Sql,
    private readonly onError: (err: unknown, count: number) => void = () => undefined,
  ) {}

  add(workflowId: string): void {
    this.pending.push(workflowId);
    this.flushing ??= this.flush();
  }

  /** Resolves once every mark added so far is written (or has failed and been reported). */
  async drain(): Promise<void> {
    while (this.flushing) await this.flushing;
  }

  private async flush(): Promise<void> {
    try {
      // Let the starts that complete in the next moment join the batch: one UPDATE per
      // MARK_DELAY_MS, not one per request when they come one at a time.
      await new Promise((resolve) => setTimeout(resolve, MARK_DELAY_MS));
      while (this.pending.length > 0) {
        const ids = this.pending.splice(0, 1_000);
        await markStarted(this.sql, ids).catch((err: unknown) => this.onError(err, ids.length));
      }
    } finally {
      this.flushing = undefined;
    }
  }
}

/**
 * Starts a recorded workflow once: a run already going (or finished) under the id counts as
 * started — `USE_EXISTING` for a running one, `REJECT_DUPLICATE` so a closed one is never run
 * a second time. Answers whether this call started it.
 */
export async function startRecorded(
  client: Client,
  sql: Sql,
  recorded: string | RecordedStart,
  /** Where to leave the `started_at` mark instead of writing it before returning. */
  marks?: StartedMarks,
): Promise<'started' | 'existed' | 'unknown'> {
  const workflowId = typeof recorded === 'string' ? recorded : recorded.workflowId;
  // The API passes the start it has just committed: no need to read it back.
  const [row] =
    typeof recorded === 'string'
      ? await sql<{ workflowType: string; taskQueue: string; args: unknown[]; memo: Record<string, unknown> | null; startedAt: Date | null }[]>`
          select workflow_type as "workflowType", task_queue as "taskQueue", args, memo, started_at as "startedAt" from workflow_starts where workflow_id = ${workflowId}`
      : [{ ...recorded, memo: recorded.memo ?? null, startedAt: null }];
  if (!row) return 'unknown';
  if (row.startedAt) return 'existed';
  let outcome: 'started' | 'existed' = 'started';
  try {
    await client.workflow.start(row.workflowType, {
      workflowId,
      taskQueue: row.taskQueue,
      args: row.args,
      ...(row.memo ? { memo: row.memo } : {}),
      workflowIdConflictPolicy: 'USE_EXISTING',
      workflowIdReusePolicy: 'REJECT_DUPLICATE',
    });
  } catch (err) {
    if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
    outcome = 'existed';
  }
  if (marks) marks.add(workflowId);
  else await markStarted(sql, [workflowId]);
  return outcome;
}

/** Starts recorded workflows still waiting after `olderThanMs` (a crash between commit and start). */
export async function startPendingWorkflows(client: Client, sql: Sql, olderThanMs: number, limit = 500): Promise<{ started: number; existed: number }> {
  const pending = await sql<{ workflowId: string }[]>`
    select workflow_id as "workflowId" from workflow_starts
    where started_at is null and recorded_at < now() - ${olderThanMs / 1000} * interval '1 second'
    order by recorded_at limit ${limit}`;
  const counts = { started: 0, existed: 0 };
  for (const { workflowId } of pending) {
    const outcome = await startRecorded(client, sql, workflowId);
    if (outcome !== 'unknown') counts[outcome] += 1;
  }
  return counts;
}
