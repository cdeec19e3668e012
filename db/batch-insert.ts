import { joinSql, type Db, type Fragment } from './index';

/** A column of a batch insert: its name, its Postgres type, and one value per row. */
export interface BatchColumn {
  name: string;
  type: 'bigint' | 'int' | 'uuid' | 'text' | 'timestamptz';
  values: readonly unknown[];
}

const uniform = (values: readonly unknown[]) => values.every((v) => v === values[0]);

/**
 * Inserts rows given column by column, in one statement with one parameter per column (not one
 * per value): a column whose rows all hold the same value is sent once, the others as an array
 * that `unnest` zips. A sweep batch of 500 receipts and ledger entries has seven such columns
 * (the reason, the run, the actor…), which then cost neither the bytes on the socket nor the
 * array parsing on either side.
 */
export function insertBatch(db: Db, table: string, columns: BatchColumn[]) {
  const rows = columns[0]?.values.length ?? 0;
  if (rows === 0) throw new RangeError(`insertBatch(${table}): no rows`);
  if (columns.some((c) => c.values.length !== rows)) throw new RangeError(`insertBatch(${table}): columns of unequal length`);
  const join = (parts: Fragment[]) => joinSql(db, parts);
  const zipped = columns.filter((c) => rows > 1 && !uniform(c.values));
  const select = join(columns.map((c) => (zipped.includes(c) ? db`u.${db(c.name)}` : db`${c.values[0] as never}::${db.unsafe(c.type)}`)));
  const from = zipped.length
    ? db`from unnest(${join(zipped.map((c) => db`${c.values as never}::${db.unsafe(c.type)}[]`))}) as u(${join(zipped.map((c) => db`${db(c.name)}`))})`
    : db``;
  return db`insert into ${db(table)} (${join(columns.map((c) => db`${db(c.name)}`))}) select ${select} ${from}`;
}
