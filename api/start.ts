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
 * Starts this process has committed and is making after the answer went out (request intake,
 * issue 15). What a 202 promises — the request is received, its due date fixed — is true once
 * the row and its start commit; the start itself was already allowed to come later (the
 * Schedule makes it if Temporal cannot be reached), so the answer no longer waits for it: a
 * customer's filing costs one statement, not a statement and a start one after the other.
 * Bounded: with `max` starts pending, the next caller waits for its own, so a slow Temporal
 * slows intake instead of filling memory. A route that acts on a run waits for that run's
 * pending start (`settled`); shutdown waits for all of them (`drain`).
 */
export class PendingStarts {
  private readonly inFlight = new Map<string, Promise<void>>();
  constructor(private readonly max = 64) {}

  /** Runs `start` (which must not reject) for `workflowId`; resolves at once unless `max` are pending. */
  async dispatch(workflowId: string, start: () => Promise<void>): Promise<void> {
    const made: Promise<void> = start().finally(() => {
      if (this.inFlight.get(workflowId) === made) this.inFlight.delete(workflowId);
    });
    this.inFlight.set(workflowId, made);
    if (this.inFlight.size > this.max) await made;
  }

  /** Resolves once this process's pending start of `workflowId`, if any, has been made (or deferred). */
  settled(workflowId: string): Promise<void> {
    return this.inFlight.get(workflowId) ?? Promise.resolve();
  }

  get size(): number {
    return this.inFlight.size;
  }

  /** Resolves once every start dispatched so far has been made (or deferred to the Schedule). */
  async drain(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.all(this.inFlight.values());
  }
}

const pendingByClient = new WeakMap<object, PendingStarts>();
/** This API's pending starts, one set per Temporal client. */
export function pendingStartsFor(deps: Pick<ApiDeps, 'temporal'>): PendingStarts {
  let pending = pendingByClient.get(deps.temporal);
  if (!pending) {
    pending = new PendingStarts();
    pendingByClient.set(deps.temporal, pending);
  }
  return pending;
}

/** `startCommitted` after the answer: for a start already committed with its row (`PendingStarts`). */
export function startCommittedSoon(deps: ApiDeps, recorded: RecordedStart): Promise<void> {
  return pendingStartsFor(deps).dispatch(recorded.workflowId, () => startCommitted(deps, recorded));
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
