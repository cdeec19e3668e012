import { spawn } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfigOrExit } from '../lib/config';
import { createLogger } from '../lib/log';
import { prepareDatabase } from '../db/prepare';
import { ensureTemporalCli } from './temporal-cli';
import { isPortOpen, startDevServer, type DevServer } from './dev-server';
import { startMailSink, type MailSink } from './mail-sink';
import { supervise, type Supervisor } from './supervise';

/**
 * `npm start`: the whole back office on one machine. Starts what is not given by
 * configuration (Temporal dev server, SMTP sink), prepares the database, then runs the
 * worker and the API as child processes, restarting either when it crashes (the rest keeps
 * running). Ctrl-C stops everything it started.
 */
const here = path.dirname(fileURLToPath(import.meta.url));
/** `npm start` runs the compiled stack (dist/scripts/start.js, built first); `tsx scripts/start.ts` runs the sources. */
const compiled = import.meta.url.endsWith('.js');
const root = path.resolve(here, compiled ? '../..' : '..');
const config = loadConfigOrExit();
const log = createLogger('start', config.LOG_LEVEL);
const say = (line = '') => process.stdout.write(`${line}\n`);

const stoppers: Array<() => Promise<void>> = [];
const children: Supervisor[] = [];
let stopping = false;

async function stopAll(code: number) {
  if (stopping) return;
  stopping = true;
  say('\nStopping…');
  await Promise.all(children.map((child) => child.stop(15_000)));
  for (const stop of stoppers.reverse()) await stop().catch(() => {});
  say('Stopped.');
  process.exit(code);
}
process.on('SIGINT', () => void stopAll(0));
process.on('SIGTERM', () => void stopAll(0));

function runChild(name: 'api' | 'worker') {
  // Compiled: plain node, and the worker loads the prebuilt workflow bundle. From source: tsx.
  const args = compiled ? [path.join(here, '..', name, 'main.js')] : ['--import', 'tsx', `${name}/main.ts`];
  const child = supervise({
    name,
    spawn: () =>
      spawn(process.execPath, args, {
        cwd: root,
        env: process.env,
        stdio: 'inherit',
        // Own process group: Ctrl-C reaches only us, and we stop the api and worker before the
        // services they depend on, so the worker can drain.
        detached: true,
      }),
    // A crash (a malformed upload that took the api down, a lost connection the worker gave
    // up on) costs that process a restart, not the stack and the mail in the viewer.
    log: (line) => say(line),
  });
  children.push(child);
}

try {
  say('TopCall privacy back office — starting the local stack');
  await mkdir(config.DATA_DIR, { recursive: true });

  say(`• Postgres: preparing ${new URL(config.DATABASE_URL).pathname.slice(1)} (created if missing, migrations applied)`);
  const sql = await prepareDatabase(config.DATABASE_URL, log, { timeoutMs: 15_000 }).catch((err) => {
    throw new Error(
      `Postgres does not answer at ${new URL(config.DATABASE_URL).host} (${(err as Error).message}).\n` +
        `  Start it (e.g. pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start) or set DATABASE_URL.`,
    );
  });
  await sql.end();

  let temporal: DevServer | undefined;
  if (config.TEMPORAL_ADDRESS) {
    say(`• Temporal: using ${config.TEMPORAL_ADDRESS} (TEMPORAL_ADDRESS)`);
  } else {
    const binary = await ensureTemporalCli((line) => say(`  ${line}`));
    temporal = await startDevServer({
      binary,
      port: 7233,
      uiPort: config.TEMPORAL_UI_PORT,
      dbFile: path.join(config.DATA_DIR, 'temporal.db'),
      namespace: config.TEMPORAL_NAMESPACE,
      // Issue 12: histories are encrypted; the UI asks the API's codec server, which decodes for staff only.
      uiCodecEndpoint: `${config.PUBLIC_URL}/codec`,
      log: (line) => log.debug({ temporal: line }),
    });
    if (temporal.started) stoppers.push(temporal.stop);
    say(`• Temporal: ${temporal.started ? 'dev server started' : 'reusing the dev server already running'} on ${temporal.address}, state in ${path.join(config.DATA_DIR, 'temporal.db')}`);
  }

  let sink: MailSink | undefined;
  if (config.SMTP_URL) {
    say('• Mail: using SMTP_URL');
  } else if (await isPortOpen(config.MAIL_SINK_SMTP_PORT)) {
    say(`• Mail: reusing the SMTP server already on 127.0.0.1:${config.MAIL_SINK_SMTP_PORT}`);
  } else {
    const dir = path.join(config.DATA_DIR, 'mail-sink');
    sink = await startMailSink({ smtpPort: config.MAIL_SINK_SMTP_PORT, webPort: config.MAIL_SINK_WEB_PORT, dir });
    stoppers.push(sink.close);
    say(`• Mail: SMTP sink on 127.0.0.1:${sink.smtpPort}, mail kept in ${dir} (${sink.messages.length} from earlier runs)`);
  }

  runChild('worker');
  runChild('api');

  const apiUrl = `http://127.0.0.1:${config.PORT}`;
  const deadline = Date.now() + 120_000;
  let ready = false;
  while (!stopping && Date.now() < deadline) {
    ready = await fetch(`${apiUrl}/readyz`).then((r) => r.ok, () => false);
    if (ready) break;
    await new Promise((r) => setTimeout(r, 500));
  }
  if (stopping) await new Promise(() => {});
  say('');
  say(ready ? 'Ready:' : 'Started, but /readyz does not say ready yet:');
  say(`  API              ${apiUrl}   (reference: ${apiUrl}/docs, OpenAPI: ${apiUrl}/openapi.json)`);
  if (temporal?.uiUrl) say(`  Temporal UI      ${temporal.uiUrl}   (payloads encrypted; admins and privacy officers sign in at ${config.PUBLIC_URL}/codec/login to see them decoded)`);
  say(`  Temporal         ${config.TEMPORAL_ADDRESS ?? temporal?.address}  namespace ${config.TEMPORAL_NAMESPACE}, task queue ${config.TEMPORAL_TASK_QUEUE}`);
  if (sink) say(`  Mail viewer      http://127.0.0.1:${sink.webPort}   (SMTP 127.0.0.1:${sink.smtpPort})`);
  say(`  Database         ${new URL(config.DATABASE_URL).host}${new URL(config.DATABASE_URL).pathname}`);
  say(`  Data             ${config.DATA_DIR}`);
  say('Press Ctrl-C to stop everything started here.');
} catch (err) {
  say(`\nCould not start: ${(err as Error).message}`);
  await stopAll(1);
}
