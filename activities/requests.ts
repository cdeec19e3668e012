import { mkdir, readdir, rename, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { ApplicationFailure } from '@temporalio/common';
import type { Db, Sql, Tx } from '../db/index';
import { eraseSubject, forgetAccount, resolveSubject, type EraseContext, type Subject } from '../db/personal-data';
import { recipientsOfPerson, type PersonRecipient } from '../db/disclosures';
import type { Mailer } from '../lib/mailer';
import { ownerOfRequest, type PersonKeys } from '../db/person-keys';
import { seal } from '../lib/at-rest';
import type { RecordingStore } from '../lib/recording-store';
import { addCalendarDuration, fixedDurationMs } from '../lib/durations';
import { hashToken } from '../db/access-tokens';
import { findClient } from '../db/clients';
import { createPasswordToken, findCustomer, setMarketingEmails, type Locale } from '../db/customers';
import { earlierRequests, findRequest, updateRequest, type RequestRow, type RequestStatus } from '../db/requests';
import { acknowledgementEmail, complaintLines, completionEmail, CONTACT_BLOCK, invitationEmail, refusalEmail, restrictionLiftNoticeEmail, type RenderedEmail } from '../lib/email-templates';
import { alreadySent, deliverEmail, suppressEmail, type EmailCategory } from './email';
import { linkTokenFor } from './links';
import { erasureContext } from './recordings';
import { buildAccessExport } from './export-package';
import { appendLedger, type LedgerActor } from '../db/audit-ledger';
import { refuseActor, requireStaffActor } from './actors';
import { createHash, randomBytes, randomUUID } from 'node:crypto';

export interface RequestDeps {
  sql: Sql;
  mailer: Mailer;
  store: RecordingStore;
  config: { MAIL_FROM: string; STAFF_EMAIL: string; PUBLIC_URL: string; DATA_DIR: string; EXPORT_LINK_TTL: string; PASSWORD_LINK_TTL: string; DATA_KEY_MAX_AGE?: string };
  /** Issue 12: the person data keys that seal export packages and outbox bodies (required for exports). */
  keys?: PersonKeys;
}

interface Recipient {
  email: string;
  locale: Locale;
  marketingAllowed: boolean;
}

export function createRequestActivities(deps: RequestDeps) {
  const emailDeps = { sql: deps.sql, mailer: deps.mailer, mailFrom: deps.config.MAIL_FROM, keys: deps.keys };

  async function customerRecipient(customerId: string): Promise<Recipient | undefined> {
    const c = await findCustomer(deps.sql, customerId);
    if (!c?.email) return undefined;
    const client = await findClient(deps.sql, c.clientId);
    return { email: c.email, locale: c.locale, marketingAllowed: c.marketingEmails && !c.objectedToProcessing && !c.processingRestricted && !client?.restrictions.includes('no_marketing') };
  }

  async function requestRecipient(r: RequestRow): Promise<Recipient | undefined> {
    if (r.customerId) return customerRecipient(r.customerId);
    return r.requester ? { email: r.requester.email, locale: r.locale, marketingAllowed: false } : undefined;
  }

  /** Whether the person can log in to the account pages (an active account with a password). */
  async function canLogIn(customerId: string | null): Promise<boolean> {
    if (!customerId) return false;
    return (await deps.sql`select 1 from customers where id = ${customerId} and status = 'active' and password_hash is not null`).length > 0;
  }

  async function requireRequest(requestId: string): Promise<RequestRow> {
    const r = await findRequest(deps.sql, requestId);
    if (!r) throw ApplicationFailure.nonRetryable('no such request', 'RequestNotFound');
    return r;
  }

  /** Service mail always goes; marketing mail only to those who allow it (D11, D6). */
  async function sendToPerson(to: Recipient, key: string, category: EmailCategory, email: RenderedEmail, secrets?: Record<string, string>) {
    const message = { key, to: to.email, category, subject: email.subject, text: email.text };
    if (category === 'marketing' && !to.marketingAllowed) {
      await suppressEmail(deps.sql, message, deps.config.MAIL_FROM, deps.keys);
      return { sent: false };
    }
    await deliverEmail(emailDeps, message, secrets);
    return { sent: true };
  }

  return {
    /** D2: the invitation with a one-time set-password link, saying who gave us the data if not the person. */
    async sendInvitation(input: { customerId: string }): Promise<void> {
      const key = `customer:${input.customerId}:invitation`;
      if (await alreadySent(deps.sql, key)) return;
      const c = await findCustomer(deps.sql, input.customerId);
      if (!c?.email || !c.name) return; // erased before the invitation went out
      // The link derives from the outbox key: a retry sends the same one (issue 13), and it is the only one that works.
      const token = await linkTokenFor(deps.sql, key);
      const [minted] = await deps.sql.begin(async (tx) => {
        await tx`update password_tokens set used_at = now() where customer_id = ${c.id} and used_at is null and token_hash <> ${hashToken(token)}`;
        return tx<{ expiresAt: Date }[]>`
          insert into password_tokens (token_hash, customer_id, expires_at) values (${hashToken(token)}, ${c.id}, ${new Date(Date.now() + fixedDurationMs(deps.config.PASSWORD_LINK_TTL))})
          on conflict (token_hash) do update set token_hash = excluded.token_hash returning expires_at as "expiresAt"`;
      });
      const expiresAt = minted!.expiresAt;
      const email = invitationEmail({
        locale: c.locale,
        name: c.name,
        link: '{{link}}',
        providedBy: c.providedBy,
        providedByKind: c.providedByKind,
        providedVia: c.providedVia,
        providedAt: c.providedAt.toISOString(),
        expiresAt: expiresAt.toISOString(),
      });
      await sendToPerson({ email: c.email, locale: c.locale, marketingAllowed: false }, key, 'service', email, {
        link: `${deps.config.PUBLIC_URL}/account/set-password?token=${token}`,
      });
    },

    async setMarketingPreference(input: { customerId: string; marketingEmails: boolean }): Promise<{ marketingEmails: boolean }> {
      await setMarketingEmails(deps.sql, input.customerId, input.marketingEmails);
      return { marketingEmails: input.marketingEmails };
    },

    /** A marketing email to one person; suppressed (and recorded as such) when they opted out. */
    async sendMarketingEmail(input: { key: string; customerId: string; subject: string; text: string }): Promise<{ sent: boolean }> {
      const to = await customerRecipient(input.customerId);
      if (!to) return { sent: false };
      return sendToPerson(to, input.key, 'marketing', { subject: input.subject, text: input.text });
    },

    async acknowledgeRequest(input: { requestId: string }): Promise<void> {
      const r = await requireRequest(input.requestId);
      const to = await requestRecipient(r);
      if (!to) return;
      await sendToPerson(to, `request:${r.id}:ack`, 'service', acknowledgementEmail({ locale: to.locale, requestId: r.id, type: r.type, dueAt: r.dueAt.toISOString() }));
    },

    /** Art. 12(5): flags a request of the same type within the window and keeps the earlier ones as evidence. */
    async assessRequest(input: { requestId: string; repeatWindowStart: string }): Promise<{ flags: string[]; earlierRequestIds: string[] }> {
      const r = await requireRequest(input.requestId);
      const earlier = r.customerId
        ? await earlierRequests(deps.sql, { id: r.id, customerId: r.customerId, type: r.type, receivedAt: r.receivedAt, windowStart: new Date(input.repeatWindowStart) })
        : [];
      const flags = earlier.length ? ['repetitive'] : [];
      await updateRequest(deps.sql, r.id, { flags, earlierRequestIds: earlier, status: 'awaiting_decision' });
      return { flags, earlierRequestIds: earlier };
    },

    async setRequestStatus(input: { requestId: string; status: RequestStatus }): Promise<void> {
      await updateRequest(deps.sql, input.requestId, { status: input.status });
    },

    async markSlaBreached(input: { requestId: string }): Promise<void> {
      await updateRequest(deps.sql, input.requestId, { slaBreached: true });
    },

    /**
     * Records the decision, once the stated actor is checked in Postgres (issue 12): an officer's
     * decision needs an active staff token with the API's role for it (privacy officer or admin);
     * an approval with no staff step needs the request to have been filed that way by the person
     * (`data_requests.auto_approve`, written by the API). Anything else is refused and kept in the
     * ledger, and the request stays as it was.
     */
    async recordDecision(input: { requestId: string; decision: 'approve' | 'refuse'; reasonCode: string | null; decidedBy: string }): Promise<void> {
      const r = await requireRequest(input.requestId);
      const act = { action: 'request.decide', objectType: 'request', objectId: r.id } as const;
      let actor: LedgerActor;
      if (input.decidedBy === 'account-closure' || input.decidedBy === 'self-service') {
        const authorised = r.autoApprove === input.decidedBy && r.filedBy === 'customer' && r.customerId !== null && input.decision === 'approve';
        actor = { type: r.customerId ? 'customer' : 'unknown', id: r.customerId, role: input.decidedBy };
        if (!authorised) await refuseActor(deps.sql, actor, act);
      } else {
        actor = await requireStaffActor(deps.sql, input.decidedBy, ['privacy_officer'], act);
      }
      await deps.sql.begin(async (tx) => {
        await updateRequest(tx, input.requestId, { decision: input.decision, reasonCode: input.reasonCode, decidedBy: input.decidedBy, status: input.decision === 'refuse' ? 'refused' : 'executing' });
        // The winner's reason and evidence, from the draft its officer left (issue 13); the others' go.
        if (input.decision === 'refuse') {
          await tx`update data_requests r set reason = d.reason,
                     details = case when d.evidence is null then r.details else r.details || jsonb_build_object('refusalEvidence', d.evidence) end
                   from decision_drafts d where r.id = ${input.requestId} and d.request_id = r.id and d.token_id = ${input.decidedBy}`;
        }
        await tx`delete from decision_drafts where request_id = ${input.requestId}`;
        await appendLedger(tx, [{ ...act, actor, outcome: 'done' }], { once: true });
      });
    },

    /**
     * Carries out an approved request. Returns a summary without personal data (counts, ids),
     * which is also kept on the request as its outcome.
     */
    async executeRequest(input: { requestId: string }): Promise<Record<string, unknown>> {
      const r = await requireRequest(input.requestId);
      if (r.outcome) return r.outcome; // done before a crash; do not do it twice
      // Below the API (issue 12): only what Postgres records as approved is carried out, whatever
      // a workflow's input says (opting out of marketing alone needs no decision, D11).
      const act = { action: 'request.execute', objectType: 'request', objectId: r.id } as const;
      if (r.type !== 'marketing_opt_out' && r.decision !== 'approve') await refuseActor(deps.sql, { type: 'system', id: null, role: 'access_request' }, act);
      const outcome = await execute(r);
      await deps.sql.begin(async (tx) => {
        await updateRequest(tx, r.id, { outcome });
        await appendLedger(tx, [{ ...act, actor: { type: 'system', id: null, role: 'access_request' }, outcome: 'done' }], { once: true });
      });
      return outcome;
    },

    /** The answer email: the refusal with its reason and the right to complain, or what was done. */
    async sendRequestAnswer(input: { requestId: string }): Promise<void> {
      const r = await requireRequest(input.requestId);
      const key = `request:${r.id}:answer`;
      const to = await requestRecipient(r);
      // Art. 19: recipients of a rectified or erased person's data are told first, so the answer can say so.
      const changed = r.type === 'erasure' || (r.type === 'rectification' && ((r.outcome?.changed as string[] | undefined) ?? []).length > 0);
      const told = r.decision === 'approve' && changed ? await notifyRecipients(r) : 0;
      if (to && !(await alreadySent(deps.sql, key))) {
        if (r.decision === 'refuse') {
          await sendToPerson(to, key, 'service', refusalEmail({ locale: to.locale, requestId: r.id, type: r.type, reasonCode: r.reasonCode ?? '', reason: r.reason ?? '' }));
        } else {
          const secrets: Record<string, string> = {};
          if (r.type === 'access') {
            const expiresAt = new Date(Date.now() + fixedDurationMs(deps.config.EXPORT_LINK_TTL));
            if (await canLogIn(r.customerId)) {
              // Issue 11, 14: a person with an account downloads it only from their logged-in
              // account page; the email carries no bearer link that works for whoever holds it.
              await deps.sql`update export_packages set expires_at = ${expiresAt} where request_id = ${r.id}`;
              secrets.link = `${deps.config.PUBLIC_URL}/account/requests/${r.id}`;
              r.outcome = { ...r.outcome, linkExpiresAt: expiresAt.toISOString(), inAccount: true };
            } else {
              // A caller without an account: the link derives from the outbox key (a retry sends the same
              // one, issue 13) and only its hash is kept.
              const token = await linkTokenFor(deps.sql, key);
              await deps.sql`update export_packages set token_hash = ${hashToken(token)}, expires_at = ${expiresAt} where request_id = ${r.id}`;
              secrets.link = `${deps.config.PUBLIC_URL}/v1/exports/${token}`;
              r.outcome = { ...r.outcome, linkExpiresAt: expiresAt.toISOString() };
            }
          }
          const recipients = r.type === 'access' ? await recipientsOfPerson(deps.sql, await subjectOf(deps.sql, r)) : [];
          const lines = [...outcomeLines(r, to.locale), ...recipientLines(recipients, to.locale), ...(told ? [art19Line(told, to.locale)] : [])];
          await sendToPerson(to, key, 'service', completionEmail({ locale: to.locale, requestId: r.id, type: r.type, lines }), secrets);
        }
      }
      await updateRequest(deps.sql, r.id, { answeredAt: new Date(), status: r.decision === 'refuse' ? 'refused' : 'answered' });
    },

    /**
     * Issue 13: an email to the person could not be delivered (refused for good, or not accepted
     * within the bounded retry). The request says so, and staff are told (ids only: the address
     * stays in Postgres) so they can reach the person another way.
     */
    async markDeliveryFailed(input: { requestId: string; stage: 'acknowledgement' | 'answer' }): Promise<void> {
      const r = await requireRequest(input.requestId);
      await deps.sql`update data_requests set flags = array(select distinct unnest(flags || ${[`${input.stage}_undeliverable`]}::text[]))
                     ${input.stage === 'answer' ? deps.sql`, status = 'delivery_failed'` : deps.sql``} where id = ${r.id}`;
      await deliverEmail(emailDeps, {
        key: `request:${r.id}:delivery-failed:${input.stage}`,
        to: deps.config.STAFF_EMAIL,
        category: 'service',
        subject: `UNDELIVERABLE: the ${input.stage} of ${r.type} request ${r.id} could not be emailed`,
        text: `The ${input.stage} of the ${r.type} request ${r.id} could not be delivered to the person's address (the outbox row says why, as a code). ` +
          `${input.stage === 'answer' ? 'The request was carried out; its status is delivery_failed. ' : 'The request goes on. '}` +
          `Check the address and reach the person another way (phone, post), then note it on the request.\n`,
      });
    },

    /** Art. 18(3): tells the person, before it happens, that their restriction is lifted. */
    async sendRestrictionLiftNotice(input: { requestId: string }): Promise<void> {
      const r = await requireRequest(input.requestId);
      const to = await requestRecipient(r);
      if (!to) return; // nobody left to tell: the person was erased, and with them what was restricted
      await sendToPerson(to, `request:${r.id}:restriction-lifted`, 'service', restrictionLiftNoticeEmail({ locale: to.locale, requestId: r.id }));
    },

    /** Removes the restriction this request put in place, once the notice has gone out. */
    async liftRestriction(input: { requestId: string; liftedBy: string }): Promise<{ lifted: boolean }> {
      const r = await requireRequest(input.requestId);
      return deps.sql.begin(async (tx) => {
        const account = r.customerId ? (await tx`update customers set processing_restricted = false where id = ${r.customerId} and processing_restricted returning 1`).length : 0;
        const numbers = (await tx`delete from restricted_numbers where request_id = ${r.id}`).count;
        if (account || numbers) {
          await tx`insert into audit_log (actor, action, subject_type, subject_id, new_values)
                   values (${`staff:${input.liftedBy}`}, 'restriction_lifted', 'data_request', ${r.id}, ${tx.json({ fields: ['processing_restricted'] })})`;
        }
        return { lifted: account + numbers > 0 };
      });
    },

    /** After the erasure answer went out: the last contact details go too (the answer itself included). */
    async forgetContact(input: { requestId: string }): Promise<void> {
      const r = await requireRequest(input.requestId);
      await deps.sql.begin(async (tx) => {
        const subject = await subjectOf(tx, r);
        // The person's data key last (issue 12): every copy of what it sealed, backups included, stops opening.
        await eraseSubject(tx, subject, eraseContext(r, 'erasure'), ['email_outbox', 'customer_emails', 'login_failures', 'access_tokens', 'person_keys']);
        if (r.customerId) await forgetAccount(tx, r.customerId);
        await tx`update data_requests set requester = case when requester is null then null else '{"erased": true}'::jsonb end, details = '{}', details_erased_at = coalesce(details_erased_at, now())
                 where id = ${r.id}`;
      });
    },
  };

  /**
   * Art. 19: one notice per recipient that received the person's data, through the outbox
   * (`art19:{request}:{recipient}`, so a retry sends none twice). The person is named by what
   * the recipient already has from us — TopCall's person id, or the date and category of what
   * was disclosed about a caller — never by sending their data again.
   */
  async function notifyRecipients(r: RequestRow): Promise<number> {
    const subject = await subjectOf(deps.sql, r);
    const byRecipient = new Map<string, PersonRecipient[]>();
    for (const d of await recipientsOfPerson(deps.sql, subject)) {
      if (!d.email) continue;
      byRecipient.set(d.recipientId, [...(byRecipient.get(d.recipientId) ?? []), d]);
    }
    const what = r.type === 'erasure' ? { da: 'slettet', en: 'erased' } : { da: `rettet (${((r.outcome?.changed as string[]) ?? []).join(', ')})`, en: `rectified (${((r.outcome?.changed as string[]) ?? []).join(', ')})` };
    for (const [recipientId, disclosures] of byRecipient) {
      const list = disclosures.map((d) => `- ${d.disclosureId}: ${d.category}, ${d.disclosedAt.toISOString().slice(0, 10)}`).join('\n');
      const person = subject.customerId ? `TopCall person id ${subject.customerId}` : 'the caller named in these disclosures';
      await deliverEmail(emailDeps, {
        key: `art19:${r.id}:${recipientId}`,
        to: disclosures[0]!.email,
        category: 'service',
        subject: `Meddelelse efter GDPR art. 19 / Notice under GDPR Art. 19 (${r.id.slice(0, 8)})`,
        text:
          `TopCall ApS har ${what.da} oplysninger om en person, som vi har videregivet til jer (${person}):\n${list}\n\n` +
          `Ret eller slet venligst jeres kopi tilsvarende (GDPR art. 19).\n\n` +
          `TopCall ApS has ${what.en} data about a person that we disclosed to you (${person}), see the disclosures above. Please rectify or erase your copy accordingly (GDPR Art. 19).\n\n` +
          `Reference: ${r.id}\n--\n${CONTACT_BLOCK.da}\n`,
      });
    }
    return byRecipient.size;
  }

  /** The numbers a request names: a caller's own, and those staff list for an account holder. */
  function phonesOf(r: RequestRow): string[] {
    const listed = Array.isArray(r.details.phones) ? (r.details.phones as string[]) : [];
    return [...new Set([...(r.requester?.phone ? [r.requester.phone] : []), ...listed])];
  }

  function subjectOf(db: Db, r: RequestRow): Promise<Subject> {
    return resolveSubject(db, { customerId: r.customerId, requestId: r.id, phones: phonesOf(r) });
  }

  /**
   * Erasure and an upheld objection change many places at once; they run in one transaction
   * that also stores the outcome, so an attempt that dies half-way leaves nothing done and the
   * retry reports exactly what was done (audio unlinked by a rolled-back attempt is simply
   * missing for the retry, which is not an error).
   */
  async function inOneTransaction(r: RequestRow, work: (tx: Tx, subject: Subject) => Promise<Record<string, unknown>>): Promise<Record<string, unknown>> {
    return deps.sql.begin(async (tx) => {
      const [current] = await tx<{ outcome: Record<string, unknown> | null }[]>`select outcome from data_requests where id = ${r.id} for update`;
      if (current?.outcome) return current.outcome;
      const outcome = await work(tx, await subjectOf(tx, r));
      await tx`update data_requests set outcome = ${tx.json(outcome as never)} where id = ${r.id}`;
      return outcome;
    });
  }

  function eraseContext(r: RequestRow, reason: 'erasure' | 'objection'): EraseContext {
    return erasureContext({ store: deps.store, dataDir: deps.config.DATA_DIR }, { requestId: r.id, reason, workflowId: `request:${r.id}`, runId: r.id });
  }

  /**
   * Keeps an access export: one file per request (`exports/{requestId}.zip`) and its row, and
   * nothing else on disk. The zip is written under a temporary name and moved into place inside
   * the transaction that inserts the row, so an attempt cut off before its row commits (Postgres
   * gone, the worker killed) leaves at most a file the next attempt replaces or removes, never a
   * second copy of the person's data that no row, sweep or erasure knows about. Answers the id
   * of the package that stands (an earlier attempt's, when one committed).
   *
   * Issue 12: the file is sealed with the person's data key (lib/at-rest.ts); its row keeps the
   * size and hash of the zip itself, which is what the download serves.
   */
  async function storeExport(r: RequestRow, zip: Uint8Array): Promise<string | undefined> {
    if (!deps.keys) throw new Error('storing an export needs the person data keys');
    const requestId = r.id;
    const sealed = seal(await deps.keys.keyFor(ownerOfRequest(r)), zip);
    const dir = path.join(deps.config.DATA_DIR, 'exports');
    const fileKey = `exports/${requestId}.zip`;
    const partial = `${requestId}.zip.partial-`;
    await mkdir(dir, { recursive: true });
    for (const stale of (await readdir(dir)).filter((f) => f.startsWith(partial))) await unlink(path.join(dir, stale)).catch(() => undefined);
    const temp = path.join(dir, `${partial}${randomUUID()}`);
    await writeFile(temp, sealed, { mode: 0o600 });
    try {
      const id = randomUUID();
      const stored = await deps.sql.begin(async (tx) => {
        // A placeholder hash until the answer email mints the real link (nobody can hold this one).
        const inserted = await tx`
          insert into export_packages (id, request_id, token_hash, file_key, bytes, sha256, expires_at)
          values (${id}, ${requestId}, ${hashToken(randomBytes(32).toString('hex'))}, ${fileKey}, ${zip.byteLength},
                  ${createHash('sha256').update(zip).digest('hex')}, now() + interval '1 day')
          on conflict (request_id) do nothing returning id`;
        if (inserted.length) await rename(temp, path.join(deps.config.DATA_DIR, fileKey));
        return inserted.length > 0;
      });
      if (stored) return id;
      // An earlier attempt's package stands.
      const [existing] = await deps.sql<{ id: string }[]>`select id from export_packages where request_id = ${requestId}`;
      return existing?.id;
    } finally {
      await unlink(temp).catch(() => undefined); // gone already once moved into place
    }
  }

  async function execute(r: RequestRow): Promise<Record<string, unknown>> {
    switch (r.type) {
      case 'access': {
        const subject = await subjectOf(deps.sql, r);
        const { zip, categories } = await buildAccessExport(deps.sql, subject);
        return { exportId: await storeExport(r, zip), categories };
      }
      case 'rectification': {
        if (!r.customerId) return { changed: [], noAccount: true };
        const fields = (r.details.fields ?? {}) as Partial<Record<'name' | 'email' | 'locale', string>>;
        return deps.sql.begin(async (tx) => {
          const [old] = await tx<{ name: string; email: string; locale: string; status: string }[]>`select name, email, locale, status from customers where id = ${r.customerId} for update`;
          if (!old || old.status !== 'active') return { changed: [], noAccount: true };
          const changes = Object.fromEntries(Object.entries(fields).filter(([k, v]) => v !== undefined && old[k as keyof typeof old] !== v));
          if (Object.keys(changes).length) {
            await tx`update customers set ${tx(changes)} where id = ${r.customerId}`;
            // The audit record keeps that fields changed and which, never the values (D15).
            await tx`insert into audit_log (actor, action, subject_type, subject_id, old_values, new_values)
                     values (${`request:${r.id}`}, 'rectification', 'customer', ${r.customerId}, null, ${tx.json({ fields: Object.keys(changes).sort() })})`;
          }
          return { changed: Object.keys(changes) };
        });
      }
      case 'erasure':
        return inOneTransaction(r, async (tx, subject) => {
          const report = await eraseSubject(tx, subject, eraseContext(r, 'erasure'));
          // Issue 12: a database backup taken before now holds the person's keys wrapped by the
          // current master key (or an older one), which is retired within DATA_KEY_MAX_AGE.
          const backupsUnreadableBy = addCalendarDuration(new Date(), deps.config.DATA_KEY_MAX_AGE ?? 'P30D').toISOString();
          return { erased: report.erased, kept: report.kept, backupsUnreadableBy };
        });
      case 'objection':
        // Art. 21 upheld: the recording (legitimate interest) stops for this person — what is not
        // under a hold goes now, future calls from their numbers are not kept past the next
        // sweep, and marketing stops.
        return inOneTransaction(r, async (tx, subject) => {
          const report = await eraseSubject(tx, subject, eraseContext(r, 'objection'), ['recordings', 'restriction_overrides']);
          const numbers = subject.phones.length
            ? (
                await tx`insert into do_not_keep_numbers (phone_hash, request_id)
                         select phone_hash(p), ${r.id} from unnest(${subject.phones}::text[]) p on conflict do nothing returning 1`
              ).length + 0
            : 0;
          const account = subject.customerId
            ? (await tx`update customers set objected_to_processing = true, marketing_emails = false where id = ${subject.customerId} and status = 'active' returning 1`).length > 0
            : false;
          return { erased: report.erased, kept: report.kept, doNotKeepNumbers: subject.phones.length, newDoNotKeepNumbers: numbers, accountMarked: account };
        });
      case 'restriction':
        // Art. 18: stored, not otherwise used — no marketing, no transfer, hidden from client
        // views, recordings not played without an officer's override (db/personal-data.ts).
        return inOneTransaction(r, async (tx, subject) => {
          const account = subject.customerId
            ? (await tx`update customers set processing_restricted = true where id = ${subject.customerId} and status = 'active' returning 1`).length > 0
            : false;
          if (subject.phones.length) {
            await tx`insert into restricted_numbers (phone_hash, request_id)
                     select phone_hash(p), ${r.id} from unnest(${subject.phones}::text[]) p on conflict do nothing`;
          }
          return { accountRestricted: account, numbersRestricted: subject.phones.length };
        });
      case 'marketing_opt_out': {
        if (!r.customerId) return { marketingEmails: false, noAccount: true };
        await setMarketingEmails(deps.sql, r.customerId, false);
        return { marketingEmails: false };
      }
    }
  }
}

const complaintLine = (da: boolean) => complaintLines(da ? 'da' : 'en').join(' ');

/** How each place of the map is named in an answer, with the count of what went. */
const ERASED_WORDS: Record<string, { da: (n: number) => string; en: (n: number) => string }> = {
  customers: { da: () => 'din konto (navn, e-mailadresse, adgangskode og hvem der gav os oplysningerne)', en: () => 'your account (name, email address, password and who gave us your data)' },
  customer_emails: { da: (n) => `${n} tidligere e-mailadresse(r)`, en: (n) => `${n} email address(es) you have used` },
  recordings: { da: (n) => `${n} samtaleoptagelse(r)`, en: (n) => `${n} call recording(s)` },
  restriction_overrides: { da: (n) => `${n} registrering(er) af afspilning af dine optagelser`, en: (n) => `${n} record(s) of your recordings being played` },
  call_messages: { da: (n) => `${n} besked(er) vi har sendt videre efter dine opkald`, en: (n) => `${n} message(s) we passed on after your calls` },
  email_outbox: { da: (n) => `indholdet og adressen på ${n} e-mail(s), vi har sendt dig`, en: (n) => `the content and address of ${n} email(s) we sent you` },
  data_requests: { da: (n) => `dine noter og kontaktoplysninger i ${n} henvendelse(r)`, en: (n) => `your notes and contact details in ${n} request(s)` },
  export_files: { da: (n) => `${n} dataudtræk`, en: (n) => `${n} data export(s)` },
  login_failures: { da: (n) => `${n} registrering(er) af mislykkede login`, en: (n) => `${n} record(s) of failed logins` },
  password_tokens: { da: (n) => `${n} link(s) til at vælge adgangskode`, en: (n) => `${n} set-password link(s)` },
  access_tokens: { da: (n) => `${n} login-session(er)`, en: (n) => `${n} login session(s)` },
  restricted_numbers: { da: (n) => `${n} begrænsning(er) på dit telefonnummer`, en: (n) => `${n} restriction(s) on your phone number` },
};

type Kept = { count: number; reason: string; ids?: string[]; until?: string };

/** What erasure or an upheld objection did, place by place, and what it kept and why. */
function erasureLines(o: Record<string, unknown>, da: boolean, nothing?: string): string[] {
  const erased = (o.erased ?? {}) as Record<string, number>;
  const kept = (o.kept ?? {}) as Record<string, Kept>;
  const done = Object.entries(ERASED_WORDS)
    .filter(([place]) => (erased[place] ?? 0) > 0)
    .map(([place, words]) => `- ${(da ? words.da : words.en)(erased[place]!)}`);
  const lines = done.length
    ? [da ? 'Vi har slettet:' : 'We have deleted:', ...done]
    : [nothing ?? (da ? 'Vi fandt ingen oplysninger om dig at slette ud over selve din anmodning.' : 'We found no data about you to delete beyond your request itself.')];
  const held = kept.recordings;
  if (held?.count) {
    lines.push(
      '',
      da
        ? `Vi beholder ${held.count} optagelse(r), fordi de indgår i en igangværende tvist og er nødvendige for at fastlægge, gøre gældende eller forsvare et retskrav (GDPR art. 17, stk. 3, litra e). De slettes, så snart tvisten er afgjort:`
        : `We keep ${held.count} recording(s) because they are part of an open dispute and needed to establish, exercise or defend legal claims (GDPR Art. 17(3)(e)). They are deleted as soon as the dispute is resolved:`,
      ...(held.ids ?? []).map((id) => `- ${id}`),
      complaintLine(da),
    );
  }
  if (kept.data_requests?.count) {
    lines.push(
      '',
      da
        ? 'Vi gemmer en registrering af dine anmodninger (type, datoer og vores afgørelse) uden dine personoplysninger, som dokumentation for, at vi har besvaret dem (GDPR art. 5, stk. 2).'
        : 'We keep a record of your requests (type, dates and our decision) without your personal data, as evidence that we answered them (GDPR Art. 5(2)).',
    );
  }
  if ((erased.recordings ?? 0) > 0) {
    lines.push(da ? 'For hver slettet optagelse findes en sletningskvittering uden personoplysninger.' : 'Each deleted recording leaves a deletion receipt that holds no personal data.');
  }
  return lines;
}

/**
 * Issue 12: what happens to copies in backups, as true as crypto-shredding makes it. Files
 * (audio, exports) and outbox bodies are sealed with keys the erasure destroyed; a database
 * backup from before the erasure still holds those keys wrapped by a master key, which is retired
 * within DATA_KEY_MAX_AGE (the data-retention sweep re-wraps live keys and alerts staff when
 * rotation is due), so `backupsUnreadableBy` is the erasure time plus that bound. Answers sent
 * before that was recorded keep the wording they were sent with.
 */
function backupLines(o: Record<string, unknown>, da: boolean): string[] {
  if (typeof o.backupsUnreadableBy !== 'string') {
    return da
      ? [
          'Dine samtaleoptagelser, dataudtræk og de e-mails, vi har sendt dig, er gemt krypteret med nøgler, der kun hører til dig. Vi destruerer de nøgler som sidste led i sletningen, så kopier af dem i vores sikkerhedskopier ikke længere kan læses.',
          'Øvrige kopier i sikkerhedskopier (f.eks. af dine kontooplysninger) forsvinder, når sikkerhedskopierne overskrives.',
        ]
      : [
          'Your call recordings, data exports and the emails we sent you are stored encrypted with keys that belong to you alone. We destroy those keys as the last step of the erasure, so copies of them in our backups can no longer be read.',
          'Other copies in backups (such as of your account details) disappear when the backups are overwritten.',
        ];
  }
  const by = o.backupsUnreadableBy.slice(0, 10);
  return da
    ? [
        'Dine samtaleoptagelser, dataudtræk og de e-mails, vi har sendt dig, er gemt krypteret med nøgler, der kun hører til dig. Vi destruerer de nøgler som sidste led i sletningen, så kopier af disse data i sikkerhedskopier af vores filer ikke længere kan læses.',
        `Sikkerhedskopier af vores database fra før sletningen indeholder stadig dine nøgler, låst med vores hovednøgle. Vi udskifter hovednøglen jævnligt og destruerer den gamle, så senest ${by} kan de sikkerhedskopier heller ikke åbne dine data. Øvrige kopier i sikkerhedskopier (f.eks. af dine kontooplysninger) forsvinder, når sikkerhedskopierne overskrives.`,
      ]
    : [
        'Your call recordings, data exports and the emails we sent you are stored encrypted with keys that belong to you alone. We destroy those keys as the last step of the erasure, so copies of that data in backups of our files can no longer be read.',
        `Backups of our database taken before the erasure still hold your keys, locked with our master key. We replace that master key regularly and destroy the old one, so by ${by} at the latest those backups cannot open your data either. Other copies in backups (such as of your account details) disappear when the backups are overwritten.`,
      ];
}

/** D7: who received the person's data, with contact details, and that they may contact them directly. */
function recipientLines(recipients: PersonRecipient[], locale: Locale): string[] {
  const da = locale === 'da';
  if (!recipients.length) return ['', da ? 'Vi har ikke videregivet dine oplysninger til andre.' : 'We have not disclosed your data to anyone.'];
  const seen = new Map<string, PersonRecipient>();
  for (const r of recipients) seen.set(r.recipientId, r);
  return [
    '',
    da ? 'Vi har videregivet dine oplysninger til (du kan kontakte dem direkte):' : 'We have disclosed your data to (you may contact them directly):',
    ...[...seen.values()].map((r) => `- ${r.name} (${r.type}): ${r.email}${r.address ? `, ${r.address}` : ''}`),
  ];
}

const art19Line = (n: number, locale: Locale) =>
  locale === 'da' ? `Vi har givet besked til ${n} modtager(e) af dine oplysninger (GDPR art. 19).` : `We have told ${n} recipient(s) of your data (GDPR Art. 19).`;

/** What the completion email says was done, in the person's language: built from the outcome only. */
/** What the answer says was done (the answer email's lines; the account pages show them too). */
export function outcomeLines(r: RequestRow, locale: Locale): string[] {
  const o = (r.outcome ?? {}) as Record<string, unknown>;
  const da = locale === 'da';
  switch (r.type) {
    case 'access': {
      const until = new Date(String(o.linkExpiresAt)).toISOString().slice(0, 16).replace('T', ' ');
      if (o.inAccount) {
        return da
          ? [`Log ind på din konto og hent dine data her (maskinlæsbart: JSON og CSV pr. kategori). Kopien kan hentes indtil ${until} UTC:`, '{{link}}']
          : [`Log in to your account and download your data here (machine-readable: JSON and CSV per category). The copy is available until ${until} UTC:`, '{{link}}'];
      }
      return da
        ? [`Hent dine data her (maskinlæsbart: JSON og CSV pr. kategori). Linket er kun til dig og udløber ${until} UTC:`, '{{link}}']
        : [`Download your data here (machine-readable: JSON and CSV per category). The link is for you only and expires ${until} UTC:`, '{{link}}'];
    }
    case 'rectification': {
      if (o.noAccount) return [da ? 'Vi har ingen kontooplysninger om dig at rette. Vi har derfor ikke ændret noget.' : 'We hold no account data about you to correct, so nothing was changed.'];
      const changed = (o.changed as string[]) ?? [];
      return [da ? `Rettede felter: ${changed.join(', ') || 'ingen (de var allerede rigtige)'}.` : `Fields corrected: ${changed.join(', ') || 'none (they were already right)'}.`];
    }
    case 'erasure':
      return [
        ...erasureLines(o, da),
        '',
        ...backupLines(o, da),
      ];
    case 'restriction': {
      const account = o.accountRestricted === true;
      const numbers = Number(o.numbersRestricted ?? 0);
      if (!account && !numbers) {
        return [da ? 'Vi har hverken en konto eller et telefonnummer for dig at begrænse behandlingen af, så intet er ændret.' : 'We have neither an account nor a phone number of yours to restrict, so nothing was changed.'];
      }
      return [
        da
          ? `Vi har begrænset behandlingen af ${account ? 'dine kontodata' : ''}${account && numbers ? ' og ' : ''}${numbers ? `optagelser af opkald fra ${numbers} telefonnummer/-numre` : ''}: oplysningerne opbevares, men bruges ikke til markedsføring, overdrages ikke, vises ikke for vores klienter, og optagelser afspilles kun, hvis vores databeskyttelsesansvarlige godkender det med en begrundelse.`
          : `We have restricted the processing of ${account ? 'your account data' : ''}${account && numbers ? ' and ' : ''}${numbers ? `recordings of calls from ${numbers} phone number(s)` : ''}: the data is stored but not used for marketing, not transferred, not shown to our clients, and recordings are played only if our privacy officer approves it with a reason.`,
        da ? 'Vi giver dig besked, før begrænsningen ophæves.' : 'We will tell you before the restriction is lifted.',
      ];
    }
    case 'objection': {
      const numbers = Number(o.doNotKeepNumbers ?? 0);
      const lines = erasureLines(o, da, da ? 'Vi havde ingen optagelser af dine opkald at slette.' : 'We held no recordings of your calls to delete.');
      if (numbers) {
        lines.push(
          da
            ? `Fremtidige opkald fra ${numbers} telefonnummer/-numre bliver ikke gemt længere end til næste sletning (inden for en time).`
            : `Future calls from ${numbers} phone number(s) are not kept beyond the next deletion run (within the hour).`,
        );
      }
      if (o.accountMarked) lines.push(da ? 'Vi har registreret din indsigelse på din konto og stoppet markedsføring.' : 'We have recorded your objection on your account and stopped marketing.');
      if (!numbers && !o.accountMarked) lines.push(da ? 'Vi har intet telefonnummer eller nogen konto for dig, så fremtidige opkald kan ikke genkendes.' : 'We have no phone number or account of yours, so future calls cannot be recognised.');
      return lines;
    }
    case 'marketing_opt_out':
      if (o.noAccount) return [da ? 'Vi har ingen konto for dig og sender dig ikke markedsføring.' : 'We have no account for you and send you no marketing.'];
      return [da ? 'Du får ikke længere markedsføring fra os. E-mails om din konto og vores service får du stadig.' : 'You will no longer get marketing from us. You still get emails about your account and our service.'];
  }
}
