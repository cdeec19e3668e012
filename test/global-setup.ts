import { readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { bundleWorkflowCode } from '@temporalio/worker';
import type { TestProject } from 'vitest/node';
import { ensureTemporalCli } from '../scripts/temporal-cli';
import { freePort, startDevServer } from '../scripts/dev-server';
import { startMailSink } from '../scripts/mail-sink';
import { createSql, dropDatabase, ensureDatabase } from '../db/index';
import { migrate } from '../db/migrate';
import { bundleOptions } from '../worker/create-worker';
import { recordHistories } from './support/histories';
import { makeRunDir } from './support/run-dirs';

/** A second namespace for tests that run the real worker entry point (it owns a Schedule). */
export const ISOLATED_NAMESPACE = 'isolated';

declare module 'vitest' {
  export interface ProvidedContext {
    temporalAddress: string;
    databaseUrl: string;
    smtpUrl: string;
    mailSinkUrl: string;
    workflowBundlePath: string;
    /** The cached Temporal CLI, for a test that needs a dev server of its own. */
    temporalBinary: string;
    /** This run's temporary folder: every test's DATA_DIR lives below it, and teardown removes it. */
    runTempDir: string;
  }
}

/**
 * The real stack for one test run: a headless Temporal dev server from the cached CLI, a fresh
 * Postgres database (dropped afterwards), an SMTP sink the tests read, and the workflow bundle
 * built once.
 */
export default async function setup(project: TestProject) {
  const log = (line: string) => process.stderr.write(`[test stack] ${line}\n`);
  // Issue 13: a run leaves no new entries in the temp directory; teardown names any that appeared
  // (another process on the machine may have made them, so it is said, not failed).
  const tempBefore = new Set(await readdir(os.tmpdir()));
  const binary = await ensureTemporalCli(log);

  const baseUrl = process.env.TEST_DATABASE_URL ?? process.env.DATABASE_URL ?? 'postgres://127.0.0.1:5432/privacy_backoffice';
  const url = new URL(baseUrl);
  url.pathname = `/privacy_backoffice_test_${Date.now().toString(36)}_${randomBytes(3).toString('hex')}`;
  const databaseUrl = url.toString();

  const [temporal, sink, bundle] = await Promise.all([
    freePort().then((port) => startDevServer({ binary, port, headless: true, extraNamespaces: [ISOLATED_NAMESPACE], readyTimeoutMs: 120_000 })),
    startMailSink(),
    bundleWorkflowCode({ ...bundleOptions, logger: { info() {}, warn() {}, error: console.error, debug() {}, trace() {}, log() {} } as never }),
    ensureDatabase(databaseUrl).then(async () => {
      const sql = createSql(databaseUrl, { max: 1 });
      await migrate(sql);
      await sql.end();
    }),
  ]);

  const dir = await makeRunDir('privacy-backoffice-test-', log);
  const workflowBundlePath = path.join(dir, 'workflow-bundle.js');
  await writeFile(workflowBundlePath, bundle.code);

  project.provide('temporalAddress', temporal.address);
  project.provide('databaseUrl', databaseUrl);
  project.provide('smtpUrl', `smtp://127.0.0.1:${sink.smtpPort}`);
  project.provide('mailSinkUrl', `http://127.0.0.1:${sink.webPort}`);
  project.provide('workflowBundlePath', workflowBundlePath);
  project.provide('temporalBinary', binary);
  project.provide('runTempDir', dir);

  return async () => {
    if (process.env.RECORD_HISTORIES === '1') {
      await recordHistories(temporal.address, ['default', ISOLATED_NAMESPACE], log).catch((err: Error) => log(`could not record histories: ${err.message}`));
    }
    await Promise.allSettled([temporal.stop(), sink.close(), dropDatabase(databaseUrl), rm(dir, { recursive: true, force: true })]);
    // A moment for processes that were just stopped (the dev server, a browser) to remove their own files.
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    const left: string[] = [];
    for (const name of await readdir(os.tmpdir())) {
      if (tempBefore.has(name)) continue;
      // Vitest's own transform cache (a folder holding `ssr`): vitest removes it when it exits, after this teardown.
      const inside = await readdir(path.join(os.tmpdir(), name)).catch(() => undefined);
      if (inside?.length === 1 && inside[0] === 'ssr') continue;
      left.push(name);
    }
    log(left.length ? `new in ${os.tmpdir()} since the run began (made by the tests or by another process): ${left.join(', ')}` : `nothing new left in ${os.tmpdir()}`);
  };
}
