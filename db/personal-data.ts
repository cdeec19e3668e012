import { unlink } from 'node:fs/promises';
import path from 'node:path';
import type { Db, Fragment, Sql, Tx } from './index';
import { loginKey } from './customers';
import { tombstoneDeletable } from './recordings';
import { recipientsOfPerson } from './disclosures';
import type { RecordingStore } from '../lib/recording-store';
import { destroyPersonKeys } from './person-keys';

/**
 * D15: the one map of personal data. Every place that can hold a person's data — each table
 * and its columns, each kind of file under DATA_DIR, workflow payloads, logs — is listed here
 * once, with what access, rectification, erasure and restriction do to it and how long it is
 * kept. Export (`exportSubject`), erasure (`eraseSubject`) and retention (`sweepRetention`)
 * run the `export`, `erase` and `sweep` of these entries, never a hand-kept list of their own;
 * `test/personal-data-map.test.ts` fails when the live schema has a text-like column or
 * DATA_DIR a kind of file that the map does not name, and `docs/personal-data.md` is rendered
 * from it (`npm run docs:personal-data`).
 */

/** Who an export or erasure is about: an account, and/or what identifies a caller. */
export interface Subject {
  customerId: string | null;
  /** Every address the person has used (lower case): current, earlier, and a caller's. */
  emails: string[];
  /** E.164 numbers the person calls from. */
  phones: string[];
  /** Their data-subject requests (a caller without an account has no customer id). */
  requestIds: string[];
}

export type Rows = Record<string, string | number | boolean | null>[];

export interface EraseContext {
  /** The erasure request; null when a business transfer erases TopCall's copy after the handover. */
  requestId: string | null;
  reason: 'erasure' | 'objection';
  store: RecordingStore;
  dataDir: string;
  /** Finishes deleting recordings this transaction has tombstoned (`tombstoneDeletable`): audio, receipt, ledger entry. */
  deleteRecordings: (tx: Tx, rows: Awaited<ReturnType<typeof tombstoneDeletable>>) => Promise<string[]>;
}

/**
 * A handover category's part for one batch of persons, as Postgres aggregates it: the rows as
 * JSON Lines in the category's order (null when the batch has none). A category whose rows
 * carry audio (recordings) also names each row's audio, in the same order — [recording id,
 * audio key, SHA-256, bytes as text] — so the package reads those rows once for both.
 */
export interface HandoverPart {
  lines: string | null;
  /** Null for the categories without audio. */
  audio: [string, string, string, string][] | null;
}

/** What erasure did in one place: how many items went, and what was kept and why. */
export interface PlaceResult {
  erased: number;
  kept?: { count: number; reason: string; ids?: string[]; until?: string };
}

export interface RetentionPeriods {
  EXPORT_LINK_TTL: string;
  EMAIL_RETENTION: string;
  LOGIN_FAILURE_RETENTION: string;
  REQUEST_DETAILS_RETENTION: string;
  CALL_MESSAGE_RETENTION: string;
  RECORDING_RETENTION: string;
}

export interface Place {
  /** Stable id, used in counts and docs. */
  id: string;
  kind: 'table' | 'files' | 'workflow' | 'log';
  /** For tables: the table; for files: the folder under DATA_DIR. */
  where: string;
  /** Columns (or file contents) that hold personal data, and what. */
  personal: Record<string, string>;
  /** Text-like columns of the table that hold no personal data, and why. */
  other?: Record<string, string>;
  access: string;
  rectification: string;
  erasure: string;
  restriction: string;
  retention: { period: string; config?: keyof RetentionPeriods };
  /** Export category this place feeds (Art. 15, 20). */
  export?: { category: string; columns: string[]; rows: (db: Db, s: Subject) => Promise<Rows> };
  erase?: (tx: Tx, s: Subject, ctx: EraseContext) => Promise<PlaceResult>;
  /**
   * Erased only when named (`eraseSubject(…, only)`): the last step, once nothing more needs to
   * reach the person (their answer has gone out) — the data key that seals that answer.
   */
  eraseLast?: boolean;
  /**
   * What a business transfer hands over from this place (D8): one JSON line per row for a batch
   * of persons, written to `clients/{client}/{file}/…jsonl.enc`; or why nothing. Every place
   * with an `export` must say one or the other (the map test checks). `part` is a query of one
   * row with the columns of HandoverPart, for the persons of `ids` (an SQL expression of their
   * uuid[]): the package puts every category's part into one statement per batch, and reads a
   * string per category, not a row per item.
   */
  handover?: { file: string; part: (db: Db, ids: Fragment, transfer: { id: string }) => Fragment } | { none: string };
  /** Removes what is past its period; returns how many items went. */
  sweep?: (tx: Tx, cutoff: Date, ctx: { dataDir: string }) => Promise<number>;
}

const iso = (d: unknown) => (d instanceof Date ? d.toISOString() : d === null || d === undefined ? null : String(d));
const rowsOf = (rows: readonly Record<string, unknown>[]): Rows =>
  rows.map((r) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, v instanceof Date ? v.toISOString() : (v as string | number | boolean | null)])));

const none = (db: Db) => db`false`;
const byCustomer = (db: Db, s: Subject, column = 'customer_id') => (s.customerId ? db`${db(column)} = ${s.customerId}` : none(db));
const byPhone = (db: Db, s: Subject, column = 'caller_number') => (s.phones.length ? db`${db(column)} = any(${s.phones}::text[])` : none(db));
/** Failed-login keys of every address, hex (postgres.js sends no bytea arrays). */
const loginKeysOf = (s: Subject) => s.emails.flatMap((e) => [loginKey('email', e), loginKey('reset-email', e)].map((k) => k.toString('hex')));
const subjectIds = (s: Subject) => [...(s.customerId ? [s.customerId] : []), ...s.requestIds];

/** Email to the person not yet scrubbed: found by business key (their account or requests) and by every address they had. */
const outboxOf = (db: Db, s: Subject) =>
  db`(subject_id = any(${subjectIds(s)}::uuid[]) or lower(recipient) = any(${s.emails}::text[])) and recipient <> '[erased]'`;

/** A person's requests: by account, by id, or by the caller's address or number. */
const requestsOf = (db: Db, s: Subject) => db`(
  ${byCustomer(db, s)} or id = any(${s.requestIds}::uuid[])
  or lower(requester ->> 'email') = any(${s.emails}::text[]) or requester ->> 'phone' = any(${s.phones}::text[]))`;

