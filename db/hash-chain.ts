import { hash } from 'node:crypto';
import type { PendingQuery, Row } from 'postgres';
import type { Tx } from './index';

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

/** Takes the chain's lock for the rest of the caller's transaction (a statement of its own, before the head is read). */
export async function lockChain(tx: Tx, chain: Chain): Promise<void> {
  await tx`select pg_advisory_xact_lock(${chain.lock})`;
}

/**
 * Links `entries` after the head of a chain whose lock the caller's transaction holds
 * (`lockChain`, in an earlier statement, so the head read here is the last one committed): a
 * rolled-back transaction leaves no link, and no other append can slip in between. The caller
 * inserts the returned rows in the same transaction.
 */
export async function linkEntries<T>(tx: Tx, chain: Chain, entries: T[], canonical: (seq: number, entry: T) => unknown[]): Promise<(T & Linked)[]> {
  if (entries.length === 0) return [];
  const [last] = await tx<{ seq: string; hash: string }[]>`select seq, hash from ${tx(chain.table)} order by seq desc limit 1`;
  let seq = last ? Number(last.seq) : 0;
  let prevHash = last?.hash ?? GENESIS_HASH;
  return entries.map((entry) => {
    seq += 1;
    const hash = chainHash(prevHash, canonical(seq, entry));
    const linked = { ...entry, seq, prevHash, hash };
    prevHash = hash;
    return linked;
  });
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
