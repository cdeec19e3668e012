import { readdir, readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import type { Sql } from './index';
import { ensureFirstPolicy } from './policies';

const migrationsDir = fileURLToPath(new URL('./migrations/', import.meta.url));
/** Any constant works; it only keeps two processes from migrating at once. */
const MIGRATION_LOCK = 7_233_001;

/**
 * Applies every pending forward-only migration (`db/migrations/NNNNN_name.sql`) in one
 * transaction. Safe to call from the api and the worker at the same time.
 */
export async function migrate(sql: Sql): Promise<string[]> {
  const files = (await readdir(migrationsDir)).filter((f) => /^\d{5}_[\w-]+\.sql$/.test(f)).sort();
  return sql.begin(async (tx) => {
    await tx`select pg_advisory_xact_lock(${MIGRATION_LOCK})`;
    await tx`create table if not exists schema_migrations (
      version text primary key,
      applied_at timestamptz not null default now()
    )`;
    const applied = new Set((await tx<{ version: string }[]>`select version from schema_migrations`).map((r) => r.version));
    const pending = files.filter((f) => !applied.has(f));
    for (const file of pending) {
      await tx.unsafe(await readFile(migrationsDir + file, 'utf8'));
      await tx`insert into schema_migrations (version) values (${file})`;
    }
    // Data every installation starts with: the policy in force since 19 June 2020 (D12).
    if (applied.has('00004_policies.sql') || pending.includes('00004_policies.sql')) await ensureFirstPolicy(tx);
    return pending;
  });
}
