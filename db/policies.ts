import { readFile } from 'node:fs/promises';
import type { Db } from './index';

export interface PolicyRow {
  version: string;
  effectiveAt: Date;
  material: boolean;
  summary: string;
  body: string;
  status: 'scheduled' | 'current' | 'superseded';
  becameCurrentAt: Date | null;
}

const columns = (sql: Db) =>
  sql`version, effective_at as "effectiveAt", material, summary, body, status, became_current_at as "becameCurrentAt"`;

export const FIRST_VERSION = '2020-06-19';

/** The policy in force from the start: the seed's Danish original, effective 19 June 2020. */
export async function ensureFirstPolicy(sql: Db): Promise<void> {
  const body = await readFile(new URL('./seed/privatlivspolitik-2020-06-19.txt', import.meta.url), 'utf8');
  await sql`
    insert into policy_versions (version, effective_at, material, summary, body, status, became_current_at)
    values (${FIRST_VERSION}, '2020-06-19T00:00:00+02:00', false, 'TopCalls privatlivspolitik (første udgave).', ${body}, 'current', '2020-06-19T00:00:00+02:00')
    on conflict (version) do nothing`;
}

export async function insertPolicy(sql: Db, p: { version: string; effectiveAt: Date; material: boolean; summary: string; body: string }): Promise<boolean> {
  const rows = await sql`
    insert into policy_versions (version, effective_at, material, summary, body)
    values (${p.version}, ${p.effectiveAt}, ${p.material}, ${p.summary}, ${p.body})
    on conflict (version) do nothing returning version`;
  return rows.length > 0;
}

export async function findPolicy(sql: Db, version: string): Promise<PolicyRow | undefined> {
  const [row] = await sql<PolicyRow[]>`select ${columns(sql)} from policy_versions where version = ${version}`;
  return row;
}

export async function currentPolicy(sql: Db): Promise<PolicyRow | undefined> {
  const [row] = await sql<PolicyRow[]>`select ${columns(sql)} from policy_versions where status = 'current' order by effective_at desc limit 1`;
  return row;
}

/** Announced versions not yet in force, soonest first (D12: shown on the website before they apply). */
export async function upcomingPolicies(sql: Db): Promise<PolicyRow[]> {
  return sql<PolicyRow[]>`select ${columns(sql)} from policy_versions where status = 'scheduled' order by effective_at`;
}

export const noticeCampaign = (version: string) => `policy:${version}`;

/** A campaign's outbox rows by status, as columns of a select over `email_outbox`. */
const countColumns = (sql: Db) => sql`
  count(*)::int as rows,
  count(*) filter (where status = 'sent')::int as sent,
  count(*) filter (where status = 'failed')::int as failed,
  count(*) filter (where status = 'pending')::int as pending`;

export interface NoticeCounts {
  rows: number;
  sent: number;
  failed: number;
  pending: number;
}

/** The campaign's outbox rows by status (what a slice reports to the workflow). */
export async function noticeCounts(sql: Db, version: string): Promise<NoticeCounts> {
  const [row] = await sql<NoticeCounts[]>`
    select ${countColumns(sql)} from email_outbox where campaign = ${noticeCampaign(version)}`;
  return row!;
}

/** total = everyone with a notice row plus every active person still without one (one snapshot). */
export async function noticeProgress(sql: Db, version: string): Promise<{ total: number; sent: number; failed: number; pending: number }> {
  const campaign = noticeCampaign(version);
  const [row] = await sql<(NoticeCounts & { waiting: number })[]>`
    select
      ${countColumns(sql)},
      (select count(*)::int from customers c where c.status = 'active' and c.email is not null
         and not exists (select 1 from email_outbox o where o.key = ${campaign} || ':' || c.id)) as waiting
    from email_outbox where campaign = ${campaign}`;
  return { total: row!.rows + row!.waiting, sent: row!.sent, failed: row!.failed, pending: row!.pending + row!.waiting };
}

export async function failedNotices(sql: Db, version: string): Promise<{ customerId: string; error: string | null; attempts: number }[]> {
  return sql`
    select split_part(key, ':', 3) as "customerId", last_error as error, attempts from email_outbox
    where campaign = ${noticeCampaign(version)} and status = 'failed' order by key`;
}
