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
  return (await sql`select 1 from customers where lower(email) = lower(${email})`).length > 0;
}

/** A one-time link token; only its hash is stored. */
export async function createPasswordToken(sql: Db, customerId: string, ttlMs: number): Promise<{ token: string; expiresAt: Date }> {
  const token = randomBytes(32).toString('base64url');
  const expiresAt = new Date(Date.now() + ttlMs);
  await sql`insert into password_tokens (token_hash, customer_id, expires_at) values (${hashToken(token)}, ${customerId}, ${expiresAt})`;
  return { token, expiresAt };
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
    return updated.length ? row.customerId : undefined;
  });
}

export async function setMarketingEmails(sql: Db, id: string, on: boolean): Promise<void> {
  await sql`update customers set marketing_emails = ${on} where id = ${id}`;
}

/** Counts recent failed logins for an email or an address, keyed by a hash (no addresses stored). */
export const loginKey = (kind: 'email' | 'ip', value: string) => createHash('sha256').update(`${kind}:${value.toLowerCase()}`).digest();

export async function recentLoginFailures(sql: Db, key: Buffer, windowMs: number): Promise<number> {
  const [row] = await sql<{ n: number }[]>`
    select count(*)::int as n from login_failures where key_hash = ${key} and at > now() - ${windowMs / 1000} * interval '1 second'`;
  return row!.n;
}

export async function recordLoginFailure(sql: Db, keys: Buffer[]): Promise<void> {
  await sql`insert into login_failures ${sql(keys.map((k) => ({ key_hash: k })))}`;
}
