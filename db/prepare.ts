import type { Logger } from '../lib/log';
import { createSql, ensureDatabase, type Sql } from './index';
import { migrate } from './migrate';

/**
 * Waits until Postgres answers, creates the app database if missing, and applies pending
 * migrations. Both the api and the worker call this at start; the migration lock makes it safe.
 */
export async function prepareDatabase(url: string, log: Logger, options: { timeoutMs?: number } = {}): Promise<Sql> {
  const deadline = Date.now() + (options.timeoutMs ?? 120_000);
  for (let attempt = 1; ; attempt++) {
    try {
      const { created } = await ensureDatabase(url);
      if (created) log.info('created the app database');
      break;
    } catch (err) {
      if (Date.now() > deadline) throw err;
      if (attempt === 1 || attempt % 10 === 0) log.warn({ err: { code: (err as { code?: string }).code } }, 'waiting for Postgres');
      await new Promise((r) => setTimeout(r, 1000));
    }
  }
  const sql = createSql(url);
  const applied = await migrate(sql);
  if (applied.length) log.info({ migrations: applied }, 'applied migrations');
  return sql;
}
