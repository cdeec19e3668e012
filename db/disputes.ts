import type { Db, Tx } from './index';

export interface DisputeRow {
  id: string;
  clientId: string;
  status: 'open' | 'resolved';
  openedAt: Date;
  resolvedAt: Date | null;
  recordingIds: string[];
}

export async function insertDispute(sql: Db, d: { id: string; clientId: string; reason: string }): Promise<void> {
  await sql`insert into disputes (id, client_id, reason) values (${d.id}, ${d.clientId}, ${d.reason})`;
}

export async function deleteDisputeWithoutHolds(sql: Db, id: string): Promise<void> {
  await sql`delete from disputes d where d.id = ${id} and not exists (select 1 from recording_holds h where h.dispute_id = d.id)`;
}

export async function findDispute(sql: Db, id: string): Promise<DisputeRow | undefined> {
  const [row] = await sql<DisputeRow[]>`
    select d.id, d.client_id as "clientId", d.status, d.opened_at as "openedAt", d.resolved_at as "resolvedAt",
           coalesce((select array_agg(h.recording_id::text order by h.placed_at, h.recording_id)
                     from recording_holds h where h.dispute_id = d.id), '{}') as "recordingIds"
    from disputes d where d.id = ${id}`;
  return row;
}

export async function setResolutionText(sql: Db, id: string, resolution: string): Promise<void> {
  await sql`update disputes set resolution = ${resolution} where id = ${id}`;
}

export async function lockDispute(tx: Tx, id: string): Promise<{ clientId: string; status: string } | undefined> {
  const [row] = await tx<{ clientId: string; status: string }[]>`
    select client_id as "clientId", status from disputes where id = ${id} for update`;
  return row;
}
