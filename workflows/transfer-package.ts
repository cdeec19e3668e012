import { continueAsNew, defineQuery, proxyActivities, setHandler, workflowInfo } from '@temporalio/workflow';
import type { Activities } from '../activities';

export interface TransferPackageInput {
  transferId: string;
  /** Persons per batch (each batch: one JSON Lines part per category, plus their audio). */
  batchSize?: number;
  /** Batches per run before continuing as new, so the history stays bounded for any package size. */
  batchesPerRun?: number;
  /** How long one activity goes on with further batches (each committed on its own) before reporting back: fewer round trips. */
  activityMs?: number;
  heartbeatTimeoutMs?: number;
}

export interface TransferPackageProgress {
  persons: number;
  recordings: number;
  files: number;
  bytes: number;
  done: boolean;
}

export const transferPackageProgressQuery = defineQuery<TransferPackageProgress>('transferPackageProgress');

/**
 * The business transfer's package (D8), as a child of `businessTransfer` (`transfer-package:{id}`):
 * begin the tar, append batch after batch — each a heartbeated activity that resumes from the
 * last committed offset after a crash — and seal it with the signed manifest. Inputs and
 * history carry ids and counts only.
 */
export async function transferPackage(input: TransferPackageInput): Promise<{ files: number; manifestSha256: string }> {
  const { beginTransferPackage, packageTransferBatch, sealTransferPackage } = proxyActivities<Activities>({
    startToCloseTimeout: '30 minutes',
    heartbeatTimeout: input.heartbeatTimeoutMs ?? 60_000,
    retry: { initialInterval: '1 second', maximumInterval: '1 minute' },
  });
  let progress: TransferPackageProgress = await beginTransferPackage({ transferId: input.transferId });
  setHandler(transferPackageProgressQuery, () => progress);
  let batches = 0;
  while (!progress.done) {
    if (batches >= (input.batchesPerRun ?? 100) || workflowInfo().continueAsNewSuggested) {
      await continueAsNew<typeof transferPackage>(input);
    }
    progress = await packageTransferBatch({ transferId: input.transferId, batchSize: input.batchSize ?? 1000, maxMs: input.activityMs ?? 10_000 });
    batches += 1;
  }
  return sealTransferPackage({ transferId: input.transferId });
}