async function unlinkQuietly(file: string) {
  await unlink(file).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== 'ENOENT') throw err;
  });
}

export const PLACES: Place[] = [
  {
    id: 'customers',
    kind: 'table',
    where: 'customers',
    personal: {
      name: 'first and last name',
      email: 'current email address',
      password_hash: 'argon2id hash of the password (D1)',
      provided_by: 'who gave us the data (D2): may name a team lead or a client',
    },
    other: { locale: 'language of emails (da, en)', status: 'active or erased', provided_by_kind: 'self, client, team_lead or third_party (D2)', provided_via: 'phone, email, in_person or web' },
    access: 'profile, provenance and preferences categories',
    rectification: 'name, email and locale by a rectification request; every address is remembered in customer_emails',
    erasure: 'name, email, password and provenance removed; the row stays as an erased tombstone (id, client, dates) so links from requests and receipts resolve',
    restriction: 'processing_restricted: no marketing, no transfer, hidden from client views, recordings not played without an officer override',
    retention: { period: 'while the account exists; erased on closure or an erasure request' },
    handover: {
      file: 'persons',
      part: (db, ids) => db`
        select string_agg(row_to_json(x)::text, E'\n' order by x.id) as lines, null::json as audio from (
          select c.id, c.email, c.name, c.locale, c.created_at, c.marketing_emails, c.objected_to_processing,
                 c.provided_by, c.provided_by_kind, c.provided_via, c.provided_at
          from customers c where c.id = any(${ids})) x`,
    },
    export: {
      category: 'profile',
      columns: ['id', 'email', 'name', 'locale', 'status', 'created_at', 'marketing_emails', 'processing_restricted', 'objected_to_processing'],
      rows: async (db, s) =>
        s.customerId
          ? rowsOf(await db`select id, email, name, locale, status, created_at, marketing_emails, processing_restricted, objected_to_processing from customers where id = ${s.customerId}`)
          : [],
    },
    erase: async (tx, s) => {
      if (!s.customerId) return { erased: 0 };
      // The address and name stay until the answer has gone out (forgetContact); the rest goes now.
      const rows = await tx`
        update customers set password_hash = null, password_set_at = null, marketing_emails = false, provided_by = '[erased]'
        where id = ${s.customerId} and status = 'active' returning id`;
      return { erased: rows.length };
    },
  },
  {
    id: 'customer_emails',
    kind: 'table',
    where: 'customer_emails',
    personal: { email: 'every address the account has had' },
    access: 'email_addresses category',
    rectification: 'a new address is added (trigger); earlier ones stay so erasure can find mail sent to them',
    erasure: 'deleted',
    restriction: 'used only to find the person',
    retention: { period: 'while the account exists' },
    handover: {
      file: 'email_addresses',
      part: (db, ids) => db`
        select string_agg(row_to_json(x)::text, E'\n' order by x.customer_id, x.since, x.email) as lines, null::json as audio from (
          select customer_id, email, since from customer_emails where customer_id = any(${ids})) x`,
    },
    export: {
      category: 'email_addresses',
      columns: ['email', 'since'],
      rows: async (db, s) => (s.customerId ? rowsOf(await db`select email, since from customer_emails where customer_id = ${s.customerId} order by since`) : []),
    },
    erase: async (tx, s) => ({ erased: s.customerId ? (await tx`delete from customer_emails where customer_id = ${s.customerId}`).count : 0 }),
  },
  {
    id: 'recordings',
    kind: 'table',
    where: 'recordings',
    personal: { caller_number: 'the caller’s phone number (E.164)' },
    other: {
      audio_key: 'file name derived from the recording id',
      audio_sha256: 'hash of the audio',
      content_type: 'audio MIME type',
      status: 'retained or deleted',
    },
    access: 'recordings category (metadata; the audio on request)',
    rectification: 'not applicable: a recording documents a call as it happened',
    erasure:
      'every recording found by account or caller number and not under a dispute hold is deleted (audio, number, link to the account) with a deletion receipt; held ones are kept (GDPR 17(3)(e)) and deleted the moment their dispute releases them',
    restriction: 'not played without a privacy officer’s override with a reason (restriction_overrides)',
    retention: { period: 'RECORDING_RETENTION after the call (D4), longer only under a dispute hold', config: 'RECORDING_RETENTION' },
    handover: {
      file: 'recordings',
      // The audio goes with it (a batch's short recordings packed in one file, long ones a file each; lib/transfer-package.ts).
      part: (db, ids) => db`
        select string_agg(row_to_json(x)::text, E'\n' order by x.customer_id, x.id) as lines,
               json_agg(json_build_array(x.id, r.audio_key, x.audio_sha256, r.audio_bytes::text) order by x.customer_id, x.id) as audio
        from recordings r cross join lateral (
          select r.id, r.customer_id, r.caller_number, r.recorded_at, r.duration_seconds, r.delete_after, r.content_type, r.audio_sha256,
                 exists (select 1 from recording_holds h where h.recording_id = r.id and h.released_at is null) as held) x
        where r.customer_id = any(${ids}) and r.status = 'retained'`,
    },
    export: {
      category: 'recordings',
      columns: ['id', 'client_id', 'recorded_at', 'duration_seconds', 'delete_after', 'status', 'held'],
      rows: async (db, s) =>
        rowsOf(
          await db`select r.id, r.client_id, r.recorded_at, r.duration_seconds, r.delete_after, r.status,
                          exists (select 1 from recording_holds h where h.recording_id = r.id and h.released_at is null) as held
                   from recordings r where r.status = 'retained' and (${byCustomer(db, s, 'r.customer_id')} or ${byPhone(db, s, 'r.caller_number')})
                   order by r.recorded_at`,
        ),
    },
    erase: async (tx, s, ctx) => {
      const locked = await tx<{ id: string }[]>`
        select id from recordings where status = 'retained' and (${byCustomer(tx, s)} or ${byPhone(tx, s)}) order by id for update`;
      const deletable = await tombstoneDeletable(tx, locked.map((r) => r.id), new Date('9999-12-31T00:00:00Z'));
      const deleted = await ctx.deleteRecordings(tx, deletable);
      // What a dispute holds stays, marked so its release deletes it at once (D4, D10).
      const held = await tx<{ id: string }[]>`
        update recordings set erasure_request_id = ${ctx.requestId}, delete_after = least(delete_after, now())
        where id = any(${locked.map((r) => r.id)}::uuid[]) and status = 'retained' returning id`;
      return {
        erased: deleted.length,
        ...(held.length ? { kept: { count: held.length, ids: held.map((h) => h.id).sort(), reason: 'legal_claims', until: 'dispute_resolved' } } : {}),
      };
    },
  },
  {
    id: 'recording_audio',
    kind: 'files',
    where: 'recordings',
    personal: { '*.audio': 'the call audio: the caller’s voice and what was said; sealed (AES-256-GCM) under the recording’s own data key (person_keys), files written before that in clear' },
    access: 'listed in the recordings category; the audio itself on request',
    rectification: 'not applicable',
    erasure: 'unlinked with its recording (above), before the tombstone commits, and its data key destroyed: a copy in a backup no longer opens',
    restriction: 'as its recording',
    retention: { period: 'as its recording (D4)', config: 'RECORDING_RETENTION' },
  },
  {
    id: 'recording_staging',
    kind: 'files',
    where: 'recordings/.staging',
    personal: { '*': 'audio of an upload still streaming' },
    access: 'not exported: not yet a recording',
    rectification: 'not applicable',
    erasure: 'never linked to a person; removed when the upload fails',
    restriction: 'not applicable',
    retention: { period: 'until the upload ends; files untouched for 15 minutes are swept by the API' },
  },
  {
    id: 'restriction_overrides',
    kind: 'table',
    where: 'restriction_overrides',
    personal: { reason: 'a privacy officer’s reason for playing a restricted person’s recording' },
    access: 'not exported: an internal accountability record',
    rectification: 'not applicable',
    erasure: 'deleted with the person’s recordings',
    restriction: 'this is the record of the override',
    retention: { period: 'as the recording it concerns' },
    erase: async (tx, s) => ({
      erased: (
        await tx`delete from restriction_overrides o using recordings r
                 where r.id = o.recording_id and (r.status = 'deleted' or ${byCustomer(tx, s, 'r.customer_id')} or ${byPhone(tx, s, 'r.caller_number')})`
      ).count,
    }),
    sweep: async (tx) => (await tx`delete from restriction_overrides o using recordings r where r.id = o.recording_id and r.status = 'deleted'`).count,
  },
  {
    id: 'call_messages',
    kind: 'table',
    where: 'call_messages',
    personal: {
      caller_name: 'the caller’s name as given on the call',
      caller_number: 'the caller’s phone number (E.164)',
      body: 'the message TopCall sent the client after the call',
    },
    other: {
      channel: 'sms or email',
      idempotency_key_hash: 'SHA-256 of the Idempotency-Key the sender gave (an opaque retry key), never the key',
      request_sha256: 'SHA-256 of the request, to tell a retry from another body',
    },
    access: 'messages category',
    rectification: 'by a rectification request (staff correct the message)',
    erasure: 'deleted (by account or caller number); the per-day statistics hold no personal data and stay',
    restriction: 'hidden from the client’s own users',
    retention: { period: 'CALL_MESSAGE_RETENTION after it was sent', config: 'CALL_MESSAGE_RETENTION' },
    handover: {
      file: 'call_messages',
      part: (db, ids) => db`
        select string_agg(row_to_json(x)::text, E'\n' order by x.customer_id, x.id) as lines, null::json as audio from (
          select id, customer_id, client_id, sent_at, channel, caller_name, caller_number, body
          from call_messages where customer_id = any(${ids})) x`,
    },
    export: {
      category: 'messages',
      columns: ['id', 'client_id', 'sent_at', 'caller_name', 'caller_number', 'body'],
      rows: async (db, s) =>
        rowsOf(
          await db`select id, client_id, sent_at, caller_name, caller_number, body from call_messages
                   where ${byCustomer(db, s)} or ${byPhone(db, s)} order by sent_at`,
        ),
    },
    erase: async (tx, s) => ({ erased: (await tx`delete from call_messages where ${byCustomer(tx, s)} or ${byPhone(tx, s)}`).count }),
    sweep: async (tx, cutoff) => (await tx`delete from call_messages where sent_at < ${cutoff}`).count,
  },
  {
    id: 'email_outbox',
    kind: 'table',
    where: 'email_outbox',
    personal: {
      recipient: 'the address an email went to',
      subject: 'the email’s subject',
      text_body: 'the email’s text (names, request details; links only as placeholders); sealed with the person’s data key (person_keys) when the email is about a person',
    },
    other: {
      last_error: 'the last failure as codes only (SMTP reply code and command, SQLSTATE): never the server’s text, which quotes addresses',
      key: 'business key: kind of email and ids',
      message_id: 'hash of the business key',
      category: 'service or marketing',
      status: 'pending, sent, suppressed or failed',
      campaign: 'policy version',
      locale: 'da or en',
    },
    access: 'emails category (when, subject, status)',
    rectification: 'not applicable: a record of what was sent',
    erasure: 'recipient, subject, text and error replaced by [erased] for every email to the person (found by business key and by every address they had); one still pending is suppressed; the person’s data key is destroyed last, so bodies in backups no longer open',
    restriction: 'marketing is suppressed; service mail still goes (D11)',
    retention: { period: 'EMAIL_RETENTION after it was written; the key and Message-ID stay so nothing is sent twice', config: 'EMAIL_RETENTION' },
    handover: { none: 'TopCall’s own correspondence stays with TopCall and expires under EMAIL_RETENTION; what the acquirer must honour is in the manifest’s obligations' },
    export: {
      category: 'emails',
      columns: ['created_at', 'sent_at', 'category', 'subject', 'status'],
      rows: async (db, s) =>
        rowsOf(
          await db`select created_at, sent_at, category, subject, status from email_outbox
                   where ${outboxOf(db, s)}
                   order by created_at`,
        ),
    },
    erase: async (tx, s) => ({
      erased: (
        await tx`update email_outbox set recipient = '[erased]', subject = '[erased]', text_body = '[erased]', last_error = null,
                   status = case when status = 'pending' then 'suppressed' else status end
                 where ${outboxOf(tx, s)}`
      ).count,
    }),
    sweep: async (tx, cutoff) =>
      (
        await tx`update email_outbox set recipient = '[erased]', subject = '[erased]', text_body = '[erased]', last_error = null
                 where created_at < ${cutoff} and recipient <> '[erased]' and status <> 'pending'`
      ).count,
  },
  {
    id: 'data_requests',
    kind: 'table',
    where: 'data_requests',
    personal: {
      requester: 'a caller’s name, email, phone and how identity was checked',
      details: 'the person’s note and, for rectification, the corrected values',
      reason: 'staff’s free-text reason for a refusal',
    },
    other: { type: 'request type', status: 'request status', earlier_request_ids: 'ids of earlier requests (repetitiveness evidence)', locale: 'da or en', filed_by: 'customer or staff', flags: 'e.g. repetitive', decision: 'approve or refuse', reason_code: 'refusal ground', decided_by: 'staff token id or automatic', auto_approve: 'account-closure or self-service when the person’s own account pages filed it for approval with no staff step', outcome: 'counts and ids of what was done, no personal values' },
    access: 'requests category',
    rectification: 'not applicable: a record of the request',
    erasure: 'caller details, notes and reason removed; the request itself (type, dates, decision, ground) stays as evidence that it was answered (Art. 5(2))',
    restriction: 'not applicable',
    retention: { period: 'details and caller contact: REQUEST_DETAILS_RETENTION after the answer; the rest as evidence', config: 'REQUEST_DETAILS_RETENTION' },
    handover: {
      file: 'requests',
      // Open ones are also listed, with their due dates, among the manifest's obligations.
      part: (db, ids) => db`
        select string_agg(row_to_json(x)::text, E'\n' order by x.customer_id, x.id) as lines, null::json as audio from (
          select id, customer_id, type, status, received_at, due_at, decision, reason_code, answered_at, details ->> 'note' as note
          from data_requests where customer_id = any(${ids})) x`,
    },
    export: {
      category: 'requests',
      columns: ['id', 'type', 'status', 'received_at', 'due_at', 'decision', 'reason_code', 'answered_at', 'note'],
      rows: async (db, s) =>
        rowsOf(
          await db`select id, type, status, received_at, due_at, decision, reason_code, answered_at, details ->> 'note' as note
                   from data_requests where ${requestsOf(db, s)} order by received_at`,
        ),
    },
    erase: async (tx, s, ctx) => ({
      // The request being carried out keeps its requester until the answer has gone (forgetContact).
      erased: (
        await tx`update data_requests set details = '{}', reason = null, details_erased_at = now(),
                   requester = case when id = ${ctx.requestId} then requester when requester is null then null else '{"erased": true}'::jsonb end
                 where ${requestsOf(tx, s)} and (details_erased_at is null or (requester is not null and requester <> '{"erased": true}'::jsonb and id <> ${ctx.requestId}))`
      ).count,
      kept: { count: (await tx`select 1 from data_requests where ${requestsOf(tx, s)}`).length, reason: 'accountability', until: 'kept without personal data' },
    }),
    sweep: async (tx, cutoff) =>
      (
        await tx`update data_requests set details = '{}', reason = null, details_erased_at = now(),
                   requester = case when requester is null then null else '{"erased": true}'::jsonb end
                 where answered_at < ${cutoff} and details_erased_at is null`
      ).count,
  },
  {
    id: 'export_packages',
    kind: 'table',
    where: 'export_packages',
    personal: {},
    other: { file_key: 'path of the zip under DATA_DIR', sha256: 'hash of the zip', token_hash: 'hash of the one-time link' },
    access: 'the package is the access answer',
    rectification: 'not applicable',
    erasure: 'deleted with its file',
    restriction: 'not applicable',
    retention: { period: 'until its link expires (EXPORT_LINK_TTL)', config: 'EXPORT_LINK_TTL' },
  },
  {
    id: 'export_files',
    kind: 'files',
    where: 'exports',
    personal: { '*.zip': 'a full access export: everything in this map about the person; sealed with the person’s data key (person_keys)' },
    access: 'downloaded through the link in the answer email',
    rectification: 'not applicable: a snapshot',
    erasure: 'the zip and its row are deleted; the person’s data key is destroyed as erasure’s last step, so a copy in a backup no longer opens',
    restriction: 'not applicable',
    retention: { period: 'until its link expires (EXPORT_LINK_TTL), then deleted by the data-retention Schedule', config: 'EXPORT_LINK_TTL' },
    erase: async (tx, s, ctx) => {
      const rows = await tx<{ id: string; fileKey: string }[]>`
        delete from export_packages where request_id in (select id from data_requests where ${requestsOf(tx, s)})
        returning id, file_key as "fileKey"`;
      for (const r of rows) await unlinkQuietly(path.join(ctx.dataDir, r.fileKey));
      return { erased: rows.length };
    },
    sweep: async (tx, _cutoff, ctx) => {
      const rows = await tx<{ fileKey: string }[]>`delete from export_packages where expires_at <= now() returning file_key as "fileKey"`;
      for (const r of rows) await unlinkQuietly(path.join(ctx.dataDir, r.fileKey));
      return rows.length;
    },
  },
  {
    id: 'login_failures',
    kind: 'table',
    where: 'login_failures',
    personal: { key_hash: 'SHA-256 of the email address or source address of a failed login or a password-reset ask' },
    access: 'failed_logins category (when)',
    rectification: 'not applicable',
    erasure: 'deleted for every address the person had',
    restriction: 'not applicable',
    retention: { period: 'LOGIN_FAILURE_RETENTION', config: 'LOGIN_FAILURE_RETENTION' },
    handover: { none: 'a security record of TopCall’s own login form: not the person’s data for the acquirer to use' },
    export: {
      category: 'failed_logins',
      columns: ['at'],
      rows: async (db, s) =>
        s.emails.length ? rowsOf(await db`select at from login_failures where key_hash in (select decode(h, 'hex') from unnest(${loginKeysOf(s)}::text[]) h) order by at`) : [],
    },
    erase: async (tx, s) => ({
      erased: s.emails.length ? (await tx`delete from login_failures where key_hash in (select decode(h, 'hex') from unnest(${loginKeysOf(s)}::text[]) h)`).count : 0,
    }),
    sweep: async (tx, cutoff) => (await tx`delete from login_failures where at < ${cutoff}`).count,
  },
  {
    id: 'password_tokens',
    kind: 'table',
    where: 'password_tokens',
    personal: {},
    other: { token_hash: 'hash of a one-time set-password link' },
    access: 'not exported: a hash',
    rectification: 'not applicable',
    erasure: 'deleted',
    restriction: 'not applicable',
    retention: { period: 'until used or expired (PASSWORD_LINK_TTL), then deleted' },
    erase: async (tx, s) => ({ erased: s.customerId ? (await tx`delete from password_tokens where customer_id = ${s.customerId}`).count : 0 }),
    sweep: async (tx) => (await tx`delete from password_tokens where used_at is not null or expires_at <= now()`).count,
  },
  {
    id: 'access_tokens',
    kind: 'table',
    where: 'access_tokens',
    personal: {},
    other: { token_hash: 'hash of a bearer token', kind: 'staff or customer', role: 'staff role', label: 'staff token label (a role or team, never a customer)' },
    access: 'not exported: hashes',
    rectification: 'not applicable',
    erasure: 'every login of the person revoked',
    restriction: 'not applicable',
    retention: { period: 'until expiry or revocation' },
    erase: async (tx, s) => ({
      erased: s.customerId ? (await tx`update access_tokens set revoked_at = now() where subject_id = ${s.customerId} and revoked_at is null`).count : 0,
    }),
  },
  {
    id: 'web_sessions',
    kind: 'table',
    where: 'web_sessions',
    personal: {},
    other: { token_hash: 'hash of a browser session cookie (the account pages)' },
    access: 'not exported: hashes',
    rectification: 'not applicable',
    erasure: 'every browser session of the person revoked',
    restriction: 'not applicable',
    retention: { period: 'until expiry (CUSTOMER_SESSION_TTL) or logout' },
    erase: async (tx, s) => ({
      erased: s.customerId ? (await tx`update web_sessions set revoked_at = now() where customer_id = ${s.customerId} and revoked_at is null`).count : 0,
    }),
  },
  {
    id: 'email_changes',
    kind: 'table',
    where: 'email_changes',
    personal: { new_email: 'an address the person asked to change to, before and after confirming it' },
    other: { token_hash: 'hash of the one-time confirmation link' },
    access: 'email_address_changes category',
    rectification: 'a confirmed change becomes a rectification request; the row records it',
    erasure: 'deleted',
    restriction: 'used only to confirm the address',
    retention: { period: 'PASSWORD_LINK_TTL unconfirmed; once confirmed, while the account exists (customer_emails keeps the address)' },
    handover: { none: 'an address change waiting for confirmation lapses at the handover; confirmed addresses go with email_addresses' },
    export: {
      category: 'email_address_changes',
      columns: ['new_email', 'requested_at', 'confirmed_at'],
      rows: async (db, s) =>
        s.customerId ? rowsOf(await db`select new_email, requested_at, confirmed_at from email_changes where customer_id = ${s.customerId} order by requested_at`) : [],
    },
    erase: async (tx, s) => ({ erased: s.customerId ? (await tx`delete from email_changes where customer_id = ${s.customerId}`).count : 0 }),
    sweep: async (tx) => (await tx`delete from email_changes where confirmed_at is null and expires_at < now()`).count,
  },
  {
    id: 'workflow_starts',
    kind: 'table',
    where: 'workflow_starts',
    personal: {},
    other: {
      workflow_id: 'the workflow id (ids only, no personal data)',
      workflow_type: 'the workflow type',
      task_queue: 'the task queue',
      args: 'the workflow input: ids and instants, as in the workflow history',
      memo: 'the run memo: type and dates, no personal data',
    },
    access: 'not exported: ids and instants',
    rectification: 'not applicable',
    erasure: 'kept: holds ids only, like the workflow history it started',
    restriction: 'not applicable',
    retention: { period: '30 days after the start was made' },
    sweep: async (tx) => (await tx`delete from workflow_starts where started_at < now() - interval '30 days'`).count,
  },
  {
    id: 'idempotency_keys',
    kind: 'table',
    where: 'idempotency_keys',
    personal: {},
    other: { key_hash: 'hash of caller, path and Idempotency-Key', request_sha256: 'hash of the request body', response: 'the first answer: ids, statuses and dates' },
    access: 'not exported: hashes and ids',
    rectification: 'not applicable',
    erasure: 'kept until swept: holds hashes and ids only',
    restriction: 'not applicable',
    retention: { period: '1 day' },
    sweep: async (tx) => (await tx`delete from idempotency_keys where created_at < now() - interval '1 day'`).count,
  },
  {
    id: 'decision_drafts',
    kind: 'table',
    where: 'decision_drafts',
    personal: { reason: 'an officer’s explanation of a refusal, before the decision is accepted', evidence: 'what makes a request excessive, before the decision is accepted' },
    other: { token_id: 'the deciding officer’s staff token id' },
    access: 'not exported: drafts; the accepted reason is on the request (requests category)',
    rectification: 'not applicable',
    erasure: 'deleted with the person’s requests',
    restriction: 'not applicable',
    retention: { period: 'until the decision is recorded (then deleted), at most 1 day' },
    erase: async (tx, s) => ({ erased: (await tx`delete from decision_drafts where request_id in (select id from data_requests where ${requestsOf(tx, s)})`).count }),
    sweep: async (tx) => (await tx`delete from decision_drafts where created_at < now() - interval '1 day'`).count,
  },
  {
    id: 'quota_counters',
    kind: 'table',
    where: 'quota_counters',
    personal: {},
    other: { key_hash: 'hash of the quota kind and the caller (customer or staff token id)' },
    access: 'not exported: hashes and counts',
    rectification: 'not applicable',
    erasure: 'kept until swept: a hash and a count',
    restriction: 'not applicable',
    retention: { period: '1 day after its hour' },
    sweep: async (tx) => (await tx`delete from quota_counters where window_start < now() - interval '1 day'`).count,
  },
  {
    id: 'audit_log',
    kind: 'table',
    where: 'audit_log',
    personal: {},
    other: { actor: 'staff token or request id', action: 'what was done', subject_type: 'kind of record', old_values: 'always null', new_values: 'names of the changed fields, never values' },
    access: 'not exported: holds no personal values',
    rectification: 'not applicable',
    erasure: 'kept: that a change happened, without values',
    restriction: 'not applicable',
    retention: { period: 'kept as evidence; holds no personal values' },
  },
  {
    id: 'audit_ledger',
    kind: 'table',
    where: 'audit_ledger',
    personal: {},
    other: {
      actor_type: 'staff, customer, system, link or unknown',
      actor_role: 'staff role, the authority of a person’s own step (account-closure, self-service), or the part of the system acting',
      action: 'what was done or attempted, from a fixed vocabulary',
      outcome: 'done or refused',
      object_type: 'kind of record (request, dispute, disclosure, recording, export)',
      prev_hash: 'hash of the previous entry',
      hash: 'hash of this entry over its canonical encoding and the previous hash',
    },
    access: 'not exported: ids only, no personal values',
    rectification: 'not applicable: an entry never changes (a trigger refuses UPDATE, DELETE and TRUNCATE)',
    erasure:
      'kept, untouched: it holds ids (the erased person’s customer id, which then leads to no personal data) and no values, so erasure never needs it; removing an entry would break the hash chain that proves the rest',
    restriction: 'not applicable',
    retention: { period: 'kept as evidence of who read or changed what (GDPR Art. 5(2), 30, 32); holds no personal values' },
  },
  {
    id: 'restricted_numbers',
    kind: 'table',
    where: 'restricted_numbers',
    personal: { phone_hash: 'keyed hash of a restricted caller’s number' },
    access: 'restrictions category',
    rectification: 'not applicable',
    erasure: 'deleted (nothing of theirs is left to restrict)',
    restriction: 'this is the restriction of callers without an account',
    retention: { period: 'until the restriction is lifted' },
    handover: { none: 'persons who restricted processing are never handed over; callers’ restrictions are keyed hashes only TopCall can match' },
    export: {
      category: 'restrictions',
      columns: ['kind', 'since'],
      rows: async (db, s) =>
        rowsOf(
          await db`select 'restriction' as kind, since from restricted_numbers where phone_hash = any(select phone_hash(p) from unnest(${s.phones}::text[]) p)
                   union all select 'objection_to_recording', since from do_not_keep_numbers where phone_hash = any(select phone_hash(p) from unnest(${s.phones}::text[]) p)`,
        ),
    },
    erase: async (tx, s) => ({
      erased: (await tx`delete from restricted_numbers where phone_hash = any(select phone_hash(p) from unnest(${s.phones}::text[]) p)`).count,
    }),
  },
  {
    id: 'do_not_keep_numbers',
    kind: 'table',
    where: 'do_not_keep_numbers',
    personal: { phone_hash: 'keyed hash of a number whose calls are not kept (upheld objection)' },
    access: 'restrictions category',
    rectification: 'not applicable',
    erasure: 'kept: it is how the objection keeps being honoured; a keyed hash, not the number',
    restriction: 'not applicable',
    retention: { period: 'as long as the objection stands' },
  },
  {
    id: 'person_keys',
    kind: 'table',
    where: 'person_keys',
    personal: {},
    other: {
      audio_key: 'the file name of the recording whose audio the key seals (derived from the recording id)',
      master_key_id: 'id of the DATA_KEYS master key that wraps it',
      wrapped: 'the data key, encrypted (AES-256-GCM) with that master key; null once destroyed',
    },
    access: 'not exported: keys, no personal values (what they seal is exported in the clear)',
    rectification: 'not applicable',
    erasure:
      'crypto-shredding (issue 12): the person’s key (of their account, or of each request of a caller without one) is destroyed — overwritten with null, destroyed_at set — as the last step, after the answer has gone out; every copy of what it sealed (export packages and outbox bodies, in backups of files too) can then not be opened; a database backup taken before holds the key wrapped by a master key until that master key is retired (the data-retention sweep re-wraps live keys under the current one; DATA_KEY_MAX_AGE bounds the wait, and the erasure answer gives the date). A recording’s own key is destroyed when its audio is deleted (erasure, objection, retention, dispute), so a backup of deleted audio does not open either; a recording a dispute holds keeps its key',
    restriction: 'not applicable',
    retention: { period: 'while the person’s data exists; the destroyed row stays (id, owner, dates) as a record that the key is gone' },
    eraseLast: true,
    erase: async (tx, s) => ({ erased: await destroyPersonKeys(tx, s) }),
  },
  {
    id: 'app_secrets',
    kind: 'table',
    where: 'app_secrets',
    personal: {},
    other: { name: 'secret name', value: 'server keys: of the phone-number hashes, one-time links, transfer packages, and in development the payload codec key (payload_key_dev) and the master key of the person data keys (data_key_dev); production takes PAYLOAD_KEYS and DATA_KEYS from the environment' },
    access: 'not applicable',
    rectification: 'not applicable',
    erasure: 'not applicable',
    restriction: 'not applicable',
    retention: { period: 'for the life of the installation' },
  },
  {
    id: 'disclosures',
    kind: 'table',
    where: 'disclosures',
    personal: {},
    other: {
      recipient: 'the recipient’s name when it was recorded',
      category: 'category of data',
      legal_basis: 'legal basis',
      withdrawn_reason: 'why a recorded disclosure did not happen after all (a transfer package deleted before anyone downloaded it)',
    },
    access: 'recipients category (D7): each recipient of the person’s data with contact details, what, why and when',
    rectification: 'every recipient that received the person’s data is told (Art. 19)',
    erasure: 'kept: which recipient received which person’s data (by id or number hash) is the register itself, and is what tells the recipients of the erasure (Art. 19)',
    restriction: 'a restricted person may be disclosed to an authority only; never in a transfer',
    retention: { period: 'kept as the disclosure register (D7)' },
    handover: {
      file: 'recipients',
      // Earlier recipients go along: the acquirer inherits the duty to tell them of rectification and erasure (Art. 19).
      // (Not the disclosure of this very handover: the package is the same however often it is rebuilt.)
      part: (db, ids, transfer) => db`
        select string_agg(row_to_json(x)::text, E'\n' order by x.customer_id, x.disclosed_at, d.id) as lines, null::json as audio
        from disclosed_persons ds join disclosures d on d.id = ds.disclosure_id left join recipients r on r.id = d.recipient_id
        cross join lateral (
          select ds.customer_id, coalesce(r.name, d.recipient) as recipient, r.type, r.email, r.address, d.category, d.legal_basis, d.disclosed_at) x
        where ds.customer_id = any(${ids}) and d.withdrawn_at is null
          and d.id is distinct from (select disclosure_id from transfers where id = ${transfer.id})`,
    },
    export: {
      category: 'recipients',
      columns: ['recipient', 'type', 'email', 'address', 'category', 'legal_basis', 'disclosed_at'],
      rows: async (db, s) =>
        rowsOf(
          (await recipientsOfPerson(db, { customerId: s.customerId, phones: s.phones })).map((r) => ({
            recipient: r.name,
            type: r.type,
            email: r.email,
            address: r.address,
            category: r.category,
            legal_basis: r.legalBasis,
            disclosed_at: r.disclosedAt,
          })),
        ),
    },
  },
  {
    id: 'disclosure_callers',
    kind: 'table',
    where: 'disclosure_callers',
    personal: { phone_hash: 'keyed hash of a caller’s number whose data was disclosed' },
    access: 'recipients category',
    rectification: 'not applicable',
    erasure: 'kept with the disclosure register (Art. 19 notices need it); a keyed hash, not the number',
    restriction: 'not applicable',
    retention: { period: 'kept as the disclosure register (D7)' },
  },
  {
    id: 'recipients',
    kind: 'table',
    where: 'recipients',
    personal: {},
    other: { type: 'affiliate, processor, referral partner, acquirer, authority or network advertiser', name: 'the organisation', email: 'the organisation’s contact address', address: 'the organisation’s postal address', legal_basis: 'legal basis of disclosures to it' },
    access: 'named with contact details in the recipients category of each person whose data it received',
    rectification: 'not applicable',
    erasure: 'not applicable: organisations, not data subjects',
    restriction: 'not applicable',
    retention: { period: 'kept with the disclosure register' },
  },
  {
    id: 'transfers',
    kind: 'table',
    where: 'transfers',
    personal: {},
    other: {
      acquirer_name: 'the acquiring company',
      acquirer_email: 'the acquirer’s contact address',
      acquirer_public_key: 'the acquirer’s RSA public key',
      scope: 'all clients or some, by id',
      legal_basis: 'merger, acquisition or bankruptcy',
      after_handover: 'keep or erase',
      status: 'the transfer’s status',
      inventory: 'counts per client and category',
      excluded: 'clients and counts left out, with the reason',
      progress: 'counts of the workflow’s steps',
      manifest_sha256: 'hash of the package manifest',
      package_file_key: 'path of the encrypted package under DATA_DIR',
      acquirer_token_hash: 'hash of the acquirer’s one-time link',
      package_key_wrapped: 'the package’s data key encrypted for the acquirer’s RSA key (only the acquirer can open it)',
      signer_key_sha256: 'fingerprint of TopCall’s signing key',
      ended_by: 'staff token id, or “acquirer”',
      end_reason: 'cancelled or rejected',
      outcome: 'what a cancelled or rejected transfer did and did not hand over: counts and instants',
      package_state: 'where the package build stands: offsets, client ids, counts',
    },
    access: 'a person who was handed over finds the acquirer in the recipients category (a disclosure per person)',
    rectification: 'the acquirer is told as a recipient (Art. 19)',
    erasure: 'not applicable: no personal data (persons by id in transfer_persons)',
    restriction: 'restricted persons are never in a transfer',
    retention: { period: 'kept as the record of the transfer (D8)' },
  },
  {
    id: 'transfer_packages',
    kind: 'files',
    where: 'transfers',
    personal: {
      '*.tar': 'the package: every handed-over person’s data per client and category, and the audio, each file encrypted for the acquirer (TopCall keeps no key that opens it)',
    },
    other: { '*.manifest.tmp': 'the manifest while it is written: file names, sizes, hashes and ids, no personal values' },
    access: 'downloaded by the acquirer with its one-time link',
    rectification: 'not applicable: a snapshot at the handover',
    erasure: 'deleted when the acquirer acknowledges it, and when the transfer is cancelled or rejected',
    restriction: 'restricted persons are not in it',
    retention: { period: 'from the handover until the acquirer acknowledges the manifest, or the transfer ends' },
  },
  {
    id: 'temporal_histories',
    kind: 'workflow',
    where: 'Temporal workflow histories (inputs, results, search attributes, memos)',
    personal: {},
    access: 'not exported: ids, types, instants, counts and reason codes only — never names, addresses or numbers',
    rectification: 'not applicable',
    erasure: 'nothing personal to erase (the erasure test scans the histories of the person’s runs)',
    restriction: 'not applicable',
    retention: { period: 'the namespace’s retention after a run closes' },
  },
  {
    id: 'logs',
    kind: 'log',
    where: 'API and worker logs (stdout, pino)',
    personal: {},
    access: 'not exported: ids only, with a redact list for email, phone, name, token and body fields',
    rectification: 'not applicable',
    erasure: 'nothing personal to erase',
    restriction: 'not applicable',
    retention: { period: 'as the log collector keeps them' },
  },
  {
    id: 'mail_sink',
    kind: 'files',
    where: 'mail-sink',
    personal: { 'messages.jsonl': 'every email the embedded development mail sink received (addresses, names, links)' },
    access: 'not exported: a development tool standing in for a real mail server; a deployment with SMTP_URL has none',
    rectification: 'not applicable',
    erasure: 'not erased per person: it is the recipients’ mailbox, not TopCall’s record; clear it in the viewer (DELETE /api/messages) or remove the folder',
    restriction: 'not applicable',
    retention: { period: 'development only: until cleared' },
  },
  {
    id: 'temporal_state',
    kind: 'files',
    where: 'temporal.db',
    personal: {},
    access: 'the embedded dev server’s state: the histories above',
    rectification: 'not applicable',
    erasure: 'as the histories',
    restriction: 'not applicable',
    retention: { period: 'as the histories' },
  },
];

