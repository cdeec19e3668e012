import type { Db, Tx } from './index';

export interface RecordingRow {
  id: string;
  clientId: string;
  customerId: string | null;
  recordedAt: Date;
  durationSeconds: number;
  deleteAfter: Date;
  audioKey: string;
  audioSha256: string;
  audioBytes: number;
  contentType: string;
  status: 'retained' | 'deleted';
  deletedAt: Date | null;
  holds: string[];
}

export type RecordingStatus = 'retained' | 'held' | 'deleted';
export const statusOf = (r: Pick<RecordingRow, 'status' | 'holds'>): RecordingStatus =>
  r.status === 'deleted' ? 'deleted' : r.holds.length > 0 ? 'held' : 'retained';

const columns = (sql: Db) => sql`
  r.id, r.client_id as "clientId", r.customer_id as "customerId", r.recorded_at as "recordedAt",
  r.duration_seconds as "durationSeconds", r.delete_after as "deleteAfter", r.audio_key as "audioKey",
  r.audio_sha256 as "audioSha256", r.audio_bytes::int as "audioBytes", r.content_type as "contentType",
  r.status, r.deleted_at as "deletedAt",
  coalesce((select array_agg(h.dispute_id::text order by h.placed_at) from recording_holds h
            where h.recording_id = r.id and h.released_at is null), '{}') as holds`;

/** What ingest stores: a row's own fields, before any hold or deletion, plus the caller's number. */
export type NewRecording = Omit<RecordingRow, 'customerId' | 'status' | 'deletedAt' | 'holds'> & {
  customerId?: string;
  callerNumber?: string;
};

/**
 * Stores a recording and returns its deadline. A call from a number on the do-not-keep list
 * (an upheld objection, Art. 21) or of a person who objected is due at once: the next sweep
 * deletes it (D10).
 */
export async function insertRecording(sql: Db, r: NewRecording): Promise<Date> {
  const [row] = await sql<{ deleteAfter: Date }[]>`
    insert into recordings (id, client_id, customer_id, caller_number, recorded_at, duration_seconds, delete_after,
                            audio_key, audio_sha256, audio_bytes, content_type)
    values (${r.id}, ${r.clientId}, ${r.customerId ?? null}, ${r.callerNumber ?? null}, ${r.recordedAt}, ${r.durationSeconds},
            case when exists (select 1 from do_not_keep_numbers n where n.phone_hash = phone_hash(${r.callerNumber ?? null}::text))
                   or exists (select 1 from customers c where c.id = ${r.customerId ?? null}::uuid and c.objected_to_processing)
                 then least(${r.deleteAfter}::timestamptz, now()) else ${r.deleteAfter}::timestamptz end,
            ${r.audioKey}, ${r.audioSha256}, ${r.audioBytes}, ${r.contentType})
    returning delete_after as "deleteAfter"`;
  return row!.deleteAfter;
}

export async function findRecording(sql: Db, id: string): Promise<RecordingRow | undefined> {
  const [row] = await sql<RecordingRow[]>`select ${columns(sql)} from recordings r where r.id = ${id}`;
  return row;
}

export interface RecordingFilter {
  clientId?: string;
  status?: RecordingStatus;
  limit: number;
  /** Keyset cursor: the last (recordedAt, id) of the previous page. */
  after?: { recordedAt: Date; id: string };
}

export async function listRecordings(sql: Db, f: RecordingFilter): Promise<RecordingRow[]> {
  const activeHold = sql`exists (select 1 from recording_holds h where h.recording_id = r.id and h.released_at is null)`;
  const byStatus =
    f.status === 'deleted'
      ? sql`and r.status = 'deleted'`
      : f.status === 'held'
        ? sql`and r.status = 'retained' and ${activeHold}`
        : f.status === 'retained'
          ? sql`and r.status = 'retained' and not ${activeHold}`
          : sql``;
  return sql<RecordingRow[]>`
    select ${columns(sql)} from recordings r
    where true
      ${f.clientId ? sql`and r.client_id = ${f.clientId}` : sql``}
      ${byStatus}
      ${f.after ? sql`and (r.recorded_at, r.id) < (${f.after.recordedAt}, ${f.after.id})` : sql``}
    order by r.recorded_at desc, r.id desc
    limit ${f.limit}`;
}

export interface DeletableRow {
  id: string;
  clientId: string;
  recordedAt: Date;
  deleteAfter: Date;
  audioKey: string;
  audioSha256: string;
}

const deletableColumns = (tx: Db) => tx`
  r.id, r.client_id as "clientId", r.recorded_at as "recordedAt", r.delete_after as "deleteAfter",
  r.audio_key as "audioKey", r.audio_sha256 as "audioSha256"`;

const noActiveHold = (tx: Db) =>
  tx`not exists (select 1 from recording_holds h where h.recording_id = r.id and h.released_at is null)`;

/**
 * Locks up to `limit` recordings that are past `dueBefore` and not held. Rows that a hold is
 * being placed on right now are skipped (they come back next sweep if the hold fails).
 */
export async function lockDueRecordings(tx: Tx, dueBefore: Date, limit: number): Promise<string[]> {
  const rows = await tx<{ id: string }[]>`
    select r.id from recordings r
    where r.status = 'retained' and r.delete_after <= ${dueBefore} and ${noActiveHold(tx)}
    order by r.delete_after, r.id
    limit ${limit}
    for update of r skip locked`;
  return rows.map((r) => r.id);
}

/**
 * Of recordings this transaction has locked, those still due and unheld become tombstones — no
 * audio key in use, no link to a person; the receipt says the rest — and are returned (in
 * deadline order) for the caller to unlink and receipt before it commits. A fresh statement
 * after the lock sees every hold committed before it; a hold still being placed cannot exist,
 * because placing one needs the row lock we hold. Re-check and tombstone are one statement.
 */
export type TombstonedRow = DeletableRow & { deletedAt: Date };

export async function tombstoneDeletable(tx: Tx, lockedIds: string[], dueBefore: Date, deletedAt = new Date()): Promise<TombstonedRow[]> {
  if (lockedIds.length === 0) return [];
  const rows = await tx<DeletableRow[]>`
    update recordings r set status = 'deleted', deleted_at = ${deletedAt}, caller_number = null, customer_id = null
    where r.id = any(${lockedIds}::uuid[]) and r.status = 'retained' and r.delete_after <= ${dueBefore} and ${noActiveHold(tx)}
    returning ${deletableColumns(tx)}`;
  return rows
    .map((r) => ({ ...r, deletedAt }))
    .sort((a, b) => a.deleteAfter.getTime() - b.deleteAfter.getTime() || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

/**
 * Art. 18: whether the person on a recording has restricted processing — by their account, or
 * by the caller number on the restriction list (a keyed hash, compared in SQL).
 */
export async function recordingRestricted(db: Db, id: string): Promise<boolean> {
  const [row] = await db<{ restricted: boolean }[]>`
    select coalesce(c.processing_restricted, false)
           or (r.caller_number is not null and exists (select 1 from restricted_numbers n where n.phone_hash = phone_hash(r.caller_number))) as restricted
    from recordings r left join customers c on c.id = r.customer_id where r.id = ${id}`;
  return row?.restricted ?? false;
}
