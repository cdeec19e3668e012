import { constants, createDecipheriv, createHash, generateKeyPairSync, privateDecrypt, randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { strFromU8, unzipSync } from 'fflate';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { insertClient } from '../db/clients';
import { appFor, json, staffAuth } from './support/api';
import { openStack, startWorker, type RunningWorker, type TestStack } from './support/stack';
import { activate, registerCustomer, uniqueEmail } from './support/customers';
import { messagesTo, waitForMessage } from './support/mailbox';
import { waitFor } from './support/wait';
import { transferWorkflowId } from '../workflows/ids';
import { TransferStatus } from '../workflows/search-attributes';

/** D8, D6, D7: the business transfer as a controlled, verifiable process, on the real stack. */
let s: TestStack;
let worker: RunningWorker;
let app: ReturnType<typeof appFor>;
let support: { authorization: string };
let creator: { authorization: string };
let second: { authorization: string };
let admin: { authorization: string };

const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 3072, publicKeyEncoding: { type: 'spki', format: 'pem' }, privateKeyEncoding: { type: 'pkcs8', format: 'pem' } });
const weakKey = generateKeyPairSync('rsa', { modulusLength: 2048, publicKeyEncoding: { type: 'spki', format: 'pem' }, privateKeyEncoding: { type: 'pkcs8', format: 'pem' } }).publicKey;

beforeAll(async () => {
  s = await openStack(
    { TRANSFER_NOTICE_PERIOD: 'PT3S', TRANSFER_APPROVAL_TIMEOUT: 'PT6S', STAFF_EMAIL: `privacy-${randomUUID().slice(0, 8)}@topcall.test` },
    { ownDatabase: true },
  );
  worker = await startWorker(s);
  app = appFor(s);
  support = await staffAuth(s.sql, 'support');
  creator = await staffAuth(s.sql, 'privacy_officer');
  second = await staffAuth(s.sql, 'privacy_officer');
  admin = await staffAuth(s.sql, 'admin');
});
afterAll(async () => {
  await worker.stop();
  await s.close();
});

const acquirerEmail = () => uniqueEmail('acquirer');
const newTransfer = (body: Record<string, unknown> = {}, email = acquirerEmail()) =>
  app.request(
    '/v1/transfers',
    json(
      {
        acquirer: { name: 'Opkøber A/S', email, publicKey },
        scope: { all: true },
        legalBasis: 'acquisition',
        handoverAt: new Date(Date.now() + 5_000).toISOString(),
        afterHandover: 'erase',
        ...body,
      },
      creator,
    ),
  );
const approve = (id: string, who: { authorization: string }) => app.request(`/v1/transfers/${id}/approvals`, { method: 'POST', headers: who });
const view = async (id: string) => (await (await app.request(`/v1/transfers/${id}`, { headers: support })).json()) as Record<string, unknown>;

describe('starting a transfer', () => {
  it('refuses a weak or invalid key, too little notice, and unknown clients, starting nothing', async () => {
    const before = (await s.sql`select count(*)::int as n from transfers`)[0]!.n;
    for (const [body, field] of [
      [{ acquirer: { name: 'X A/S', email: 'x@x.dk', publicKey: weakKey } }, 'acquirer.publicKey'],
      [{ acquirer: { name: 'X A/S', email: 'x@x.dk', publicKey: '-----BEGIN PUBLIC KEY-----\n' + 'A'.repeat(200) + '\n-----END PUBLIC KEY-----' } }, 'acquirer.publicKey'],
      [{ handoverAt: new Date(Date.now() + 1_000).toISOString() }, 'handoverAt'],
      [{ scope: { clientIds: [randomUUID()] } }, 'scope.clientIds'],
    ] as const) {
      const res = await newTransfer(body as Record<string, unknown>);
      expect(res.status, field).toBe(422);
      expect(((await res.json()) as { errors: { field: string }[] }).errors.map((e) => e.field)).toContain(field);
    }
    expect((await app.request('/v1/transfers', json({}, support))).status).toBe(403);
    expect((await s.sql`select count(*)::int as n from transfers`)[0]!.n).toBe(before);
  });

  it('lapses without two approvals, after reminding staff', async () => {
    const res = await newTransfer({ handoverAt: new Date(Date.now() + 60_000).toISOString() });
    expect(res.status).toBe(202);
    const { id } = (await res.json()) as { id: string };
    expect((await approve(id, second)).status).toBe(200); // one is not enough
    await waitForMessage((m) => m.to.includes(s.config.STAFF_EMAIL) && m.subject.includes(id) && /needs 1 more approval/.test(m.subject), 'the approval reminder');
    await waitFor(async () => (await view(id)).status === 'lapsed', { what: 'the transfer to lapse', timeoutMs: 15_000 });
    expect((await approve(id, admin)).status).toBe(409);
  });
});

