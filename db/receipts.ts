import type { Db, Sql } from './index';
import { canonicalTail, chainHash, linkColumns, walkChain, type Chain, type PreparedAppend } from './hash-chain';
import { insertBatch } from './batch-insert';

export type DeletionReason = 'retention' | 'dispute_resolved' | 'erasure' | 'objection';

export interface ReceiptInput {
  recordingId: string;
  clientId: string;
  recordedAt: Date;
  deleteAfter: Date;
  deletedAt: Date;
  audioSha256: string;
  reason: DeletionReason;
  workflowId: string;
  runId: string;
  disputeId: string | null;
}

export interface Receipt extends ReceiptInput {
  seq: number;
  prevHash: string;
  hash: string;
}

/** Appending takes this lock, so the chain is one line even with sweeps and resolutions at once. */
const RECEIPT_CHAIN: Chain = { table: 'deletion_receipts', lock: 7_233_004 };

/** The fields a receipt's hash covers after its seq, in a fixed order and format. */
const receiptFields = (r: ReceiptInput) => [
  r.recordingId,
  r.clientId,
  r.recordedAt.toISOString(),
  r.deleteAfter.toISOString(),
  r.deletedAt.toISOString(),
  r.audioSha256,
  r.reason,
  r.workflowId,
  r.runId,
  r.disputeId,
];

/** The fields a receipt's hash covers, in a fixed order and format. */
const canonicalReceipt = (seq: number, r: ReceiptInput) => [seq, ...receiptFields(r)];

/** The hash covers the previous hash and every field, in a fixed order and format. */
export function receiptHash(prevHash: string, seq: number, r: ReceiptInput): string {
  return chainHash(prevHash, canonicalReceipt(seq, r));
}

/**
 * Receipts ready to append (`appendPrepared`): their canonical tails and columns made now, so
 * that the chain's lock is held only for linking and inserting them.
 */
export function prepareReceipts(receipts: ReceiptInput[]): PreparedAppend {
  const iso = (k: 'recordedAt' | 'deleteAfter' | 'deletedAt') => receipts.map((r) => r[k].toISOString());
  const [recordedAt, deleteAfter, deletedAt] = [iso('recordedAt'), iso('deleteAfter'), iso('deletedAt')];
  const col = <K extends keyof ReceiptInput>(k: K) => receipts.map((r) => r[k]);
  const tails = receipts.map((r) => canonicalTail(receiptFields(r)));
  return {
    chain: RECEIPT_CHAIN,
    tails,
    insert: (tx, links) =>
      insertBatch(tx, 'deletion_receipts', [
        { name: 'recording_id', type: 'uuid', values: col('recordingId') },
        { name: 'client_id', type: 'uuid', values: col('clientId') },
        { name: 'recorded_at', type: 'timestamptz', values: recordedAt },
        { name: 'delete_after', type: 'timestamptz', values: deleteAfter },
        { name: 'deleted_at', type: 'timestamptz', values: deletedAt },
        { name: 'audio_sha256', type: 'text', values: col('audioSha256') },
        { name: 'reason', type: 'text', values: col('reason') },
        { name: 'workflow_id', type: 'text', values: col('workflowId') },
        { name: 'run_id', type: 'text', values: col('runId') },
        { name: 'dispute_id', type: 'uuid', values: col('disputeId') },
        ...linkColumns(links),
      ]),
  };
}

const receiptColumns = (sql: Db) => sql`
  seq::int as seq, recording_id as "recordingId", client_id as "clientId", recorded_at as "recordedAt",
  delete_after as "deleteAfter", deleted_at as "deletedAt", audio_sha256 as "audioSha256", reason,
  workflow_id as "workflowId", run_id as "runId", dispute_id as "disputeId", prev_hash as "prevHash", hash`;

export async function receiptFor(sql: Db, recordingId: string): Promise<Receipt | undefined> {
  const [row] = await sql<Receipt[]>`select ${receiptColumns(sql)} from deletion_receipts where recording_id = ${recordingId}`;
  return row;
}

export async function receiptsOfDispute(sql: Db, disputeId: string): Promise<Receipt[]> {
  return sql<Receipt[]>`select ${receiptColumns(sql)} from deletion_receipts where dispute_id = ${disputeId} order by seq`;
}

export interface ChainVerification {
  valid: boolean;
  receipts: number;
  /** The first receipt whose hash does not follow from its content and predecessor. */
  brokenAtSeq?: number;
  headHash: string;
}

/** Recomputes every hash from the start; any edited, removed or reordered receipt is found. */
export async function verifyReceiptChain(sql: Sql): Promise<ChainVerification> {
  const walk = await walkChain(sql<Receipt[]>`select ${receiptColumns(sql)} from deletion_receipts order by seq`, (r) => canonicalReceipt(r.seq, r));
  return { valid: walk.valid, receipts: walk.count, brokenAtSeq: walk.brokenAtSeq, headHash: walk.headHash };
}
