import { fixedDurationMs } from '../lib/durations';
import { ConfigError } from '../lib/config';
import { createHash, randomBytes } from 'node:crypto';
import type { Db, Sql } from './index';

export type StaffRole = 'admin' | 'privacy_officer' | 'support';
export const STAFF_ROLES = ['admin', 'privacy_officer', 'support'] as const satisfies readonly StaffRole[];

export interface AccessTokenRow {
  id: string;
  kind: 'staff' | 'customer';
  role: StaffRole | null;
  subjectId: string | null;
  label: string;
  createdAt: Date;
  expiresAt: Date | null;
  revokedAt: Date | null;
}

/** Tokens are 256 random bits, so SHA-256 is enough to keep them useless if the table leaks. */
export const hashToken = (token: string): Buffer => createHash('sha256').update(token, 'utf8').digest();

export const newToken = (prefix: 'staff' | 'cust'): string => `tc_${prefix}_${randomBytes(32).toString('base64url')}`;

const columns = (sql: Db) =>
  sql`id, kind, role, subject_id as "subjectId", label, created_at as "createdAt", expires_at as "expiresAt", revoked_at as "revokedAt"`;

export async function findActiveToken(sql: Db, token: string): Promise<AccessTokenRow | undefined> {
  const [row] = await sql<AccessTokenRow[]>`
    select ${columns(sql)} from access_tokens
    where token_hash = ${hashToken(token)} and revoked_at is null and (expires_at is null or expires_at > now())`;
  return row;
}

/** A staff token; with `ttl` (ISO duration, STAFF_TOKEN_TTL) it expires and must be rotated. */
export async function insertStaffToken(sql: Db, input: { token: string; role: StaffRole; label: string; ttl?: string }): Promise<AccessTokenRow> {
  const expiresAt = input.ttl ? new Date(Date.now() + fixedDurationMs(input.ttl)) : null;
  const [row] = await sql<AccessTokenRow[]>`
    insert into access_tokens (token_hash, kind, role, label, expires_at)
    values (${hashToken(input.token)}, 'staff', ${input.role}, ${input.label}, ${expiresAt})
    returning ${columns(sql)}`;
  return row!;
}

export async function listStaffTokens(sql: Db): Promise<AccessTokenRow[]> {
  return sql<AccessTokenRow[]>`select ${columns(sql)} from access_tokens where kind = 'staff' order by created_at`;
}

export async function revokeToken(sql: Db, id: string): Promise<boolean> {
  const rows = await sql`update access_tokens set revoked_at = now() where id = ${id} and revoked_at is null returning id`;
  return rows.length > 0;
}

/**
 * Seeds the admin token: STAFF_BOOTSTRAP_TOKEN when given, otherwise a random one the first
 * time no admin token exists. Returns the generated token (to print once) or undefined.
 * `generate: false` (production mode, issue 12: no token is ever printed) throws a ConfigError
 * naming STAFF_BOOTSTRAP_TOKEN where a token would have been generated, and creates nothing.
 */
export async function ensureBootstrapAdmin(
  sql: Sql,
  bootstrapToken: string | undefined,
  { generate = true }: { generate?: boolean } = {},
): Promise<string | undefined> {
  const generated = await sql.begin(async (tx) => {
    // Two replicas starting together must not both mint an admin token.
    await tx`select pg_advisory_xact_lock(7233002)`;
    if (bootstrapToken) {
      await tx`
        insert into access_tokens (token_hash, kind, role, label)
        values (${hashToken(bootstrapToken)}, 'staff', 'admin', 'bootstrap (STAFF_BOOTSTRAP_TOKEN)')
        on conflict (token_hash) do nothing`;
      return null;
    }
    const [admin] = await tx`select 1 from access_tokens where kind = 'staff' and role = 'admin' limit 1`;
    if (admin) return null;
    if (!generate) {
      throw new ConfigError(
        ['STAFF_BOOTSTRAP_TOKEN: must be set for the first start in production: there is no admin staff token yet, and production mode prints none. ' +
          'Set it (at least 32 characters, from your secret store), create real tokens with POST /v1/staff/tokens, then revoke it and remove it from the environment'],
        'Refusing to start in production mode (NODE_ENV=production)',
      );
    }
    const token = newToken('staff');
    await insertStaffToken(tx, { token, role: 'admin', label: 'bootstrap (generated on first start)' });
    return token;
  });
  return generated ?? undefined;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * The role of an active staff token (not revoked, not expired) by its id, or undefined: what an
 * activity checks below the API before it carries out an act a role is needed for (issue 12).
 */
export async function activeStaffRole(sql: Db, tokenId: string | null | undefined): Promise<StaffRole | undefined> {
  if (!tokenId || !UUID.test(tokenId)) return undefined;
  const [row] = await sql<{ role: StaffRole }[]>`
    select role from access_tokens
    where id = ${tokenId} and kind = 'staff' and revoked_at is null and (expires_at is null or expires_at > now())`;
  return row?.role;
}
