import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { bundleWorkflowCode, NativeConnection, Runtime, Worker, type Logger, type WorkerOptions } from '@temporalio/worker';
import type { DataConverter } from '@temporalio/common';
import type { Activities } from '../activities';
import { failureConverterPath } from '../lib/payload-codec';
import { sanitiseActivityFailures } from './sanitise-failures';

/** This file runs compiled (dist/worker/create-worker.js, `npm run build`) or from source through tsx. */
const compiled = import.meta.url.endsWith('.js');
export const workflowsPath = fileURLToPath(new URL(compiled ? '../workflows/index.js' : '../workflows/index.ts', import.meta.url));
/**
 * The bundle `npm run build` writes beside the compiled worker (dist/workflow-bundle.js). From
 * source there is none on purpose: the workflows are bundled at start, so an edit shows at once.
 */
export const prebuiltBundlePath = compiled ? fileURLToPath(new URL('../workflow-bundle.js', import.meta.url)) : undefined;

/**
 * What every workflow bundle is built with (here, `npm run build`, the tests' global setup, the
 * replay test): the failure converter that encodes messages and stack traces (issue 12), which
 * runs inside the workflow sandbox too.
 */
export const bundleOptions = { workflowsPath, failureConverterPath } as const;

export interface CreateWorkerOptions {
  connection: NativeConnection;
  /** The payload codec and failure converter (lib/payload-codec.ts createDataConverter): required, every worker encrypts. */
  dataConverter: DataConverter;
  namespace: string;
  taskQueue: string;
  activities: Activities;
  /** A bundle built beforehand (tests bundle once per run); otherwise the prebuilt one, or the workflows are bundled now. */
  workflowBundle?: { codePath: string } | { code: string };
  tuning?: Partial<Pick<WorkerOptions, 'maxConcurrentActivityTaskExecutions' | 'maxConcurrentWorkflowTaskExecutions' | 'maxCachedWorkflows' | 'shutdownGraceTime'>>;
}

/** Bundling at start: webpack's whole report comes at info level; the log keeps only its warnings and errors. */
async function bundleNow(): Promise<{ code: string }> {
  const log = Runtime.instance().logger;
  const started = Date.now();
  const quiet: Logger = {
    log: (level, message, meta) => (level === 'WARN' || level === 'ERROR' ? log.log(level, message, meta) : undefined),
    trace: () => {},
    debug: () => {},
    info: () => {},
    warn: (message, meta) => log.warn(message, meta),
    error: (message, meta) => log.error(message, meta),
  };
  const { code } = await bundleWorkflowCode({ ...bundleOptions, logger: quiet });
  log.info('Workflows bundled at start (no prebuilt bundle; `npm run build` makes one)', { ms: Date.now() - started, bytes: code.length });
  return { code };
}

export async function createWorker(options: CreateWorkerOptions): Promise<Worker> {
  const workflowBundle =
    options.workflowBundle ?? (prebuiltBundlePath && existsSync(prebuiltBundlePath) ? { codePath: prebuiltBundlePath } : await bundleNow());
  return Worker.create({
    connection: options.connection,
    namespace: options.namespace,
    taskQueue: options.taskQueue,
    activities: options.activities,
    dataConverter: options.dataConverter,
    // Issue 12: an activity's error leaves the process only as a safe ApplicationFailure.
    interceptors: { activity: [sanitiseActivityFailures] },
    workflowBundle,
    shutdownGraceTime: '10 seconds',
    ...options.tuning,
  });
}
