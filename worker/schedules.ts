import { ScheduleAlreadyRunning, ScheduleOverlapPolicy, type Client } from '@temporalio/client';
import { DATA_RETENTION_SCHEDULE_ID, RETENTION_SCHEDULE_ID, WORKFLOW_STARTS_SCHEDULE_ID } from '../workflows/ids';
import type { retentionSweep } from '../workflows/retention-sweep';

export interface RetentionScheduleOptions {
  taskQueue: string;
  intervalMs: number;
  batchSize?: number;
}

/**
 * Creates a Schedule that starts `workflowType` every `intervalMs`, or brings an existing one
 * in line with the configuration. Overlapping runs are skipped, never run side by side.
 */
async function ensureIntervalSchedule(
  client: Client,
  s: { scheduleId: string; workflowType: string; workflowId: string; taskQueue: string; intervalMs: number; args: unknown[]; purpose: string },
): Promise<'created' | 'updated'> {
  const action = { type: 'startWorkflow' as const, workflowType: s.workflowType, workflowId: s.workflowId, taskQueue: s.taskQueue, args: s.args };
  const spec = { intervals: [{ every: s.intervalMs }] };
  const policies = { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: Math.max(s.intervalMs, 60_000) };
  try {
    await client.schedule.create({ scheduleId: s.scheduleId, spec, action, policies, memo: { purpose: s.purpose } });
    return 'created';
  } catch (err) {
    if (!(err instanceof ScheduleAlreadyRunning)) throw err;
    await client.schedule.getHandle(s.scheduleId).update((previous) => ({ ...previous, spec, action, policies }));
    return 'updated';
  }
}

/** The Schedule `recording-retention` (D4). */
export function ensureRetentionSchedule(client: Client, options: RetentionScheduleOptions): Promise<'created' | 'updated'> {
  return ensureIntervalSchedule(client, {
    scheduleId: RETENTION_SCHEDULE_ID,
    workflowType: 'retentionSweep',
    workflowId: 'retention-sweep',
    taskQueue: options.taskQueue,
    intervalMs: options.intervalMs,
    args: [{ batchSize: options.batchSize ?? 500 }] satisfies Parameters<typeof retentionSweep>,
    purpose: 'D4: delete call recordings past their deadline unless a dispute holds them',
  });
}

/** The Schedule `data-retention` (D15): the periods of everything but recordings. */
export function ensureDataRetentionSchedule(client: Client, options: { taskQueue: string; intervalMs: number }): Promise<'created' | 'updated'> {
  return ensureIntervalSchedule(client, {
    scheduleId: DATA_RETENTION_SCHEDULE_ID,
    workflowType: 'dataRetentionSweep',
    workflowId: 'data-retention-sweep',
    taskQueue: options.taskQueue,
    intervalMs: options.intervalMs,
    args: [],
    purpose: 'D15: remove personal data past its retention period (exports, emails, failed logins, request details, call messages)',
  });
}

/** The Schedule `workflow-starts` (issue 13): starts any workflow whose start was recorded but never made. */
export function ensureWorkflowStartsSchedule(client: Client, options: { taskQueue: string; intervalMs: number }): Promise<'created' | 'updated'> {
  return ensureIntervalSchedule(client, {
    scheduleId: WORKFLOW_STARTS_SCHEDULE_ID,
    workflowType: 'reconcileWorkflowStarts',
    workflowId: 'workflow-starts-reconcile',
    taskQueue: options.taskQueue,
    intervalMs: options.intervalMs,
    // A start younger than one interval is still the API's to make.
    args: [{ olderThanMs: options.intervalMs }],
    purpose: 'Issue 13: start workflows whose rows were committed but whose start a crash or an outage prevented',
  });
}
