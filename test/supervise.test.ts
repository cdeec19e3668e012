import { spawn } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import { supervise, type SuperviseEvent, type SuperviseOptions, type Supervisor } from '../scripts/supervise';
import { waitFor } from './support/wait';

/** Real child processes: `sh` scripts for the quick ones, node for one that must be stopped politely. */
const sh = (script: string) => () => spawn('sh', ['-c', script], { stdio: 'ignore' });
const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

const running: Supervisor[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((s) => s.stop(2_000)));
});

function start(options: Partial<SuperviseOptions> & Pick<SuperviseOptions, 'spawn'>) {
  const lines: string[] = [];
  const events: SuperviseEvent[] = [];
  const supervisor = supervise({
    name: 'api',
    log: (line) => lines.push(line),
    onEvent: (event) => events.push(event),
    initialDelayMs: 100,
    maxDelayMs: 800,
    ...options,
  });
  running.push(supervisor);
  const of = <T extends SuperviseEvent['type']>(type: T) => events.filter((e): e is Extract<SuperviseEvent, { type: T }> => e.type === type);
  return { supervisor, lines, events, of };
}

describe('supervise', () => {
  it('restarts a child that crashes and says which, how and when', async () => {
    const { supervisor, lines, of } = start({ spawn: sh('exit 3'), initialDelayMs: 200 });

    await waitFor(() => of('started').length >= 2, { what: 'a second run after the crash', timeoutMs: 10_000 });
    expect(supervisor.restarts).toBeGreaterThanOrEqual(1);
    expect(of('crashed')[0]).toMatchObject({ code: 3, signal: null, delayMs: 200, crashLoop: false });
    expect(lines[0]).toMatch(/^The api died at \d\d:\d\d:\d\d \(exit code 3, after [\d.]+ s\); restarting it at \d\d:\d\d:\d\d \(in 0\.2 s\)\. The rest keeps running\.$/);
    expect(lines).toContainEqual(expect.stringMatching(/^The api is running again \(pid \d+, restart 1\)\.$/));
  });

  it('restarts a child killed by a signal it did not send', async () => {
    const { supervisor, lines, of } = start({ spawn: () => spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' }) });
    await waitFor(() => of('started').length === 1, { what: 'the first run' });
    const first = supervisor.child!.pid!;

    process.kill(first, 'SIGKILL');

    await waitFor(() => of('started').length === 2, { what: 'a run after the SIGKILL', timeoutMs: 10_000 });
    expect(of('crashed')).toEqual([expect.objectContaining({ code: null, signal: 'SIGKILL' })]);
    expect(lines[0]).toContain('(signal SIGKILL, after');
    expect(supervisor.child!.pid).not.toBe(first);
    expect(alive(supervisor.child!.pid!)).toBe(true);
  });

  it('does not restart a child it stopped itself, nor one stopped while a restart was pending', async () => {
    const { supervisor, of } = start({ spawn: () => spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' }) });
    await waitFor(() => of('started').length === 1, { what: 'the first run' });
    const pid = supervisor.child!.pid!;

    await supervisor.stop(5_000);

    expect(alive(pid)).toBe(false);
    expect(of('stopped')).toEqual([expect.objectContaining({ signal: 'SIGTERM' })]);
    expect(of('crashed')).toEqual([]);
    expect(supervisor.child).toBeUndefined();

    // A crashing child whose restart is pending when stop() comes: the restart never happens.
    const crashing = start({ spawn: sh('exit 1'), initialDelayMs: 2_000 });
    await waitFor(() => crashing.of('crashed').length === 1, { what: 'the first crash' });
    await crashing.supervisor.stop();
    // Nothing to wait on for "did not happen": wait past the pending restart's moment instead.
    const past = Date.now() + 2_500;
    await waitFor(() => Date.now() > past, { what: 'the moment the restart was due', timeoutMs: 5_000 });
    expect(crashing.of('started')).toHaveLength(1);
    expect(crashing.supervisor.restarts).toBe(0);
  });

  it('restarts a child that exits cleanly on a SIGTERM someone else sent (as the api does)', async () => {
    const graceful = "process.once('SIGTERM', () => process.exit(0)); setInterval(() => {}, 1000); process.send('up')";
    let up = false;
    const { supervisor, lines, of } = start({
      spawn: () => {
        const child = spawn(process.execPath, ['-e', graceful], { stdio: ['ignore', 'ignore', 'ignore', 'ipc'] });
        child.once('message', () => (up = true));
        return child;
      },
    });
    // Its SIGTERM handler must be in place before the signal, or node dies of it (not the case under test).
    await waitFor(() => up, { what: 'the first run to handle SIGTERM' });

    process.kill(supervisor.child!.pid!, 'SIGTERM');

    await waitFor(() => of('started').length === 2, { what: 'a run after the foreign SIGTERM', timeoutMs: 10_000 });
    expect(of('crashed')).toEqual([expect.objectContaining({ code: 0, signal: null })]);
    expect(lines[0]).toMatch(/^The api exited at .* \(exit code 0, not asked to stop, after/);
  });

  it('doubles the back-off up to the maximum, and waits that long', async () => {
    const spawnedAt: number[] = [];
    const { of } = start({
      spawn: () => {
        spawnedAt.push(Date.now());
        return sh('exit 1')();
      },
      crashLoopRestarts: 100,
    });

    await waitFor(() => of('crashed').length >= 6, { what: 'six crashes', timeoutMs: 15_000 });
    expect(of('crashed').slice(0, 6).map((c) => c.delayMs)).toEqual([100, 200, 400, 800, 800, 800]);
    // Each run started no earlier than its back-off after the previous crash.
    for (let i = 1; i < 6; i++) expect(spawnedAt[i]! - spawnedAt[i - 1]!).toBeGreaterThanOrEqual(of('crashed')[i - 1]!.delayMs);
  });

  it('starts the back-off over after a run that lasted long enough', async () => {
    let runs = 0;
    const { of } = start({
      // Two quick crashes, then a run longer than resetAfterMs, then quick crashes again.
      spawn: () => sh(++runs === 3 ? 'sleep 1.2; exit 1' : 'exit 1')(),
      resetAfterMs: 1_000,
      crashLoopRestarts: 100,
    });

    await waitFor(() => of('crashed').length >= 4, { what: 'four crashes', timeoutMs: 15_000 });
    const crashes = of('crashed');
    expect(crashes[2]!.uptimeMs).toBeGreaterThanOrEqual(1_000);
    expect(crashes.slice(0, 4).map((c) => c.delayMs)).toEqual([100, 200, 100, 200]);
  });

  it('reports a crash loop loudly and keeps retrying at the longest back-off', async () => {
    const { lines, of } = start({ spawn: sh('exit 2'), initialDelayMs: 50, maxDelayMs: 200, crashLoopRestarts: 3, crashLoopWindowMs: 60_000 });

    await waitFor(() => of('crashed').length >= 6, { what: 'six crashes', timeoutMs: 15_000 });
    const crashes = of('crashed');
    expect(crashes.map((c) => c.crashLoop).slice(0, 6)).toEqual([false, false, false, true, true, true]);
    expect(crashes.slice(3, 6).map((c) => c.delayMs)).toEqual([200, 200, 200]);
    expect(lines).toContainEqual(expect.stringMatching(/^!!! The api is in a crash loop: 4 crashes in the last 60 s\. Still retrying every 0\.2 s/));
    // Not given up: it keeps starting runs.
    await waitFor(() => of('started').length >= 7, { what: 'a run after the loop was reported' });
  });

  it('says so when the program cannot be started at all, and keeps trying', async () => {
    const { lines, of } = start({ spawn: () => spawn('/nonexistent/privacy-backoffice-binary', [], { stdio: 'ignore' }) });
    await waitFor(() => of('crashed').length >= 2, { what: 'two failed starts', timeoutMs: 10_000 });
    expect(lines[0]).toMatch(/^Could not start the api: .*ENOENT/);
  });
});
