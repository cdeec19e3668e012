import { proxyActivities } from '@temporalio/workflow';
import type { Activities } from '../activities';

const { startPendingWorkflows } = proxyActivities<Activities>({
  startToCloseTimeout: '5 minutes',
  retry: { initialInterval: '1 second', maximumInterval: '1 minute' },
});

/**
 * Started by the Schedule `workflow-starts` (issue 13): a row the API committed with its
 * workflow start recorded (lib/workflow-starts.ts) but whose start never happened — the API
 * died in between, or Temporal was unreachable — gets its workflow here, within one interval.
 */
export async function reconcileWorkflowStarts(input: { olderThanMs: number }): Promise<{ started: number; existed: number }> {
  return startPendingWorkflows(input);
}
