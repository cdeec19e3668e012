import { ScheduleAlreadyRunning, ScheduleOverlapPolicy, type Client } from '@temporalio/client';
import { RETENTION_SCHEDULE_ID } from '../workflows/ids';
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
