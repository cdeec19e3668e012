import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openStack, type TestStack } from './support/stack';
import { newClient } from './support/recordings';
import { seedCustomers } from './support/customers';
import { countPerAddress } from './support/mailbox';
import { spawnWorker, workerEnvFor, type WorkerProcess } from './support/worker-process';
import { waitFor } from './support/wait';
import { ISOLATED_NAMESPACE } from './global-setup';
import { startTcpProxy } from './support/tcp-proxy';
import { insertPolicy, noticeProgress } from '../db/policies';
import { policyWorkflowId } from '../workflows/ids';
import { policyProgressQuery, type policyChange } from '../workflows/policy-change';

const PERSONS = 3000;

let s: TestStack;
let env: Record<string, string>;
const workers: WorkerProcess[] = [];

beforeAll(async () => {
  s = await openStack({ TEMPORAL_NAMESPACE: ISOLATED_NAMESPACE, RETENTION_SWEEP_INTERVAL: 'P30D', MAIL_CONCURRENCY: '4' }, { ownDatabase: true });
  env = workerEnvFor(s.config);
});
afterAll(async () => {
  await Promise.all(workers.map((w) => w.stop()));
  await s.close();
});

/**
 * Seeds persons, publishes a material version an hour away and starts its campaign (4 lanes,
 * pages of 50) on a new worker process with `workerEnv`; returns once 300 notices are out.
 */
async function campaignUnderWay(tag: string, persons: number, workerEnv = env) {
  const clientId = await newClient(s);
  const people = await seedCustomers(s.sql, { clientId, count: persons, tag: `${tag}${randomUUID().slice(0, 4)}` });
  const everyone = (await s.sql<{ n: number }[]>`select count(*)::int as n from customers where status = 'active' and email is not null`)[0]!.n;
  const version = `${tag}-${randomUUID().slice(0, 8)}`;
  const effectiveAt = new Date(Date.now() + 3_600_000);
  await insertPolicy(s.sql, { version, effectiveAt, material: true, summary: `${tag} test`, body: 'Text' });

  workers.push(await spawnWorker(workerEnv));
  const handle = await s.client.workflow.start<typeof policyChange>('policyChange', {
    workflowId: policyWorkflowId(version),
    taskQueue: s.config.TEMPORAL_TASK_QUEUE,
    args: [{ version, effectiveAt: effectiveAt.toISOString(), material: true, batchSize: 50, concurrency: 4, catchUpIntervalMs: 600_000, heartbeatTimeoutMs: 3_000 }],
  });
  await waitFor(async () => (await noticeProgress(s.sql, version)).sent >= 300, { what: 'the campaign to be under way', timeoutMs: 60_000, intervalMs: 20 });
  return { people, everyone, version, handle };
}

const allSent = (version: string, count: number) =>
  waitFor(async () => (await noticeProgress(s.sql, version)).sent === count, { what: 'every notice', timeoutMs: 120_000, intervalMs: 250 });

describe('policyChange through faults mid-campaign', () => {
  it('resumes on a new worker and every person still gets exactly one notice', async () => {
    const { people: persons, version, handle } = await campaignUnderWay('crash', PERSONS);
    await workers[0]!.kill();
    const atKill = await noticeProgress(s.sql, version);
    expect(atKill.sent).toBeLessThan(PERSONS);

    workers.push(await spawnWorker(env));
    await allSent(version, PERSONS);

    const inMailboxes = await countPerAddress(`(${version})`, { raw: false });
    const deliveries = await countPerAddress(`(${version})`, { raw: true });
    const repeated = [...deliveries.values()].filter((n) => n > 1).length;
    console.info(`policy crash: ${atKill.sent} sent before the kill; ${inMailboxes.size} people reached; ${repeated} SMTP re-deliveries of the same Message-ID`);

    // Every person has exactly one notice in their mailbox: one outbox row, one Message-ID.
    expect(inMailboxes.size).toBe(PERSONS);
    for (const p of persons) expect(inMailboxes.get(p.email), p.email).toBe(1);
    // A kill can catch notices SMTP accepted before the outbox marked them sent; they are
    // delivered again with the same Message-ID (so mailboxes drop them). By construction at
    // most one per lane past the end of its DATA plus MAIL_CONCURRENCY (4) awaiting their mark.
    expect(repeated).toBeLessThanOrEqual(2 * 4);
    const [outbox] = await s.sql`select count(*)::int as rows, count(distinct message_id)::int as ids from email_outbox where campaign = ${`policy:${version}`}`;
    expect(outbox).toEqual({ rows: PERSONS, ids: PERSONS });
    // The run's own progress counts what the killed attempt sent too.
    await waitFor(async () => (await handle.query(policyProgressQuery)).sent === PERSONS, { what: 'the workflow to count every notice', timeoutMs: 30_000 });
    await handle.terminate('test over');
  }, 180_000);

  it('hands over cleanly when its worker is restarted: not one notice is delivered twice', async () => {
    const { everyone, version, handle } = await campaignUnderWay('restart', 1500);
    // SIGTERM, as a deploy or `npm start`'s Ctrl-C would: the slice stops taking rows and marks what is in flight.
    await workers.at(-1)!.stop();
    const atStop = await noticeProgress(s.sql, version);
    expect(atStop.sent).toBeLessThan(everyone);

    workers.push(await spawnWorker(env));
    await allSent(version, everyone);

    const deliveries = await countPerAddress(`(${version})`, { raw: true });
    console.info(`policy restart: ${atStop.sent} sent before the restart; ${deliveries.size} people reached`);
    expect(deliveries.size).toBe(everyone);
    expect([...deliveries.values()].filter((n) => n !== 1)).toEqual([]);
    await waitFor(async () => (await handle.query(policyProgressQuery)).sent === everyone, { what: 'the workflow to count every notice', timeoutMs: 30_000 });
    await handle.terminate('test over');
  }, 180_000);

  it('loses and repeats nothing when Postgres goes away mid-campaign and comes back', async () => {
    // The worker reaches Postgres through a relay the test can cut (the test itself goes direct).
    const db = new URL(s.config.DATABASE_URL);
    const proxy = await startTcpProxy({ host: db.hostname, port: Number(db.port || 5432) });
    try {
      const viaProxy = new URL(db);
      viaProxy.host = `127.0.0.1:${proxy.port}`;
      const { everyone, version, handle } = await campaignUnderWay('pgdown', 1000, { ...env, DATABASE_URL: viaProxy.toString() });
      proxy.cut();
      const atCut = await noticeProgress(s.sql, version);
      expect(atCut.sent).toBeLessThan(everyone);
      await new Promise((r) => setTimeout(r, 2_000)); // the outage itself
      proxy.restore();

      await allSent(version, everyone);
      const deliveries = await countPerAddress(`(${version})`, { raw: true });
      console.info(`policy outage: ${atCut.sent} sent before Postgres went away; ${deliveries.size} people reached`);
      expect(deliveries.size).toBe(everyone);
      expect([...deliveries.values()].filter((n) => n !== 1)).toEqual([]);
      await handle.terminate('test over');
    } finally {
      await workers.at(-1)!.stop();
      await proxy.close();
    }
  }, 180_000);
});
