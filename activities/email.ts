import { createHash } from 'node:crypto';
import type { Sql } from '../db/index';
import { ApplicationFailure } from '@temporalio/common';
import type { Mailer } from '../lib/mailer';
import { safeErrorText } from '../lib/safe-error';
import { PERMANENT_SMTP_FAILURE } from '../workflows/request-types';
import { sealText, unsealText } from '../lib/at-rest';
import { KeyDestroyedError, type KeyOwner, type PersonKeys } from '../db/person-keys';

export type EmailCategory = 'service' | 'marketing';

export interface EmailToSend {
  /** Business key, e.g. `policy:2026-01:<customerId>`: one email per key, ever. */
  key: string;
  to: string;
  category: EmailCategory;
  subject: string;
  text: string;
}

export interface EmailDeps {
  sql: Sql;
  mailer: Mailer;
  mailFrom: string;
  /** Issue 12: seals the bodies of emails to a person with their data key (without it, bodies are kept in clear). */
  keys?: PersonKeys;
}

/**
 * Whose data key seals an email's body, from its business key: the person it is to (an account,
 * or a caller's request), or undefined for email about no person (staff alerts about systems,
 * recipients' Art. 19 notices naming ids only), whose bodies stay in clear.
 */
export async function ownerOfEmail(sql: Sql, key: string): Promise<KeyOwner | undefined> {
  const uuid = '([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})';
  const customer =
    new RegExp(`^customer:${uuid}(:|$)`).exec(key)?.[1] ??
    new RegExp(`^policy:.+:${uuid}$`).exec(key)?.[1] ??
    new RegExp(`^transfer:${uuid}:(notice|called-off):${uuid}$`).exec(key)?.[3];
  if (customer) return { customerId: customer };
  const requestId = new RegExp(`^request:${uuid}(:|$)`).exec(key)?.[1];
  if (!requestId) return undefined;
  const [r] = await sql<{ customerId: string | null }[]>`select customer_id as "customerId" from data_requests where id = ${requestId}`;
  if (!r) return undefined;
  return r.customerId ? { customerId: r.customerId } : { requestId };
}

/** The body as the outbox keeps it: sealed with the person's key when there is one. */
async function bodyAtRest(sql: Sql, keys: PersonKeys | undefined, email: EmailToSend): Promise<string> {
  const owner = keys ? await ownerOfEmail(sql, email.key) : undefined;
  return owner ? sealText(await keys!.keyFor(owner), email.text) : email.text;
}

/**
 * Issue 12: bodies written to the outbox before sealing existed are still in clear. Seals up to
 * `limit` of them, after `afterKey`, with their person's key, so a backup taken from now on holds
 * them sealed like the rest; a body of a person whose key is already destroyed is left to erasure.
 * Returns how many it sealed and the last key it looked at (null when no row is left).
 */
export async function sealLegacyBodies(sql: Sql, keys: PersonKeys, afterKey = '', limit = 500): Promise<{ sealed: number; lastKey: string | null }> {
  const rows = await sql<{ key: string; textBody: string }[]>`
    select key, text_body as "textBody" from email_outbox
    where key > ${afterKey} and key ~ '^(customer|policy|transfer|request):' and text_body is not null
      and text_body not like 'sealed:v1:%' and text_body <> '[erased]'
    order by key limit ${limit}`;
  let sealed = 0;
  for (const row of rows) {
    const owner = await ownerOfEmail(sql, row.key);
    if (!owner) continue;
    // Skipped: a person erased (key destroyed) or gone (their row deleted: no key can be made).
    const key = await keys.keyFor(owner).catch((err: unknown) => {
      if (err instanceof KeyDestroyedError || (err as { code?: string }).code === '23503') return undefined;
      throw err;
    });
    if (!key) continue;
    // Only the body read above is replaced: one changed meanwhile (sent, erased) is left as it is now.
    sealed += (await sql`update email_outbox set text_body = ${sealText(key, row.textBody)} where key = ${row.key} and text_body = ${row.textBody}`).count;
  }
  return { sealed, lastKey: rows.length === limit ? rows.at(-1)!.key : null };
}

export { PERMANENT_SMTP_FAILURE };

/** A 5xx reply is the receiver's final word; anything else (4xx, no connection) is worth a retry. */
export function isPermanentSmtpFailure(err: unknown): boolean {
  const code = (err as { responseCode?: number }).responseCode;
  return typeof code === 'number' && code >= 500 && code < 600;
}

