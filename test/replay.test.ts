import { Worker } from '@temporalio/worker';
import { describe, expect, inject, it } from 'vitest';
import { loadHistories } from './support/histories';

/**
 * Every recorded history (test/histories, from real test runs: happy paths, crash drills,
 * continue-as-new, failures) replays against the workflow code as it is now. A change that
 * reorders, adds or removes a command for runs already in flight fails here: it needs
 * `patched()` (docs/workflow-changes.md), then `npm run histories:record`.
 */
describe('recorded workflow histories replay against the current code', async () => {
  const histories = await loadHistories();

  it('has histories of every workflow type the worker runs', async () => {
    const types = new Set(histories.map((h) => h.workflowType));
    const registered = Object.keys(await import('../workflows/index'));
    const missing = registered.filter((t) => !types.has(t));
    // A new workflow type is recorded by the next `npm run histories:record`; until then it is named here.
    expect(missing, 'workflow types without a recorded history').toEqual(missing.filter((t) => UNRECORDED_YET.has(t)));
  });

  it.each(histories.map((h) => [h.file, h] as const))('%s', async (_file, h) => {
    const results = Worker.runReplayHistories({ workflowBundle: { codePath: inject('workflowBundlePath') }, replayName: h.file }, [{ workflowId: h.workflowId, history: h.history }]);
    for await (const result of results) expect(result.error, `${h.file} no longer replays`).toBeUndefined();
  });
});

/** Types added since the last recording; the recording script empties this. */
const UNRECORDED_YET = new Set<string>(['accountEmail', 'reconcileWorkflowStarts']);
