import { afterAll, beforeAll } from 'vitest';
import type { Activities } from '../../activities';
import type { StaffRole } from '../../db/access-tokens';
import { appFor, staffAuth } from './api';
import { newClient } from './recordings';
import { openStack, startWorker, type RunningWorker, type TestStack } from './stack';
import { UndoStack } from './undo';

export type StaffAuth = Awaited<ReturnType<typeof staffAuth>>;

export interface StackOptions<R extends StaffRole> {
  /** A migrated database of the file's own, dropped at the end (see openStack). */
  ownDatabase?: boolean;
  /** Start a worker on the file's task queue: `true` for the real activities, or a function giving others. */
  worker?: boolean | ((s: TestStack) => Activities);
  /** One staff token per role, in this order. */
  roles?: readonly R[];
  /** Insert a client (named so when a string is given). */
  client?: boolean | string;
}

export interface StackHandle<R extends StaffRole> {
  s: TestStack;
  app: ReturnType<typeof appFor>;
  /** Only when `worker` was asked for. */
  worker: RunningWorker | undefined;
  staff: Record<R, StaffAuth>;
  /** Only when `client` was asked for. */
  clientId: string;
}

/**
 * The set-up most test files share, as this file's own beforeAll/afterAll: opens the stack
 * (openStack with `env`), starts a worker, builds the app, issues staff tokens and inserts a
 * client, as `options` ask. The returned handle is filled in by that beforeAll, so read its
 * fields in hooks and tests, not at module level. The afterAll undoes, in reverse order, only
 * what was started — a set-up that failed halfway still leaves no worker or database behind —
 * and runs before no hook of the file's own: hooks registered after this call tear down first.
 */
export function useStack<R extends StaffRole = never>(env: Record<string, string> = {}, options: StackOptions<R> = {}): StackHandle<R> {
  const handle = { staff: {} } as StackHandle<R>;
  const undo = new UndoStack();

  beforeAll(async () => {
    const s = await openStack(env, { ownDatabase: options.ownDatabase });
    handle.s = s;
    undo.push(() => s.close());
    if (options.worker) {
      const worker = await startWorker(s, typeof options.worker === 'function' ? options.worker(s) : undefined);
      handle.worker = worker;
      undo.push(() => worker.stop());
    }
    handle.app = appFor(s);
    for (const role of options.roles ?? []) handle.staff[role] = await staffAuth(s.sql, role);
    if (options.client) handle.clientId = await newClient(s, typeof options.client === 'string' ? options.client : undefined);
  });

  afterAll(() => undo.run('tear-down of the test stack'));

  return handle;
}
