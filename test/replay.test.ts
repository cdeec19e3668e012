import { fileURLToPath } from 'node:url';
import { bundleWorkflowCode, Worker } from '@temporalio/worker';
import { describe, expect, inject, it } from 'vitest';
import { loadHistories } from './support/histories';
import { bundleOptions } from '../worker/create-worker';
import { testDataConverter } from './support/stack';

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
    const results = Worker.runReplayHistories({ workflowBundle: { codePath: inject('workflowBundlePath') }, dataConverter: testDataConverter(), replayName: h.file }, [{ workflowId: h.workflowId, history: h.history }]);
    for await (const result of results) expect(result.error, `${h.file} no longer replays`).toBeUndefined();
  });
});

/** The same workflow code, bundled with every patch taken as applied and no marker written. */
async function unpatchedBundle(): Promise<string> {
  const shim = fileURLToPath(new URL('./support/unpatched-workflow.ts', import.meta.url));
  const { code } = await bundleWorkflowCode({
    ...bundleOptions,
    webpackConfigHook: (config) => ({ ...config, resolve: { ...config.resolve, alias: { ...(config.resolve?.alias as object), '@temporalio/workflow$': shim } } }),
    logger: { info() {}, warn() {}, error() {}, debug() {}, trace() {}, log() {} } as never,
  });
  return code;
}

async function failuresWithoutPatches(histories: Awaited<ReturnType<typeof loadHistories>>): Promise<number> {
  const results = Worker.runReplayHistories({ workflowBundle: { code: await unpatchedBundle() }, dataConverter: testDataConverter(), replayName: 'unpatched' }, histories.map((h) => ({ workflowId: h.workflowId, history: h.history })));
  let failed = 0;
  for await (const result of results) if (result.error) failed += 1;
  return failed;
}

describe('a workflow change shipped without patched() is caught', () => {
  it('the decision change of issue 13, with its patch removed, no longer replays runs decided before it', { timeout: 120_000 }, async () => {
    // Runs decided under the old code (test/histories/kept/) executed the decision inside the update.
    const before = (await loadHistories()).filter((h) => h.file.startsWith('kept/before-decision-returns-before-execution') && h.workflowType === 'accessRequest');
    expect(before.length, 'kept histories of requests decided before the change').toBeGreaterThan(0);
    expect(await failuresWithoutPatches(before), 'every old decided run fails to replay without the patch').toBe(before.length);
  });

  it('the transfer package change of issue 10, with its patch removed, no longer replays transfers packaged before it', { timeout: 120_000 }, async () => {
    // Runs packaged under the old code built the package in one activity; the new code starts the child workflow transferPackage.
    const before = (await loadHistories()).filter((h) => h.file.startsWith('kept/before-transfer-package-v2') && h.workflowType === 'businessTransfer');
    expect(before.length, 'kept histories of transfers packaged before the change').toBeGreaterThan(0);
    expect(await failuresWithoutPatches(before), 'every old packaged run fails to replay without the patch').toBe(before.length);
  });

  it('the decision change of issue 12 (a decision counts once recorded), with its patch removed, no longer replays runs decided before it', { timeout: 120_000 }, async () => {
    // Runs decided before the change stopped their reminder timer when the update arrived; the new code stops it once recordDecision is done.
    const before = (await loadHistories()).filter((h) => h.file.startsWith('kept/before-decision-counts-when-recorded') && h.workflowType === 'accessRequest');
    expect(before.length, 'kept histories of requests decided before the change').toBeGreaterThan(0);
    expect(await failuresWithoutPatches(before), 'every old decided run fails to replay without the patch').toBe(before.length);
  });

  it('the dispute re-check of issue 13, with its patch removed, no longer replays a run that continued as new after a resolve', { timeout: 120_000 }, async () => {
    // Recorded by the code before the fix (test/fast/dispute.test.ts, the re-check taken out): the resolve finished while the run waited for its handlers, and it continued as new.
    const before = (await loadHistories()).filter((h) => h.file.startsWith('kept/before-dispute-recheck') && h.workflowType === 'dispute');
    expect(before.length, 'kept histories of disputes that met the race before the fix').toBeGreaterThan(0);
    expect(await failuresWithoutPatches(before), 'every old racing run fails to replay without the patch').toBe(before.length);
  });
});

/** Types added since the last recording; the recording script empties this. */
const UNRECORDED_YET = new Set<string>([]);
