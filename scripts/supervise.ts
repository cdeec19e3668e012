import type { ChildProcess } from 'node:child_process';
import { stopProcess } from './dev-server';

/**
 * Keeps one child process running for `npm start`: when it ends without the supervisor
 * asking (a non-zero exit, a signal such as `kill -9`, or a clean exit after a SIGTERM from
 * someone else, which the api and worker turn into code 0), it is started again after a
 * back-off that doubles from `initialDelayMs` to `maxDelayMs` and starts over once a run
 * lasted `resetAfterMs`. More than `crashLoopRestarts` crashes within `crashLoopWindowMs` is a
 * crash loop: said loudly on every crash, retried at the longest back-off, never given up.
 */
export interface SuperviseOptions {
  /** How the log lines name the process ("api", "worker"). */
  name: string;
  /** Starts one run of the process. */
  spawn: () => ChildProcess;
  /** Where the supervisor's lines go (`npm start` prints them). */
  log: (line: string) => void;
  initialDelayMs?: number;
  maxDelayMs?: number;
  /** A run at least this long counts as healthy: the next crash waits `initialDelayMs` again. */
  resetAfterMs?: number;
  crashLoopRestarts?: number;
  crashLoopWindowMs?: number;
  /** What happened, for callers and tests that want more than the log lines. */
  onEvent?: (event: SuperviseEvent) => void;
}

export type SuperviseEvent =
  | { type: 'started'; pid: number | undefined; run: number }
  | { type: 'crashed'; code: number | null; signal: NodeJS.Signals | null; uptimeMs: number; delayMs: number; crashLoop: boolean }
  /** A run ended because `stop()` asked it to: no restart. */
  | { type: 'stopped'; code: number | null; signal: NodeJS.Signals | null };

export interface Supervisor {
  readonly name: string;
  /** The current run, if one is alive or starting. */
  readonly child: ChildProcess | undefined;
  /** How many times the process was started again after a crash. */
  readonly restarts: number;
  /** Stops the process (SIGTERM, SIGKILL after `graceMs`) and any restart still pending. */
  stop(graceMs?: number): Promise<void>;
}

const seconds = (ms: number) => (ms % 1000 === 0 ? `${ms / 1000} s` : `${(ms / 1000).toFixed(1)} s`);
const clock = (at: number) => new Date(at).toISOString().slice(11, 19);

export function supervise(options: SuperviseOptions): Supervisor {
  const initialDelayMs = options.initialDelayMs ?? 1_000;
  const maxDelayMs = options.maxDelayMs ?? 30_000;
  const resetAfterMs = options.resetAfterMs ?? 60_000;
  const crashLoopRestarts = options.crashLoopRestarts ?? 5;
  const crashLoopWindowMs = options.crashLoopWindowMs ?? 5 * 60_000;
  const { name, log } = options;
  const emit = options.onEvent ?? (() => {});

  let child: ChildProcess | undefined;
  let startedAt = 0;
  let runs = 0;
  let restarts = 0;
  /** Crashes in a row without a healthy run in between: the exponent of the back-off. */
  let consecutive = 0;
  const crashTimes: number[] = [];
  let stopping = false;
  let pending: NodeJS.Timeout | undefined;

  function start() {
    pending = undefined;
    if (stopping) return;
    runs++;
    if (runs > 1) restarts++;
    startedAt = Date.now();
    const run = options.spawn();
    child = run;
    let settled = false;
    const ended = (code: number | null, signal: NodeJS.Signals | null) => {
      if (settled) return;
      settled = true;
      if (child === run) child = undefined;
      onEnd(code, signal);
    };
    run.once('exit', ended);
    // A process that cannot be started at all (no such binary) emits 'error' and no 'exit'.
    run.once('error', (err) => {
      if (run.pid === undefined) {
        log(`Could not start the ${name}: ${err.message}`);
        ended(null, null);
      }
    });
    if (runs > 1) log(`The ${name} is running again (pid ${run.pid}, restart ${restarts}).`);
    emit({ type: 'started', pid: run.pid, run: runs });
  }

  function onEnd(code: number | null, signal: NodeJS.Signals | null) {
    if (stopping) {
      emit({ type: 'stopped', code, signal });
      return;
    }
    const now = Date.now();
    const uptimeMs = now - startedAt;
    if (uptimeMs >= resetAfterMs) consecutive = 0;
    crashTimes.push(now);
    while (crashTimes.length && crashTimes[0]! <= now - crashLoopWindowMs) crashTimes.shift();
    const crashLoop = crashTimes.length > crashLoopRestarts;
    const delayMs = crashLoop ? maxDelayMs : Math.min(initialDelayMs * 2 ** consecutive, maxDelayMs);
    consecutive++;
    const how = signal ? `signal ${signal}` : code === null ? 'never started' : code === 0 ? 'exit code 0, not asked to stop' : `exit code ${code}`;
    log(
      `The ${name} ${code === 0 ? 'exited' : 'died'} at ${clock(now)} (${how}, after ${seconds(uptimeMs)}); ` +
        `restarting it at ${clock(now + delayMs)} (in ${seconds(delayMs)}). The rest keeps running.`,
    );
    if (crashLoop) {
      log(
        `!!! The ${name} is in a crash loop: ${crashTimes.length} crashes in the last ${seconds(crashLoopWindowMs)}. ` +
          `Still retrying every ${seconds(maxDelayMs)}; its own output above says why. Ctrl-C stops everything.`,
      );
    }
    emit({ type: 'crashed', code, signal, uptimeMs, delayMs, crashLoop });
    pending = setTimeout(start, delayMs);
  }

  start();

  return {
    name,
    get child() {
      return child;
    },
    get restarts() {
      return restarts;
    },
    async stop(graceMs = 15_000) {
      stopping = true;
      if (pending) clearTimeout(pending);
      pending = undefined;
      // A run that never got a pid (spawn failed) has nothing to stop and will not emit 'exit'.
      if (child?.pid !== undefined) await stopProcess(child, graceMs);
    },
  };
}