/** Tables that hold no personal data at all, and why (the schema test checks every other table is a place). */
export const NO_PERSONAL_DATA: Record<string, string> = {
  schema_migrations: 'names of applied migrations',
  data_master_keys: 'ids of the DATA_KEYS master keys and when each was first used (no key material): how long database backups stay readable',
  clients: 'businesses (TopCall’s clients) and their contract restrictions',
  system_checks: 'ids and times of system checks',
  disputes: 'a dispute about recordings; staff write reason and resolution about the call, never a person’s details (the API says so)',
  recording_holds: 'which dispute holds which recording',
  deletion_receipts: 'proof of deletion: ids, times, the audio hash and the reason',
  policy_versions: 'the privacy policy’s versions',
  disclosure_subjects: 'which person (by id) a disclosure outside a business transfer concerned (with a transfer’s handed-over persons: the view disclosed_persons)',
  data_retention_runs: 'counts per place of each retention run',
  call_stats: 'calls and messages per client and day: counts only (D3)',
  transfer_approvals: 'which staff token approved which transfer',
  transfer_persons: 'which person (by id) a transfer hands over, and whether its package did (the register’s subjects of the transfer’s disclosure)',
  transfer_files: 'the package’s file list for its manifest: paths of client and recording ids, sizes and hashes',
};

