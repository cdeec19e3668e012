import { createHash } from 'node:crypto';
import type { Context } from 'hono';
import type { ApiDeps, AppEnv } from './context';
import type { Tx } from '../db/index';
import { recordStart, startRecorded, type RecordedStart } from '../lib/workflow-starts';

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
  if (recorded) {
    try {
      await startRecorded(deps.temporal, deps.sql, recorded);
    } catch (err) {
      deps.log.warn({ workflowId: recorded.workflowId, err: { name: (err as Error).name } }, 'workflow start deferred to the workflow-starts Schedule');
    }
  }
  return written as T;
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
