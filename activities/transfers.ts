import { constants, createHash, publicEncrypt, randomBytes, createCipheriv } from 'node:crypto';
import { mkdir, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { strToU8, zipSync } from 'fflate';
import type { Sql } from '../db/index';
import type { Mailer } from '../lib/mailer';
import type { RecordingStore } from '../lib/recording-store';
import { hashToken } from '../db/access-tokens';
import { insertRecipient, recordDisclosure } from '../db/disclosures';
import { eraseSubject, exportSubject, forgetAccount, resolveSubject } from '../db/personal-data';
import { complaintLines, CONTACT_BLOCK } from '../lib/email-templates';
import { alreadySent, deliverEmail } from './email';
import { erasureContext } from './recordings';

export interface TransferDeps {
  sql: Sql;
  mailer: Mailer;
  store: RecordingStore;
  config: { MAIL_FROM: string; PUBLIC_URL: string; DATA_DIR: string };
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
  const emailDeps = { sql: deps.sql, mailer: deps.mailer, mailFrom: deps.config.MAIL_FROM };

  async function requireTransfer(id: string): Promise<TransferRow> {
    const [row] = await deps.sql<TransferRow[]>`
      select id, acquirer_name as "acquirerName", acquirer_email as "acquirerEmail", acquirer_public_key as "acquirerPublicKey", scope,
             legal_basis as "legalBasis", handover_at as "handoverAt", created_by as "createdBy", manifest_sha256 as "manifestSha256"
      from transfers where id = ${id}`;
    if (!row) throw ApplicationFailure.nonRetryable('no such transfer', 'TransferNotFound');
    return row;
  }

  /** Persons handed over: fixed by the inventory, and still active and unrestricted now. */
  const transferredPersons = (transferId: string) =>
    deps.sql<{ id: string }[]>`
      select c.id from transfer_persons p join customers c on c.id = p.customer_id
      where p.transfer_id = ${transferId} and c.status = 'active' and not c.processing_restricted order by c.id`;

  return {
    async setTransferStatus(input: { transferId: string; status: string; progress: Record<string, unknown> }): Promise<void> {
      await deps.sql`update transfers set status = ${input.status}, progress = ${deps.sql.json(input.progress as never)} where id = ${input.transferId}`;
    },

    /** Four eyes, held below the API too: the approver must be an active privacy officer or admin, and not the creator. */
    async recordTransferApproval(input: { transferId: string; approverTokenId: string }): Promise<void> {
      const t = await requireTransfer(input.transferId);
      const [token] = await deps.sql<{ role: string | null }[]>`
        select role from access_tokens where id = ${input.approverTokenId} and kind = 'staff' and revoked_at is null and (expires_at is null or expires_at > now())`;
      if (!token || (token.role !== 'privacy_officer' && token.role !== 'admin')) throw ApplicationFailure.nonRetryable('only privacy officers and admins approve transfers', 'NotAllowed');
      if (input.approverTokenId === t.createdBy) throw ApplicationFailure.nonRetryable('the creator cannot approve their own transfer', 'FourEyes');
      await deps.sql`insert into transfer_approvals (transfer_id, approver_token_id) values (${t.id}, ${input.approverTokenId}) on conflict do nothing`;
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
            insert into transfer_persons (transfer_id, customer_id)
            select ${t.id}, id from customers where client_id = ${c.id} and status = 'active' and not processing_restricted
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

    /**
     * At the handover: the export of every transferred person (the personal-data map's export),
     * a manifest with each file's SHA-256, all zipped and encrypted with AES-256-GCM under a
     * fresh key wrapped for the acquirer (RSA-OAEP-SHA256). The disclosure register gets one
     * disclosure of all of them to the acquirer, and the acquirer a one-time link by email.
     */
    async buildTransferPackage(input: { transferId: string }): Promise<{ files: number; manifestSha256: string }> {
      const t = await requireTransfer(input.transferId);
      let files: number;
      let manifestSha256: string;
      if (t.manifestSha256) {
        const [row] = await deps.sql<{ files: number }[]>`select package_files as files from transfers where id = ${t.id}`;
        files = row!.files;
        manifestSha256 = t.manifestSha256;
      } else {
        const persons = await transferredPersons(t.id);
        const entries: Record<string, Uint8Array> = {};
        for (const p of persons) {
          const subject = await resolveSubject(deps.sql, { customerId: p.id });
          const { data } = await exportSubject(deps.sql, subject);
          entries[`persons/${p.id}.json`] = strToU8(JSON.stringify(data, null, 1));
          Context.current().heartbeat();
        }
        const [inv] = await deps.sql<{ inventory: unknown; excluded: unknown }[]>`select inventory, excluded from transfers where id = ${t.id}`;
        entries['inventory.json'] = strToU8(JSON.stringify({ inventory: inv!.inventory, excluded: inv!.excluded }, null, 1));
        const manifest = strToU8(
          JSON.stringify(
            {
              transferId: t.id,
              from: 'TopCall ApS, Axeltorv 8, 4700 Næstved, Danmark',
              to: t.acquirerName,
              legalBasis: t.legalBasis,
              files: Object.entries(entries).map(([name, bytes]) => ({ name, bytes: bytes.byteLength, sha256: createHash('sha256').update(bytes).digest('hex') })),
            },
            null,
            1,
          ),
        );
        manifestSha256 = createHash('sha256').update(manifest).digest('hex');
        const zip = zipSync({ ...entries, 'manifest.json': manifest });
        const key = randomBytes(32);
        const iv = randomBytes(12);
        const cipher = createCipheriv('aes-256-gcm', key, iv);
        const ciphertext = Buffer.concat([cipher.update(zip), cipher.final()]);
        const envelope = {
          format: 'topcall-transfer-v1',
          alg: 'RSA-OAEP-SHA256 + AES-256-GCM',
          wrappedKey: publicEncrypt({ key: t.acquirerPublicKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' }, key).toString('base64'),
          iv: iv.toString('base64'),
          tag: cipher.getAuthTag().toString('base64'),
          ciphertext: ciphertext.toString('base64'),
        };
        const fileKey = `transfers/${t.id}.json`;
        const file = path.join(deps.config.DATA_DIR, fileKey);
        await mkdir(path.dirname(file), { recursive: true });
        const body = Buffer.from(JSON.stringify(envelope));
        await writeFile(file, body, { mode: 0o600 });
        files = Object.keys(entries).length + 1;
        // The package's record and its disclosure commit together: a crash in between must not
        // leave a package that the register does not know was handed over.
        await deps.sql.begin(async (tx) => {
          const recipient = await insertRecipient(tx, { type: 'acquirer', name: t.acquirerName, email: t.acquirerEmail, address: null, legalBasis: `business transfer: ${t.legalBasis} (D8)` });
          await tx`update transfers set manifest_sha256 = ${manifestSha256}, package_file_key = ${fileKey}, package_bytes = ${body.byteLength}, package_files = ${files}, recipient_id = ${recipient.id}
                   where id = ${t.id}`;
          if (persons.length) {
            await recordDisclosure(tx, {
              recipient,
              category: 'all data in the transfer package (D8)',
              legalBasis: `business transfer: ${t.legalBasis}`,
              customerIds: persons.map((p) => p.id),
              callerNumbers: [],
              disclosedAt: new Date(),
              recordedBy: null,
            });
          }
        });
      }
      const key = `transfer:${t.id}:package`;
      if (!(await alreadySent(deps.sql, key))) {
        // The link is a bearer secret: minted now, only its hash kept, filled in at send time.
        const token = randomBytes(32).toString('base64url');
        await deps.sql`update transfers set acquirer_token_hash = ${hashToken(token)} where id = ${t.id}`;
        await deliverEmail(
          emailDeps,
          {
            key,
            to: t.acquirerEmail,
            category: 'service',
            subject: `TopCall ApS: data package for the ${t.legalBasis} (${t.id.slice(0, 8)})`,
            text:
              `The package is encrypted for your RSA key (RSA-OAEP-SHA256 wraps an AES-256-GCM key).\nDownload: {{link}}\n` +
              `Manifest SHA-256: ${manifestSha256}\nConfirm receipt by POSTing {"manifestSha256": "…"} to ${deps.config.PUBLIC_URL}/v1/transfers/${t.id}/acknowledgement?token=<the token in the link>.\n\n--\n${CONTACT_BLOCK.en}\n`,
          },
          { link: `${deps.config.PUBLIC_URL}/v1/transfers/${t.id}/package?token=${token}` },
        );
      }
      return { files, manifestSha256 };
    },

    /** afterHandover 'erase': once the acquirer has confirmed receipt, TopCall's copy goes, through the map like any erasure. */
    async eraseTransferredCopy(input: { transferId: string }): Promise<{ erased: number }> {
      const t = await requireTransfer(input.transferId);
      const persons = await deps.sql<{ id: string }[]>`
        select c.id from transfer_persons p join customers c on c.id = p.customer_id where p.transfer_id = ${t.id} and c.status = 'active'`;
      let erased = 0;
      for (const p of persons) {
        await deps.sql.begin(async (tx) => {
          const subject = await resolveSubject(tx, { customerId: p.id });
          const ctx = erasureContext({ store: deps.store, dataDir: deps.config.DATA_DIR }, { requestId: null, reason: 'erasure', workflowId: `transfer:${t.id}`, runId: t.id });
          await eraseSubject(tx, subject, ctx);
          await forgetAccount(tx, p.id);
        });
        erased++;
        Context.current().heartbeat(erased);
      }
      const [pkg] = await deps.sql<{ fileKey: string | null }[]>`select package_file_key as "fileKey" from transfers where id = ${t.id}`;
      if (pkg?.fileKey) await unlink(path.join(deps.config.DATA_DIR, pkg.fileKey)).catch(() => undefined);
      return { erased };
    },
  };
}
