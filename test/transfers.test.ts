import { execFile } from 'node:child_process';
import { generateKeyPairSync, randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { pipeline } from 'node:stream/promises';
import { extract } from 'tar-stream';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { insertClient } from '../db/clients';
import { appFor, json, staffAuth } from './support/api';
import type { TestStack } from './support/stack';
import { useStack } from './support/fixture';
import { activate, registerCustomer, uniqueEmail } from './support/customers';
import { messagesTo, waitForMessage } from './support/mailbox';
import { waitFor } from './support/wait';
import { seedRecordings } from './support/recordings';
import { exportSubject, resolveSubject } from '../db/personal-data';
import { verifyTransferPackage } from '../lib/verify-transfer';
import { transferWorkflowId } from '../workflows/ids';
import { TransferStatus } from '../workflows/search-attributes';

/** D8, D6, D7: the business transfer as a controlled, verifiable process, on the real stack. */
let s: TestStack;
let app: ReturnType<typeof appFor>;
let support: { authorization: string };
let creator: { authorization: string };
let second: { authorization: string };
let admin: { authorization: string };

const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 3072, publicKeyEncoding: { type: 'spki', format: 'pem' }, privateKeyEncoding: { type: 'pkcs8', format: 'pem' } });
const weakKey = generateKeyPairSync('rsa', { modulusLength: 2048, publicKeyEncoding: { type: 'spki', format: 'pem' }, privateKeyEncoding: { type: 'pkcs8', format: 'pem' } }).publicKey;

const fixture = useStack(
  { TRANSFER_NOTICE_PERIOD: 'PT3S', TRANSFER_APPROVAL_TIMEOUT: 'PT6S', TRANSFER_ACK_TIMEOUT: 'PT8S', STAFF_EMAIL: `privacy-${randomUUID().slice(0, 8)}@topcall.test` },
  { ownDatabase: true, worker: true, roles: ['support', 'privacy_officer', 'admin'] },
);
beforeAll(async () => {
  ({ s, app, staff: { support, privacy_officer: creator, admin } } = fixture);
  second = await staffAuth(s.sql, 'privacy_officer');
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
    await waitForMessage(s.config.STAFF_EMAIL, (m) => m.subject.includes(id) && /needs 1 more approval/.test(m.subject), 'the approval reminder');
    await waitFor(async () => (await view(id)).status === 'lapsed', { what: 'the transfer to lapse', timeoutMs: 15_000 });
    expect((await approve(id, admin)).status).toBe(409);
  });
});

const tempDirs: string[] = [];
const tempDir = async () => {
  const dir = await mkdtemp(path.join(inject('runTempDir'), 'transfer-test-'));
  tempDirs.push(dir);
  return dir;
};
afterAll(() => Promise.all(tempDirs.map((d) => rm(d, { recursive: true, force: true }))));

/** The acquirer's own check, as a real process: `npm run verify-transfer`. */
const verifyCli = (...args: string[]) =>
  new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
    execFile(process.execPath, ['--import', 'tsx', 'scripts/verify-transfer.ts', ...args], { cwd: fileURLToPath(new URL('..', import.meta.url)) }, (err, stdout, stderr) =>
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });

/** A transfer of one client's people, approved by two officers, up to the acquirer's package email. */
async function approvedTransfer(clientId: string, afterHandover: 'keep' | 'erase' = 'keep') {
  const acquirer = acquirerEmail();
  const res = await newTransfer({ scope: { clientIds: [clientId] }, handoverAt: new Date(Date.now() + 4_000).toISOString(), afterHandover }, acquirer);
  expect(res.status).toBe(202);
  const { id } = (await res.json()) as { id: string };
  expect((await approve(id, second)).status).toBe(200);
  expect((await approve(id, admin)).status).toBe(200);
  return { id, acquirer };
}
const packageMail = (id: string, acquirer: string) => waitForMessage(acquirer, (m) => m.subject.includes(`(${id.slice(0, 8)})`) && /data package/.test(m.subject), 'the package email', 40_000);
const tokenIn = (text: string) => /package\?token=([\w-]+)/.exec(text)![1]!;

