import { hash } from 'node:crypto';
import type { PendingQuery, Row } from 'postgres';
import type { Tx } from './index';
import type { BatchColumn } from './batch-insert';

/**
 * One append-only hash chain in a table with `seq`, `prev_hash` and `hash` columns: the
 * deletion receipts and the audit ledger. Each row's hash covers the previous hash and the
 * row's canonical encoding, so editing, removing or reordering a row breaks every hash after it.
 */
export const GENESIS_HASH = '0'.repeat(64);

/** sha256(prevHash, '\n', JSON of the fields in a fixed order and format). */
export function chainHash(prevHash: string, canonical: readonly unknown[]): string {
  // One shot over the same bytes as hashing the three parts in turn (UTF-8 of each), without a Hash object per entry.
  return hash('sha256', `${prevHash}\n${JSON.stringify(canonical)}`, 'hex');
}

export interface Chain {
  /** The table holding the chain (seq, prev_hash, hash). */
  table: string;
  /** pg advisory lock key: appends from every process serialize on it, so the chain stays one line. */
  lock: number;
}

export interface Linked {
  seq: number;
  prevHash: string;
  hash: string;
}

const lockStatement = (tx: Tx, chain: Chain) => tx`select pg_advisory_xact_lock(${chain.lock})`;

/** Takes the chain's lock for the rest of the caller's transaction (a statement of its own, before the head is read). */
export async function lockChain(tx: Tx, chain: Chain): Promise<void> {
  await lockStatement(tx, chain);
}

/**
 * An entry's canonical encoding after its seq: `JSON.stringify([seq, ...fields])` is
 * `[${seq}${tail}`. Made before the chain's lock is taken, so that the lock is held for the
 * hashing alone, not for turning dates into text and fields into JSON.
 */
export function canonicalTail(fields: readonly unknown[]): string {
  return fields.length === 0 ? ']' : `,${JSON.stringify(fields).slice(1)}`;
}

/** The same hash as `chainHash(prevHash, [seq, ...fields])`, from the entry's `canonicalTail`. */
export function chainHashOfTail(prevHash: string, seq: number, tail: string): string {
  return hash('sha256', `${prevHash}\n[${seq}${tail}`, 'hex');
}

/** Entries ready to append to one chain: everything but their links, computed before any lock. */
export interface PreparedAppend {
  chain: Chain;
  /** One `canonicalTail` per entry, in append order. */
  tails: string[];
  /** The insert of the entries with their links, run in the transaction that holds the lock. */
  insert(tx: Tx, links: Linked[]): PendingQuery<Row[]>;
}

/** The columns every chain table holds for its links, for an insert of linked entries. */
export const linkColumns = (links: readonly Linked[]): BatchColumn[] => [
  { name: 'seq', type: 'bigint', values: links.map((l) => l.seq) },
  { name: 'prev_hash', type: 'text', values: links.map((l) => l.prevHash) },
  { name: 'hash', type: 'text', values: links.map((l) => l.hash) },
];

const readHead = (tx: Tx, chain: Chain) => tx<{ seq: string; hash: string }[]>`select seq, hash from ${tx(chain.table)} order by seq desc limit 1`;

/** Links `tails` after a chain's head (none: the genesis). */
function linkTails(head: { seq: string; hash: string } | undefined, tails: readonly string[]): Linked[] {
  let seq = head ? Number(head.seq) : 0;
  let prevHash = head?.hash ?? GENESIS_HASH;
  const links = new Array<Linked>(tails.length);
  for (let i = 0; i < tails.length; i++) {
    seq += 1;
    const h = chainHashOfTail(prevHash, seq, tails[i]!);
    links[i] = { seq, prevHash, hash: h };
    prevHash = h;
  }
  return links;
}

/**
 * Appends prepared entries to one or more chains in the caller's transaction. Each chain's lock
 * is taken in the order given (callers keep one order — receipts before the ledger — so two
 * appenders never deadlock), then the heads are read, in statements sent together: Postgres runs
 * them one after the other, each head read after its lock is held and so after the last append
 * committed. Then the inserts, again sent together. Two round trips under the locks, whatever
 * the number of chains; a rolled-back transaction leaves no link.
 * `locked`: the caller's transaction already holds every lock (it checked something under it).
 */
export async function appendPrepared(tx: Tx, appends: PreparedAppend[], options: { locked?: boolean } = {}): Promise<Linked[][]> {
  const live = appends.filter((a) => a.tails.length > 0);
  if (live.length === 0) return appends.map(() => []);
  // Sent now, in this order, without waiting for each other's answers.
  const locks = options.locked ? [] : live.map((a) => lockStatement(tx, a.chain).execute());
  const heads = live.map((a) => readHead(tx, a.chain).execute());
  const [, read] = await Promise.all([Promise.all(locks), Promise.all(heads)]);
  const links = live.map((a, i) => linkTails(read[i]![0], a.tails));
  await Promise.all(live.map((a, i) => a.insert(tx, links[i]!)));
  return appends.map((a) => (a.tails.length > 0 ? links[live.indexOf(a)]! : []));
}

export interface ChainWalk {
  valid: boolean;
  count: number;
  /** The first row whose seq, prev hash or hash does not follow from its content and predecessor. */
  brokenAtSeq?: number;
  headHash: string;
}

/** Recomputes every hash from the start (rows must come ordered by seq); any edited, removed or reordered row is found. */
export async function walkChain<R extends Row & Linked>(rows: PendingQuery<R[]>, canonical: (row: R) => unknown[]): Promise<ChainWalk> {
  let prevHash = GENESIS_HASH;
  let expectedSeq = 1;
  let count = 0;
  let brokenAtSeq: number | undefined;
  await rows.cursor(2000, async (batch) => {
    for (const r of batch) {
      count++;
      if (brokenAtSeq !== undefined) continue;
      if (r.seq !== expectedSeq || r.prevHash !== prevHash || chainHash(prevHash, canonical(r)) !== r.hash) {
        brokenAtSeq = r.seq;
        continue;
      }
      prevHash = r.hash;
      expectedSeq++;
    }
  });
  return { valid: brokenAtSeq === undefined, count, brokenAtSeq, headHash: prevHash };
}
