import { ScheduleAlreadyRunning, ScheduleOverlapPolicy, type Client } from '@temporalio/client';
import { DATA_RETENTION_SCHEDULE_ID, RETENTION_SCHEDULE_ID } from '../workflows/ids';
import type { retentionSweep } from '../workflows/retention-sweep';

export interface RetentionScheduleOptions {
  taskQueue: string;
  intervalMs: number;
  batchSize?: number;
}

/**
 * Creates the Schedule `recording-retention`, or brings an existing one in line with the
 * configuration. Overlapping sweeps are skipped, never run side by side.
 */
export async function ensureRetentionSchedule(client: Client, options: RetentionScheduleOptions): Promise<'created' | 'updated'> {
  const action = {
    type: 'startWorkflow' as const,
    workflowType: 'retentionSweep',
    workflowId: 'retention-sweep',
    taskQueue: options.taskQueue,
    args: [{ batchSize: options.batchSize ?? 500 }] as Parameters<typeof retentionSweep>,
  };
  const spec = { intervals: [{ every: options.intervalMs }] };
  const policies = { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: Math.max(options.intervalMs, 60_000) };
  try {
    await client.schedule.create({
      scheduleId: RETENTION_SCHEDULE_ID,
      spec,
      action,
      policies,
      memo: { purpose: 'D4: delete call recordings past their deadline unless a dispute holds them' },
    });
    return 'created';
  } catch (err) {
    if (!(err instanceof ScheduleAlreadyRunning)) throw err;
    await client.schedule.getHandle(RETENTION_SCHEDULE_ID).update((previous) => ({ ...previous, spec, action, policies }));
    return 'updated';
  }
}

/**
 * Creates the Schedule `data-retention` (D15) or brings it in line with the configuration: the
 * periods of everything but recordings, swept every DATA_RETENTION_SWEEP_INTERVAL.
 */
export async function ensureDataRetentionSchedule(client: Client, options: { taskQueue: string; intervalMs: number }): Promise<'created' | 'updated'> {
  const action = { type: 'startWorkflow' as const, workflowType: 'dataRetentionSweep', workflowId: 'data-retention-sweep', taskQueue: options.taskQueue, args: [] };
  const spec = { intervals: [{ every: options.intervalMs }] };
  const policies = { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: Math.max(options.intervalMs, 60_000) };
  try {
    await client.schedule.create({
      scheduleId: DATA_RETENTION_SCHEDULE_ID,
      spec,
      action,
      policies,
      memo: { purpose: 'D15: remove personal data past its retention period (exports, emails, failed logins, request details, call messages)' },
    });
    return 'created';
  } catch (err) {
    if (!(err instanceof ScheduleAlreadyRunning)) throw err;
    await client.schedule.getHandle(DATA_RETENTION_SCHEDULE_ID).update((previous) => ({ ...previous, spec, action, policies }));
    return 'updated';
  }
}