describe('a transfer end to end', () => {
  let saved: { file: string; manifestSha256: string; keyFile: string; signer: string };

  it('needs four eyes, leaves out D6 clients and restricted persons, notifies, hands over a signed, encrypted package the acquirer verifies, records the disclosure, then erases TopCall’s copy', async () => {
    const open = (await insertClient(s.sql, { name: 'Åben VVS ApS', restrictions: [] })).id;
    const closed = (await insertClient(s.sql, { name: 'Lukket El ApS', restrictions: ['no_third_party_transfer'] })).id;
    const moving = await registerCustomer(app, support, { clientId: open, email: uniqueEmail('moving') });
    const movingAuth = await activate(app, moving);
    const restricted = await registerCustomer(app, support, { clientId: open, email: uniqueEmail('restricted') });
    await s.sql`update customers set processing_restricted = true where id = ${restricted.id}`;
    const bound = await registerCustomer(app, support, { clientId: closed, email: uniqueEmail('bound') });
    const [recording] = await seedRecordings(s, { clientId: open, count: 1, recordedAt: new Date(Date.now() - 3_600_000) });
    await s.sql`update recordings set customer_id = ${moving.id} where id = ${recording!}`;

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
    // Issue 12: each approval is in the audit ledger, once (the repeated one added nothing).
    const approvals = await s.sql`select actor_role from audit_ledger where object_type = 'transfer' and object_id = ${id} and action = 'transfer.approve' and outcome = 'done' order by seq`;
    expect(approvals.map((a) => a.actor_role)).toEqual(['privacy_officer', 'admin']);

    // Notice to the one person handed over, exactly once, before the handover; none to the others.
    const notice = await waitForMessage(moving.email, (m) => /overdrages til Opkøber A\/S/.test(m.subject), 'the transfer notice');
    const [t0] = await s.sql`select handover_at from transfers where id = ${id}`;
    expect(Date.parse(notice.receivedAt)).toBeLessThan((t0!.handover_at as Date).getTime());
    const shown = await view(id);
    expect(shown.inventory).toEqual([{ clientId: open, persons: 1, recordings: 1, callMessages: 0, requests: 0 }]);
    expect(shown.excluded).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ clientId: closed, reason: expect.stringMatching(/^no_third_party_transfer/) }),
        expect.objectContaining({ clientId: open, reason: expect.stringMatching(/^processing_restricted/), persons: 1 }),
      ]),
    );

    // The acquirer's link and TopCall's signing key, named in the email and published.
    const mail = await packageMail(id, acquirer);
    const token = tokenIn(mail.text);
    const signingKey = (await (await app.request('/v1/transfers/signing-key')).json()) as { sha256: string; publicKeyPem: string };
    expect(mail.text).toContain(signingKey.sha256);
    expect((await app.request(`/v1/transfers/${id}/package`)).status).toBe(401);
    expect((await app.request(`/v1/transfers/${id}/package?token=${'x'.repeat(43)}`)).status).toBe(404);
    const download = await app.request(`/v1/transfers/${id}/package?token=${token}`);
    expect(download.status).toBe(200);
    expect(download.headers.get('content-type')).toBe('application/x-tar');
    const tar = Buffer.from(await download.arrayBuffer());
    expect(tar.includes(moving.email)).toBe(false); // nothing personal in clear

    // The acquirer's check, as a real process: signature, every hash, and decryption with its key.
    const dir = await tempDir();
    const file = path.join(dir, 'package.tar');
    const keyFile = path.join(dir, 'acquirer.pem');
    await writeFile(file, tar);
    await writeFile(keyFile, privateKey, { mode: 0o600 });
    const out = path.join(dir, 'out');
    const verified = await verifyCli(file, '--key', keyFile, '--signer', signingKey.sha256, '--out', out);
    expect(verified.stdout, verified.stderr).toContain('OK: the package is intact and signed by TopCall.');
    expect(verified.code).toBe(0);
    const manifestSha256 = /manifest\s+sha256 ([0-9a-f]{64})/.exec(verified.stdout)![1]!;
    expect(((await view(id)).package as { manifestSha256: string }).manifestSha256).toBe(manifestSha256);
    expect(mail.text).toContain(manifestSha256);
    const persons = await readFile(path.join(out, 'clients', open, 'persons', '00000.jsonl'), 'utf8');
    expect(persons.trim().split('\n').map((l) => (JSON.parse(l) as { email: string }).email)).toEqual([moving.email]);
    expect((await readdir(path.join(out, 'clients')))).toEqual([open]);
    expect(await readdir(path.join(out, 'clients', open, 'audio'))).toEqual([recording]);
    saved = { file, manifestSha256, keyFile, signer: signingKey.sha256 };

    // The disclosure register, and the person's own access export, name the acquirer with its contact details.
    const disclosed = await s.sql`select ds.customer_id from disclosures d join disclosed_persons ds on ds.disclosure_id = d.id join recipients r on r.id = d.recipient_id where r.type = 'acquirer' and r.email = ${acquirer}`;
    const [{ disclosure_id: disclosureId }] = (await s.sql`select disclosure_id from transfers where id = ${id}`) as unknown as [{ disclosure_id: string }];
    expect(await s.sql`select actor_type, actor_role from audit_ledger where object_type = 'disclosure' and object_id = ${disclosureId} and action = 'disclosure.record'`).toEqual([
      { actor_type: 'system', actor_role: 'business_transfer' },
    ]);
    expect(disclosed.map((r) => r.customer_id)).toEqual([moving.id]);
    const exported = await exportSubject(s.sql, await resolveSubject(s.sql, { customerId: moving.id }));
    expect(exported.data.recipients).toEqual([expect.objectContaining({ recipient: 'Opkøber A/S', type: 'acquirer', email: acquirer })]);
    expect((await app.request('/v1/me', { headers: movingAuth })).status).toBe(200);

    // Acknowledgement: a wrong hash is refused and staff are told; the right one completes; then TopCall's copy is erased.
    const ack = (sha: string) => app.request(`/v1/transfers/${id}/acknowledgement?token=${token}`, json({ manifestSha256: sha }));
    expect((await ack('0'.repeat(64))).status).toBe(409);
    await waitForMessage(s.config.STAFF_EMAIL, (m) => m.subject.includes(id) && /does not match the manifest/.test(m.subject), 'the mismatch escalation');
    expect((await ack(manifestSha256)).status).toBe(200);
    await waitFor(async () => (await view(id)).status === 'completed', { what: 'the transfer to complete', timeoutMs: 20_000 });
    expect((await s.sql`select status, email from customers where id = ${moving.id}`)[0]).toEqual({ status: 'erased', email: null });
    expect((await s.sql`select status from customers where id = ${restricted.id}`)[0]).toEqual({ status: 'active' });
    expect((await s.sql`select status from customers where id = ${bound.id}`)[0]).toEqual({ status: 'active' });
    expect(existsSync(path.join(s.config.DATA_DIR, 'transfers', `${id}.tar`))).toBe(false);
    expect((await app.request(`/v1/transfers/${id}/package?token=${token}`)).status).toBe(410);
    expect((await messagesTo(moving.email)).filter((m) => /overdrages/.test(m.subject))).toHaveLength(1);
    expect(await messagesTo(restricted.email).then((ms) => ms.filter((m) => /overdrages/.test(m.subject)))).toEqual([]);
    expect(await messagesTo(bound.email).then((ms) => ms.filter((m) => /overdrages/.test(m.subject)))).toEqual([]);

    const run = await s.client.workflow.getHandle(transferWorkflowId(id)).describe();
    expect(run.typedSearchAttributes.get(TransferStatus)).toBe('completed');
    expect(JSON.stringify(run.memo)).not.toMatch(/@/);
  });

  it('fails verification naming the file when any byte of the package is flipped', async () => {
    expect(saved, 'the package of the test before').toBeDefined();
    const original = await readFile(saved.file);
    const entries: { name: string; dataStart: number; size: number }[] = [];
    const tar = extract();
    const reading = pipeline(Readable.from([original]), tar);
    for await (const entry of tar) {
      entries.push({ name: entry.header.name, dataStart: entry.offset + 512, size: entry.header.size ?? 0 });
      entry.resume();
    }
    await reading;
    const pick = (re: RegExp) => entries.find((e) => re.test(e.name))!;
    const targets = [pick(/\/persons\/.*\.jsonl\.enc$/), pick(/\/audio\/.*\.enc$/), pick(/^key\.json$/), pick(/^signer\.pem$/), pick(/^manifest\.json$/), pick(/^manifest\.sig$/)];
    const dir = await tempDir();
    for (const target of targets) {
      const flipped = Buffer.from(original);
      const at = target.dataStart + Math.floor(target.size / 2);
      flipped[at] = flipped[at]! ^ 0x01;
      const file = path.join(dir, `flipped-${path.basename(target.name)}.tar`);
      await writeFile(file, flipped);
      const report = await verifyTransferPackage(file, { privateKeyPem: privateKey, signerKeySha256: saved.signer });
      expect(report.ok, target.name).toBe(false);
      const named = report.problems.map((p) => p.path);
      // The flipped file is named; a flipped manifest or signature shows as the manifest not matching TopCall's signature.
      expect(named, target.name).toContain(/^manifest\.(json|sig)$/.test(target.name) ? 'manifest.json' : target.name);
    }
    // And as the acquirer sees it: a non-zero exit and the file's name.
    const jsonl = targets[0]!;
    const cli = await verifyCli(path.join(dir, `flipped-${path.basename(jsonl.name)}.tar`), '--signer', saved.signer);
    expect(cli.code).toBe(1);
    expect(cli.stdout).toContain(`PROBLEM     ${jsonl.name}:`);
    // The untouched package still verifies.
    expect((await verifyTransferPackage(saved.file, { privateKeyPem: privateKey })).ok).toBe(true);
  });
});

