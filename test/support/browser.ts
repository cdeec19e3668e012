import { mkdtempSync } from 'node:fs';
import path from 'node:path';
import { inject } from 'vitest';
import { chromium, type Browser } from 'playwright-core';

/** Debian's chromium (apt package `chromium`), never a downloaded one; CHROMIUM_PATH names another. */
export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

/**
 * Headless chromium for a test file. Its runtime files go below the run's temporary folder:
 * without XDG_RUNTIME_DIR its audio client leaves a `pulse-*` folder in /tmp that outlives the
 * run (issue 13: a test run leaves no new entries in the temp directory).
 */
export function launchChromium(): Promise<Browser> {
  const runtime = mkdtempSync(path.join(inject('runTempDir'), 'chromium-'));
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--mute-audio'],
    env: { ...process.env, XDG_RUNTIME_DIR: runtime, PULSE_RUNTIME_PATH: path.join(runtime, 'pulse') } as Record<string, string>,
  });
}
