import type { Db, Sql, Tx } from './index';
import { appendPrepared, canonicalTail, linkColumns, lockChain, walkChain, type Chain, type PreparedAppend } from './hash-chain';
import { insertBatch } from './batch-insert';

/**
 * Issue 12: the append-only, hash-chained audit ledger (migration 00018). Rows hold ids and
 * words from the vocabularies below, never personal values: erasure never needs to touch it.
 */
export const LEDGER_ACTIONS = [
  'request.decide',
  'request.execute',
  'dispute.resolve',
  'disclosure.record',
  'recording.delete',
  'recording.audio_download',
  'recording.override',
  'export.download',
  'transfer.approve',
  // Reads of personal data by staff (and by a client's team lead): one entry per record read.
  'request.read',
  'call_message.read',
  // The Temporal UI (or a script) decoding history payloads through /codec/decode.
  'payload.decode',
] as const;
export type LedgerAction = (typeof LEDGER_ACTIONS)[number];
export const LEDGER_OBJECTS = ['request', 'dispute', 'disclosure', 'recording', 'export', 'transfer', 'call_message', 'staff_token'] as const;
export type LedgerObject = (typeof LEDGER_OBJECTS)[number];
export type ActorType = 'staff' | 'customer' | 'system' | 'link' | 'unknown';

export interface LedgerActor {
  type: ActorType;
  /** A staff token id or customer id; null for the system, a link, or an actor that is no id at all. */
  id: string | null;
  /** The staff role, the authority of a customer's own step (`account-closure`), or the system part acting. */
  role: string | null;
}

export interface LedgerEntryInput {
  actor: LedgerActor;
  action: LedgerAction;
  outcome: 'done' | 'refused';
  objectType: LedgerObject;
  objectId: string;
}

