import { continueAsNew, defineQuery, proxyActivities, setHandler, workflowInfo } from '@temporalio/workflow';
import type { Activities } from '../activities';

const sweepActivities = (heartbeatTimeoutMs: number) =>
  proxyActivities<Activities>({
    startToCloseTimeout: '10 minutes',
    // A worker killed mid-batch is noticed within this, and the retry resumes where it stopped.
    heartbeatTimeout: heartbeatTimeoutMs,
    retry: { initialInterval: '1 second', maximumInterval: '1 minute', backoffCoefficient: 2 },
  });

export interface RetentionSweepInput {
  batchSize?: number;
  /** How long one activity call deletes before reporting progress back (default 5 s). */
  chunkMs?: number;
  /** How long a silent sweep activity may go before it is retried elsewhere (default 30 s). */
  heartbeatTimeoutMs?: number;
  /** Deletes what is due before this instant; set on the first run, kept across continue-as-new. */
  dueBefore?: string;
  carried?: { deleted: number; batches: number };
}

export interface RetentionSweepProgress {
  dueBefore: string;
  deleted: number;
  batches: number;
  done: boolean;
}

export const sweepProgressQuery = defineQuery<RetentionSweepProgress>('sweepProgress');

/**
 * D4: deletes every call recording past its deadline that no dispute holds, writing a receipt
 * for each. Started by the Schedule `recording-retention`; cost grows with what is due only.
 */
export async function retentionSweep(input: RetentionSweepInput = {}): Promise<RetentionSweepProgress> {
  const progress: RetentionSweepProgress = {
    dueBefore: input.dueBefore ?? new Date().toISOString(), // workflow time: the scheduled start
    deleted: input.carried?.deleted ?? 0,
    batches: input.carried?.batches ?? 0,
    done: false,
  };
  setHandler(sweepProgressQuery, () => progress);
  const { sweepExpiredRecordings } = sweepActivities(input.heartbeatTimeoutMs ?? 30_000);
  let countedThisRun = 0;

  while (!progress.done) {
    const chunk = await sweepExpiredRecordings({
      dueBefore: progress.dueBefore,
      batchSize: input.batchSize ?? 500,
      timeBudgetMs: input.chunkMs ?? 5_000,
      countedThisRun,
    });
    countedThisRun += chunk.deleted;
    progress.deleted += chunk.deleted;
    progress.batches += chunk.batches;
    progress.done = chunk.done;
    if (!progress.done && workflowInfo().continueAsNewSuggested) {
      await continueAsNew<typeof retentionSweep>({ ...input, dueBefore: progress.dueBefore, carried: { deleted: progress.deleted, batches: progress.batches } });
    }
  }
  return progress;
}
