import { createHash, randomBytes } from 'node:crypto';
import type { Db, Sql } from './index';
import { hashToken } from './access-tokens';

export type Locale = 'da' | 'en';

export interface CustomerRow {
  id: string;
  clientId: string;
  email: string | null;
  name: string | null;
  locale: Locale;
  providedBy: string;
  providedByKind: 'self' | 'client' | 'team_lead' | 'third_party' | null;
  providedVia: string | null;
  providedAt: Date;
  teamLead: boolean;
  marketingEmails: boolean;
  processingRestricted: boolean;
  objectedToProcessing: boolean;
  status: 'active' | 'erased';
  hasPassword: boolean;
  createdAt: Date;
}

const columns = (sql: Db) => sql`
  id, client_id as "clientId", email, name, locale, provided_by as "providedBy", provided_by_kind as "providedByKind", provided_via as "providedVia", provided_at as "providedAt", team_lead as "teamLead",
  marketing_emails as "marketingEmails", processing_restricted as "processingRestricted",
  objected_to_processing as "objectedToProcessing", status, password_hash is not null as "hasPassword", created_at as "createdAt"`;

export async function insertCustomer(
  sql: Db,
  c: {
    id: string;
    clientId: string;
    email: string;
    name: string;
    locale: Locale;
    providedBy: string;
    providedByKind: 'self' | 'client' | 'team_lead' | 'third_party';
    providedVia: string | null;
    registeredByToken: string | null;
    teamLead: boolean;
  },
): Promise<CustomerRow> {
  const [row] = await sql<CustomerRow[]>`
    insert into customers (id, client_id, email, name, locale, provided_by, provided_by_kind, provided_via, registered_by_token, team_lead)
    values (${c.id}, ${c.clientId}, ${c.email}, ${c.name}, ${c.locale}, ${c.providedBy}, ${c.providedByKind}, ${c.providedVia}, ${c.registeredByToken}, ${c.teamLead})
    returning ${columns(sql)}`;
  return row!;
}

export async function findCustomer(sql: Db, id: string): Promise<CustomerRow | undefined> {
  const [row] = await sql<CustomerRow[]>`select ${columns(sql)} from customers where id = ${id}`;
  return row;
}

export async function findCustomerByEmail(sql: Db, email: string): Promise<(CustomerRow & { passwordHash: string | null }) | undefined> {
  const [row] = await sql<(CustomerRow & { passwordHash: string | null })[]>`
    select ${columns(sql)}, password_hash as "passwordHash" from customers where lower(email) = lower(${email})`;
  return row;
}

export async function emailTaken(sql: Db, email: string): Promise<boolean> {
  return (await emailHolder(sql, email)) !== undefined;
}

/** The id of the account that has this address (any client's), if one does. */
export async function emailHolder(sql: Db, email: string): Promise<string | undefined> {
  const [row] = await sql<{ id: string }[]>`select id from customers where lower(email) = lower(${email})`;
  return row?.id;
}

/** A one-time link token; only its hash is stored. */
export async function createPasswordToken(sql: Db, customerId: string, ttlMs: number): Promise<{ token: string; expiresAt: Date }> {
  const token = randomBytes(32).toString('base64url');
  const expiresAt = new Date(Date.now() + ttlMs);
  await sql`insert into password_tokens (token_hash, customer_id, expires_at) values (${hashToken(token)}, ${customerId}, ${expiresAt})`;
  return { token, expiresAt };
}

/** Whether a link token could still be used (unknown, used and expired ones cannot). */
export async function passwordTokenUsable(sql: Db, token: string): Promise<boolean> {
  const rows = await sql`select 1 from password_tokens where token_hash = ${hashToken(token)} and used_at is null and expires_at > now()`;
  return rows.length > 0;
}

/** Uses a link token once: returns its customer, or undefined when unknown, used or expired. */
export async function consumePasswordToken(sql: Sql, token: string, passwordHash: string): Promise<string | undefined> {
  return sql.begin(async (tx) => {
    const [row] = await tx<{ customerId: string }[]>`
      update password_tokens set used_at = now()
      where token_hash = ${hashToken(token)} and used_at is null and expires_at > now()
      returning customer_id as "customerId"`;
    if (!row) return undefined;
    const updated = await tx`
      update customers set password_hash = ${passwordHash}, password_set_at = now()
      where id = ${row.customerId} and status = 'active' returning id`;
    if (!updated.length) return undefined;
    // A new password ends every session and login the old one opened (a reset after a takeover).
    await tx`update web_sessions set revoked_at = now() where customer_id = ${row.customerId} and revoked_at is null`;
    await tx`update access_tokens set revoked_at = now() where kind = 'customer' and subject_id = ${row.customerId} and revoked_at is null`;
    return row.customerId;
  });
}

export async function setMarketingEmails(sql: Db, id: string, on: boolean): Promise<void> {
  await sql`update customers set marketing_emails = ${on} where id = ${id}`;
}

/** Counts recent failed logins for an email or an address, keyed by a hash (no addresses stored). */
export const loginKey = (kind: 'email' | 'ip' | 'reset-email' | 'reset-ip', value: string) => createHash('sha256').update(`${kind}:${value.toLowerCase()}`).digest();

/**
 * Issue 11: a login attempt is counted before its password is checked, one attempt at a time
 * per key (an advisory lock per account and per source address), so 50 parallel guesses cannot
 * all be checked. Past `free` failures in the window, each key waits `1 s × 2^(n − free)` (at
 * most `maxDelayMs`) after its last failure: a progressive delay, not a lock-out, so the owner
 * gets in once an attack stops. Returns the ids to forget on success, or how long to wait.
 */
export async function reserveLoginAttempt(
  sql: Sql,
  keys: { key: Buffer; free: number }[],
  options: { windowMs: number; maxDelayMs: number },
): Promise<{ ok: true; ids: string[] } | { ok: false; retryAfterMs: number }> {
  const ordered = [...keys].sort((a, b) => Buffer.compare(a.key, b.key));
  return sql.begin(async (tx) => {
    for (const k of ordered) await tx`select pg_advisory_xact_lock(hashtextextended(${k.key.toString('hex')}, 7233))`;
    let retryAfterMs = 0;
    for (const k of ordered) {
      const [row] = await tx<{ n: number; sinceLastMs: number | null }[]>`
        select count(*)::int as n, (extract(epoch from now() - max(at)) * 1000)::float8 as "sinceLastMs"
        from login_failures where key_hash = ${k.key} and at > now() - ${options.windowMs / 1000} * interval '1 second'`;
      if (row!.n >= k.free) {
        const delay = Math.min(options.maxDelayMs, 1000 * 2 ** (row!.n - k.free));
        retryAfterMs = Math.max(retryAfterMs, delay - (row!.sinceLastMs ?? delay));
      }
    }
    if (retryAfterMs > 0) return { ok: false as const, retryAfterMs };
    // Counted as a failure until the password proves otherwise.
    const ids = await tx<{ id: string }[]>`insert into login_failures ${tx(ordered.map((k) => ({ key_hash: k.key })))} returning id::text`;
    return { ok: true as const, ids: ids.map((r) => r.id) };
  });
}

export async function forgetLoginAttempt(sql: Db, ids: string[]): Promise<void> {
  await sql`delete from login_failures where id = any(${ids}::bigint[])`;
}
