import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import type { Sql } from '../db/index';
import type { Mailer } from '../lib/mailer';
import type { PersonKeys } from '../db/person-keys';
import type { RecordingStore } from '../lib/recording-store';
import { activeStaffRole, hashToken } from '../db/access-tokens';
import { appendLedger, recordInLedger, type LedgerActor } from '../db/audit-ledger';
import { insertRecipient, recordDisclosure } from '../db/disclosures';
import { eraseSubject, forgetAccount, resolveSubject } from '../db/personal-data';
import { complaintLines, CONTACT_BLOCK } from '../lib/email-templates';
import { alreadySent, deliverEmail } from './email';
import { erasureContext } from './recordings';
import { linkTokenFor } from './links';
import { appendBatch, appendBatches, beginPackage, deletePackageFiles, writeManifest, type PackageProgress } from './transfer-package';

export interface TransferDeps {
  sql: Sql;
  mailer: Mailer;
  store: RecordingStore;
  config: { MAIL_FROM: string; PUBLIC_URL: string; DATA_DIR: string; STAFF_EMAIL: string };
  /** Issue 12: seals the bodies of emails to persons at rest. */
  keys?: PersonKeys;
}

/** What a cancelled or rejected transfer did and did not hand over (kept on the transfer, shown by GET /v1/transfers/:id). */
export interface TransferOutcome {
  ended: 'cancelled' | 'rejected';
  packageBuilt: boolean;
  downloaded: boolean;
  firstDownloadedAt?: string;
  handedOver: number;
  notHandedOver: number;
  linkRevoked: boolean;
  packageDeleted: boolean;
}


interface TransferRow {
  id: string;
  acquirerName: string;
  acquirerEmail: string;
  acquirerPublicKey: string;
  scope: { all?: boolean; clientIds?: string[] };
  legalBasis: 'merger' | 'acquisition' | 'bankruptcy';
  handoverAt: Date;
  createdBy: string;
  manifestSha256: string | null;
}

const LEGAL_BASIS_WORDS = {
  merger: { da: 'fusionerer med', en: 'is merging with' },
  acquisition: { da: 'bliver overtaget af', en: 'is being acquired by' },
  bankruptcy: { da: 'er under konkurs, og boet overdrager virksomheden til', en: 'is in bankruptcy, and the estate is handing the business over to' },
} as const;

