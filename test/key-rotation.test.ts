import { randomBytes, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createActivities } from '../activities';
import { createApp } from '../api/app';
import { PersonKeys, unwrapWith } from '../db/person-keys';
import { SEALED_TEXT_PREFIX, unsealText } from '../lib/at-rest';
import { keyRingFromConfig, keySpec } from '../lib/payload-keys';
import { appFor, staffAuth } from './support/api';
import { openStack, silentLog, startWorker, type RunningWorker, type TestStack } from './support/stack';
import { newClient } from './support/recordings';
import { registerCustomer, uniqueEmail } from './support/customers';
import { messagesTo, waitForMessage } from './support/mailbox';

/**
 * Issue 12, D15: a database backup taken before an erasure holds the person's data key wrapped by
 * a master key of DATA_KEYS, so it keeps opening their sealed copies while that master key lives.
 * What makes backups unreadable in the end is retiring master keys: the data-retention sweep
 * re-wraps every live key under the current master key (and seals outbox bodies written before
 * sealing), after which the old master key can leave DATA_KEYS — and a backup taken under it no
 * longer opens. Staff are told when the current master key outlives DATA_KEY_MAX_AGE, the bound the
 * erasure answer states. Shown here on the real sweep workflow, with a backup copied from the tables.
 */
const k1 = randomBytes(32);
const k2 = randomBytes(32);
const ringK1 = keySpec('k1', k1);
const ringK2K1 = `${keySpec('k2', k2)},${keySpec('k1', k1)}`;
const ringK2 = keySpec('k2', k2);
const keysOf = (s: TestStack, spec: string) => new PersonKeys(s.sql, async () => keyRingFromConfig(spec, undefined, 'DATA_KEYS'));
const staffEmail = `privacy-${randomUUID().slice(0, 8)}@topcall.test`;

let s: TestStack;
let worker: RunningWorker | undefined;
let support: { authorization: string };
let clientId: string;

beforeAll(async () => {
  s = await openStack({ DATA_KEYS: ringK1, DATA_KEY_MAX_AGE: 'P30D', STAFF_EMAIL: staffEmail }, { ownDatabase: true });
  support = await staffAuth(s.sql, 'support');
  clientId = await newClient(s);
  worker = await startWorker(s);
});
afterAll(async () => {
  await worker?.stop();
  await s.close();
});

/** The sweep workflow, run by a worker whose master key ring is `spec`. */
async function sweepWith(spec: string): Promise<Record<string, number>> {
  await worker?.stop();
  const config = { ...s.config, DATA_KEYS: spec };
  worker = await startWorker(s, createActivities({ sql: s.sql, mailer: s.mailer, store: s.store, config, keys: keysOf(s, spec) }));
  return (await s.client.workflow.execute('dataRetentionSweep', { taskQueue: s.config.TEMPORAL_TASK_QUEUE, workflowId: `data-retention-${randomUUID()}`, args: [] })) as Record<string, number>;
}

