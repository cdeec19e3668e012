import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { ApplicationFailure } from '@temporalio/common';
import type { Sql } from '../db/index';
import type { Mailer } from '../lib/mailer';
import type { RecordingStore } from '../lib/recording-store';
import { fixedDurationMs } from '../lib/durations';
import { hashToken } from '../db/access-tokens';
import { findClient } from '../db/clients';
import { createPasswordToken, findCustomer, setMarketingEmails, type Locale } from '../db/customers';
import { earlierRequests, findRequest, updateRequest, type RequestRow, type RequestStatus } from '../db/requests';
import { confirmDeletable } from '../db/recordings';
import { acknowledgementEmail, completionEmail, invitationEmail, refusalEmail, type RenderedEmail } from '../lib/email-templates';
import { alreadySent, deliverEmail, suppressEmail, type EmailCategory } from './email';
import { deleteConfirmed } from './recordings';
import { buildAccessExport } from './export-package';
import { createHash, randomBytes, randomUUID } from 'node:crypto';

export interface RequestDeps {
  sql: Sql;
  mailer: Mailer;
  store: RecordingStore;
  config: { MAIL_FROM: string; STAFF_EMAIL: string; PUBLIC_URL: string; DATA_DIR: string; EXPORT_LINK_TTL: string; PASSWORD_LINK_TTL: string };
}

/** Erasure ignores deadlines: every unheld recording of the person goes. */
const END_OF_TIME = new Date('9999-12-31T00:00:00Z');

interface Recipient {
  email: string;
  locale: Locale;
  marketingAllowed: boolean;
}