export function createTransferActivities(deps: TransferDeps) {
  const emailDeps = { sql: deps.sql, mailer: deps.mailer, mailFrom: deps.config.MAIL_FROM, keys: deps.keys };

  async function requireTransfer(id: string): Promise<TransferRow> {
    const [row] = await deps.sql<TransferRow[]>`
      select id, acquirer_name as "acquirerName", acquirer_email as "acquirerEmail", acquirer_public_key as "acquirerPublicKey", scope,
             legal_basis as "legalBasis", handover_at as "handoverAt", created_by as "createdBy", manifest_sha256 as "manifestSha256"
      from transfers where id = ${id}`;
    if (!row) throw ApplicationFailure.nonRetryable('no such transfer', 'TransferNotFound');
    return row;
  }

  const packageDeps = { sql: deps.sql, store: deps.store, config: deps.config };

  async function sealTransferPackage(input: { transferId: string }): Promise<{ files: number; manifestSha256: string }> {
    const t = await requireTransfer(input.transferId);
    let files: number;
    let manifestSha256: string;
    if (t.manifestSha256) {
      const [row] = await deps.sql<{ files: number }[]>`select package_files as files from transfers where id = ${t.id}`;
      files = row!.files;
      manifestSha256 = t.manifestSha256;
    } else {
      const sealed = await writeManifest(packageDeps, t.id);
      files = sealed.files;
      manifestSha256 = sealed.manifestSha256;
      // The package's record and its disclosure commit together: a crash in between must not
      // leave a package that the register does not know was handed over. The disclosure's
      // subjects are the persons the package marked handed over (the view disclosed_persons).
      await deps.sql.begin(async (tx) => {
        const recipient = await insertRecipient(tx, { type: 'acquirer', name: t.acquirerName, email: t.acquirerEmail, address: null, legalBasis: `business transfer: ${t.legalBasis} (D8)` });
        const disclosureId = await recordDisclosure(tx, {
          recipient,
          category: 'all data in the transfer package (D8)',
          legalBasis: `business transfer: ${t.legalBasis}`,
          customerIds: [],
          callerNumbers: [],
          disclosedAt: new Date(),
          recordedBy: null,
        });
        await appendLedger(tx, [{ actor: { type: 'system', id: null, role: 'business_transfer' }, action: 'disclosure.record', outcome: 'done', objectType: 'disclosure', objectId: disclosureId }]);
        await tx`update transfers set manifest_sha256 = ${manifestSha256}, package_bytes = ${sealed.bytes}, package_files = ${files}, package_sealed_at = now(),
                   recipient_id = ${recipient.id}, disclosure_id = ${disclosureId}
                 where id = ${t.id}`;
      });
    }
    const key = `transfer:${t.id}:package`;
    if (!(await alreadySent(deps.sql, key))) {
      // The link is a bearer secret derived from the outbox key, so a retried send carries the same one; only its hash is kept.
      const token = await linkTokenFor(deps.sql, key);
      // Only while the transfer has not been cancelled or rejected: an ended one sends no link.
      const [open] = await deps.sql<{ signer: string }[]>`
        update transfers set acquirer_token_hash = ${hashToken(token)} where id = ${t.id} and ended_at is null
        returning signer_key_sha256 as signer`;
      if (open) {
        await deliverEmail(
          emailDeps,
          {
            key,
            to: t.acquirerEmail,
            category: 'service',
            subject: `TopCall ApS: data package for the ${t.legalBasis} (${t.id.slice(0, 8)})`,
            text:
              `The package is one tar file. Each file in it is encrypted with AES-256-GCM under a data key that is wrapped for your RSA key (RSA-OAEP-SHA256, key.json).\n` +
              `Download: {{link}}\n\n` +
              `Manifest SHA-256: ${manifestSha256}\n` +
              `TopCall's signing key (Ed25519), SHA-256 of its public key: ${open.signer}\n\n` +
              `Check the package before you confirm: npm run verify-transfer -- <package.tar> --key <your private key PEM> --signer ${open.signer}\n` +
              `(from TopCall's privacy back office; it checks the signature, every file's hash, and decrypts).\n` +
              `Then confirm receipt by POSTing {"manifestSha256": "…"} to ${deps.config.PUBLIC_URL}/v1/transfers/${t.id}/acknowledgement with the token from the link (?token=…).\n` +
              `If you do not want the data, reject it: POST ${deps.config.PUBLIC_URL}/v1/transfers/${t.id}/rejection with the same token.\n\n--\n${CONTACT_BLOCK.en}\n`,
          },
          { link: `${deps.config.PUBLIC_URL}/v1/transfers/${t.id}/package?token=${token}` },
        );
      }
    }
    return { files, manifestSha256 };
  }

  return {
    async setTransferStatus(input: { transferId: string; status: string; progress: Record<string, unknown> }): Promise<void> {
      await deps.sql`update transfers set status = ${input.status}, progress = ${deps.sql.json(input.progress as never)} where id = ${input.transferId}`;
    },

    /** Four eyes, held below the API too: the approver must be an active privacy officer or admin, and not the creator. */
    async recordTransferApproval(input: { transferId: string; approverTokenId: string }): Promise<void> {
      const t = await requireTransfer(input.transferId);
      const role = await activeStaffRole(deps.sql, input.approverTokenId);
      const actor: LedgerActor = { type: role ? 'staff' : 'unknown', id: input.approverTokenId, role: role ?? null };
      const act = { actor, action: 'transfer.approve', objectType: 'transfer', objectId: t.id } as const;
      // Refused attempts are kept in the audit ledger (issue 12), committed on their own.
      if (!role || (role !== 'privacy_officer' && role !== 'admin')) {
        await recordInLedger(deps.sql, { ...act, outcome: 'refused' });
        throw ApplicationFailure.nonRetryable('only privacy officers and admins approve transfers', 'NotAllowed');
      }
      if (input.approverTokenId === t.createdBy) {
        await recordInLedger(deps.sql, { ...act, outcome: 'refused' });
        throw ApplicationFailure.nonRetryable('the creator cannot approve their own transfer', 'FourEyes');
      }
      await deps.sql.begin(async (tx) => {
        const added = await tx`insert into transfer_approvals (transfer_id, approver_token_id) values (${t.id}, ${input.approverTokenId}) on conflict do nothing returning 1`;
        if (added.length) await appendLedger(tx, [{ ...act, outcome: 'done' }]);
      });
    },

    /**
     * D6 and Art. 18: clients whose contract forbids transfer to third parties are left out and
     * listed with the reason; so are persons who restricted processing. Counts per client and
     * category; the persons are fixed in transfer_persons (by id).
     */
    async takeTransferInventory(input: { transferId: string }): Promise<{ persons: number }> {
      const t = await requireTransfer(input.transferId);
      return deps.sql.begin(async (tx) => {
        const clients = await tx<{ id: string; name: string; restrictions: string[] }[]>`
          select id, name, restrictions from clients
          where ${t.scope.all ? tx`true` : tx`id = any(${t.scope.clientIds ?? []}::uuid[])`} order by name, id`;
        const excluded: { clientId: string; reason: string; persons?: number }[] = [];
        const inventory: { clientId: string; persons: number; recordings: number; callMessages: number; requests: number }[] = [];
        for (const c of clients) {
          if (c.restrictions.includes('no_third_party_transfer')) {
            excluded.push({ clientId: c.id, reason: 'no_third_party_transfer: the client’s contract forbids transfer to third parties (D6)' });
            continue;
          }
          const [restricted] = await tx<{ n: number }[]>`select count(*)::int as n from customers where client_id = ${c.id} and status = 'active' and processing_restricted`;
          if (restricted!.n) excluded.push({ clientId: c.id, reason: 'processing_restricted: persons who restricted processing (GDPR Art. 18)', persons: restricted!.n });
          await tx`
            insert into transfer_persons (transfer_id, customer_id, client_id)
            select ${t.id}, id, client_id from customers where client_id = ${c.id} and status = 'active' and not processing_restricted
            on conflict do nothing`;
          const [counts] = await tx<{ persons: number; recordings: number; callMessages: number; requests: number }[]>`
            select (select count(*)::int from transfer_persons p join customers cu on cu.id = p.customer_id where p.transfer_id = ${t.id} and cu.client_id = ${c.id}) as persons,
                   (select count(*)::int from recordings r join transfer_persons p on p.customer_id = r.customer_id where p.transfer_id = ${t.id} and r.client_id = ${c.id} and r.status = 'retained') as recordings,
                   (select count(*)::int from call_messages m join transfer_persons p on p.customer_id = m.customer_id where p.transfer_id = ${t.id} and m.client_id = ${c.id}) as "callMessages",
                   (select count(*)::int from data_requests d join transfer_persons p on p.customer_id = d.customer_id where p.transfer_id = ${t.id}
                      and d.customer_id in (select id from customers where client_id = ${c.id})) as requests`;
          inventory.push({ clientId: c.id, ...counts! });
        }
        await tx`update transfers set inventory = ${tx.json(inventory)}, excluded = ${tx.json(excluded)} where id = ${t.id}`;
        return { persons: inventory.reduce((n, c) => n + c.persons, 0) };
      });
    },

    /** D8: every affected person is told before the handover, exactly once (one outbox row each). */
    async sendTransferNotices(input: { transferId: string }): Promise<{ sent: number }> {
      const t = await requireTransfer(input.transferId);
      const people = await deps.sql<{ id: string; email: string; locale: 'da' | 'en' }[]>`
        select c.id, c.email, c.locale from transfer_persons p join customers c on c.id = p.customer_id
        where p.transfer_id = ${t.id} and c.status = 'active' and c.email is not null order by c.id`;
      let sent = 0;
      for (const p of people) {
        const words = LEGAL_BASIS_WORDS[t.legalBasis];
        const when = t.handoverAt.toISOString().slice(0, 10);
        const text =
          p.locale === 'da'
            ? `TopCall ApS ${words.da} ${t.acquirerName}. Den ${when} overdrages de oplysninger, vi har om dig, til ${t.acquirerName}, som fortsat bruger dem efter vores privatlivspolitik.\n\n` +
              `Vil du ikke have dine oplysninger overdraget, kan du inden da bede os slette dem (svar på denne e-mail eller brug din konto).\n\n${complaintLines('da').join('\n')}\n\n--\n${CONTACT_BLOCK.da}\n`
            : `TopCall ApS ${words.en} ${t.acquirerName}. On ${when} the data we hold about you will be handed over to ${t.acquirerName}, which will go on using it under our privacy policy.\n\n` +
              `If you do not want your data handed over, ask us before then to erase it (reply to this email or use your account).\n\n${complaintLines('en').join('\n')}\n\n--\n${CONTACT_BLOCK.en}\n`;
        await deliverEmail(emailDeps, {
          key: `transfer:${t.id}:notice:${p.id}`,
          to: p.email,
          category: 'service',
          subject: p.locale === 'da' ? `Dine oplysninger overdrages til ${t.acquirerName}` : `Your data is being handed over to ${t.acquirerName}`,
          text,
        });
        sent++;
        Context.current().heartbeat(sent);
      }
      return { sent };
    },

    /** The package (activities/transfer-package.ts): begun once, then batch by batch, then sealed. */
    async beginTransferPackage(input: { transferId: string }): Promise<PackageProgress> {
      return beginPackage(packageDeps, input.transferId);
    },

    /** Batches for up to `maxMs` (at least one): each commits on its own, so a retry resumes at the last one. */
    async packageTransferBatch(input: { transferId: string; batchSize: number; maxMs?: number }): Promise<PackageProgress> {
      return appendBatches(packageDeps, input.transferId, input.batchSize, { maxMs: input.maxMs, heartbeat: (details) => Context.current().heartbeat(details) });
    },

    /**
     * Closes the package with its signed manifest; records the acquirer as a recipient and one
     * disclosure of everyone packaged, together with the manifest's hash; emails the acquirer a
     * link (only its hash kept). Each part is skipped when already done, so a retry is safe.
     */
    sealTransferPackage,

    /** Before the package workflow existed (runs recorded before `transfer-package-v2`): the whole package in one activity. */
    async buildTransferPackage(input: { transferId: string }): Promise<{ files: number; manifestSha256: string }> {
      let progress = await beginPackage(packageDeps, input.transferId);
      while (!progress.done) progress = await appendBatch(packageDeps, input.transferId, 1000, (details) => Context.current().heartbeat(details));
      return sealTransferPackage(input);
    },

    /**
     * Compensation when a transfer is cancelled (staff) or rejected (the acquirer): the link is
     * revoked and the package deleted; the register says what was and was not handed over — a
     * disclosure whose package nobody downloaded is withdrawn (it never happened), one that was
     * downloaded stands. Staff, the acquirer and the persons already told are informed, once each.
     */
    async endTransfer(input: { transferId: string; reason: 'cancelled' | 'rejected'; by: string }): Promise<{ outcome: TransferOutcome }> {
      const t = await requireTransfer(input.transferId);
      await deletePackageFiles(deps, t.id);
      const outcome = await deps.sql.begin(async (tx) => {
        const [row] = await tx<{ downloads: number; firstDownloadedAt: Date | null; disclosureId: string | null; sealed: Date | null; outcome: TransferOutcome | null }[]>`
          select downloads, first_downloaded_at as "firstDownloadedAt", disclosure_id as "disclosureId", package_sealed_at as sealed, outcome
          from transfers where id = ${t.id} for update`;
        if (row!.outcome) return row!.outcome;
        const [n] = await tx<{ packaged: number; inventory: number }[]>`
          select count(*) filter (where handed_over)::int as packaged, count(*)::int as inventory from transfer_persons where transfer_id = ${t.id}`;
        const downloaded = row!.downloads > 0;
        const result: TransferOutcome = {
          ended: input.reason,
          packageBuilt: row!.sealed !== null,
          downloaded,
          ...(row!.firstDownloadedAt ? { firstDownloadedAt: row!.firstDownloadedAt.toISOString() } : {}),
          handedOver: downloaded ? n!.packaged : 0,
          notHandedOver: downloaded ? n!.inventory - n!.packaged : n!.inventory,
          linkRevoked: true,
          packageDeleted: true,
        };
        if (row!.disclosureId && !downloaded) {
          await tx`update disclosures set withdrawn_at = now(), withdrawn_reason = ${`the transfer was ${input.reason} and its package deleted before the acquirer downloaded it: nothing was handed over`}
                   where id = ${row!.disclosureId} and withdrawn_at is null`;
        }
        await tx`update transfers set acquirer_token_hash = null, ended_at = now(), ended_by = ${input.by}, end_reason = ${input.reason}, outcome = ${tx.json(result as never)}
                 where id = ${t.id}`;
        return result;
      });

      const what = input.reason === 'cancelled' ? 'cancelled by TopCall' : 'rejected by the acquirer';
      await deliverEmail(emailDeps, {
        key: `transfer:${t.id}:ended`,
        to: deps.config.STAFF_EMAIL,
        category: 'service',
        subject: `Business transfer ${t.id} ${what}`,
        text:
          `The business transfer ${t.id} to ${t.acquirerName} was ${what}. The acquirer's link is revoked and the package deleted.\n` +
          (outcome.downloaded
            ? `The acquirer downloaded the package (${outcome.firstDownloadedAt}) before that: ${outcome.handedOver} person(s) stay recorded as handed over. Ask the acquirer to delete its copy and confirm it.\n`
            : `Nobody downloaded the package: nothing was handed over, and the disclosure is withdrawn from the register.\n`),
      });
      if (await alreadySent(deps.sql, `transfer:${t.id}:package`)) {
        await deliverEmail(emailDeps, {
          key: `transfer:${t.id}:ended:acquirer`,
          to: t.acquirerEmail,
          category: 'service',
          subject: `TopCall ApS: the ${t.legalBasis} handover (${t.id.slice(0, 8)}) is ${input.reason}`,
          text:
            `The handover of TopCall ApS's data is ${what}. The download link no longer works and TopCall has deleted the package.\n` +
            (outcome.downloaded ? 'You downloaded it: delete every copy and confirm to TopCall that you have.\n' : '') +
            `\n--\n${CONTACT_BLOCK.en}\n`,
        });
      }
      if (!outcome.downloaded) {
        // Everyone told their data would be handed over hears that it will not be.
        const told = await deps.sql<{ id: string; email: string; locale: 'da' | 'en' }[]>`
          select c.id, c.email, c.locale from transfer_persons p join customers c on c.id = p.customer_id
          join email_outbox o on o.key = 'transfer:' || ${t.id} || ':notice:' || c.id
          where p.transfer_id = ${t.id} and c.status = 'active' and c.email is not null and o.status = 'sent' order by c.id`;
        for (const p of told) {
          await deliverEmail(emailDeps, {
            key: `transfer:${t.id}:called-off:${p.id}`,
            to: p.email,
            category: 'service',
            subject: p.locale === 'da' ? `Dine oplysninger overdrages ikke til ${t.acquirerName}` : `Your data will not be handed over to ${t.acquirerName}`,
            text:
              p.locale === 'da'
                ? `Vi skrev til dig, at dine oplysninger ville blive overdraget til ${t.acquirerName}. Det sker ikke: overdragelsen er aflyst, og intet er overdraget.\n\n--\n${CONTACT_BLOCK.da}\n`
                : `We wrote that your data would be handed over to ${t.acquirerName}. That will not happen: the handover is called off and nothing was handed over.\n\n--\n${CONTACT_BLOCK.en}\n`,
          });
          Context.current().heartbeat();
        }
      }
      return { outcome };
    },

    /** The acquirer posted a hash that is not the manifest's, or did not acknowledge in time: staff decide what next. */
    async escalateTransfer(input: { transferId: string; kind: 'mismatch' | 'overdue'; n: number }): Promise<void> {
      const t = await requireTransfer(input.transferId);
      const [row] = await deps.sql<{ downloads: number; mismatches: number }[]>`select downloads, ack_mismatches as mismatches from transfers where id = ${t.id}`;
      await deliverEmail(emailDeps, {
        key: `transfer:${t.id}:escalation:${input.kind}:${input.n}`,
        to: deps.config.STAFF_EMAIL,
        category: 'service',
        subject:
          input.kind === 'mismatch'
            ? `Escalation: business transfer ${t.id}: the acquirer's hash does not match the manifest`
            : `Escalation: business transfer ${t.id}: the acquirer has not acknowledged the package`,
        text:
          (input.kind === 'mismatch'
            ? `${t.acquirerName} posted a manifest hash that is not ${t.manifestSha256} (${row!.mismatches} mismatch(es) so far): the package may have been damaged or altered on the way.\n`
            : `${t.acquirerName} has not acknowledged the package (manifest ${t.manifestSha256}) in time. It was downloaded ${row!.downloads} time(s).\n`) +
          `Contact the acquirer, or cancel the transfer (POST /v1/transfers/${t.id}/cancellation), which revokes the link and deletes the package.\n`,
      });
    },

    /** afterHandover 'erase': once the acquirer has confirmed receipt, TopCall's copy of everyone packaged goes, through the map like any erasure. */
    async eraseTransferredCopy(input: { transferId: string }): Promise<{ erased: number }> {
      const t = await requireTransfer(input.transferId);
      const persons = await deps.sql<{ id: string }[]>`
        select c.id from transfer_persons p join customers c on c.id = p.customer_id where p.transfer_id = ${t.id} and p.handed_over and c.status = 'active'`;
      let erased = 0;
      for (const p of persons) {
        await deps.sql.begin(async (tx) => {
          const subject = await resolveSubject(tx, { customerId: p.id });
          const ctx = erasureContext({ store: deps.store, dataDir: deps.config.DATA_DIR }, { requestId: null, reason: 'erasure', workflowId: `transfer:${t.id}`, runId: t.id });
          await eraseSubject(tx, subject, ctx);
          await eraseSubject(tx, subject, ctx, ['person_keys']); // no answer to send: the key goes now (issue 12)
          await forgetAccount(tx, p.id);
        });
        erased++;
        Context.current().heartbeat(erased);
      }
      await deletePackageFiles(deps, t.id);
      return { erased };
    },
  };
}
