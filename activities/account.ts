import type { Sql } from '../db/index';
import type { Mailer } from '../lib/mailer';
import type { PersonKeys } from '../db/person-keys';
import { hashToken } from '../db/access-tokens';
import { findCustomer } from '../db/customers';
import { fixedDurationMs } from '../lib/durations';
import { alreadyRegisteredEmail, emailChangeConfirmEmail, emailChangeNoticeEmail, invitationEmail, passwordResetEmail } from '../lib/email-templates';
import { findClient } from '../db/clients';
import { deliverEmail } from './email';
import { linkTokenFor } from './links';

export interface AccountEmailDeps {
  sql: Sql;
  mailer: Mailer;
  config: { MAIL_FROM: string; PUBLIC_URL: string; PASSWORD_LINK_TTL: string };
  /** Issue 12: seals the bodies of emails to the person at rest. */
  keys?: PersonKeys;
}

/** What `accountEmail` sends; ids only (names and addresses are read here, never carried in history). */
export interface AccountEmailInput {
  kind: 'password_reset' | 'email_change' | 'invitation' | 'already_registered';
  customerId: string;
  /** password_reset, invitation and already_registered: a fresh id per ask; email_change: the email_changes row. */
  ref: string;
  /** already_registered: the team lead who asked to register the address (an id, never a name). */
  askedBy?: string;
  /** already_registered: when they asked (ISO); one notice per asker and day. */
  askedAt?: string;
}

export function createAccountActivities(deps: AccountEmailDeps) {
  const emailDeps = { sql: deps.sql, mailer: deps.mailer, mailFrom: deps.config.MAIL_FROM, keys: deps.keys };
  const ttlMs = () => fixedDurationMs(deps.config.PASSWORD_LINK_TTL);

  return {
    /** The emails of the account pages: a set-password link (a reset, or staff's fresh invitation), a new address's confirmation and the old one's notice, or the notice that someone asked to register an address that has an account. */
    async sendAccountEmail(input: AccountEmailInput): Promise<{ sent: boolean }> {
      const c = await findCustomer(deps.sql, input.customerId);
      if (!c?.email || !c.name || c.status !== 'active') return { sent: false }; // erased or closed meanwhile
      if (input.kind === 'already_registered') {
        // Issue 11: the asker was answered as for a new address; the holder is the one told. The
        // key allows one such notice per asker and day, however often they try (quota permitting).
        const askedAt = input.askedAt ?? new Date().toISOString();
        const lead = input.askedBy ? await findCustomer(deps.sql, input.askedBy) : undefined;
        const client = lead?.name && lead.status === 'active' ? await findClient(deps.sql, lead.clientId) : undefined;
        const notice = alreadyRegisteredEmail({
          locale: c.locale,
          name: c.name,
          by: lead?.name && client ? { name: lead.name, client: client.name } : null,
          at: askedAt,
          loginLink: `${deps.config.PUBLIC_URL}/account/login`,
        });
        const key = `customer:${c.id}:already-registered:${input.askedBy ?? 'unknown'}:${askedAt.slice(0, 10)}`;
        await deliverEmail(emailDeps, { key, to: c.email, category: 'service', ...notice });
        return { sent: true };
      }
      if (input.kind === 'password_reset' || input.kind === 'invitation') {
        const key = `customer:${c.id}:${input.kind === 'invitation' ? 'invitation' : 'password-reset'}:${input.ref}`;
        const token = await linkTokenFor(deps.sql, key);
        const expiresAt = new Date(Date.now() + ttlMs());
        await deps.sql.begin(async (tx) => {
          const minted = await tx`insert into password_tokens (token_hash, customer_id, expires_at) values (${hashToken(token)}, ${c.id}, ${expiresAt})
                                  on conflict (token_hash) do nothing returning 1`;
          // The newest link is the only one that works (a first attempt only: a retry keeps its link).
          if (minted.length) await tx`update password_tokens set used_at = now() where customer_id = ${c.id} and used_at is null and token_hash <> ${hashToken(token)}`;
        });
        const [tokenRow] = await deps.sql<{ expiresAt: Date }[]>`select expires_at as "expiresAt" from password_tokens where token_hash = ${hashToken(token)}`;
        const expires = tokenRow!.expiresAt.toISOString();
        const email =
          input.kind === 'invitation'
            ? invitationEmail({ locale: c.locale, name: c.name, link: '{{link}}', providedBy: c.providedBy, providedByKind: c.providedByKind, providedVia: c.providedVia, providedAt: c.providedAt.toISOString(), expiresAt: expires })
            : passwordResetEmail({ locale: c.locale, name: c.name, link: '{{link}}', expiresAt: expires });
        await deliverEmail(emailDeps, { key, to: c.email, category: 'service', ...email }, { link: `${deps.config.PUBLIC_URL}/account/set-password?token=${token}` });
        return { sent: true };
      }
      const [change] = await deps.sql<{ newEmail: string; expiresAt: Date; confirmedAt: Date | null }[]>`
        select new_email as "newEmail", expires_at as "expiresAt", confirmed_at as "confirmedAt" from email_changes where id = ${input.ref} and customer_id = ${c.id}`;
      if (!change || change.confirmedAt) return { sent: false };
      const key = `customer:${c.id}:email-change:${input.ref}`;
      const token = await linkTokenFor(deps.sql, key);
      await deps.sql`update email_changes set token_hash = ${hashToken(token)} where id = ${input.ref}`;
      const confirm = emailChangeConfirmEmail({ locale: c.locale, name: c.name, link: '{{link}}', expiresAt: change.expiresAt.toISOString() });
      await deliverEmail(emailDeps, { key: `${key}:confirm`, to: change.newEmail, category: 'service', ...confirm }, { link: `${deps.config.PUBLIC_URL}/account/confirm-email?token=${token}` });
      await deliverEmail(emailDeps, { key: `${key}:notice`, to: c.email, category: 'service', ...emailChangeNoticeEmail({ locale: c.locale, name: c.name }) });
      return { sent: true };
    },
  };
}
