import type { Db, Sql } from './index';

/** The Copenhagen calendar day of an instant, as Postgres computes it (stats are per local day). */
const localDay = (db: Db, at: Date) => db`(${at}::timestamptz at time zone 'Europe/Copenhagen')::date`;

/** D3: counts per client and day; no personal data, so they outlive every erasure. */
export async function countCall(db: Db, clientId: string, at: Date): Promise<void> {
  await db`insert into call_stats (client_id, day, calls) values (${clientId}, ${localDay(db, at)}, 1)
           on conflict (client_id, day) do update set calls = call_stats.calls + 1`;
}

export interface NewCallMessage {
  clientId: string;
  customerId: string | null;
  callerName: string | null;
  callerNumber: string | null;
  body: string;
  sentAt: Date;
}

/** What a retry is recognised by: hashes of the Idempotency-Key and of the (normalised) request. */
export interface IdempotencyHashes {
  keyHash: Buffer;
  requestSha256: Buffer;
}

export type InsertedCallMessage =
  | { outcome: 'created'; id: string }
  | { outcome: 'replayed'; id: string }
  | { outcome: 'key-reused'; id: string };

/**
 * Stores a message and counts it for its client and Copenhagen day, in one transaction. With an
 * idempotency key already used, nothing is stored or counted: the same request gets the first
 * message's id back, another request learns the key is taken. A concurrent first use of the
 * same key makes the insert wait for it, so two retries in flight still store one message.
 */
export async function insertCallMessage(sql: Sql, m: NewCallMessage, idempotency?: IdempotencyHashes): Promise<InsertedCallMessage> {
  return sql.begin(async (tx) => {
    const [row] = await tx<{ id: string }[]>`
      insert into call_messages (client_id, customer_id, caller_name, caller_number, body, sent_at, idempotency_key_hash, request_sha256)
      values (${m.clientId}, ${m.customerId}, ${m.callerName}, ${m.callerNumber}, ${m.body}, ${m.sentAt},
              ${idempotency?.keyHash ?? null}, ${idempotency?.requestSha256 ?? null})
      on conflict (idempotency_key_hash) where idempotency_key_hash is not null do nothing
      returning id`;
    if (!row) {
      const [first] = await tx<{ id: string; requestSha256: Buffer }[]>`
        select id, request_sha256 as "requestSha256" from call_messages where idempotency_key_hash = ${idempotency!.keyHash}`;
      return { outcome: first!.requestSha256.equals(idempotency!.requestSha256) ? 'replayed' : 'key-reused', id: first!.id };
    }
    await tx`insert into call_stats (client_id, day, messages) values (${m.clientId}, ${localDay(tx, m.sentAt)}, 1)
             on conflict (client_id, day) do update set messages = call_stats.messages + 1`;
    return { outcome: 'created', id: row.id };
  });
}

/** The message an idempotency key already stored, if any, with the hash of its request. */
export async function findByIdempotencyKey(sql: Sql, keyHash: Buffer): Promise<{ id: string; requestSha256: Buffer } | undefined> {
  const [row] = await sql<{ id: string; requestSha256: Buffer }[]>`
    select id, request_sha256 as "requestSha256" from call_messages where idempotency_key_hash = ${keyHash}`;
  return row;
}

export interface CallMessageRow {
  id: string;
  customerId: string | null;
  callerName: string | null;
  callerNumber: string | null;
  body: string;
  sentAt: Date;
}

/**
 * A client's messages, newest first. `forClientUser` hides those of restricted persons (Art.
 * 18: not shown to clients) — by account, or a caller number on the restriction list.
 */
export async function listCallMessages(
  sql: Sql,
  f: { clientId: string; from?: Date; to?: Date; before?: { sentAt: Date; id: string }; limit: number; forClientUser: boolean },
): Promise<CallMessageRow[]> {
  return sql<CallMessageRow[]>`
    select m.id, m.customer_id as "customerId", m.caller_name as "callerName", m.caller_number as "callerNumber", m.body, m.sent_at as "sentAt"
    from call_messages m left join customers c on c.id = m.customer_id
    where m.client_id = ${f.clientId}
      ${f.from ? sql`and m.sent_at >= ${f.from}` : sql``}
      ${f.to ? sql`and m.sent_at < ${f.to}` : sql``}
      ${f.before ? sql`and (m.sent_at, m.id) < (${f.before.sentAt}, ${f.before.id}::uuid)` : sql``}
      ${
        f.forClientUser
          ? sql`and not coalesce(c.processing_restricted, false)
                and (m.caller_number is null or not exists (select 1 from restricted_numbers n where n.phone_hash = phone_hash(m.caller_number)))`
          : sql``
      }
    order by m.sent_at desc, m.id desc
    limit ${f.limit}`;
}

export async function callStats(sql: Sql, f: { clientId: string; from: string; to: string }): Promise<{ day: string; calls: number; messages: number }[]> {
  return sql<{ day: string; calls: number; messages: number }[]>`
    select to_char(day, 'YYYY-MM-DD') as day, calls, messages from call_stats
    where client_id = ${f.clientId} and day >= ${f.from}::date and day <= ${f.to}::date order by day`;
}
