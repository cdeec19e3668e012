import { spawn, execFile } from 'node:child_process';
import { mkdir, mkdtemp, rename, rm, access } from 'node:fs/promises';
import { constants } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';

/**
 * The Temporal dev server is the Temporal CLI, built once from Go modules and cached
 * outside the checkout so fresh clones and CI reuse it. v1.5.1 is the newest release
 * that `go install` accepts (later ones carry a `replace` directive). Nothing is ever
 * downloaded as a prebuilt binary: only the Go module proxy is used.
 */
export const TEMPORAL_CLI_VERSION = '1.5.1';
const MODULE = `github.com/temporalio/cli/cmd/temporal@v${TEMPORAL_CLI_VERSION}`;

export function temporalCliPath(): string {
  if (process.env.TEMPORAL_CLI_PATH) return path.resolve(process.env.TEMPORAL_CLI_PATH);
  const cacheRoot = process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache');
  return path.join(cacheRoot, 'privacy-backoffice', `temporal-cli-v${TEMPORAL_CLI_VERSION}`, 'temporal');
}

async function installedVersion(binary: string): Promise<string | undefined> {
  try {
    await access(binary, constants.X_OK);
    const { stdout } = await promisify(execFile)(binary, ['--version'], { timeout: 20_000 });
    const reported = /temporal version (\S+)/.exec(stdout)?.[1];
    if (reported && reported !== '0.0.0-DEV') return reported;
    // Built without our -ldflags: the module version is still recorded in the binary.
    const { stdout: info } = await promisify(execFile)('go', ['version', '-m', binary], { timeout: 20_000 });
    return /\tmod\tgithub\.com\/temporalio\/cli\tv(\S+)/.exec(info)?.[1] ?? reported;
  } catch {
    return undefined;
  }
}

/**
 * Returns the path of a Temporal CLI of the pinned version, building it with `go install`
 * when the cache holds none (or another version). The build takes minutes the first time:
 * progress goes to `log` line by line.
 */
export async function ensureTemporalCli(log: (line: string) => void = (l) => console.error(l)): Promise<string> {
  const binary = temporalCliPath();
  const found = await installedVersion(binary);
  if (found === TEMPORAL_CLI_VERSION) return binary;
  if (process.env.TEMPORAL_CLI_PATH) {
    throw new Error(`TEMPORAL_CLI_PATH=${binary} is ${found ? `version ${found}` : 'missing or not executable'}; need ${TEMPORAL_CLI_VERSION}`);
  }
  log(found ? `Temporal CLI at ${binary} is ${found}; rebuilding ${TEMPORAL_CLI_VERSION}` : `Temporal CLI not cached at ${binary}`);
  log(`Building it once with: go install ${MODULE} (takes a few minutes the first time)`);

  const dir = path.dirname(binary);
  await mkdir(dir, { recursive: true });
  // Build into a private folder and rename: a concurrent build or a Ctrl-C never leaves a half-written binary.
  const staging = await mkdtemp(path.join(dir, '.build-'));
  const started = Date.now();
  const ticker = setInterval(() => log(`  … still building the Temporal CLI (${Math.round((Date.now() - started) / 1000)}s)`), 15_000);
  try {
    await new Promise<void>((resolve, reject) => {
      const child = spawn('go', ['install', '-v', `-ldflags=-X github.com/temporalio/cli/temporalcli.Version=${TEMPORAL_CLI_VERSION}`, MODULE], {
        env: { ...process.env, GOBIN: staging, GOFLAGS: process.env.GOFLAGS ?? '' },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let lastLines: string[] = [];
      let downloaded = 0;
      let compiled = 0;
      const onData = (chunk: Buffer) => {
        for (const line of chunk.toString().split('\n').filter(Boolean)) {
          lastLines = [...lastLines.slice(-30), line];
          // `go install -v` names each module it fetches and each package it compiles: count them.
          if (line.startsWith('go: downloading')) {
            if (++downloaded % 25 === 1) log(`  fetched ${downloaded} modules (${line.slice('go: downloading '.length)})`);
          } else if (!line.startsWith('go:') && !line.includes(' ')) {
            if (++compiled % 50 === 0) log(`  compiled ${compiled} packages (${line})`);
          } else {
            log(`  ${line}`);
          }
        }
      };
      child.stdout.on('data', onData);
      child.stderr.on('data', onData);
      child.on('error', (err: NodeJS.ErrnoException) =>
        reject(
          err.code === 'ENOENT'
            ? new Error('`go` is not on PATH: install Go to build the Temporal CLI once, or set TEMPORAL_ADDRESS to an existing Temporal server')
            : err,
        ),
      );
      child.on('exit', (code) =>
        code === 0 ? resolve() : reject(new Error(`go install ${MODULE} failed (exit ${code}):\n${lastLines.join('\n')}`)),
      );
    });
    await rename(path.join(staging, 'temporal'), binary);
  } finally {
    clearInterval(ticker);
    await rm(staging, { recursive: true, force: true });
  }
  const built = await installedVersion(binary);
  if (built !== TEMPORAL_CLI_VERSION) throw new Error(`built Temporal CLI reports version ${built ?? 'unknown'}, expected ${TEMPORAL_CLI_VERSION}`);
  log(`Temporal CLI ${built} built in ${Math.round((Date.now() - started) / 1000)}s and cached at ${binary}`);
  return binary;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  console.log(await ensureTemporalCli());
}
