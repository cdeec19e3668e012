// A stand-in for '@temporalio/workflow' in which every patch counts as applied and writes no
// marker: the workflow code as it would be had a change shipped without `patched()`.
// test/replay.test.ts bundles the workflows with it to show that CI catches such a change.
export * from '@temporalio/workflow/lib/index.js';
export const patched = (_id: string): boolean => true;
export const deprecatePatch = (_id: string): void => undefined;
