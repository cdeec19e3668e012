import { randomUUID } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { ServerType } from '@hono/node-server';
import { Client, Connection } from '@temporalio/client';
import { type Browser, type Page } from 'playwright-core';
import { launchChromium } from './support/browser';
import { listenFirst } from './support/listen';
import { createApp } from '../api/app';
import { freePort, startDevServer, type DevServer } from '../scripts/dev-server';
import { staffAuth } from './support/api';
import { openStack, silentLog, type TestStack } from './support/stack';

/**
 * Issue 12: the Temporal Web UI shows decoded payloads to signed-in staff and ciphertext to
 * everyone else — in a real browser, against the real UI of a dev server started the way
 * `npm start` starts it (`--ui-codec-endpoint` pointing at the API's /codec). Staff sign in at
 * /codec/login (an HttpOnly cookie), turn on "include cross-origin credentials" in the UI's codec
 * settings (here: the setting the UI keeps in localStorage), and the UI decodes through the API.
 */

let s: TestStack;
let dev: DevServer;
let server: ServerType;
let browser: Browser;
let api: string;
let ui: string;
let client: Client;

beforeAll(async () => {
  // The API listens first: the codec endpoint the dev server is started with names its URL.
  const listening = await listenFirst();
  server = listening.server;
  api = listening.url;
  const [temporalPort, uiPort] = [await freePort(), await freePort()];
  ui = `http://127.0.0.1:${uiPort}`;
  dev = await startDevServer({
    binary: inject('temporalBinary'),
    port: temporalPort,
    uiPort,
    dbFile: path.join(mkdtempSync(path.join(inject('runTempDir'), 'ui-codec-')), 'temporal.db'),
    uiCodecEndpoint: `${api}/codec`,
    readyTimeoutMs: 120_000,
  });
  s = await openStack({ PUBLIC_URL: api, TEMPORAL_ADDRESS: dev.address, TEMPORAL_UI_ORIGIN: ui });
  const app = createApp({ config: s.config, sql: s.sql, temporal: s.client, store: s.store, log: silentLog, payloadCodec: s.payloadCodec });
  listening.serve(app.fetch);
  client = new Client({ connection: await Connection.connect({ address: dev.address }), dataConverter: s.dataConverter });
  browser = await launchChromium();
}, 180_000);

afterAll(async () => {
  await browser?.close();
  await new Promise((resolve) => server?.close(resolve));
  await client?.connection.close();
  await s?.close();
  await dev?.stop();
});

/**
 * A browser page whose Temporal UI sends cookies to the codec endpoint: the README's two switches
 * in the UI's codec settings (use the browser's setting over the server's, include cross-origin
 * credentials), as the UI keeps them in localStorage.
 */
async function uiPage(): Promise<Page> {
  const context = await browser.newContext();
  await context.addInitScript((endpoint) => {
    localStorage.setItem('overrideRemoteCodecConfiguration', 'true');
    localStorage.setItem('endpoint', JSON.stringify(endpoint));
    localStorage.setItem('includeCredentials', 'true');
  }, `${api}/codec`);
  return context.newPage();
}

describe('the Temporal Web UI decodes for signed-in staff only (issue 12)', () => {
  it('shows ciphertext without a codec session and the payload once an officer signs in', { timeout: 180_000 }, async () => {
    // A run whose input names a person; no worker picks it up, the input is what the UI shows.
    const marker = `Henriette Bruun ${randomUUID().slice(0, 8)}`;
    const workflowId = `ui-codec-${randomUUID()}`;
    await client.workflow.start('systemCheck', { taskQueue: `nobody-${randomUUID()}`, workflowId, args: [{ checkId: marker }] });
    const runPage = `${ui}/namespaces/default/workflows/${workflowId}`;

    // Nobody signed in: the UI gets 401 from the codec server and shows no decoded input.
    const stranger = await uiPage();
    const strangerDecodes: number[] = [];
    stranger.on('response', (r) => r.url().startsWith(`${api}/codec/decode`) && strangerDecodes.push(r.status()));
    await stranger.goto(runPage);
    await expect.poll(() => strangerDecodes.length, { timeout: 60_000, message: 'the UI asked the codec server' }).toBeGreaterThan(0);
    expect(strangerDecodes.every((status) => status === 401)).toBe(true);
    expect(await stranger.content()).not.toContain(marker);

    // A privacy officer signs in at /codec/login in the same browser as the UI.
    const officer = await staffAuth(s.sql, 'privacy_officer');
    const page = await uiPage();
    await page.goto(`${api}/codec/login`);
    await page.getByLabel('Staff token').fill(officer.token);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await expect.poll(async () => (await page.context().cookies(`${api}/codec/decode`)).map((c) => c.name)).toContain('tc_codec');
    const decodes: number[] = [];
    page.on('response', (r) => r.url().startsWith(`${api}/codec/decode`) && decodes.push(r.status()));
    await page.goto(runPage);
    await expect.poll(async () => (await page.content()).includes(marker), { timeout: 60_000, message: 'the decoded input in the UI' }).toBe(true);
    expect(decodes).toContain(200);
    expect(decodes).not.toContain(401);
  });
});