/** The same business key always gives the same Message-ID, so a receiver can drop a repeat. */
export function messageIdFor(key: string, mailFrom: string): string {
  const domain = /@([^>\s]+)>?\s*$/.exec(mailFrom)?.[1] ?? 'topcall.dk';
  return `<${createHash('sha256').update(key).digest('hex').slice(0, 40)}@${domain}>`;
}

/** Whether the outbox already sent the email with this business key. */
export async function alreadySent(sql: Sql, key: string): Promise<boolean> {
  const [row] = await sql<{ status: string }[]>`select status from email_outbox where key = ${key}`;
  return row?.status === 'sent';
}

/**
 * Sends through the outbox: the row is written first, and an email already marked sent is
 * never sent again, however often the activity is retried.
 *
 * `secrets` fill `{{name}}` placeholders at send time only (one-time links): the outbox keeps
 * the placeholder, never the secret, so a leaked outbox opens no account or export.
 */
export async function deliverEmail(
  deps: EmailDeps,
  email: EmailToSend,
  secrets: Record<string, string> = {},
): Promise<{ messageId: string; alreadySent: boolean }> {
  const messageId = messageIdFor(email.key, deps.mailFrom);
  let body: string;
  try {
    body = await bodyAtRest(deps.sql, deps.keys, email);
  } catch (err) {
    if (!(err instanceof KeyDestroyedError)) throw err;
    // The person was erased: nothing more goes to them, and nothing of this email is kept.
    await deps.sql`
      insert into email_outbox (key, message_id, recipient, category, subject, text_body, status)
      values (${email.key}, ${messageId}, '[erased]', ${email.category}, '[erased]', '[erased]', 'suppressed') on conflict (key) do nothing`;
    return { messageId, alreadySent: true };
  }
  await deps.sql`
    insert into email_outbox (key, message_id, recipient, category, subject, text_body)
    values (${email.key}, ${messageId}, ${email.to}, ${email.category}, ${email.subject}, ${body})
    on conflict (key) do nothing`;
  const [row] = await deps.sql<{ status: string; recipient: string; subject: string; textBody: string }[]>`
    update email_outbox set attempts = attempts + 1 where key = ${email.key}
    returning status, recipient, subject, text_body as "textBody"`;
  if (row!.status === 'sent' || row!.status === 'suppressed') return { messageId, alreadySent: true };
  try {
    // What the outbox holds is what goes out, even if a retry was built from newer data.
    const stored = deps.keys ? await unsealText(deps.keys, row!.textBody) : row!.textBody;
    const text = stored.replace(/\{\{(\w+)\}\}/g, (whole, name: string) => secrets[name] ?? whole);
    await deps.mailer.send({ from: deps.mailFrom, to: row!.recipient, subject: row!.subject, text, messageId });
  } catch (err) {
    // Only codes leave: the server's text quotes the address (D9, D15).
    const reason = safeErrorText(err);
    if (isPermanentSmtpFailure(err)) {
      // The receiver's final word (issue 13): retrying cannot help; the workflow tells staff.
      await deps.sql`update email_outbox set status = 'failed', last_error = ${reason} where key = ${email.key}`;
      throw ApplicationFailure.nonRetryable(`the email ${email.key} was refused for good: ${reason}`, PERMANENT_SMTP_FAILURE);
    }
    await deps.sql`update email_outbox set last_error = ${reason} where key = ${email.key}`;
    throw ApplicationFailure.retryable(`the email ${email.key} was not accepted: ${reason}`, 'SmtpFailure');
  }
  await deps.sql`update email_outbox set status = 'sent', sent_at = now(), last_error = null where key = ${email.key}`;
  return { messageId, alreadySent: false };
}

/** Records a marketing email that was not sent because the person opted out (D11) or the client forbids it (D6). */
export async function suppressEmail(sql: Sql, email: EmailToSend, mailFrom: string, keys?: PersonKeys): Promise<void> {
  const body = await bodyAtRest(sql, keys, email).catch((err: unknown) => {
    if (err instanceof KeyDestroyedError) return '[erased]';
    throw err;
  });
  await sql`
    insert into email_outbox (key, message_id, recipient, category, subject, text_body, status)
    values (${email.key}, ${messageIdFor(email.key, mailFrom)}, ${email.to}, ${email.category}, ${email.subject}, ${body}, 'suppressed')
    on conflict (key) do nothing`;
}