/** Everything the map knows of a person, found by account, every address and every number. */
export async function resolveSubject(db: Db, seed: { customerId: string | null; requestId?: string; emails?: string[]; phones?: string[] }): Promise<Subject> {
  const emails = new Set((seed.emails ?? []).map((e) => e.toLowerCase()));
  const phones = new Set(seed.phones ?? []);
  const requestIds = new Set(seed.requestId ? [seed.requestId] : []);
  if (seed.customerId) {
    for (const r of await db<{ email: string }[]>`select email from customer_emails where customer_id = ${seed.customerId}`) emails.add(r.email.toLowerCase());
    for (const r of await db<{ email: string | null }[]>`select email from customers where id = ${seed.customerId}`) if (r.email) emails.add(r.email.toLowerCase());
  }
  // A caller's earlier requests (by address or number) belong to the same person.
  for (const r of await db<{ id: string; email: string | null; phone: string | null }[]>`
    select id, requester ->> 'email' as email, requester ->> 'phone' as phone from data_requests
    where ${seed.customerId ? db`customer_id = ${seed.customerId} or` : db``} id = any(${[...requestIds]}::uuid[])
       or lower(requester ->> 'email') = any(${[...emails]}::text[])`) {
    requestIds.add(r.id);
    if (r.email) emails.add(r.email.toLowerCase());
    if (r.phone) phones.add(r.phone);
  }
  return { customerId: seed.customerId, emails: [...emails].sort(), phones: [...phones].sort(), requestIds: [...requestIds].sort() };
}

