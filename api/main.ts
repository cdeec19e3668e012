import { serve } from '@hono/node-server';
import { ConfigError, isProduction, loadConfigOrExit, orExitOnConfigError } from '../lib/config';
import { createLogger } from '../lib/log';
import { createLazyClient, temporalConnectionOptions } from '../lib/temporal';
import { prepareDatabase } from '../db/prepare';
import { ensureBootstrapAdmin } from '../db/access-tokens';
import { createApp } from './app';
import { pendingStartsFor, startedMarksFor } from './start';
import { recordingStoreFor } from '../lib/recording-store';
import { AesGcmPayloadCodec, createDataConverter } from '../lib/payload-codec';
import { resolveDataKeyRing, resolvePayloadKeyRing } from '../lib/payload-keys';
import { PersonKeys } from '../db/person-keys';

// NODE_ENV=production: refuses to start on an unsafe setting (lib/config.ts, productionProblems).
const config = loadConfigOrExit();
const log = createLogger('api', config.LOG_LEVEL);
const temporalOptions = orExitOnConfigError(() => temporalConnectionOptions(config));

const sql = await prepareDatabase(config.DATABASE_URL, log);
const generated = await ensureBootstrapAdmin(sql, config.STAFF_BOOTSTRAP_TOKEN, { generate: !isProduction(config) }).catch(async (err: unknown) => {
  if (!(err instanceof ConfigError)) throw err;
  console.error(err.message);
  await sql.end({ timeout: 5 });
  process.exit(78); // EX_CONFIG
});
if (generated) {
  // Printed once, to the terminal only (not the structured log); only its hash is stored.
  process.stdout.write(
    `\n  First start: an admin staff token was created. It is shown only this once:\n\n    ${generated}\n\n` +
      `  Use it as "Authorization: Bearer <token>"; issue more with POST /v1/staff/tokens.\n\n`,
  );
}

// Issue 12: the payload key ring before the Temporal client exists (PAYLOAD_KEYS, or in
// development the key the first of the API and the worker generated and kept in Postgres).
const keyRing = await resolvePayloadKeyRing(config, sql);
// Lazy: the API starts and answers /readyz with 503 until Temporal is reachable.
const temporal = createLazyClient(temporalOptions, config.TEMPORAL_NAMESPACE, createDataConverter(keyRing));
// Issue 12: the master keys of the person data keys (DATA_KEYS, or in development the key kept in Postgres).
const dataKeyRing = await resolveDataKeyRing(config, sql);
const keys = new PersonKeys(sql, () => Promise.resolve(dataKeyRing));
const store = recordingStoreFor(config.DATA_DIR, keys);
const app = createApp({ config, sql, temporal, store, log, payloadCodec: new AesGcmPayloadCodec(keyRing), keys });

// Partial uploads of a process that died mid-stream are removed at start and then every quarter
// hour; a file still being written (its mtime moves) is left alone.
const STAGING_IDLE_MS = 15 * 60_000;
const sweepStaging = () =>
  store.sweepStaging(STAGING_IDLE_MS).then(
    (removed) => removed && log.info({ removed }, 'removed abandoned partial uploads'),
    (err: Error) => log.warn({ err: { message: err.message } }, 'could not sweep the upload staging area'),
  );
void sweepStaging();
setInterval(() => void sweepStaging(), STAGING_IDLE_MS).unref();

const server = serve({ fetch: app.fetch, port: config.PORT, hostname: '0.0.0.0' }, (info) =>
  log.info({ port: info.port }, 'api listening'),
);

let stopping = false;
const stop = async (signal: string) => {
  if (stopping) return;
  stopping = true;
  log.info({ signal }, 'api stopping');
  await new Promise<void>((resolve) => server.close(() => resolve()));
  // Starts still following their answers go out before the connection closes.
  await pendingStartsFor({ temporal }).drain();
  await temporal.connection.close().catch(() => {});
  // The last batch of started_at marks (a lost one only costs the Schedule an `existed`).
  await startedMarksFor({ sql, log }).drain();
  await sql.end({ timeout: 5 });
  log.info('api stopped');
  process.exit(0);
};
process.once('SIGINT', () => void stop('SIGINT'));
process.once('SIGTERM', () => void stop('SIGTERM'));
