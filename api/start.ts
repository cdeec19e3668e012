import { createHash } from 'node:crypto';
import type { Context } from 'hono';
import type { ApiDeps, AppEnv } from './context';
import type { Sql, Tx } from '../db/index';
import { recordStart, startRecorded, StartedMarks, type RecordedStart } from '../lib/workflow-starts';

/**
 * The one way the API creates a row that a workflow keeps (issue 13): the row and its start
 * commit in one transaction, then the start is made. If Temporal cannot be reached or the
 * process dies in between, nothing is undone: the Schedule `workflow-starts` starts it within
 * WORKFLOW_START_RECONCILE_INTERVAL, and the caller's answer stays true.
 */
export async function commitAndStart<T>(deps: ApiDeps, write: (tx: Tx) => Promise<T>, start: RecordedStart | ((written: T) => RecordedStart | undefined)): Promise<T> {
  let recorded: RecordedStart | undefined;
  const written = await deps.sql.begin(async (tx) => {
    const value = await write(tx);
    recorded = typeof start === 'function' ? start(value) : start;
    if (recorded) await recordStart(tx, recorded);
    return value;
  });
  if (recorded) await startCommitted(deps, recorded);
  return written as T;
}

const marksBySql = new WeakMap<Sql, StartedMarks>();
/** The API's batched `started_at` marks, one writer per database pool. */
export function startedMarksFor(deps: Pick<ApiDeps, 'sql' | 'log'>): StartedMarks {
  let marks = marksBySql.get(deps.sql);
  if (!marks) {
    marks = new StartedMarks(deps.sql, (err, count) =>
      deps.log.warn({ count, err: { name: (err as Error).name, code: (err as { code?: string }).code } }, 'could not mark started runs; the workflow-starts Schedule will find them started'),
    );
    marksBySql.set(deps.sql, marks);
  }
  return marks;
}

/**
 * The second half of `commitAndStart`, for a row and start committed some other way (one
 * statement, `recordStartFrom`): starts the run now, or leaves it to the Schedule if Temporal
 * cannot be reached. A workflow id alone re-reads the recorded start (a retry whose first
 * attempt recorded it).
 */
export async function startCommitted(deps: ApiDeps, recorded: RecordedStart | string): Promise<void> {
  try {
    await startRecorded(deps.temporal, deps.sql, recorded, startedMarksFor(deps));
  } catch (err) {
    const workflowId = typeof recorded === 'string' ? recorded : recorded.workflowId;
    deps.log.warn({ workflowId, err: { name: (err as Error).name } }, 'workflow start deferred to the workflow-starts Schedule');
  }
}

/**
 * An id derived from the caller's Idempotency-Key (scoped to caller and path by the idempotency
 * middleware), so a retry after a lost answer finds what the first attempt created; a fresh
 * random id without a key.
 */
export function idFor(c: Context<AppEnv>, purpose: string, fallback: () => string): string {
  const scope = c.var.idempotencyScope;
  if (!scope) return fallback();
  const b = createHash('sha256').update(`${scope}\n${purpose}`).digest();
  b[6] = (b[6]! & 0x0f) | 0x50; // a name-based UUID (version 5 layout), variant 10
  b[8] = (b[8]! & 0x3f) | 0x80;
  const h = b.subarray(0, 16).toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}
