import { randomUUID } from 'node:crypto';
import { Connection } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ENCRYPTED_ENCODING, type JsonPayload, payloadToJson } from '../lib/payload-codec';
import { appFor, json, staffAuth } from './support/api';
import type { TestStack } from './support/stack';
import { useStack } from './support/fixture';
import { newClient, uploadRecording } from './support/recordings';
import { activate, registerCustomer, seedCustomers } from './support/customers';
import { awaitDecision, fileAndApprove } from './support/requests';
import { rejectRecipients, releaseRecipients, waitForMessage } from './support/mailbox';
import { waitFor } from './support/wait';

/**
 * Issue 12, D9: the request, dispute, policy and customer flows run with real-looking names,
 * addresses, numbers and free texts (and an SMTP 550 that quotes an address); then the raw
 * history of every run, fetched from Temporal with a plain connection (no codec), holds none of
 * them in clear, nor the ids and failure texts the workflows do carry; every payload but the
 * indexed search attributes is encrypted. Through the API's /codec/decode with an officer's
 * token (as the Web UI asks) the same payloads decode and contain those ids and failure texts;
 * without a token 401, support 403, and only the UI's origin passes CORS.
 */
let s: TestStack;
let app: ReturnType<typeof appFor>;
let officer: { authorization: string; token: string };
let support: { authorization: string };
let plain: Connection;

const tag = randomUUID().slice(0, 6);
const mette = { name: `Mette Frederiksen-Lund ${tag}`, email: `mette.frederiksen.lund.${tag}@kunde.test` };
const caller = { name: `Ole Bjørnskov ${tag}`, email: `ole.bjornskov.${tag}@kunde.test` };
const phone = { typed: '28 71 93 04', e164: '+4528719304' };
const texts = {
  note: `Jeg hedder ${mette.name} og bor på Nørrebrogade 14, 2200 København N`,
  disputeReason: `${mette.name} bestrider aftalen om ${phone.typed}`,
  resolution: `Forliget med ${mette.name}`,
};
const UI_ORIGIN = 'http://127.0.0.1:8233';

/** Every run of this file's task queue, read from Temporal without any codec. */
async function rawHistories(): Promise<{ workflowId: string; history: temporal.api.history.v1.IHistory }[]> {
  const namespace = s.config.TEMPORAL_NAMESPACE;
  const runs: { workflowId: string; runId: string }[] = [];
  let page: Uint8Array | undefined;
  do {
    const res = await plain.workflowService.listWorkflowExecutions({ namespace, query: `TaskQueue = '${s.config.TEMPORAL_TASK_QUEUE}'`, nextPageToken: page });
    for (const e of res.executions ?? []) runs.push({ workflowId: e.execution!.workflowId!, runId: e.execution!.runId! });
    page = res.nextPageToken?.length ? res.nextPageToken : undefined;
  } while (page);
  const out = [];
  for (const run of runs) {
    const events: temporal.api.history.v1.IHistoryEvent[] = [];
    let next: Uint8Array | undefined;
    do {
      const res = await plain.workflowService.getWorkflowExecutionHistory({ namespace, execution: run, nextPageToken: next });
      events.push(...(res.history?.events ?? []));
      next = res.nextPageToken?.length ? res.nextPageToken : undefined;
    } while (next);
    out.push({ workflowId: run.workflowId, history: { events } });
  }
  return out;
}

/** Every Payload in a history (objects with metadata.encoding), with where it sits. */
function payloadsIn(value: unknown, path: string, out: { path: string; payload: temporal.api.common.v1.IPayload }[]) {
  if (!value || typeof value !== 'object' || value instanceof Uint8Array) return out;
  const v = value as Record<string, unknown>;
  if (v.metadata && typeof v.metadata === 'object' && (v.metadata as Record<string, unknown>).encoding instanceof Uint8Array) {
    out.push({ path, payload: v as temporal.api.common.v1.IPayload });
    return out;
  }
  for (const [k, child] of Object.entries(v)) payloadsIn(child, `${path}.${k}`, out);
  return out;
}