describe('a transfer that does not complete', () => {
  it('escalates a missing acknowledgement to staff; cancelled before any download, it revokes the link, deletes the package, withdraws the disclosure and tells the persons', async () => {
    const clientId = (await insertClient(s.sql, { name: 'Aflyst Tømrer ApS', restrictions: [] })).id;
    const person = await registerCustomer(app, support, { clientId, email: uniqueEmail('called-off') });
    const { id, acquirer } = await approvedTransfer(clientId);
    const mail = await packageMail(id, acquirer);
    const token = tokenIn(mail.text);

    // No acknowledgement within TRANSFER_ACK_TIMEOUT: staff are told, and the transfer says so.
    await waitForMessage(s.config.STAFF_EMAIL, (m) => m.subject.includes(id) && /has not acknowledged/.test(m.subject), 'the overdue escalation', 40_000);
    await waitFor(async () => (await view(id)).status === 'acknowledgement_overdue', { what: 'the overdue status', timeoutMs: 10_000 });
    const file = path.join(s.config.DATA_DIR, 'transfers', `${id}.tar`);
    expect(existsSync(file)).toBe(true);

    expect((await app.request(`/v1/transfers/${id}/cancellation`, { method: 'POST', headers: support })).status).toBe(403);
    const cancel = await app.request(`/v1/transfers/${id}/cancellation`, { method: 'POST', headers: creator });
    expect(cancel.status).toBe(202);
    expect(await cancel.json()).toMatchObject({ id, ending: 'cancelled' });
    await waitFor(async () => (await view(id)).status === 'cancelled', { what: 'the cancellation to be carried out', timeoutMs: 20_000 });

    const after = await view(id);
    expect(after.outcome).toMatchObject({ ended: 'cancelled', downloaded: false, handedOver: 0, notHandedOver: 1, linkRevoked: true, packageDeleted: true });
    expect(existsSync(file)).toBe(false);
    expect((await app.request(`/v1/transfers/${id}/package?token=${token}`)).status).toBe(404);
    expect((await app.request(`/v1/transfers/${id}/acknowledgement?token=${token}`, json({ manifestSha256: '0'.repeat(64) }))).status).toBe(404);
    // The register: recorded, then withdrawn, so the person's recipients do not list the acquirer.
    const [d] = await s.sql`select d.withdrawn_at from transfers t join disclosures d on d.id = t.disclosure_id where t.id = ${id}`;
    expect(d!.withdrawn_at).toBeInstanceOf(Date);
    expect((await exportSubject(s.sql, await resolveSubject(s.sql, { customerId: person.id }))).data.recipients).toEqual([]);
    // Everyone concerned hears of it, once.
    await waitForMessage(person.email, (m) => /overdrages ikke/.test(m.subject), 'the called-off notice');
    await waitForMessage(acquirer, (m) => /cancelled/.test(m.subject), 'the acquirer’s cancellation email');
    expect((await messagesTo(person.email)).filter((m) => /overdrages ikke/.test(m.subject))).toHaveLength(1);
    expect((await app.request(`/v1/transfers/${id}/cancellation`, { method: 'POST', headers: creator })).status).toBe(409);
    expect((await s.sql`select status from customers where id = ${person.id}`)[0]).toEqual({ status: 'active' });
  });

  it('rejected by the acquirer after downloading it: the link dies and the package goes, and the register keeps that it was handed over', async () => {
    const clientId = (await insertClient(s.sql, { name: 'Afvist Maler ApS', restrictions: [] })).id;
    const person = await registerCustomer(app, support, { clientId, email: uniqueEmail('rejected') });
    const { id, acquirer } = await approvedTransfer(clientId);
    const token = tokenIn((await packageMail(id, acquirer)).text);
    expect((await app.request(`/v1/transfers/${id}/package?token=${token}`)).status).toBe(200);
    expect((await app.request(`/v1/transfers/${id}/rejection`, { method: 'POST' })).status).toBe(401);
    const rejected = await app.request(`/v1/transfers/${id}/rejection?token=${token}`, { method: 'POST' });
    expect(rejected.status).toBe(202);
    await waitFor(async () => (await view(id)).status === 'rejected', { what: 'the rejection to be carried out', timeoutMs: 20_000 });
    expect((await view(id)).outcome).toMatchObject({ ended: 'rejected', downloaded: true, handedOver: 1, notHandedOver: 0 });
    expect((await app.request(`/v1/transfers/${id}/package?token=${token}`)).status).toBe(404);
    expect(existsSync(path.join(s.config.DATA_DIR, 'transfers', `${id}.tar`))).toBe(false);
    expect((await exportSubject(s.sql, await resolveSubject(s.sql, { customerId: person.id }))).data.recipients).toEqual([
      expect.objectContaining({ type: 'acquirer', email: acquirer }),
    ]);
    expect((await messagesTo(person.email)).filter((m) => /overdrages ikke/.test(m.subject))).toEqual([]);
  });
});
