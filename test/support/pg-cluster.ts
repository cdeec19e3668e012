import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { chown, mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { createSql } from '../../db/index';
import { freePort, stopProcess } from '../../scripts/dev-server';

const run = promisify(execFile);

/**
 * A PostgreSQL cluster of a test's own (Debian's binaries, trust auth, loopback only), for a
 * drill that stops and starts Postgres without touching the machine's shared server.
 */
export interface PgCluster {
  port: number;
  /** A URL for `database` on this cluster (user postgres, no password). */
  url(database: string): string;
  /** Whether the postmaster is running. */
  readonly running: boolean;
  /** Fast shutdown (SIGINT: open transactions are rolled back, clients cut off); resolves once it has exited. */
  stop(): Promise<void>;
  /** Starts it again on the same port and data directory; resolves once it accepts connections. */
  start(): Promise<void>;
  /** Stops it if running and removes its directory. */
  destroy(): Promise<void>;
}

/** The newest Debian PostgreSQL binaries (`PG_BIN` overrides). */
async function binDir(): Promise<string> {
  if (process.env.PG_BIN) return process.env.PG_BIN;
  const root = '/usr/lib/postgresql';
  const versions = (await readdir(root).catch(() => [] as string[])).filter((v) => /^\d+$/.test(v)).sort((a, b) => Number(b) - Number(a));
  for (const v of versions) {
    const dir = path.join(root, v, 'bin');
    if (await stat(path.join(dir, 'initdb')).then(() => true, () => false)) return dir;
  }
  throw new Error(`no PostgreSQL server binaries under ${root}/*/bin (Debian's postgresql package), and PG_BIN is not set`);
}

/**
 * Postgres refuses to run as root: as root (CI, this machine) its commands run as the `postgres`
 * OS user through runuser, with the directory given to that user.
 */
async function osUser(): Promise<{ wrap: (argv: string[]) => string[]; uid: number; gid: number } | undefined> {
  if (process.getuid?.() !== 0) return undefined;
  const [{ stdout: uid }, { stdout: gid }] = await Promise.all([run('id', ['-u', 'postgres']), run('id', ['-g', 'postgres'])]);
  return { wrap: (argv) => ['runuser', '-u', 'postgres', '--', ...argv], uid: Number(uid.trim()), gid: Number(gid.trim()) };
}

export async function startPgCluster(options: { log?: (line: string) => void } = {}): Promise<PgCluster> {
  const bin = await binDir();
  const user = await osUser();
  const wrap = user?.wrap ?? ((argv: string[]) => argv);
  const dir = await mkdtemp(path.join(os.tmpdir(), 'privacy-backoffice-pg-'));
  const data = path.join(dir, 'data');
  const log = options.log ?? (() => {});
  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();

  try {
    if (user) await chown(dir, user.uid, user.gid);
    const [cmd, ...args] = wrap([path.join(bin, 'initdb'), '-D', data, '-U', 'postgres', '-A', 'trust', '-E', 'UTF8', '--locale=C', '--no-sync']);
    await run(cmd!, args, { timeout: 120_000 });
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
  const port = await freePort();
  const url = (database: string) => `postgres://postgres@127.0.0.1:${port}/${database}`;

  const start = async () => {
    // A small shell keeps watch, as for the Temporal dev server: when our end of its stdin closes
    // (we stopped it, or this process died in any way), Postgres gets a fast shutdown. The socket
    // directory is the cluster's own, so nothing is written outside it.
    const watchdog = '"$0" "$@" & pg=$!; trap \'kill -INT $pg 2>/dev/null\' TERM INT; cat >/dev/null; kill -INT $pg 2>/dev/null; wait $pg';
    const postgres = [path.join(bin, 'postgres'), '-D', data, '-p', String(port), '-k', dir, '-c', 'listen_addresses=127.0.0.1', '-c', 'fsync=off'];
    const [cmd, ...args] = wrap(['sh', '-c', watchdog, ...postgres]);
    const c = spawn(cmd!, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    child = c;
    exited = new Promise((resolve) => c.once('exit', () => resolve()));
    let output = '';
    for (const stream of [c.stdout!, c.stderr!]) {
      stream.on('data', (d: Buffer) => {
        output += d.toString();
        d.toString().split('\n').filter(Boolean).forEach((l) => log(l));
      });
    }
    const deadline = Date.now() + 60_000;
    for (;;) {
      if (c.exitCode !== null || c.signalCode !== null) throw new Error(`postgres exited at start:\n${output}`);
      const probe = createSql(url('postgres'), { max: 1, connect_timeout: 2 });
      try {
        await probe`select 1`;
        return;
      } catch (err) {
        if (Date.now() > deadline) throw new Error(`postgres on port ${port} did not answer in time: ${String(err)}\n${output}`);
        await new Promise((r) => setTimeout(r, 100));
      } finally {
        await probe.end({ timeout: 1 });
      }
    }
  };

  const stop = async () => {
    const c = child;
    if (!c) return;
    c.stdin!.end();
    await Promise.race([exited, new Promise((r) => setTimeout(r, 30_000))]);
    if (c.exitCode === null && c.signalCode === null) await stopProcess(c, 5_000);
    child = undefined;
  };

  try {
    await start();
  } catch (err) {
    await stop();
    await rm(dir, { recursive: true, force: true });
    throw err;
  }

  return {
    port,
    url,
    get running() {
      return child !== undefined;
    },
    stop,
    start,
    async destroy() {
      await stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