const decode = (payloads: JsonPayload[], headers: Record<string, string>) =>
  app.request('/codec/decode', json({ payloads }, { 'x-namespace': s.config.TEMPORAL_NAMESPACE, ...headers }));

const fixture = useStack(
  { POLICY_NOTICE_PERIOD: 'PT2S', STAFF_EMAIL: `privacy-${tag}@topcall.test` },
  { ownDatabase: true, worker: true, roles: ['privacy_officer', 'support'] },
);
beforeAll(async () => {
  ({ s, app, staff: { privacy_officer: officer, support } } = fixture);
  plain = await Connection.connect({ address: s.config.TEMPORAL_ADDRESS! });
});
// Registered after the fixture, so it runs before the worker stops.
afterAll(async () => {
  await releaseRecipients([caller.email, `nomailbox-${tag}`]);
  await plain?.close();
});

describe('histories hold no personal data in clear (issue 12)', () => {
  const carried: string[] = []; // values the workflows do carry, which only the codec may reveal

  it('runs the customer, request, dispute and policy flows, then finds none of their values in the raw histories', { timeout: 180_000 }, async () => {
    const clientId = await newClient(s, `Frederiksen Rengøring ApS ${tag}`);

    // Customer: registration, invitation, activation (customerLifecycle).
    const who = await registerCustomer(app, support, { clientId, email: mette.email, name: mette.name, providedBy: `${mette.name} selv, telefonisk` });
    const auth = await activate(app, who);

    // A request with a free-text note naming her, approved (accessRequest).
    const restriction = await fileAndApprove(app, auth, officer, { type: 'restriction', details: { note: texts.note } });

    // A caller's access request whose address the mail server refuses for good: SMTP 550.
    await rejectRecipients([caller.email]);
    const filed = await app.request('/v1/requests', json({ type: 'access', caller: { name: caller.name, email: caller.email, phone: phone.typed, identityCheck: `Ringet tilbage på ${phone.typed}` } }, support));
    expect(filed.status).toBe(202);
    const callerRequest = ((await filed.json()) as { id: string }).id;
    await waitForMessage(s.config.STAFF_EMAIL, (m) => m.subject.startsWith('UNDELIVERABLE') && m.subject.includes(callerRequest), 'the alert about the refused acknowledgement');
    await awaitDecision(app, officer, callerRequest);
    expect((await app.request(`/v1/requests/${callerRequest}/decision`, json({ decision: 'approve' }, officer))).status).toBeLessThan(300);
    await waitFor(async () => (await s.sql`select status from data_requests where id = ${callerRequest}`)[0]?.status === 'delivery_failed', { what: 'delivery_failed', timeoutMs: 30_000 });

    // A dispute holding her recording (by account and number), then resolved (dispute).
    const recording = (await uploadRecording(app, support, clientId, { customerId: who.id, callerNumber: phone.typed }, 'p')).id;
    const dispute = await app.request('/v1/disputes', json({ clientId, recordingIds: [recording], reason: texts.disputeReason }, support));
    expect(dispute.status).toBe(201);
    const disputeId = ((await dispute.json()) as { id: string }).id;
    await waitFor(async () => (await s.sql`select 1 from recording_holds where recording_id = ${recording}`).length > 0, { what: "the hold" });
    const resolved = await app.request(`/v1/disputes/${disputeId}/resolve`, json({ resolution: texts.resolution }, officer));
    expect(resolved.status).toBe(200);

    // A policy change noticed to every person, one of whose mailboxes refuses it (550) (policyChange).
    const [gone] = await seedCustomers(s.sql, { clientId, count: 1, tag: `nomailbox-${tag}` });
    await rejectRecipients([gone!.email]);
    const version = `privacy-${tag}`;
    const policy = await app.request('/v1/policies', json({ version, effectiveAt: new Date(Date.now() + 4_000).toISOString(), material: true, summary: 'Nye regler', text: 'Ny tekst' }, officer));
    expect(policy.status).toBe(202);
    await waitForMessage(mette.email, (m) => m.text.includes(version), 'the policy notice');
    await waitFor(async () => (await s.sql`select 1 from email_outbox where recipient = ${gone!.email} and status = 'failed'`).length > 0, { what: 'the refused notice' });

    const histories = await rawHistories();
    const ids = histories.map((h) => h.workflowId);
    for (const expected of [`customer:${who.id}`, `request:${restriction.id}`, `request:${callerRequest}`, `dispute:${disputeId}`, `policy:${version}`]) expect(ids).toContain(expected);

    // None of the person's values, in any form, anywhere in the raw bytes of any history.
    const personal = [mette.name, mette.email, caller.name, caller.email, gone!.email, phone.typed, phone.e164, phone.e164.slice(3), texts.note, texts.disputeReason, texts.resolution, 'Nørrebrogade'];
    // Nor what the workflows carry (recording ids in the dispute's input, the 550 and the outbox key in the failure).
    carried.push(recording, 'SMTP 550', `request:${callerRequest}:`);
    for (const { workflowId, history } of histories) {
      const bytes = Buffer.from(temporal.api.history.v1.History.encode(history).finish());
      const raw = `${bytes.toString('utf8')}\n${bytes.toString('latin1')}\n${JSON.stringify(temporal.api.history.v1.History.toObject(history as temporal.api.history.v1.History))}`.toLowerCase();
      const found = [...personal, ...carried].filter((v) => raw.includes(v.toLowerCase()));
      expect(found, `in clear in the history of ${workflowId}`).toEqual([]);
    }

    // Every payload is encrypted, but the search attributes (indexed: ids and statuses only) and
    // the SDK core's patch markers (the patch's name from the code: docs/workflow-changes.md).
    const all = histories.flatMap((h) => payloadsIn(h.history, h.workflowId, []));
    const exempt = (path: string) => /\.searchAttributes\./.test(path) || /\.markerRecordedEventAttributes\.details\.patch-data\./.test(path);
    const clear = all.filter((p) => !exempt(p.path) && Buffer.from(p.payload.metadata!.encoding!).toString() !== ENCRYPTED_ENCODING);
    expect(clear.map((p) => p.path)).toEqual([]);
    const encrypted = all.filter((p) => Buffer.from(p.payload.metadata!.encoding!).toString() === ENCRYPTED_ENCODING);
    expect(encrypted.length).toBeGreaterThan(50);
    // Failures say only "Encoded failure"; their message and stack are in an encrypted payload.
    const failures = histories.flatMap((h) => h.history.events ?? []).map((e) => e.activityTaskFailedEventAttributes?.failure).filter(Boolean);
    expect(failures.length).toBeGreaterThan(0);
    for (const f of failures) {
      expect(f!.message).toBe('Encoded failure');
      expect(f!.stackTrace ?? '').toBe('');
      expect(Buffer.from(f!.encodedAttributes!.metadata!.encoding!).toString()).toBe(ENCRYPTED_ENCODING);
    }

    // Through the codec endpoint, as the Web UI asks for it, an officer reads them.
    const asJson = encrypted.map((p) => payloadToJson(p.payload));
    let decodedText = '';
    for (let i = 0; i < asJson.length; i += 200) {
      const res = await decode(asJson.slice(i, i + 200), { authorization: officer.authorization, origin: UI_ORIGIN });
      expect(res.status, await res.clone().text()).toBe(200);
      expect(res.headers.get('access-control-allow-origin')).toBe(UI_ORIGIN);
      expect(res.headers.get('access-control-allow-credentials')).toBe('true');
      const { payloads } = (await res.json()) as { payloads: JsonPayload[] };
      expect(payloads).toHaveLength(asJson.slice(i, i + 200).length);
      for (const p of payloads) {
        expect(Buffer.from(p.metadata!.encoding!, 'base64').toString()).not.toBe(ENCRYPTED_ENCODING);
        decodedText += `${Buffer.from(p.data ?? '', 'base64').toString('utf8')}\n`;
      }
    }
    for (const v of carried) expect(decodedText, `decoded payloads contain ${v}`).toContain(v);
    expect(decodedText).toMatch(/"message":"the email request:[^"]+ was refused for good: SMTP 550 after RCPT TO"/);
    // Even decoded, payloads name people by id only: no name, address, number or free text of
    // theirs (the activities' sanitised failures included). So crypto-shredding needs no
    // per-person key inside Temporal: erasure leaves nothing personal in a history to shred.
    for (const v of personal) expect(decodedText.toLowerCase(), `decoded payloads name ${v}`).not.toContain(v.toLowerCase());

    (globalThis as { codecSample?: JsonPayload[] }).codecSample = asJson.slice(0, 5);
  });

  it('answers 401 without a token or with an unknown one, 403 to support and customers; CORS only for the UI origin', async () => {
    const sample = (globalThis as { codecSample?: JsonPayload[] }).codecSample!;
    expect(sample.length).toBeGreaterThan(0);
    const anonymous = await decode(sample, {});
    expect(anonymous.status).toBe(401);
    expect(anonymous.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    const body = await anonymous.text();
    for (const v of carried) expect(body).not.toContain(v);
    expect((await decode(sample, { authorization: 'Bearer tc_staff_not-a-real-token-not-a-real-token-000' })).status).toBe(401);
    expect((await decode(sample, support)).status).toBe(403);
    expect((await app.request('/codec/encode', json({ payloads: [] }))).status).toBe(401);

    // The browser's preflight from the UI is answered with credentials; another origin gets no grant.
    const preflight = (origin: string) =>
      app.request('/codec/decode', { method: 'OPTIONS', headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type,x-namespace' } });
    const ok = await preflight(UI_ORIGIN);
    expect(ok.status).toBe(204);
    expect(ok.headers.get('access-control-allow-origin')).toBe(UI_ORIGIN);
    expect(ok.headers.get('access-control-allow-credentials')).toBe('true');
    expect(ok.headers.get('access-control-allow-headers')?.toLowerCase()).toContain('x-namespace');
    expect((await preflight('https://evil.example')).headers.get('access-control-allow-origin')).toBeNull();
  });

  it('a staff member signs in once in the browser; the UI’s requests with that cookie decode, until signing out', async () => {
    const sample = (globalThis as { codecSample?: JsonPayload[] }).codecSample!;
    const form = (token: string) => ({ method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ token }).toString() });
    expect((await app.request('/codec/login', form('tc_staff_unknown'))).status).toBe(401);
    const supportToken = (await staffAuth(s.sql, 'support')).token;
    expect((await app.request('/codec/login', form(supportToken))).status).toBe(403);

    const login = await app.request('/codec/login', form(officer.token));
    expect(login.status).toBe(200);
    const setCookie = login.headers.get('set-cookie') ?? '';
    expect(setCookie).toMatch(/^tc_codec=/);
    expect(setCookie).toMatch(/HttpOnly/i);
    expect(setCookie).toMatch(/SameSite=Strict/i);
    expect(setCookie).toMatch(/Path=\/codec/i);
    const cookie = setCookie.split(';')[0]!;
    expect(cookie).not.toContain(officer.token); // a session token of its own, not the officer's
    const withCookie = await decode(sample, { cookie, origin: UI_ORIGIN });
    expect(withCookie.status).toBe(200);
    expect(((await withCookie.json()) as { payloads: unknown[] }).payloads).toHaveLength(sample.length);

    expect((await app.request('/codec/logout', { method: 'POST', headers: { cookie } })).status).toBe(200);
    expect((await decode(sample, { cookie })).status).toBe(401);
  });
});