describe('retiring a master key makes backups taken under it unreadable (issue 12)', () => {
  it('re-wraps live keys, seals old bodies, and a backup from before no longer opens once the old key is retired', async () => {
    const app = appFor(s);
    const tag = randomUUID().slice(0, 8);
    const name = `Birthe Kjærgaard ${tag}`;
    const person = await registerCustomer(app, support, { clientId, name, email: uniqueEmail('rotation') });
    const [invitation] = await s.sql<{ textBody: string }[]>`select text_body as "textBody" from email_outbox where key = ${`customer:${person.id}:invitation`}`;
    expect(invitation!.textBody.startsWith(SEALED_TEXT_PREFIX)).toBe(true);
    // An email written before sealing existed: its body is in clear.
    const legacyKey = `customer:${person.id}:legacy-${tag}`;
    await s.sql`insert into email_outbox (key, message_id, recipient, category, subject, text_body, status)
                values (${legacyKey}, ${`<${tag}@topcall.test>`}, ${person.email}, 'service', 'Velkommen', ${`Hej ${name}, velkommen.`}, 'sent')`;

    // A database backup, taken now: the person's key row (wrapped by k1) and the outbox bodies.
    const backupKeys = await s.sql<{ id: string; masterKeyId: string; wrapped: Buffer }[]>`
      select id, master_key_id as "masterKeyId", wrapped from person_keys where customer_id = ${person.id}`;
    expect(backupKeys.map((k) => k.masterKeyId)).toEqual(['k1']);
    const backupBody = invitation!.textBody;
    const openBackup = (spec: string) => unsealText({ keyById: async () => unwrapWith(keyRingFromConfig(spec, undefined, 'DATA_KEYS'), backupKeys[0]!) }, backupBody);
    // Honestly: while k1 exists, the backup opens.
    expect(await openBackup(ringK1)).toContain(name);

    // Rotation: k2 becomes current; the sweep re-wraps every live key under it and seals the old body.
    const counts = await sweepWith(ringK2K1);
    const live = await s.sql<{ masterKeyId: string; n: number }[]>`
      select master_key_id as "masterKeyId", count(*)::int as n from person_keys where wrapped is not null group by 1`;
    expect(live).toEqual([{ masterKeyId: 'k2', n: expect.any(Number) }]);
    expect(counts.person_keys_rewrapped).toBe(live[0]!.n);
    expect(counts.email_outbox_sealed).toBe(1);
    const [legacy] = await s.sql<{ textBody: string }[]>`select text_body as "textBody" from email_outbox where key = ${legacyKey}`;
    expect(legacy!.textBody.startsWith(SEALED_TEXT_PREFIX)).toBe(true);
    expect(legacy!.textBody).not.toContain(name);
    // A second sweep finds nothing left to do.
    expect(await sweepWith(ringK2K1)).toMatchObject({ person_keys_rewrapped: 0, email_outbox_sealed: 0 });

    // k1 retired: the live data opens with k2 alone ...
    const current = keysOf(s, ringK2);
    expect(await unsealText(current, invitation!.textBody)).toContain(name);
    expect(await unsealText(current, legacy!.textBody)).toBe(`Hej ${name}, velkommen.`);
    // ... and the backup taken under k1 does not open any more.
    await expect(openBackup(ringK2)).rejects.toThrow(/not in DATA_KEYS/);
    await expect(openBackup(ringK2K1)).resolves.toContain(name); // (while k1 was still kept, it did)

    // Staff see where rotation stands.
    const rotatedApp = createApp({ config: { ...s.config, DATA_KEYS: ringK2 }, sql: s.sql, temporal: s.client, store: s.store, log: silentLog, payloadCodec: s.payloadCodec, keys: current });
    const view = (await (await rotatedApp.request('/v1/retention/data', { headers: support })).json()) as { keys: Record<string, unknown>; removed: Record<string, number> };
    expect(view.keys).toMatchObject({ currentMasterKeyId: 'k2', rotationOverdue: false, liveUnderOlderKeys: 0, liveUnderMissingKeys: 0, rewrapped: live[0]!.n, outboxBodiesSealed: 1 });
    expect(view.removed).not.toHaveProperty('person_keys_rewrapped');
  });

  it('emails staff once a day while the current master key is older than DATA_KEY_MAX_AGE', async () => {
    await s.sql`update data_master_keys set first_used_at = now() - interval '31 days' where id = 'k2'`;
    await sweepWith(ringK2);
    const alert = await waitForMessage(staffEmail, (m) => m.subject.includes('Data master keys'), 'the rotation alert');
    expect(alert.text).toContain('id k2');
    expect(alert.text).toContain('DATA_KEY_MAX_AGE (P30D)');
    await sweepWith(ringK2);
    const alerts = (await messagesTo(staffEmail)).filter((m) => m.subject.includes('Data master keys'));
    expect(alerts).toHaveLength(1);

    const app = createApp({ config: { ...s.config, DATA_KEYS: ringK2 }, sql: s.sql, temporal: s.client, store: s.store, log: silentLog, payloadCodec: s.payloadCodec, keys: keysOf(s, ringK2) });
    const view = (await (await app.request('/v1/retention/data', { headers: support })).json()) as { keys: { rotationOverdue: boolean } };
    expect(view.keys.rotationOverdue).toBe(true);
  });
});
