import { createHash } from 'node:crypto';
import type { Db, Sql, Tx } from './index';

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

export const GENESIS_HASH = '0'.repeat(64);
/** Appending takes this lock, so the chain is one line even with sweeps and resolutions at once. */
const CHAIN_LOCK = 7_233_004;

/** The hash covers the previous hash and every field, in a fixed order and format. */
export function receiptHash(prevHash: string, seq: number, r: ReceiptInput): string {
  const canonical = JSON.stringify([
    seq,
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
  ]);
  return createHash('sha256').update(prevHash).update('\n').update(canonical).digest('hex');
}

/** Appends receipts to the chain inside the caller's transaction (which also does the deleting). */
export async function appendReceipts(tx: Tx, receipts: ReceiptInput[]): Promise<Receipt[]> {
  if (receipts.length === 0) return [];
  await tx`select pg_advisory_xact_lock(${CHAIN_LOCK})`;
  const [last] = await tx<{ seq: string; hash: string }[]>`select seq, hash from deletion_receipts order by seq desc limit 1`;
  let seq = last ? Number(last.seq) : 0;
  let prevHash = last?.hash ?? GENESIS_HASH;
  const chained = receipts.map((r) => {
    seq += 1;
    const hash = receiptHash(prevHash, seq, r);
    const receipt = { ...r, seq, prevHash, hash };
    prevHash = hash;
    return receipt;
  });
  await tx`insert into deletion_receipts ${tx(
    chained.map((r) => ({
      seq: r.seq,
      recording_id: r.recordingId,
      client_id: r.clientId,
      recorded_at: r.recordedAt,
      delete_after: r.deleteAfter,
      deleted_at: r.deletedAt,
      audio_sha256: r.audioSha256,
      reason: r.reason,
      workflow_id: r.workflowId,
      run_id: r.runId,
      dispute_id: r.disputeId,
      prev_hash: r.prevHash,
      hash: r.hash,
    })),
  )}`;
  return chained;
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
  let prevHash = GENESIS_HASH;
  let expectedSeq = 1;
  let count = 0;
  let brokenAtSeq: number | undefined;
  await sql<Receipt[]>`select ${receiptColumns(sql)} from deletion_receipts order by seq`.cursor(2000, async (rows) => {
    for (const r of rows) {
      count++;
      if (brokenAtSeq !== undefined) continue;
      if (r.seq !== expectedSeq || r.prevHash !== prevHash || receiptHash(prevHash, r.seq, r) !== r.hash) {
        brokenAtSeq = r.seq;
        continue;
      }
      prevHash = r.hash;
      expectedSeq++;
    }
  });
  return { valid: brokenAtSeq === undefined, receipts: count, brokenAtSeq, headHash: prevHash };
}
