import postgres from 'postgres';

export type Sql = postgres.Sql;
export type Tx = postgres.TransactionSql;
/** Repository functions take either, so callers can compose them inside `sql.begin`. */
export type Db = Sql | Tx;
/** A piece of SQL (`db\`…\``) to be interpolated into another statement. */
export type Fragment = postgres.PendingQuery<postgres.Row[]>;

/** SQL fragments joined by `separator` (a list of columns, CTEs or conditions built piece by piece). */
export const joinSql = (db: Db, parts: Fragment[], separator: ', ' | ' and ' = ', ') =>
  parts.reduce((a, b) => db`${a}${db.unsafe(separator)}${b}`);

export function createSql(url: string, options: postgres.Options<Record<string, never>> = {}): Sql {
  return postgres(url, {
    max: 10,
    idle_timeout: 30,
    connect_timeout: 5,
    onnotice: () => {},
    ...options,
  });
}

/** The database a URL names, and a URL for the server's maintenance database. */
function splitDatabaseUrl(url: string): { database: string; adminUrl: string } {
  const parsed = new URL(url);
  const database = decodeURIComponent(parsed.pathname.replace(/^\//, ''));
  if (!database) throw new Error('DATABASE_URL must name a database');
  parsed.pathname = '/postgres';
  return { database, adminUrl: parsed.toString() };
}

/** Creates the app database when it does not exist yet. */
export async function ensureDatabase(url: string): Promise<{ created: boolean }> {
  const { database, adminUrl } = splitDatabaseUrl(url);
  const admin = createSql(adminUrl, { max: 1 });
  try {
    const [row] = await admin`select 1 as present from pg_database where datname = ${database}`;
    if (row) return { created: false };
    try {
      await admin.unsafe(`create database ${quoteIdent(database)}`);
    } catch (err) {
      // Another process created it between our check and our create.
      if ((err as { code?: string }).code !== '42P04') throw err;
      return { created: false };
    }
    return { created: true };
  } finally {
    await admin.end({ timeout: 5 });
  }
}

export async function dropDatabase(url: string): Promise<void> {
  const { database, adminUrl } = splitDatabaseUrl(url);
  const admin = createSql(adminUrl, { max: 1 });
  try {
    await admin.unsafe(`drop database if exists ${quoteIdent(database)} with (force)`);
  } finally {
    await admin.end({ timeout: 5 });
  }
}

function quoteIdent(name: string): string {
  return '"' + name.replace(/"/g, '""') + '"';
}
