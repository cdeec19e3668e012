// Issue 12: production mode as the processes meet it. The real entry points (api/main.ts,
// worker/main.ts) are started with NODE_ENV=production; an unsafe setting must stop them
// before they listen or connect, with the setting named on stderr, and the API must never
// print a generated admin token.
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { freePort } from '../scripts/dev-server';
import { withScratchDatabase } from './support/stack';
import { hashToken } from '../db/access-tokens';
import type { Sql } from '../db/index';
import { generateKeyRing } from '../lib/payload-keys';

const root = fileURLToPath(new URL('..', import.meta.url));

/** The production settings that pass (Temporal is reached lazily by the API: nothing needs to listen there). */
const safe = {
  NODE_ENV: 'production',
  PUBLIC_URL: 'https://privacy.topcall.dk',
  SMTP_URL: 'smtps://smtp.topcall.dk:465',
  TEMPORAL_ADDRESS: '127.0.0.1:1',
  TEMPORAL_TLS: 'true',
  TEMPORAL_API_KEY: 'temporal-api-key-for-tests',
  LOG_LEVEL: 'info',
  WORKER_METRICS_ADDRESS: '',
  PAYLOAD_KEYS: generateKeyRing(['prod-1']).spec,
  DATA_KEYS: generateKeyRing(['prod-data-1']).spec,
};

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs an entry point until it exits, or until `until` appears on stdout (then SIGTERM). */
function run(entry: 'api' | 'worker', env: Record<string, string>, until?: string): Promise<Run> {
  const child = spawn(process.execPath, ['--import', 'tsx', `${entry}/main.ts`], {
    cwd: root,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  let stopped = false;
  child.stdout.on('data', (d: Buffer) => {
    stdout += d.toString();
    if (until && !stopped && stdout.includes(until)) stopped = child.kill('SIGTERM'); // once: a second SIGTERM would kill it
  });
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), 45_000);
  return new Promise((resolve) =>
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    }),
  );
}

/**
 * Production reaches Postgres over TLS with the server's certificate checked: the test server's
 * own certificate (Debian's, for localhost) is trusted through NODE_EXTRA_CA_CERTS, and the URL
 * asks for sslmode=verify-full — so the api below really connects that way.
 */
async function overVerifiedTls(sql: Sql, url: string): Promise<{ DATABASE_URL: string; NODE_EXTRA_CA_CERTS: string }> {
  const [settings] = await sql<{ ssl: string; certFile: string }[]>`select current_setting('ssl') as ssl, current_setting('ssl_cert_file') as "certFile"`;
  const { ssl, certFile } = settings!;
  expect(ssl, 'the test Postgres must offer TLS (ssl = on): .ci/run turns it on').toBe('on');
  const tls = new URL(url);
  tls.hostname = 'localhost';
  tls.searchParams.set('sslmode', 'verify-full');
  const dataDirectory = certFile.startsWith('/') ? '/' : String((await sql`show data_directory`)[0]!.data_directory);
  return { DATABASE_URL: tls.toString(), NODE_EXTRA_CA_CERTS: path.resolve(dataDirectory, certFile) };
}

describe('production mode refuses to start (issue 12)', () => {
  it.each(['api', 'worker'] as const)('the %s exits 78 on an http PUBLIC_URL and names it on stderr', async (entry) => {
    const r = await run(entry, { ...safe, PUBLIC_URL: 'http://privacy.topcall.dk', DATABASE_URL: 'postgres://127.0.0.1:1/never' });
    expect(r.code, r.stdout + r.stderr).toBe(78);
    expect(r.stderr).toContain('Refusing to start in production mode (NODE_ENV=production):');
    expect(r.stderr).toContain('PUBLIC_URL: must be an https:// URL in production');
    expect(r.stdout, 'stopped before it logged anything').toBe('');
  });

  it('the worker names each unsafe setting of a development configuration', async () => {
    const r = await run('worker', { NODE_ENV: 'production', PUBLIC_URL: 'http://127.0.0.1:3000', SMTP_URL: '', TEMPORAL_ADDRESS: '', TEMPORAL_TLS: '', TEMPORAL_API_KEY: '', PAYLOAD_KEYS: '', DATA_KEYS: '', DATABASE_URL: 'postgres://127.0.0.1:1/never' });
    expect(r.code, r.stdout + r.stderr).toBe(78);
    for (const name of ['PUBLIC_URL', 'SMTP_URL', 'TEMPORAL_ADDRESS', 'TEMPORAL_TLS', 'DATABASE_URL', 'PAYLOAD_KEYS', 'DATA_KEYS']) expect(r.stderr).toMatch(new RegExp(`^ {2}- ${name}: `, 'm'));
  });

  it('the api prints no admin token: without STAFF_BOOTSTRAP_TOKEN and with no admin yet, it refuses and creates none', async () => {
    await withScratchDatabase(async (sql, url) => {
      const r = await run('api', { ...safe, ...(await overVerifiedTls(sql, url)), PORT: String(await freePort()), STAFF_BOOTSTRAP_TOKEN: '' });
      expect(r.code, r.stdout + r.stderr).toBe(78);
      expect(r.stderr).toContain('STAFF_BOOTSTRAP_TOKEN: must be set for the first start in production');
      expect(r.stdout + r.stderr).not.toMatch(/tc_staff_/);
      expect(await sql`select count(*)::int as n from access_tokens`).toEqual([{ n: 0 }]);
    });
  });

  it('the api starts with a safe configuration and STAFF_BOOTSTRAP_TOKEN, printing no token', async () => {
    const token = 'production-bootstrap-token-0123456789abcdef';
    await withScratchDatabase(async (sql, url) => {
      const r = await run('api', { ...safe, ...(await overVerifiedTls(sql, url)), PORT: String(await freePort()), STAFF_BOOTSTRAP_TOKEN: token }, '"msg":"api listening"');
      expect(r.stdout, r.stderr).toContain('"msg":"api listening"');
      expect(r.code, JSON.stringify(r)).toBe(0);
      expect(r.stdout + r.stderr).not.toMatch(/tc_staff_|production-bootstrap-token|temporal-api-key-for-tests/);
      expect(await sql`select role from access_tokens where token_hash = ${hashToken(token)}`).toEqual([{ role: 'admin' }]);
    });
  });
});
