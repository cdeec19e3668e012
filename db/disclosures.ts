import type { Db, Tx } from './index';

export const RECIPIENT_TYPES = ['affiliate', 'processor', 'referral_partner', 'acquirer', 'authority', 'network_advertiser'] as const;
export type RecipientType = (typeof RECIPIENT_TYPES)[number];

export interface RecipientRow {
  id: string;
  type: RecipientType;
  name: string;
  email: string;
  address: string | null;
  legalBasis: string;
  createdAt: Date;
}

const columns = (db: Db) => db`id, type, name, email, address, legal_basis as "legalBasis", created_at as "createdAt"`;

export async function insertRecipient(db: Db, r: Omit<RecipientRow, 'id' | 'createdAt'>): Promise<RecipientRow> {
  const [row] = await db<RecipientRow[]>`
    insert into recipients (type, name, email, address, legal_basis) values (${r.type}, ${r.name}, ${r.email}, ${r.address}, ${r.legalBasis})
    returning ${columns(db)}`;
  return row!;
}

export async function listRecipients(db: Db): Promise<RecipientRow[]> {
  return db<RecipientRow[]>`select ${columns(db)} from recipients order by name, id`;
}

export async function findRecipient(db: Db, id: string): Promise<RecipientRow | undefined> {
  const [row] = await db<RecipientRow[]>`select ${columns(db)} from recipients where id = ${id}`;
  return row;
}

/**
 * Records one disclosure: the recipient, what and why, and whose data (account ids, caller
 * numbers as keyed hashes). Runs in the caller's transaction, so a disclosure is recorded
 * together with whatever made it (a transfer's package, a staff entry).
 */
export async function recordDisclosure(
  tx: Tx,
  d: { recipient: RecipientRow; category: string; legalBasis: string; customerIds: string[]; callerNumbers: string[]; disclosedAt: Date; recordedBy: string | null },
): Promise<string> {
  const [row] = await tx<{ id: string }[]>`
    insert into disclosures (recipient, recipient_id, category, legal_basis, disclosed_at, recorded_by)
    values (${d.recipient.name}, ${d.recipient.id}, ${d.category}, ${d.legalBasis}, ${d.disclosedAt}, ${d.recordedBy}) returning id`;
  if (d.customerIds.length) {
    await tx`insert into disclosure_subjects (disclosure_id, customer_id) select ${row!.id}, c from unnest(${d.customerIds}::uuid[]) c on conflict do nothing`;
  }
  if (d.callerNumbers.length) {
    await tx`insert into disclosure_callers (disclosure_id, phone_hash) select ${row!.id}, phone_hash(p) from unnest(${d.callerNumbers}::text[]) p on conflict do nothing`;
  }
  return row!.id;
}

export interface PersonRecipient {
  recipientId: string;
  name: string;
  type: string;
  email: string;
  address: string | null;
  disclosureId: string;
  category: string;
  legalBasis: string;
  disclosedAt: Date;
}

/** D7: everyone who received this person's data (a withdrawn disclosure never happened: a package deleted unread), by account or by any of their numbers. */
export async function recipientsOfPerson(db: Db, s: { customerId: string | null; phones: string[] }): Promise<PersonRecipient[]> {
  return db<PersonRecipient[]>`
    select r.id as "recipientId", coalesce(r.name, d.recipient) as name, coalesce(r.type, 'unknown') as type, coalesce(r.email, '') as email, r.address,
           d.id as "disclosureId", d.category, d.legal_basis as "legalBasis", d.disclosed_at as "disclosedAt"
    from disclosures d left join recipients r on r.id = d.recipient_id
    where d.withdrawn_at is null
      and (d.id in (select disclosure_id from disclosed_persons where customer_id = ${s.customerId}::uuid)
        or d.id in (select disclosure_id from disclosure_callers where phone_hash in (select phone_hash(p) from unnest(${s.phones}::text[]) p)))
    order by d.disclosed_at, d.id`;
}