export interface LedgerEntry {
  seq: number;
  at: Date;
  actorType: ActorType;
  actorId: string | null;
  actorRole: string | null;
  action: LedgerAction;
  outcome: 'done' | 'refused';
  objectType: LedgerObject;
  objectId: string;
  prevHash: string;
  hash: string;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** Only an id goes into the ledger: a stated actor that is anything else (free text, an address) is recorded as no id. */
export const ledgerId = (value: string | null | undefined): string | null => (value && UUID.test(value) ? value.toLowerCase() : null);

/** Appends take this lock (inside the caller's transaction), so appends from every process make one chain. */
const LEDGER_CHAIN: Chain = { table: 'audit_ledger', lock: 7_233_005 };

/** The fields an entry's hash covers after its seq, in a fixed order and format. */
const entryFields = (e: { at: Date; actorType: string; actorId: string | null; actorRole: string | null; action: string; outcome: string; objectType: string; objectId: string }) => [
  e.at.toISOString(),
  e.actorType,
  e.actorId,
  e.actorRole,
  e.action,
  e.outcome,
  e.objectType,
  e.objectId,
];

/** The fields an entry's hash covers, in a fixed order and format. */
const canonicalEntry = (seq: number, e: Parameters<typeof entryFields>[0]) => [seq, ...entryFields(e)];

type LedgerRow = Omit<LedgerEntry, 'seq' | 'prevHash' | 'hash'>;

const ledgerRows = (entries: LedgerEntryInput[], at: Date): LedgerRow[] =>
  entries.map((e) => ({
    at,
    actorType: e.actor.type,
    actorId: ledgerId(e.actor.id),
    actorRole: e.actor.role,
    action: e.action,
    outcome: e.outcome,
    objectType: e.objectType,
    objectId: e.objectId,
  }));

/** Ledger rows ready to append (`appendPrepared`): tails and columns made before the lock. */
function prepareRows(rows: LedgerRow[]): PreparedAppend {
  const col = <K extends keyof LedgerRow>(k: K) => rows.map((e) => e[k]);
  const tails = rows.map((e) => canonicalTail(entryFields(e)));
  return {
    chain: LEDGER_CHAIN,
    tails,
    insert: (tx, links) =>
      insertBatch(tx, 'audit_ledger', [
        { name: 'at', type: 'timestamptz', values: rows.map((e) => e.at.toISOString()) }, // one `at` for the whole append: sent once
        { name: 'actor_type', type: 'text', values: col('actorType') },
        { name: 'actor_id', type: 'uuid', values: col('actorId') },
        { name: 'actor_role', type: 'text', values: col('actorRole') },
        { name: 'action', type: 'text', values: col('action') },
        { name: 'outcome', type: 'text', values: col('outcome') },
        { name: 'object_type', type: 'text', values: col('objectType') },
        { name: 'object_id', type: 'uuid', values: col('objectId') },
        ...linkColumns(links),
      ]),
  };
}

/** Entries ready to append in the caller's transaction together with another chain's (`appendPrepared`, receipts first). */
export function prepareLedger(entries: LedgerEntryInput[]): PreparedAppend {
  return prepareRows(ledgerRows(entries, new Date()));
}

/**
 * Appends entries inside the caller's transaction: the action and its entry commit or roll back
 * together. `once`: skip an entry whose action on that object is already recorded as done (an
 * activity retried after its transaction committed).
 */
export async function appendLedger(tx: Tx, entries: LedgerEntryInput[], options: { once?: boolean } = {}): Promise<LedgerEntry[]> {
  if (entries.length === 0) return [];
  let rows = ledgerRows(entries, new Date());
  if (options.once) {
    // The lock first, so the check for an earlier entry and the append see the same chain.
    await lockChain(tx, LEDGER_CHAIN);
    const done = await tx<{ key: string }[]>`
      select object_type || ':' || object_id || ':' || action as key from audit_ledger
      where outcome = 'done' and (object_type, object_id, action) in (select * from unnest(${rows.map((r) => r.objectType)}::text[], ${rows.map((r) => r.objectId)}::uuid[], ${rows.map((r) => r.action)}::text[]))`;
    const seen = new Set(done.map((d) => d.key));
    rows = rows.filter((r) => r.outcome !== 'done' || !seen.has(`${r.objectType}:${r.objectId}:${r.action}`));
    if (rows.length === 0) return [];
  }
  const [links] = await appendPrepared(tx, [prepareRows(rows)], { locked: options.once });
  return rows.map((r, i) => ({ ...r, ...links![i]! }));
}

/** Entries in a transaction of their own: for acts that have no transaction (a download, a read) or must be kept though refused. */
export async function recordInLedger(sql: Sql, entry: LedgerEntryInput | LedgerEntryInput[]): Promise<void> {
  await sql.begin((tx) => appendLedger(tx, Array.isArray(entry) ? entry : [entry]));
}

const entryColumns = (sql: Db) => sql`
  seq::int as seq, at, actor_type as "actorType", actor_id as "actorId", actor_role as "actorRole", action, outcome,
  object_type as "objectType", object_id as "objectId", prev_hash as "prevHash", hash`;

export async function listLedger(sql: Db, f: { objectType?: LedgerObject; objectId?: string; action?: LedgerAction; afterSeq?: number; limit: number }): Promise<LedgerEntry[]> {
  return sql<LedgerEntry[]>`
    select ${entryColumns(sql)} from audit_ledger
    where true
      ${f.objectType ? sql`and object_type = ${f.objectType}` : sql``}
      ${f.objectId ? sql`and object_id = ${f.objectId}` : sql``}
      ${f.action ? sql`and action = ${f.action}` : sql``}
      ${f.afterSeq !== undefined ? sql`and seq > ${f.afterSeq}` : sql``}
    order by seq
    limit ${f.limit}`;
}

export interface LedgerVerification {
  valid: boolean;
  entries: number;
  /** The seq of the first entry whose hash does not follow from its content and predecessor. */
  brokenAt?: number;
  headHash: string;
}

/** Recomputes every hash from the start, as the deletion receipts' verification does. */
export async function verifyLedger(sql: Sql): Promise<LedgerVerification> {
  const walk = await walkChain(sql<LedgerEntry[]>`select ${entryColumns(sql)} from audit_ledger order by seq`, (e) => canonicalEntry(e.seq, e));
  return { valid: walk.valid, entries: walk.count, ...(walk.brokenAtSeq !== undefined ? { brokenAt: walk.brokenAtSeq } : {}), headHash: walk.headHash };
}
