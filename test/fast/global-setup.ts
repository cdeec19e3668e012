import { rm, writeFile } from 'node:fs/promises';
import { makeRunDir } from '../support/run-dirs';
import path from 'node:path';
import { bundleWorkflowCode } from '@temporalio/worker';
import type { TestProject } from 'vitest/node';
import { ensureTemporalCli } from '../../scripts/temporal-cli';
import { freePort, startDevServer } from '../../scripts/dev-server';
import { bundleOptions } from '../../worker/create-worker';

/**
 * `npm run test:fast`: only what the fast tier needs — a Temporal dev server and the workflow
 * bundle, no Postgres, no SMTP sink. Under `npm test` the fast files run with the full stack
 * (test/global-setup.ts), which provides the same names.
 */
export default async function setup(project: TestProject) {
  const log = (line: string) => process.stderr.write(`[fast stack] ${line}\n`);
  const binary = await ensureTemporalCli(log);
  const [temporal, bundle] = await Promise.all([
    freePort().then((port) => startDevServer({ binary, port, headless: true, readyTimeoutMs: 120_000 })),
    bundleWorkflowCode({ ...bundleOptions, logger: { info() {}, warn() {}, error: console.error, debug() {}, trace() {}, log() {} } as never }),
  ]);
  const dir = await makeRunDir('privacy-backoffice-fast-', log);
  const workflowBundlePath = path.join(dir, 'workflow-bundle.js');
  await writeFile(workflowBundlePath, bundle.code);
  project.provide('temporalAddress', temporal.address);
  project.provide('workflowBundlePath', workflowBundlePath);
  project.provide('temporalBinary', binary);
  project.provide('runTempDir', dir);
  return async () => {
    await Promise.allSettled([temporal.stop(), rm(dir, { recursive: true, force: true })]);
  };
}