export function createRequestActivities(deps: RequestDeps) {
  const emailDeps = { sql: deps.sql, mailer: deps.mailer, mailFrom: deps.config.MAIL_FROM };

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

  async function requireRequest(requestId: string): Promise<RequestRow> {
    const r = await findRequest(deps.sql, requestId);
    if (!r) throw ApplicationFailure.nonRetryable('no such request', 'RequestNotFound');
    return r;
  }

  /** Service mail always goes; marketing mail only to those who allow it (D11, D6). */
  async function sendToPerson(to: Recipient, key: string, category: EmailCategory, email: RenderedEmail, secrets?: Record<string, string>) {
    const message = { key, to: to.email, category, subject: email.subject, text: email.text };
    if (category === 'marketing' && !to.marketingAllowed) {
      await suppressEmail(deps.sql, message, deps.config.MAIL_FROM);
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
      // A retry mints a new link: the previous one was never delivered (the outbox says so).
      await deps.sql`update password_tokens set used_at = now() where customer_id = ${c.id} and used_at is null`;
      const { token, expiresAt } = await createPasswordToken(deps.sql, c.id, fixedDurationMs(deps.config.PASSWORD_LINK_TTL));
      const email = invitationEmail({
        locale: c.locale,
        name: c.name,
        link: '{{link}}',
        providedBy: c.providedBy,
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

    async recordDecision(input: { requestId: string; decision: 'approve' | 'refuse'; reasonCode: string | null; decidedBy: string }): Promise<void> {
      await updateRequest(deps.sql, input.requestId, { decision: input.decision, reasonCode: input.reasonCode, decidedBy: input.decidedBy, status: input.decision === 'refuse' ? 'refused' : 'executing' });
    },

    /**
     * Carries out an approved request. Returns a summary without personal data (counts, ids),
     * which is also kept on the request as its outcome.
     */
    async executeRequest(input: { requestId: string }): Promise<Record<string, unknown>> {
      const r = await requireRequest(input.requestId);
      if (r.outcome) return r.outcome; // done before a crash; do not do it twice
      const outcome = await execute(r);
      await updateRequest(deps.sql, r.id, { outcome });
      return outcome;
    },

    /** The answer email: the refusal with its reason and the right to complain, or what was done. */
    async sendRequestAnswer(input: { requestId: string }): Promise<void> {
      const r = await requireRequest(input.requestId);
      const key = `request:${r.id}:answer`;
      const to = await requestRecipient(r);
      if (to && !(await alreadySent(deps.sql, key))) {
        if (r.decision === 'refuse') {
          await sendToPerson(to, key, 'service', refusalEmail({ locale: to.locale, requestId: r.id, type: r.type, reasonCode: r.reasonCode ?? '', reason: r.reason ?? '' }));
        } else {
          const secrets: Record<string, string> = {};
          if (r.type === 'access') {
            // The link is minted at send time and only its hash kept; a retry mints a fresh one.
            const token = randomBytes(32).toString('base64url');
            const expiresAt = new Date(Date.now() + fixedDurationMs(deps.config.EXPORT_LINK_TTL));
            await deps.sql`update export_packages set token_hash = ${hashToken(token)}, expires_at = ${expiresAt} where request_id = ${r.id}`;
            secrets.link = `${deps.config.PUBLIC_URL}/v1/exports/${token}`;
            r.outcome = { ...r.outcome, linkExpiresAt: expiresAt.toISOString() };
          }
          await sendToPerson(to, key, 'service', completionEmail({ locale: to.locale, requestId: r.id, type: r.type, lines: outcomeLines(r, to.locale) }), secrets);
        }
      }
      await updateRequest(deps.sql, r.id, { answeredAt: new Date(), status: r.decision === 'refuse' ? 'refused' : 'answered' });
    },

    /** After the erasure answer went out: the last contact details go too, and every login token. */
    async forgetContact(input: { requestId: string }): Promise<void> {
      const r = await requireRequest(input.requestId);
      if (r.customerId) {
        await deps.sql.begin(async (tx) => {
          // A notice still waiting for this address (a policy campaign in progress) is not sent to a person who is gone.
          await tx`
            update email_outbox set recipient = '[erased]', text_body = '[erased]', status = case when status = 'pending' then 'suppressed' else status end
            where recipient = (select email from customers where id = ${r.customerId})`;
          await tx`update customers set email = null, name = null, password_hash = null, status = 'erased', erased_at = coalesce(erased_at, now()) where id = ${r.customerId}`;
          await tx`update access_tokens set revoked_at = now() where subject_id = ${r.customerId} and revoked_at is null`;
        });
      }
      if (r.requester) await deps.sql`update data_requests set requester = ${deps.sql.json({ erased: true } as never)} where id = ${r.id}`;
    },
  };

  async function execute(r: RequestRow): Promise<Record<string, unknown>> {
    const callerNumber = r.requester?.phone ?? null;
    switch (r.type) {
      case 'access': {
        const { zip, categories } = await buildAccessExport(deps.sql, { customerId: r.customerId, callerNumber });
        const id = randomUUID();
        const fileKey = `exports/${id}.zip`;
        const file = path.join(deps.config.DATA_DIR, fileKey);
        await mkdir(path.dirname(file), { recursive: true });
        await writeFile(file, zip, { mode: 0o600 });
        // A placeholder hash until the answer email mints the real link (nobody can hold this one).
        await deps.sql`
          insert into export_packages (id, request_id, token_hash, file_key, bytes, sha256, expires_at)
          values (${id}, ${r.id}, ${hashToken(randomBytes(32).toString('hex'))}, ${fileKey}, ${zip.byteLength},
                  ${createHash('sha256').update(zip).digest('hex')}, now())
          on conflict (request_id) do nothing`;
        return { exportId: id, categories };
      }
      case 'rectification': {
        if (!r.customerId) return { changed: [] };
        const fields = (r.details.fields ?? {}) as Partial<Record<'name' | 'email' | 'locale', string>>;
        return deps.sql.begin(async (tx) => {
          const [old] = await tx<{ name: string; email: string; locale: string }[]>`select name, email, locale from customers where id = ${r.customerId} for update`;
          const changes = Object.fromEntries(Object.entries(fields).filter(([k, v]) => v !== undefined && old && old[k as keyof typeof old] !== v));
          if (Object.keys(changes).length) {
            await tx`update customers set ${tx(changes)} where id = ${r.customerId}`;
            const before = Object.fromEntries(Object.keys(changes).map((k) => [k, old![k as keyof typeof old]]));
            await tx`insert into audit_log (actor, action, subject_type, subject_id, old_values, new_values)
                     values (${`request:${r.id}`}, 'rectification', 'customer', ${r.customerId}, ${tx.json(before)}, ${tx.json(changes as never)})`;
          }
          return { changed: Object.keys(changes) };
        });
      }
      case 'erasure': {
        const deleted = await deps.sql.begin(async (tx) => {
          const byPerson = r.customerId ? tx`customer_id = ${r.customerId}` : tx`caller_number = ${callerNumber}`;
          const locked = await tx<{ id: string }[]>`select id from recordings where status = 'retained' and ${byPerson} order by id for update`;
          const rows = await confirmDeletable(tx, locked.map((x) => x.id), END_OF_TIME);
          return deleteConfirmed(tx, deps.store, rows, { reason: 'erasure', workflowId: `request:${r.id}`, runId: r.id, disputeId: null });
        });
        const byPerson = r.customerId ? deps.sql`r.customer_id = ${r.customerId}` : deps.sql`r.caller_number = ${callerNumber}`;
        // GDPR 17(3)(e): recordings a dispute holds are kept, and the answer says which and why.
        const kept = await deps.sql<{ id: string; disputeIds: string[] }[]>`
          select r.id, array_agg(h.dispute_id::text) as "disputeIds" from recordings r
          join recording_holds h on h.recording_id = r.id and h.released_at is null
          where r.status = 'retained' and ${byPerson} group by r.id order by r.id`;
        if (r.customerId) {
          await deps.sql`delete from call_messages where customer_id = ${r.customerId}`;
          await deps.sql`update access_tokens set revoked_at = now() where subject_id = ${r.customerId} and revoked_at is null`;
          await deps.sql`update customers set password_hash = null, marketing_emails = false where id = ${r.customerId}`;
        }
        return { deletedRecordings: deleted.length, keptRecordings: kept.map((k) => ({ recordingId: k.id, disputeIds: k.disputeIds, reason: 'legal_claims' })) };
      }
      case 'restriction':
      case 'objection': {
        if (r.customerId) {
          await (r.type === 'restriction'
            ? deps.sql`update customers set processing_restricted = true where id = ${r.customerId}`
            : deps.sql`update customers set objected_to_processing = true, marketing_emails = false where id = ${r.customerId}`);
        }
        return { flag: r.type === 'restriction' ? 'processing_restricted' : 'objected_to_processing' };
      }
      case 'marketing_opt_out': {
        if (r.customerId) await setMarketingEmails(deps.sql, r.customerId, false);
        return { marketingEmails: false };
      }
    }
  }
}

/** What the completion email says was done, in the person's language. */
function outcomeLines(r: RequestRow, locale: Locale): string[] {
  const o = (r.outcome ?? {}) as Record<string, unknown>;
  const da = locale === 'da';
  switch (r.type) {
    case 'access': {
      const until = new Date(String(o.linkExpiresAt)).toISOString().slice(0, 16).replace('T', ' ');
      return da
        ? [`Hent dine data her (maskinlæsbart: JSON og CSV pr. kategori). Linket er kun til dig og udløber ${until} UTC:`, '{{link}}']
        : [`Download your data here (machine-readable: JSON and CSV per category). The link is for you only and expires ${until} UTC:`, '{{link}}'];
    }
    case 'rectification': {
      const changed = (o.changed as string[]) ?? [];
      return [da ? `Rettede felter: ${changed.join(', ') || 'ingen (de var allerede rigtige)'}.` : `Fields corrected: ${changed.join(', ') || 'none (they were already right)'}.`];
    }
    case 'erasure': {
      const kept = (o.keptRecordings as { recordingId: string; disputeIds: string[] }[]) ?? [];
      const lines = [da ? `Vi har slettet dine kontodata og ${o.deletedRecordings} samtaleoptagelse(r).` : `We have deleted your account data and ${o.deletedRecordings} call recording(s).`];
      if (kept.length) {
        lines.push(
          da
            ? `Vi beholder ${kept.length} optagelse(r), fordi de indgår i en igangværende tvist og er nødvendige for at fastlægge, gøre gældende eller forsvare et retskrav (GDPR art. 17, stk. 3, litra e). De slettes, når tvisten er afgjort:`
            : `We keep ${kept.length} recording(s) because they are part of an open dispute and needed to establish, exercise or defend legal claims (GDPR Art. 17(3)(e)). They are deleted when the dispute is resolved:`,
          ...kept.map((k) => `- ${k.recordingId}`),
        );
      }
      lines.push(da ? 'Kopier i sikkerhedskopier kan findes i en periode, indtil de overskrives.' : 'Copies may remain in backups for a period until they are overwritten.');
      return lines;
    }
    case 'restriction':
      return [da ? 'Vi har begrænset behandlingen af dine data.' : 'We have restricted the processing of your data.'];
    case 'objection':
      return [da ? 'Vi har registreret din indsigelse og stoppet behandlingen, herunder markedsføring.' : 'We have recorded your objection and stopped the processing, marketing included.'];
    case 'marketing_opt_out':
      return [da ? 'Du får ikke længere markedsføring fra os. E-mails om din konto og vores service får du stadig.' : 'You will no longer get marketing from us. You still get emails about your account and our service.'];
  }
}

