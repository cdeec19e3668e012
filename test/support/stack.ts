import { inject } from 'vitest';
import { randomUUID } from 'node:crypto';
import { createHash } from 'node:crypto';
import { Client, Connection } from '@temporalio/client';
import type { DataConverter, PayloadCodec } from '@temporalio/common';
import { DefaultLogger, NativeConnection, Runtime, type Worker } from '@temporalio/worker';
import { loadConfig, type Config } from '../../lib/config';
import { createLogger } from '../../lib/log';
import { createMailer, type Mailer } from '../../lib/mailer';
import { createSql, dropDatabase, ensureDatabase, type Sql } from '../../db/index';
import { migrate } from '../../db/migrate';
import { createActivities, type Activities } from '../../activities';
import { createWorker } from '../../worker/create-worker';
import { recordingStoreFor, type RecordingStore } from '../../lib/recording-store';
import { mkdtempSync } from 'node:fs';
import { AesGcmPayloadCodec, createDataConverter } from '../../lib/payload-codec';
import { keyRingFromConfig, keySpec, resolvePayloadKeyRing } from '../../lib/payload-keys';
import path from 'node:path';
import { personKeysFor } from '../../db/person-keys';
import { UndoStack } from './undo';

/** The real services global-setup started for this run. */
export const stack = () => ({
  temporalAddress: inject('temporalAddress'),
  databaseUrl: inject('databaseUrl'),
  smtpUrl: inject('smtpUrl'),
  mailSinkUrl: inject('mailSinkUrl'),
  workflowBundlePath: inject('workflowBundlePath'),
});

export { TEST_PAYLOAD_KEYS, testDataConverter, testPayloadCodec } from './test-keys';
import { TEST_PAYLOAD_KEYS } from './test-keys';

/** Config as the api and worker would parse it, pointed at the test stack, with a task queue of the file's own. */
export function testConfig(env: Record<string, string> = {}): Config {
  const s = stack();
  return loadConfig({
    DATABASE_URL: s.databaseUrl,
    TEMPORAL_ADDRESS: s.temporalAddress,
    SMTP_URL: s.smtpUrl,
    TEMPORAL_TASK_QUEUE: `test-${randomUUID()}`,
    LOG_LEVEL: 'silent',
    PAYLOAD_KEYS: TEST_PAYLOAD_KEYS,
    // Below the run's own folder, which global teardown removes: no test leaves data behind.
    DATA_DIR: mkdtempSync(path.join(inject('runTempDir'), 'data-')),
    ...env,
  });
}

export const silentLog = createLogger('test', process.env.TEST_LOG_LEVEL ?? 'silent');

export interface TestStack {
  config: Config;
  sql: Sql;
  mailer: Mailer;
  store: RecordingStore;
  /** Encrypts with the stack's key ring (config.PAYLOAD_KEYS, or the database's development key when a test unsets it). */
  client: Client;
  dataConverter: DataConverter;
  payloadCodec: PayloadCodec;
  close(): Promise<void>;
}

/**
 * Opens the run's stack for one test file. `ownDatabase` gives the file a migrated database of
 * its own (dropped on close), for tests whose sweeps must not meet other files' recordings.
 */
export async function openStack(env: Record<string, string> = {}, options: { ownDatabase?: boolean } = {}): Promise<TestStack> {
  // What is opened so far, closed again in reverse if a later step throws: a failed set-up leaves no database or pool behind.
  const opened = new UndoStack();
  try {
    let ownUrl: string | undefined;
    if (options.ownDatabase) {
      const url = new URL(stack().databaseUrl);
      url.pathname = `${url.pathname}_own_${randomUUID().slice(0, 8)}`;
      const own = (ownUrl = url.toString());
      opened.push(() => dropDatabase(own));
      await ensureDatabase(own);
      const migrator = createSql(own, { max: 1 });
      try {
        await migrate(migrator);
      } finally {
        await migrator.end();
      }
    }
    const config = testConfig(ownUrl ? { DATABASE_URL: ownUrl, ...env } : env);
    const sql = createSql(config.DATABASE_URL, { max: 5 });
    opened.push(() => sql.end({ timeout: 5 }));
    const mailer = createMailer(config.SMTP_URL!);
    opened.push(() => mailer.close());
    const ring = await resolvePayloadKeyRing(config, sql);
    const dataConverter = createDataConverter(ring);
    const connection = await Connection.connect({ address: config.TEMPORAL_ADDRESS! });
    opened.push(() => connection.close());
    const client = new Client({ connection, namespace: config.TEMPORAL_NAMESPACE, dataConverter });
    return {
      config,
      sql,
      mailer,
      store: recordingStoreFor(config.DATA_DIR, personKeysFor(sql, config)),
      client,
      dataConverter,
      payloadCodec: new AesGcmPayloadCodec(ring),
      async close() {
        // Reverse order: the Temporal connection, the mailer, the pool, then the file's own database.
        await opened.run('closing the test stack');
      },
    };
  } catch (err) {
    // The set-up's own error is the one worth reading; a failure while closing would only hide it.
    await opened.run().catch(() => undefined);
    throw err;
  }
}

export interface RunningWorker {
  worker: Worker;
  stop(): Promise<void>;
}

let runtimeInstalled = false;

/** A real worker on the test stack's task queue, with the run's prebuilt workflow bundle. */
export async function startWorker(s: TestStack, activities?: Activities): Promise<RunningWorker> {
  if (!runtimeInstalled) {
    // Keep the SDK's per-state INFO lines out of test output; warnings still show.
    Runtime.install({ logger: new DefaultLogger('WARN'), shutdownSignals: [] });
    runtimeInstalled = true;
  }
  const connection = await NativeConnection.connect({ address: s.config.TEMPORAL_ADDRESS! });
  const worker = await createWorker({
    connection,
    dataConverter: s.dataConverter,
    namespace: s.config.TEMPORAL_NAMESPACE,
    taskQueue: s.config.TEMPORAL_TASK_QUEUE,
    activities: activities ?? createActivities({ sql: s.sql, mailer: s.mailer, store: s.store, config: s.config }),
    workflowBundle: { codePath: stack().workflowBundlePath },
  });
  const running = worker.run();
  return {
    worker,
    async stop() {
      if (worker.getState() === 'RUNNING') worker.shutdown();
      await running;
      await connection.close();
    },
  };
}

/** A migrated database of the test's own, dropped afterwards, for tests that need an empty one. */
export async function withScratchDatabase<T>(fn: (sql: Sql, url: string) => Promise<T>): Promise<T> {
  const url = new URL(stack().databaseUrl);
  url.pathname = `${url.pathname}_scratch_${randomUUID().slice(0, 8)}`;
  await ensureDatabase(url.toString());
  const sql = createSql(url.toString(), { max: 3 });
  try {
    await migrate(sql);
    return await fn(sql, url.toString());
  } finally {
    await sql.end({ timeout: 5 });
    await dropDatabase(url.toString());
  }
}
