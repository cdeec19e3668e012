/// <reference lib="dom" />
import { createServer, type Server } from 'node:http';
import { createRequire } from 'node:module';
import { mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ServerType } from '@hono/node-server';
import { type Browser, type BrowserContext, type Page } from 'playwright-core';
import { launchChromium } from './support/browser';
import { listenFirst } from './support/listen';
import { unzipSync, strFromU8 } from 'fflate';
import { openStack, startWorker, type RunningWorker, type TestStack } from './support/stack';
import { appFor, json, staffAuth } from './support/api';
import { activate, registerCustomer, uniqueEmail } from './support/customers';
import { newClient, uploadRecording } from './support/recordings';
import { awaitDecision } from './support/requests';
import { messagesTo, waitForMessage } from './support/mailbox';
import { waitFor } from './support/wait';
import { freePort } from '../scripts/dev-server';
import type { App } from '../api/app';

/**
 * Issue 14: the customers' own pages, driven in a real browser — Debian's chromium through
 * playwright-core (never a downloaded browser) — against the real API, worker, Temporal,
 * Postgres and SMTP sink. Each promise is checked in the data, not only on the page; axe-core
 * runs on every page visited.
 */
const SCREENSHOT = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'docs', 'screenshots', 'my-data.png');
const axeSource = await readFile(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');
const PASSWORD = 'en lang og sikker adgangssætning';

let s: TestStack;
let worker: RunningWorker;
let app: App;
let server: ServerType;
let base: string;
let browser: Browser;
let officer: { authorization: string };
let staff: { authorization: string };
let clientId: string;
const checkedPages = new Set<string>();

/** axe-core on the page as it is now: no serious or critical violations. */
async function accessible(page: Page) {
  await page.evaluate(axeSource);
  const violations = (await page.evaluate(async () => {
    const result = await (globalThis as unknown as { axe: { run: (ctx: Document, opts: object) => Promise<{ violations: { id: string; impact: string; nodes: { target: string[] }[] }[] }> } }).axe.run(document, {
      resultTypes: ['violations'],
    });
    return result.violations.map((v) => ({ id: v.id, impact: v.impact, targets: v.nodes.map((n) => n.target.join(' ')) }));
  })) as { id: string; impact: string; targets: string[] }[];
  expect(violations.filter((v) => v.impact === 'serious' || v.impact === 'critical'), `axe on ${page.url()}`).toEqual([]);
  checkedPages.add(new URL(page.url()).pathname);
}

async function newPage(options: { width?: number } = {}): Promise<{ context: BrowserContext; page: Page }> {
  const context = await browser.newContext({ viewport: { width: options.width ?? 1000, height: 800 }, acceptDownloads: true });
  return { context, page: await context.newPage() };
}

async function login(page: Page, email: string, password: string) {
  await page.goto(`${base}/account/login`);
  await page.getByLabel('E-mailadresse', { exact: true }).fill(email);
  await page.getByLabel('Adgangskode', { exact: true }).fill(password);
  await page.getByRole('button', { name: 'Log ind' }).click();
}

const customerRow = async (id: string) =>
  (await s.sql<{ email: string | null; name: string | null; locale: string; marketingEmails: boolean; status: string }[]>`
    select email, name, locale, marketing_emails as "marketingEmails", status from customers where id = ${id}`)[0]!;

beforeAll(async () => {
  // Listening first: PUBLIC_URL names the API's own URL before the stack is up.
  const listening = await listenFirst();
  server = listening.server;
  base = listening.url;
  s = await openStack({ PUBLIC_URL: base, REQUEST_SLA: 'P7D' });
  worker = await startWorker(s);
  app = appFor(s);
  listening.serve(app.fetch);
  browser = await launchChromium();
  officer = await staffAuth(s.sql, 'privacy_officer');
  staff = await staffAuth(s.sql, 'support');
  clientId = await newClient(s, 'Hansen VVS ApS');
});

afterAll(async () => {
  await browser?.close();
  await new Promise((resolve) => server?.close(resolve));
  await worker?.stop();
  await s?.close();
});

describe('customer pages in a real browser', () => {
  it('invitation → password → login → my data → export → language → email → opt-out → close', { timeout: 300_000 }, async () => {
    const person = await registerCustomer(app, staff, { clientId, name: 'Mette Hansen', providedBy: { source: 'client' } });
    const recording = await uploadRecording(app, staff, clientId, { customerId: person.id, callerNumber: '+4520304050' }, 'a');
    const link = /(http:\/\/\S+\/account\/set-password\?token=[\w-]+)/.exec(person.invitation.text)?.[1];
    expect(link, 'the invitation links to the account pages').toBeTruthy();

    const { context, page } = await newPage();
    // Invitation link → set password (no JavaScript needed: a plain form).
    await page.goto(link!);
    await accessible(page);
    await page.getByLabel('Ny adgangskode', { exact: true }).fill(PASSWORD);
    await page.getByLabel('Gentag adgangskoden', { exact: true }).fill(PASSWORD);
    await page.getByRole('button', { name: 'Gem adgangskode' }).click();
    await expect.poll(() => page.url()).toContain('/account/login');
    await expect.poll(() => page.getByRole('status').textContent()).toContain('Din adgangskode er gemt');
    await accessible(page);

    // A wrong password is refused with the error tied to the form; the right one opens My data.
    await login(page, person.email, 'forkert adgangskode');
    await expect.poll(() => page.getByRole('alert').textContent()).toContain('Forkert e-mailadresse eller adgangskode');
    await accessible(page);
    await login(page, person.email, PASSWORD);
    await expect.poll(() => new URL(page.url()).pathname).toBe('/account');
    const cookie = (await context.cookies()).find((c) => c.name === 'tc_session');
    expect(cookie, 'one session cookie').toMatchObject({ httpOnly: true, sameSite: 'Lax', secure: false });

    // My data: who gave us the data (D2) and when the recording will be deleted (D4).
    await expect.poll(() => page.getByTestId('provenance').textContent()).toContain('Hansen VVS ApS');
    const expectedDeletion = new Intl.DateTimeFormat('da-DK', { dateStyle: 'long', timeZone: 'Europe/Copenhagen' }).format(new Date(recording.deleteAfter));
    await expect.poll(() => page.locator(`[data-recording="${recording.id}"]`).textContent()).toContain(expectedDeletion);
    await accessible(page);
    await mkdir(path.dirname(SCREENSHOT), { recursive: true });
    await page.screenshot({ path: SCREENSHOT, fullPage: true });

    // Export: filed from the page; staff approve through the API; the download appears there.
    await page.getByRole('button', { name: 'Bestil en kopi' }).click();
    await expect.poll(() => page.getByRole('status').textContent()).toContain('Din anmodning er modtaget');
    const requestId = /\/account\/requests\/([0-9a-f-]{36})/.exec(page.url())?.[1];
    expect(requestId).toBeTruthy();
    await accessible(page);
    await awaitDecision(app, officer, requestId!);
    expect((await app.request(`/v1/requests/${requestId}/decision`, json({ decision: 'approve' }, { ...officer, prefer: 'wait=30' }))).status).toBe(200);
    await waitFor(async () => (await s.sql`select 1 from data_requests where id = ${requestId!} and status = 'answered'`).length > 0, { what: 'the access request to be answered' });
    await page.reload();
    const downloadLink = page.getByRole('link', { name: 'Hent din kopi' });
    await expect.poll(() => downloadLink.count()).toBe(1);
    await accessible(page);
    const [download] = await Promise.all([page.waitForEvent('download'), downloadLink.click()]);
    const files = unzipSync(new Uint8Array(await readFile((await download.path())!)));
    const data = JSON.parse(strFromU8(files['data.json']!)) as { data: Record<string, Record<string, unknown>[]> };
    expect(JSON.stringify(data)).toContain(person.email);
    expect(JSON.stringify(data)).toContain(recording.id);

    // A second person cannot reach the first one's request or download.
    const other = await registerCustomer(app, staff, { clientId, name: 'Ole Jensen' });
    await activate(app, other, PASSWORD);
    const second = await newPage();
    await login(second.page, other.email, PASSWORD);
    await expect.poll(() => new URL(second.page.url()).pathname).toBe('/account');
    for (const where of [`/account/requests/${requestId}`, `/account/requests/${requestId}/export`]) {
      const res = await second.page.goto(`${base}${where}`);
      expect(res!.status(), where).toBe(404);
      expect(await second.page.content()).not.toContain(person.email);
    }
    // …nor can anyone without a session: the pages send them to log in.
    const anonymous = await newPage();
    await anonymous.page.goto(`${base}/account/requests/${requestId}/export`);
    expect(new URL(anonymous.page.url()).pathname).toBe('/account/login');
    await anonymous.context.close();

    // Language: saved at once, and the pages follow it.
    await page.goto(`${base}/account/profile`);
    await accessible(page);
    await page.getByLabel('Sprog', { exact: true }).selectOption('en');
    await page.getByRole('button', { name: 'Gem' }).first().click();
    await expect.poll(() => page.locator('html').getAttribute('lang')).toBe('en');
    await expect.poll(() => page.getByRole('status').textContent()).toContain('Saved');
    expect((await customerRow(person.id)).locale).toBe('en');

    // A new address only after its confirmation link; the old address is told.
    const newEmail = uniqueEmail('mette-ny');
    await page.getByRole('textbox', { name: 'New email address' }).fill(newEmail);
    await page.getByRole('button', { name: 'Save' }).nth(1).click();
    await expect.poll(() => page.getByRole('status').textContent()).toContain(newEmail);
    const confirmation = await waitForMessage(newEmail, () => true, 'the confirmation to the new address');
    await waitForMessage(person.email, (m) => /new email address/i.test(m.subject), 'the notice to the old address');
    expect((await customerRow(person.id)).email, 'unchanged until confirmed').toBe(person.email);
    const confirmLink = /(http:\/\/\S+\/account\/confirm-email\?token=[\w-]+)/.exec(confirmation.text)?.[1];
    await page.goto(confirmLink!);
    await accessible(page);
    await page.getByRole('button', { name: 'Yes, use that address' }).click();
    await expect.poll(() => page.getByRole('status').textContent()).toContain('Your email address is changed');
    await waitFor(async () => (await customerRow(person.id)).email === newEmail, { what: 'the new address in force' });

    // Opt out of marketing: the lifecycle's update, seen in Postgres.
    await page.goto(`${base}/account/preferences`);
    await accessible(page);
    await page.getByLabel('No', { exact: true }).check();
    await page.getByRole('button', { name: 'Save' }).click();
    await expect.poll(() => page.getByRole('status').textContent()).toContain('Your choice is saved');
    expect((await customerRow(person.id)).marketingEmails).toBe(false);

    // Close the account: password again, then what goes and what stays, then the erasure.
    await page.goto(`${base}/account/close`);
    await accessible(page);
    await page.getByLabel('Password', { exact: true }).fill(PASSWORD);
    await page.getByRole('button', { name: 'Continue' }).click();
    await expect.poll(() => page.getByTestId('will-erase').textContent()).toContain('Recordings of your calls');
    expect(await page.getByTestId('will-keep').textContent()).toContain('without your name or address');
    await accessible(page);
    await page.getByRole('button', { name: 'Yes, close my account and erase my data' }).click();
    await expect.poll(() => new URL(page.url()).pathname).toBe('/account/login');
    await waitFor(async () => (await customerRow(person.id)).status === 'erased', { what: 'the account to be erased', timeoutMs: 30_000 });
    const after = await customerRow(person.id);
    expect(after.email).toBeNull();
    expect((await s.sql`select 1 from web_sessions where customer_id = ${person.id} and revoked_at is null`).length, 'no live session').toBe(0);
    expect((await s.sql`select 1 from email_changes where customer_id = ${person.id}`).length, 'no pending address').toBe(0);
    expect((await s.sql`select status from recordings where id = ${recording.id}`)[0]!.status).toBe('deleted');
    // The old session no longer opens anything.
    await page.goto(`${base}/account`);
    expect(new URL(page.url()).pathname).toBe('/account/login');

    await second.context.close();
    await context.close();
  });

  it('forgot password: the same answer for any address, a one-time link for a real one', { timeout: 120_000 }, async () => {
    const person = await registerCustomer(app, staff, { clientId, name: 'Lise Holm' });
    await activate(app, person, PASSWORD);
    const { context, page } = await newPage();
    await page.goto(`${base}/account/login`);
    await page.getByRole('link', { name: 'Glemt din adgangskode?' }).click();
    await accessible(page);
    await page.getByLabel('E-mailadresse', { exact: true }).fill(uniqueEmail('ingen'));
    await page.getByRole('button', { name: 'Send link' }).click();
    const unknownAnswer = await page.getByRole('status').textContent();
    await page.goto(`${base}/account/forgot-password`);
    await page.getByLabel('E-mailadresse', { exact: true }).fill(person.email);
    await page.getByRole('button', { name: 'Send link' }).click();
    expect(await page.getByRole('status').textContent(), 'no hint whether the address exists').toBe(unknownAnswer);
    await accessible(page);

    const reset = await waitForMessage(person.email, (m) => /ny adgangskode/i.test(m.subject), 'the reset link');
    const link = /(http:\/\/\S+\/account\/set-password\?token=[\w-]+)/.exec(reset.text)?.[1];
    const newPassword = 'et helt nyt og langt kodeord';
    await page.goto(link!);
    await page.getByLabel('Ny adgangskode', { exact: true }).fill(newPassword);
    await page.getByLabel('Gentag adgangskoden', { exact: true }).fill(newPassword);
    await page.getByRole('button', { name: 'Gem adgangskode' }).click();
    await expect.poll(() => page.url()).toContain('done=password');
    // One time only.
    const again = await page.goto(link!);
    expect(again!.status()).toBe(400);
    await login(page, person.email, PASSWORD);
    await expect.poll(() => page.getByRole('alert').textContent()).toContain('Forkert');
    await login(page, person.email, newPassword);
    await expect.poll(() => new URL(page.url()).pathname).toBe('/account');
    // The API says the same 202 for both, and the mailbox got only the asks within the limit.
    expect((await app.request('/v1/auth/password-reset', json({ email: uniqueEmail('ingen') }))).status).toBe(202);
    for (let i = 0; i < 5; i++) expect((await app.request('/v1/auth/password-reset', json({ email: person.email }))).status).toBe(202);
    await waitFor(async () => (await messagesTo(person.email)).filter((m) => /ny adgangskode/i.test(m.subject)).length >= 3, { what: 'the resets within the limit' });
    expect((await messagesTo(person.email)).filter((m) => /ny adgangskode/i.test(m.subject)).length, 'three per hour, then silence').toBe(3);
    await context.close();
  });

  it('staff replace a lost invitation: the fresh link works, the old one no longer does', { timeout: 60_000 }, async () => {
    const person = await registerCustomer(app, staff, { clientId, name: 'Jonas Lund' });
    const oldToken = /set-password\?token=([\w-]+)/.exec(person.invitation.text)?.[1];
    const supportStaff = await staffAuth(s.sql, 'support');
    expect((await app.request(`/v1/customers/${person.id}/invitation`, { method: 'POST', headers: supportStaff })).status).toBe(202);
    const fresh = await waitForMessage(person.email, (m) => m.id !== person.invitation.id && /konto/i.test(m.subject), 'the fresh invitation');
    expect(fresh.text, 'it says again who gave us the data (D2)').toContain('Hansen VVS ApS');
    const newToken = /set-password\?token=([\w-]+)/.exec(fresh.text)?.[1];
    expect(newToken).not.toBe(oldToken);
    expect((await app.request('/v1/auth/password', json({ token: oldToken, password: PASSWORD }))).status).toBe(400);
    expect((await app.request('/v1/auth/password', json({ token: newToken, password: PASSWORD }))).status).toBe(204);
    expect((await app.request(`/v1/customers/${person.id}/invitation`, { method: 'POST' })).status, 'staff only').toBe(401);
  });

  it('a form posted from another origin is refused, and changes nothing', { timeout: 60_000 }, async () => {
    const person = await registerCustomer(app, staff, { clientId, name: 'Karen Berg' });
    await activate(app, person, PASSWORD);
    const { context, page } = await newPage();
    await login(page, person.email, PASSWORD);
    await expect.poll(() => new URL(page.url()).pathname).toBe('/account');
    const csrf = await page.locator('input[name=csrf]').first().inputValue();

    // Another site (localhost is another origin than 127.0.0.1) with a form aimed at ours.
    const evilPort = await freePort();
    const evil: Server = createServer((_req, res) => {
      res.setHeader('content-type', 'text/html');
      res.end(`<!doctype html><form method="post" action="${base}/account/preferences"><input name="csrf" value="${csrf}"><input name="marketing" value="no"><button>go</button></form>`);
    });
    await new Promise<void>((resolve) => evil.listen(evilPort, '127.0.0.1', resolve));
    try {
      await page.goto(`http://localhost:${evilPort}/`);
      const [response] = await Promise.all([page.waitForResponse((r) => r.url().startsWith(`${base}/account/preferences`)), page.getByRole('button', { name: 'go' }).click()]);
      expect(response.status()).toBe(403);
      expect((await customerRow(person.id)).marketingEmails, 'the preference is unchanged').toBe(true);
    } finally {
      await new Promise((resolve) => evil.close(resolve));
    }
    // The same form without the session's token, from our own origin, is refused too.
    const forged = await page.request.post(`${base}/account/preferences`, { form: { marketing: 'no', csrf: 'x'.repeat(43) }, headers: { origin: base } });
    expect(forged.status()).toBe(403);
    expect((await customerRow(person.id)).marketingEmails).toBe(true);
    await context.close();
  });

  it('works at phone width, with a client’s own users seeing only their client (D3)', { timeout: 90_000 }, async () => {
    const lead = await registerCustomer(app, staff, { clientId, name: 'Bo Team', teamLead: true });
    await activate(app, lead, PASSWORD);
    const otherClient = await newClient(s, 'Andet Firma ApS');
    for (const [cid, body] of [
      [clientId, 'Ring tilbage om faktura 17'],
      [otherClient, 'Besked til et andet firma'],
    ] as const) {
      const res = await app.request('/v1/call-messages', json({ clientId: cid, callerName: 'Opkalder', message: body, sentAt: new Date().toISOString() }, staff));
      expect(res.status, await res.clone().text()).toBe(201);
    }
    const { context, page } = await newPage({ width: 360 });
    await login(page, lead.email, PASSWORD);
    await page.getByRole('link', { name: 'Min virksomheds beskeder' }).click();
    await expect.poll(() => page.locator('main').textContent()).toContain('Ring tilbage om faktura 17');
    expect(await page.locator('main').textContent()).not.toContain('Besked til et andet firma');
    await accessible(page);
    for (const where of ['/account', '/account/client', '/privacy', '/cookies']) {
      await page.goto(`${base}${where}`);
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
      expect(overflow, `no sideways scrolling on ${where} at 360 px`).toBeLessThanOrEqual(0);
      await accessible(page);
    }
    // Logging out revokes the session itself, not only the cookie: a copy of it opens nothing.
    const copied = (await context.cookies()).find((c) => c.name === 'tc_session')!;
    await page.getByRole('button', { name: 'Log ud' }).click();
    await expect.poll(() => page.getByRole('status').textContent()).toContain('Du er logget ud');
    expect((await s.sql`select 1 from web_sessions where customer_id = ${lead.id} and revoked_at is null`).length).toBe(0);
    const replay = await fetch(`${base}/account`, { headers: { cookie: `tc_session=${copied.value}` }, redirect: 'manual' });
    expect(replay.status).toBe(303);
    expect(replay.headers.get('location')).toBe('/account/login');
    await context.close();
  });

  it('privacy shows the policy in force and highlights an announced version; cookies names the one cookie', { timeout: 90_000 }, async () => {
    const version = `2027-${String(Date.now() % 1000).padStart(3, '0')}`;
    const effectiveAt = new Date(Date.now() + 60 * 86_400_000).toISOString();
    const res = await app.request('/v1/policies', json({ version, effectiveAt, material: false, summary: 'Vi gemmer optagelser i to måneder.', text: 'Ny tekst.' }, officer));
    expect(res.status, await res.clone().text()).toBe(202);
    const { context, page } = await newPage();
    await page.goto(`${base}/privacy`);
    await expect.poll(() => page.locator('.upcoming').textContent()).toContain(version);
    expect(await page.locator('.upcoming').textContent()).toContain('Vi gemmer optagelser i to måneder.');
    expect(await page.locator('main').textContent()).toContain('Version 2020-06-19');
    await accessible(page);
    await page.goto(`${base}/cookies?lang=en`);
    expect(await page.locator('html').getAttribute('lang')).toBe('en');
    expect(await page.locator('main').textContent()).toContain('tc_session');
    await accessible(page);
    // No third-party requests anywhere: everything a page loads comes from us.
    const foreign: string[] = [];
    page.on('request', (r) => {
      if (!r.url().startsWith(base)) foreign.push(r.url());
    });
    for (const where of ['/privacy', '/cookies', '/account/login', '/account/forgot-password']) await page.goto(`${base}${where}`);
    expect(foreign).toEqual([]);
    await context.close();
  });

  afterAll(() => {
    // Every page the issue names was opened and checked with axe in this file.
    for (const p of ['/account/login', '/account/set-password', '/account', '/account/requests', '/account/profile', '/account/preferences', '/account/close', '/account/forgot-password', '/account/confirm-email', '/account/client', '/privacy', '/cookies']) {
      expect([...checkedPages].some((x) => x === p || x.startsWith(`${p}/`)), `axe ran on ${p}`).toBe(true);
    }
  });
});
