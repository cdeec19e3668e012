import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

const OWNER_FILE = 'owner.pid';

/**
 * A run killed before its teardown (Ctrl-C twice, a CI timeout) leaves its folder behind. The
 * next run removes every such folder whose owning process is gone — or, for a folder from
 * before owners were written, that is over an hour old.
 */
async function removeAbandonedRunDirs(prefix: string, log: (line: string) => void): Promise<void> {
  const alive = (pid: number) => {
    try {
      process.kill(pid, 0);
      return true;
    } catch (err) {
      return (err as NodeJS.ErrnoException).code === 'EPERM';
    }
  };
  for (const name of await readdir(os.tmpdir())) {
    if (!name.startsWith(prefix)) continue;
    const dir = path.join(os.tmpdir(), name);
    const info = await stat(dir).catch(() => undefined);
    if (!info) continue;
    const owner = Number(await readFile(path.join(dir, OWNER_FILE), 'utf8').catch(() => ''));
    const abandoned = owner > 0 ? !alive(owner) : Date.now() - info.mtimeMs > 3_600_000;
    if (!abandoned) continue;
    await rm(dir, { recursive: true, force: true });
    log(`removed ${name}, left by a run that ended without its teardown`);
  }
}

/** This run's temporary folder (teardown removes it), after removing the ones abandoned runs left. */
export async function makeRunDir(prefix: string, log: (line: string) => void): Promise<string> {
  await removeAbandonedRunDirs(prefix, log);
  const dir = await mkdtemp(path.join(os.tmpdir(), prefix));
  await writeFile(path.join(dir, OWNER_FILE), String(process.pid));
  return dir;
}
