import type { Db } from './index';

export async function recordSystemCheck(sql: Db, input: { id: string; workflowId: string }): Promise<Date> {
  const [row] = await sql<{ completedAt: Date }[]>`
    insert into system_checks (id, workflow_id) values (${input.id}, ${input.workflowId})
    on conflict (id) do update set workflow_id = excluded.workflow_id
    returning completed_at as "completedAt"`;
  return row!.completedAt;
}
