import type { Db } from './index';

export const CLIENT_RESTRICTIONS = ['no_marketing', 'no_third_party_transfer', 'service_delivery_only'] as const;
export type ClientRestriction = (typeof CLIENT_RESTRICTIONS)[number];

export interface ClientRow {
  id: string;
  name: string;
  restrictions: ClientRestriction[];
  createdAt: Date;
}

export async function insertClient(sql: Db, input: { name: string; restrictions: ClientRestriction[] }): Promise<ClientRow> {
  const [row] = await sql<ClientRow[]>`
    insert into clients (name, restrictions) values (${input.name}, ${input.restrictions})
    returning id, name, restrictions, created_at as "createdAt"`;
  return row!;
}

export async function findClient(sql: Db, id: string): Promise<ClientRow | undefined> {
  const [row] = await sql<ClientRow[]>`select id, name, restrictions, created_at as "createdAt" from clients where id = ${id}`;
  return row;
}
