import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../..', import.meta.url));

export interface WorkerProcess {
  child: ChildProcess;
  output: () => string;
  /** SIGKILL: no graceful shutdown, no chance to finish the batch in flight. */
  kill(): Promise<void>;
  stop(): Promise<void>;
}

/** Runs the real worker entry point (`worker/main.ts`) as its own process, so a test can kill it. */
export async function spawnWorker(env: Record<string, string>, readyTimeoutMs = 60_000): Promise<WorkerProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'worker/main.ts'], {
    cwd: root,
    env: { ...process.env, ...env, EXIT_WITH_PARENT: '1' },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));

  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`worker did not start in time:\n${out}`)), readyTimeoutMs);
    const check = () => {
      if (out.includes('"msg":"worker started"')) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout!.on('data', check);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`worker exited with ${code} before starting:\n${out}`));
    });
  });

  return {
    child,
    output: () => out,
    async kill() {
      child.kill('SIGKILL');
      await exited;
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}

/** The environment that points a worker process at the same stack as a test's config. */
export function workerEnvFor(config: import('../../lib/config').Config, extra: Record<string, string> = {}): Record<string, string> {
  return {
    DATABASE_URL: config.DATABASE_URL,
    TEMPORAL_ADDRESS: config.TEMPORAL_ADDRESS!,
    TEMPORAL_NAMESPACE: config.TEMPORAL_NAMESPACE,
    TEMPORAL_TASK_QUEUE: config.TEMPORAL_TASK_QUEUE,
    SMTP_URL: config.SMTP_URL!,
    DATA_DIR: config.DATA_DIR,
    RETENTION_SWEEP_INTERVAL: config.RETENTION_SWEEP_INTERVAL,
    MAIL_CONCURRENCY: String(config.MAIL_CONCURRENCY),
    LOG_LEVEL: 'info',
    ...(config.PAYLOAD_KEYS ? { PAYLOAD_KEYS: config.PAYLOAD_KEYS } : {}),
    ...(config.DATA_KEYS ? { DATA_KEYS: config.DATA_KEYS } : {}),
    // Off unless a test asks: several workers at once would want the same port (issue 15).
    WORKER_METRICS_ADDRESS: '',
    ...extra,
  };
}
