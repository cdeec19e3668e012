import { Client, Connection } from '@temporalio/client';
import { DefaultLogger, NativeConnection, Runtime, type LogLevel } from '@temporalio/worker';
import { loadConfigOrExit, orExitOnConfigError } from '../lib/config';
import { createLogger } from '../lib/log';
import { createMailer } from '../lib/mailer';
import { smtpUrl } from '../lib/endpoints';
import { ensureSearchAttributes, temporalConnectionOptions, type TemporalConnectionOptions } from '../lib/temporal';
import { prepareDatabase } from '../db/prepare';
import { createActivities } from '../activities';
import { createWorker } from './create-worker';
import { ensureDataRetentionSchedule, ensureRetentionSchedule, ensureWorkflowStartsSchedule } from './schedules';
import { recordingStoreFor } from '../lib/recording-store';
import { fixedDurationMs } from '../lib/durations';
import { createDataConverter } from '../lib/payload-codec';
import { resolveDataKeyRing, resolvePayloadKeyRing } from '../lib/payload-keys';
import { PersonKeys } from '../db/person-keys';

// NODE_ENV=production: refuses to start on an unsafe setting (lib/config.ts, productionProblems).
const config = loadConfigOrExit();
const log = createLogger('worker', config.LOG_LEVEL);
// Address, TLS and API key of both connections below (the files are read now; a missing one stops the worker here).
const temporalOptions = orExitOnConfigError(() => temporalConnectionOptions(config));

// The SDK's own log lines go through the same structured logger (and the same level).
const sdkLevels: Record<string, LogLevel> = { trace: 'TRACE', debug: 'DEBUG', info: 'INFO', warn: 'WARN', error: 'ERROR', fatal: 'ERROR', silent: 'ERROR' };
const logger = new DefaultLogger(sdkLevels[config.LOG_LEVEL] ?? 'INFO', ({ level, message, meta }) => {
  const method = level === 'TRACE' ? 'trace' : level === 'DEBUG' ? 'debug' : level === 'WARN' ? 'warn' : level === 'ERROR' ? 'error' : 'info';
  log[method]({ sdk: meta }, message);
});
// Issue 15: the SDK's own metrics (task slots, pollers, workflow and activity latencies and
// failures) for Prometheus at http://WORKER_METRICS_ADDRESS/metrics, named the Prometheus way
// (seconds, `_total` counters). A taken port costs the metrics, not the worker: the promises
// keep being kept, and Prometheus shows the target down.
const metricsAddress = config.WORKER_METRICS_ADDRESS;
try {
  Runtime.install({
    logger,
    ...(metricsAddress
      ? { telemetryOptions: { metrics: { prometheus: { bindAddress: metricsAddress, countersTotalSuffix: true, unitSuffix: true, useSecondsForDurations: true } } } }
      : {}),
  });
  if (metricsAddress) log.info({ metrics: `http://${metricsAddress}/metrics` }, 'worker metrics exporter listening');
} catch (err) {
  if (!metricsAddress) throw err;
  log.error({ address: metricsAddress, err: { message: (err as Error).message } }, 'could not start the worker metrics exporter; running without it');
  Runtime.install({ logger });
}

async function connectWhenUp(options: TemporalConnectionOptions): Promise<NativeConnection> {
  const { address } = options;
  for (let attempt = 1; ; attempt++) {
    try {
      return await NativeConnection.connect(options);
    } catch (err) {
      if (attempt === 1 || attempt % 10 === 0) log.warn({ address }, 'waiting for Temporal');
      if (attempt > 120) throw err;
      await new Promise((r) => setTimeout(r, 1000));
    }
  }
}

const sql = await prepareDatabase(config.DATABASE_URL, log);
// Issue 12: the payload key ring before any Temporal connection (PAYLOAD_KEYS, or in development
// the key kept in Postgres): every payload and failure this worker and its clients write is encrypted.
const dataConverter = createDataConverter(await resolvePayloadKeyRing(config, sql));
// Issue 12: the master keys of the person data keys (audio, exports and outbox bodies at rest).
const dataKeyRing = await resolveDataKeyRing(config, sql);
const keys = new PersonKeys(sql, () => Promise.resolve(dataKeyRing));
const mailer = createMailer(smtpUrl(config), { pool: true, maxConnections: config.MAIL_CONCURRENCY });
const { address } = temporalOptions;
const connection = await connectWhenUp(temporalOptions);

const admin = await Connection.connect(temporalOptions);
const added = await ensureSearchAttributes(admin, config.TEMPORAL_NAMESPACE);
if (added.length) log.info({ searchAttributes: added }, 'registered search attributes');
const schedule = await ensureRetentionSchedule(new Client({ connection: admin, namespace: config.TEMPORAL_NAMESPACE, dataConverter }), {
  taskQueue: config.TEMPORAL_TASK_QUEUE,
  intervalMs: fixedDurationMs(config.RETENTION_SWEEP_INTERVAL),
});
log.info({ schedule, interval: config.RETENTION_SWEEP_INTERVAL }, 'retention schedule in place');
const dataSchedule = await ensureDataRetentionSchedule(new Client({ connection: admin, namespace: config.TEMPORAL_NAMESPACE, dataConverter }), {
  taskQueue: config.TEMPORAL_TASK_QUEUE,
  intervalMs: fixedDurationMs(config.DATA_RETENTION_SWEEP_INTERVAL),
});
log.info({ schedule: dataSchedule, interval: config.DATA_RETENTION_SWEEP_INTERVAL }, 'data-retention schedule in place');
const startsSchedule = await ensureWorkflowStartsSchedule(new Client({ connection: admin, namespace: config.TEMPORAL_NAMESPACE, dataConverter }), {
  taskQueue: config.TEMPORAL_TASK_QUEUE,
  intervalMs: fixedDurationMs(config.WORKFLOW_START_RECONCILE_INTERVAL),
});
log.info({ schedule: startsSchedule, interval: config.WORKFLOW_START_RECONCILE_INTERVAL }, 'workflow-starts schedule in place');
await admin.close();

const worker = await createWorker({
  connection,
  dataConverter,
  namespace: config.TEMPORAL_NAMESPACE,
  taskQueue: config.TEMPORAL_TASK_QUEUE,
  activities: createActivities({ sql, mailer, store: recordingStoreFor(config.DATA_DIR, keys), config, keys }),
  tuning: { maxCachedWorkflows: config.WORKFLOW_CACHE_SIZE },
});

log.info({ address, tls: temporalOptions.tls !== undefined, namespace: config.TEMPORAL_NAMESPACE, taskQueue: config.TEMPORAL_TASK_QUEUE }, 'worker started');
if (process.env.EXIT_WITH_PARENT === '1') {
  // Tests and benchmarks run workers as children: when the parent goes, so does the worker.
  // unref: the pipe must not keep the process alive once the worker has stopped.
  // (A worker already stopping on SIGTERM is left to finish.)
  (process.stdin.on('end', () => worker.getState() === 'RUNNING' && worker.shutdown()).resume() as unknown as { unref(): void }).unref();
}
// The SDK runtime turns SIGINT/SIGTERM into worker.shutdown(): running activities get the grace time.
await worker.run();
await connection.close();
mailer.close();
await sql.end({ timeout: 5 });
log.info('worker stopped');
