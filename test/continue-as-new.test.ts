import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { freePort, startDevServer, type DevServer } from '../scripts/dev-server';
import { openStack, startWorker, type RunningWorker, type TestStack } from './support/stack';
import { appFor, staffAuth } from './support/api';
import { newClient } from './support/recordings';
import { activate, registerCustomer, seedCustomers } from './support/customers';
import { countPerAddress } from './support/mailbox';
import { waitFor } from './support/wait';
import { findPolicy, insertPolicy } from '../db/policies';
import { customerWorkflowId, policyWorkflowId } from '../workflows/ids';
import type { policyChange } from '../workflows/policy-change';

// Long-lived workflows continue as new when Temporal suggests it (by default past 4,096
// history events: a 30-day notice period with hourly catch-ups gets there). A dev server of
// this file's own suggests it after a few dozen events, so every run here crosses runs.
const SUGGEST_AFTER_EVENTS = 30;

let server: DevServer;
let s: TestStack;
let worker: RunningWorker;
let app: ReturnType<typeof appFor>;
let clientId: string;

beforeAll(async () => {
  server = await startDevServer({
    binary: inject('temporalBinary'),
    port: await freePort(),
    headless: true,
    dynamicConfig: { 'limit.historyCount.suggestContinueAsNew': SUGGEST_AFTER_EVENTS },
    readyTimeoutMs: 120_000,
  });
  s = await openStack({ TEMPORAL_ADDRESS: server.address, MAIL_CONCURRENCY: '2' }, { ownDatabase: true });
  worker = await startWorker(s);
  app = appFor(s);
  clientId = await newClient(s);
}, 150_000);
afterAll(async () => {
  await worker?.stop();
  await s?.close();
  await server?.stop();
});

/** How many runs a workflow id has had (each continue-as-new starts one). */
async function runsOf(workflowId: string): Promise<number> {
  let n = 0;
  for await (const _ of s.client.workflow.list({ query: `WorkflowId = '${workflowId}'` })) n++;
  return n;
}

describe('continue-as-new keeps the promise across runs', () => {
  it('policyChange: catch-ups over several runs still tell everyone once, then the version becomes current', async () => {
    const first = await seedCustomers(s.sql, { clientId, count: 12, tag: `can${randomUUID().slice(0, 4)}` });
    const version = `can-${randomUUID().slice(0, 8)}`;
    const effectiveAt = new Date(Date.now() + 12_000);
    await insertPolicy(s.sql, { version, effectiveAt, material: true, summary: 'Continue-as-new test', body: 'Text' });
    const handle = await s.client.workflow.start<typeof policyChange>('policyChange', {
      workflowId: policyWorkflowId(version),
      taskQueue: s.config.TEMPORAL_TASK_QUEUE,
      args: [{ version, effectiveAt: effectiveAt.toISOString(), material: true, batchSize: 5, concurrency: 2, catchUpIntervalMs: 300 }],
    });

    // Runs go by while the campaign waits for its date; people registering meanwhile are caught up.
    await waitFor(async () => (await runsOf(handle.workflowId)) >= 3, { what: 'three runs', timeoutMs: 10_000, intervalMs: 200 });
    const late = await seedCustomers(s.sql, { clientId, count: 4, tag: `canlate${randomUUID().slice(0, 4)}` });

    const result = await handle.result(); // follows the runs to the last one
    expect(result).toMatchObject({ phase: 'current', sent: first.length + late.length, failed: 0 });
    expect((await findPolicy(s.sql, version))?.status).toBe('current');
    const runs = await runsOf(handle.workflowId);
    expect(runs).toBeGreaterThanOrEqual(4);

    const deliveries = await countPerAddress(`(${version})`, { raw: true });
    for (const p of [...first, ...late]) expect(deliveries.get(p.email), p.email).toBe(1);
    console.info(`continue-as-new: policyChange went through ${runs} runs`);
  }, 60_000);

  it('customerLifecycle: preferences survive into the next run, and closing the account still ends it', async () => {
    const staff = await staffAuth(s.sql, 'support');
    const who = await registerCustomer(app, staff, { clientId });
    const customer = await activate(app, who);
    const workflowId = customerWorkflowId(who.id);
    const patch = (marketingEmails: boolean) =>
      app.request('/v1/me/preferences', { method: 'PATCH', headers: { ...customer, 'content-type': 'application/json' }, body: JSON.stringify({ marketingEmails }) });

    // Each update adds a few events; keep changing the preference until the lifecycle has moved on.
    let value = true;
    await waitFor(async () => {
      value = !value;
      expect((await patch(value)).status).toBe(200);
      return (await runsOf(workflowId)) >= 2;
    }, { what: 'the lifecycle to continue as new', timeoutMs: 30_000, intervalMs: 50 });

    // The new run has the last preference, and takes updates.
    const me = async () => (await (await app.request('/v1/me', { headers: customer })).json()) as { marketingEmails: boolean };
    await waitFor(async () => (await me()).marketingEmails === value, { what: 'the preference after the move' });
    expect(await (await patch(!value)).json()).toEqual({ marketingEmails: !value });
    await waitFor(async () => (await me()).marketingEmails === !value, { what: 'an update in the new run' });

    expect((await app.request('/v1/me', { method: 'DELETE', headers: { ...customer, 'content-type': 'application/json' }, body: JSON.stringify({ password: 'correct horse battery staple' }) })).status).toBeLessThan(300);
    await waitFor(async () => (await s.client.workflow.getHandle(workflowId).describe()).status.name === 'COMPLETED', { what: 'the lifecycle to end', timeoutMs: 30_000 });
  }, 90_000);
});
