import { proxyActivities } from '@temporalio/workflow';
import type { Activities } from '../activities';

const { sweepPersonalData } = proxyActivities<Activities>({
  startToCloseTimeout: '10 minutes',
  retry: { initialInterval: '1 second', maximumInterval: '1 minute', backoffCoefficient: 2 },
});

/**
 * D15: started by the Schedule `data-retention`. Every place of the personal-data map that has
 * a period (export packages, outbox bodies, failed logins, request details, call messages, used
 * link tokens) removes what is past it; the counts are kept per run and shown at
 * `GET /v1/retention/data`. Recordings have their own Schedule (`recording-retention`, D4).
 */
export async function dataRetentionSweep(): Promise<Record<string, number>> {
  return sweepPersonalData({});
}