describe('a transfer end to end', () => {
  it('needs four eyes, leaves out D6 clients and restricted persons, notifies, hands over an encrypted package the acquirer can verify, records the disclosure, then erases TopCall’s copy', async () => {
    const open = (await insertClient(s.sql, { name: 'Åben VVS ApS', restrictions: [] })).id;
    const closed = (await insertClient(s.sql, { name: 'Lukket El ApS', restrictions: ['no_third_party_transfer'] })).id;
    const moving = await registerCustomer(app, support, { clientId: open, email: uniqueEmail('moving') });
    const movingAuth = await activate(app, moving);
    const restricted = await registerCustomer(app, support, { clientId: open, email: uniqueEmail('restricted') });
    await s.sql`update customers set processing_restricted = true where id = ${restricted.id}`;
    const bound = await registerCustomer(app, support, { clientId: closed, email: uniqueEmail('bound') });

    const acquirer = acquirerEmail();
    const res = await newTransfer({ scope: { clientIds: [open, closed] }, handoverAt: new Date(Date.now() + 4_000).toISOString() }, acquirer);
    expect(res.status).toBe(202);
    const { id } = (await res.json()) as { id: string };

    // Four eyes: not the creator, not support, not the same approver twice.
    expect((await approve(id, creator)).status).toBe(403);
    expect((await approve(id, support)).status).toBe(403);
    expect((await approve(id, second)).status).toBe(200);
    expect((await approve(id, second)).status).toBe(409);
    expect(((await (await approve(id, admin)).json()) as { approvals: number }).approvals).toBe(2);

    // Notice to the one person handed over, exactly once, before the handover; none to the others.
    const notice = await waitForMessage((m) => m.to.includes(moving.email) && /overdrages til Opkøber A\/S/.test(m.subject), 'the transfer notice');
    const [t0] = await s.sql`select handover_at from transfers where id = ${id}`;
    expect(Date.parse(notice.receivedAt)).toBeLessThan((t0!.handover_at as Date).getTime());
    const shown = await view(id);
    expect(shown.inventory).toEqual([{ clientId: open, persons: 1, recordings: 0, callMessages: 0, requests: 0 }]);
    expect(shown.excluded).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ clientId: closed, reason: expect.stringMatching(/^no_third_party_transfer/) }),
        expect.objectContaining({ clientId: open, reason: expect.stringMatching(/^processing_restricted/), persons: 1 }),
      ]),
    );

    // The acquirer's link; the package decrypts with its private key, and the manifest verifies.
    const mail = await waitForMessage((m) => m.to.includes(acquirer) && m.subject.includes(id.slice(0, 8)), 'the package email', 30_000);
    const token = /package\?token=([\w-]+)/.exec(mail.text)![1]!;
    expect((await app.request(`/v1/transfers/${id}/package`)).status).toBe(401);
    expect((await app.request(`/v1/transfers/${id}/package?token=${'x'.repeat(43)}`)).status).toBe(404);
    const download = await app.request(`/v1/transfers/${id}/package?token=${token}`);
    expect(download.status).toBe(200);
    const envelope = (await download.json()) as { wrappedKey: string; iv: string; tag: string; ciphertext: string };
    expect(JSON.stringify(envelope)).not.toContain(moving.email);
    const key = privateDecrypt({ key: privateKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' }, Buffer.from(envelope.wrappedKey, 'base64'));
    const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(envelope.iv, 'base64'));
    decipher.setAuthTag(Buffer.from(envelope.tag, 'base64'));
    const zip = unzipSync(new Uint8Array(Buffer.concat([decipher.update(Buffer.from(envelope.ciphertext, 'base64')), decipher.final()])));
    const manifestBytes = zip['manifest.json']!;
    const manifest = JSON.parse(strFromU8(manifestBytes)) as { files: { name: string; sha256: string }[] };
    for (const f of manifest.files) expect(createHash('sha256').update(zip[f.name]!).digest('hex'), f.name).toBe(f.sha256);
    expect(Object.keys(zip).filter((n) => n.startsWith('persons/'))).toEqual([`persons/${moving.id}.json`]);
    expect(strFromU8(zip[`persons/${moving.id}.json`]!)).toContain(moving.email);
    const manifestSha256 = createHash('sha256').update(manifestBytes).digest('hex');
    expect(((await view(id)).package as { manifestSha256: string }).manifestSha256).toBe(manifestSha256);

    // The disclosure register: the acquirer received the moving person's data, and only theirs.
    const disclosed = await s.sql`select ds.customer_id from disclosures d join disclosure_subjects ds on ds.disclosure_id = d.id join recipients r on r.id = d.recipient_id where r.type = 'acquirer' and r.email = ${acquirer}`;
    expect(disclosed.map((r) => r.customer_id)).toEqual([moving.id]);
    expect((await app.request('/v1/me', { headers: movingAuth })).status).toBe(200);

    // Acknowledgement: a wrong hash is refused, the right one completes; then TopCall's copy is erased.
    const ack = (sha: string) => app.request(`/v1/transfers/${id}/acknowledgement?token=${token}`, json({ manifestSha256: sha }));
    expect((await ack('0'.repeat(64))).status).toBe(409);
    expect((await ack(manifestSha256)).status).toBe(200);
    await waitFor(async () => (await view(id)).status === 'completed', { what: 'the transfer to complete', timeoutMs: 20_000 });
    expect((await s.sql`select status, email from customers where id = ${moving.id}`)[0]).toEqual({ status: 'erased', email: null });
    expect((await s.sql`select status from customers where id = ${restricted.id}`)[0]).toEqual({ status: 'active' });
    expect((await s.sql`select status from customers where id = ${bound.id}`)[0]).toEqual({ status: 'active' });
    expect(existsSync(path.join(s.config.DATA_DIR, 'transfers', `${id}.json`))).toBe(false);
    expect((await messagesTo(moving.email)).filter((m) => /overdrages/.test(m.subject))).toHaveLength(1);
    expect(await messagesTo(restricted.email).then((ms) => ms.filter((m) => /overdrages/.test(m.subject)))).toEqual([]);
    expect(await messagesTo(bound.email).then((ms) => ms.filter((m) => /overdrages/.test(m.subject)))).toEqual([]);

    const run = await s.client.workflow.getHandle(transferWorkflowId(id)).describe();
    expect(run.typedSearchAttributes.get(TransferStatus)).toBe('completed');
    expect(JSON.stringify(run.memo)).not.toMatch(/@/);
  });
});