/** Access export (Art. 15, 20): every category a place of the map feeds, plus derived statistics. */
export async function exportSubject(db: Db, s: Subject): Promise<{ data: Record<string, Rows>; columns: Record<string, string[]> }> {
  const data: Record<string, Rows> = {};
  const columns: Record<string, string[]> = {};
  for (const place of PLACES) {
    if (!place.export) continue;
    const rows = await place.export.rows(db, s);
    data[place.export.category] = [...(data[place.export.category] ?? []), ...rows];
    columns[place.export.category] = place.export.columns;
  }
  if (s.customerId) {
    data.provenance = rowsOf(
      await db`select c.provided_by, c.provided_by_kind, c.provided_via, c.provided_at, cl.name as client from customers c join clients cl on cl.id = c.client_id where c.id = ${s.customerId}`,
    );
    columns.provenance = ['provided_by', 'provided_by_kind', 'provided_via', 'provided_at', 'client'];
  }
  data.call_statistics = rowsOf(
    await db`select client_id, count(*)::int as calls, coalesce(sum(duration_seconds), 0)::int as seconds from recordings
             where status = 'retained' and (${byCustomer(db, s)} or ${byPhone(db, s)}) group by client_id order by client_id`,
  );
  columns.call_statistics = ['client_id', 'calls', 'seconds'];
  return { data, columns };
}

