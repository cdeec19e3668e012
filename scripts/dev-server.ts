import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import { Connection } from '@temporalio/client';
import { searchAttributeFlags } from '../workflows/search-attributes';

export interface DevServer {
  address: string;
  uiUrl?: string;
  /** False when a server was already listening and is being reused. */
  started: boolean;
  stop(): Promise<void>;
  /**
   * SIGKILL to the server and its watchdog at once: a crash, not a shutdown (fault drills). With
   * `dbFile`, a server started again on the same port and file picks up where this one died.
   * Does nothing to a server this call did not start.
   */
  kill(): Promise<void>;
}

export interface DevServerOptions {
  binary: string;
  host?: string;
  port: number;
  uiPort?: number;
  /** SQLite file that keeps workflows across restarts; in-memory when absent. */
  dbFile?: string;
  namespace?: string;
  /** More namespaces to create at start (tests isolate Schedules in their own). */
  extraNamespaces?: string[];
  headless?: boolean;
  /**
   * Issue 12: the Web UI decodes payloads through this codec server (the API's /codec, which
   * answers admins and privacy officers only): `--ui-codec-endpoint`.
   */
  uiCodecEndpoint?: string;
  /** Server dynamic config (`--dynamic-config-value key=value`), e.g. a low continue-as-new threshold for a test. */
  dynamicConfig?: Record<string, string | number | boolean>;
  log?: (line: string) => void;
  readyTimeoutMs?: number;
}

export function isPortOpen(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ port, host });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

async function waitUntilServing(address: string, deadline: number, child?: ChildProcess): Promise<void> {
  let lastError: unknown;
  while (Date.now() < deadline) {
    if (child && child.exitCode !== null) throw new Error(`Temporal dev server exited with code ${child.exitCode}`);
    try {
      const connection = await Connection.connect({ address, connectTimeout: 1000 });
      try {
        await connection.withDeadline(Date.now() + 2000, () => connection.workflowService.getSystemInfo({}));
        return;
      } finally {
        await connection.close();
      }
    } catch (err) {
      lastError = err;
      await new Promise((r) => setTimeout(r, 250));
    }
  }
  throw new Error(`Temporal dev server at ${address} did not answer in time: ${String(lastError)}`);
}

async function waitUntilClosed(port: number, host: string, deadline: number): Promise<void> {
  while (await isPortOpen(port, host)) {
    if (Date.now() > deadline) throw new Error(`port ${port} still answers after the Temporal dev server was killed`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * Starts `temporal server start-dev` with the contract's search attributes registered, or
 * reuses a server already listening on the port (a second `npm start`).
 */
export async function startDevServer(options: DevServerOptions): Promise<DevServer> {
  const host = options.host ?? '127.0.0.1';
  const address = `${host}:${options.port}`;
  const uiUrl = options.headless ? undefined : `http://${host}:${options.uiPort ?? options.port + 1000}`;
  const deadline = Date.now() + (options.readyTimeoutMs ?? 60_000);

  if (await isPortOpen(options.port, host)) {
    await waitUntilServing(address, deadline);
    return { address, uiUrl, started: false, stop: async () => {}, kill: async () => {} };
  }

  const args = [
    'server',
    'start-dev',
    '--ip',
    host,
    '--port',
    String(options.port),
    '--namespace',
    options.namespace ?? 'default',
    ...(options.extraNamespaces ?? []).flatMap((ns) => ['--namespace', ns]),
    '--log-level',
    'warn',
    ...searchAttributeFlags(),
    ...Object.entries(options.dynamicConfig ?? {}).flatMap(([key, value]) => ['--dynamic-config-value', `${key}=${JSON.stringify(value)}`]),
  ];
  if (options.dbFile) args.push('--db-filename', options.dbFile);
  if (options.headless) args.push('--headless');
  else {
    args.push('--ui-port', String(options.uiPort ?? options.port + 1000));
    if (options.uiCodecEndpoint) args.push('--ui-codec-endpoint', options.uiCodecEndpoint);
  }

  // A small shell keeps watch: when our end of its stdin closes (we stopped it, or we died in
  // any way, SIGKILL included), it stops the server. No orphaned dev servers.
  const watchdog = '"$0" "$@" & server=$!; trap \'kill $server 2>/dev/null\' TERM INT; cat >/dev/null; kill $server 2>/dev/null; wait $server';
  const child = spawn('sh', ['-c', watchdog, options.binary, ...args], { stdio: ['pipe', 'pipe', 'pipe'], detached: true });
  const log = options.log ?? (() => {});
  child.stdout?.on('data', (d: Buffer) => d.toString().split('\n').filter(Boolean).forEach((l) => log(l)));
  child.stderr?.on('data', (d: Buffer) => d.toString().split('\n').filter(Boolean).forEach((l) => log(l)));

  try {
    await waitUntilServing(address, deadline, child);
  } catch (err) {
    child.stdin?.end();
    throw err;
  }

  return {
    address,
    uiUrl,
    started: true,
    stop: () => {
      child.stdin?.end();
      return stopProcess(child, 10_000);
    },
    kill: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      // detached: the watchdog shell leads its own process group, the server in it.
      process.kill(-child.pid!, 'SIGKILL');
      await exited;
      await waitUntilClosed(options.port, host, Date.now() + 10_000);
    },
  };
}

/** SIGTERM, then SIGKILL if the process has not exited within `graceMs`. */
export function stopProcess(child: ChildProcess, graceMs: number): Promise<void> {
  return new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    const killer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    child.once('exit', () => {
      clearTimeout(killer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}