export interface ErasureReport {
  /** Items erased per place of the map. */
  erased: Record<string, number>;
  /** What was kept, where, and why. */
  kept: Record<string, NonNullable<PlaceResult['kept']>>;
}

/**
 * The last step of erasing an account, once nothing more needs to reach the person (their
 * answer has gone out): address and name go, and the row stays an erased tombstone.
 */
export async function forgetAccount(tx: Tx, customerId: string): Promise<void> {
  await tx`update customers set email = null, name = null, password_hash = null, provided_by = '[erased]', status = 'erased', erased_at = coalesce(erased_at, now())
           where id = ${customerId}`;
}

/** Runs every place's erasure in the caller's transaction, so a retry after a crash counts the same. */
export async function eraseSubject(tx: Tx, s: Subject, ctx: EraseContext, only?: string[]): Promise<ErasureReport> {
  const report: ErasureReport = { erased: {}, kept: {} };
  for (const place of PLACES) {
    if (!place.erase || (only ? !only.includes(place.id) : place.eraseLast)) continue;
    const result = await place.erase(tx, s, ctx);
    report.erased[place.id] = result.erased;
    if (result.kept?.count) report.kept[place.id] = result.kept;
  }
  return report;
}

/** One pass of the data-retention Schedule: every place with a period removes what is past it. */
export async function sweepRetention(
  sql: Sql,
  periods: RetentionPeriods,
  ctx: { dataDir: string; subtract: (at: Date, duration: string) => Date; now?: Date },
): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  const now = ctx.now ?? new Date();
  for (const place of PLACES) {
    if (!place.sweep) continue;
    const cutoff = place.retention.config ? ctx.subtract(now, periods[place.retention.config]) : now;
    counts[place.id] = await sql.begin((tx) => place.sweep!(tx, cutoff, { dataDir: ctx.dataDir }));
  }
  return counts;
}

/** The map as a Markdown table: `docs/personal-data.md` is this, checked by a test to be current. */
export function renderMapMarkdown(periods: RetentionPeriods): string {
  const cell = (v: string) => v.replace(/\|/g, '\\|').replace(/\n/g, ' ');
  const lines = [
    '# Where personal data lives, and for how long (D15)',
    '',
    'Generated from `db/personal-data.ts` by `npm run docs:personal-data`; `test/personal-data-map.test.ts` fails when this file is',
    'out of date, when the live schema has a text-like column the map does not name, or when `DATA_DIR` holds a kind of file it does not name.',
    'Export, erasure and the data-retention Schedule run the entries below; defaults of the periods are shown.',
    '',
    '| place | where | personal data | access | rectification | erasure | restriction | kept for |',
    '|---|---|---|---|---|---|---|---|',
  ];
  for (const p of PLACES) {
    const personal = Object.entries(p.personal).map(([k, v]) => `\`${k}\`: ${v}`).join('; ') || 'none';
    const kept = p.retention.config ? `${p.retention.period} (default \`${p.retention.config}=${periods[p.retention.config]}\`)` : p.retention.period;
    lines.push(`| ${p.id} | ${p.kind} \`${p.where}\` | ${cell(personal)} | ${cell(p.access)} | ${cell(p.rectification)} | ${cell(p.erasure)} | ${cell(p.restriction)} | ${cell(kept)} |`);
  }
  lines.push('', '## Tables with no personal data', '', '| table | why |', '|---|---|');
  for (const [table, why] of Object.entries(NO_PERSONAL_DATA)) lines.push(`| \`${table}\` | ${cell(why)} |`);
  return lines.join('\n') + '\n';
}
