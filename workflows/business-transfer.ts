import { ApplicationFailure, CancellationScope, condition, defineSignal, defineUpdate, executeChild, patched, proxyActivities, setHandler, upsertSearchAttributes } from '@temporalio/workflow';
import type { Activities } from '../activities';
import { TransferStatus } from './search-attributes';
import { transferPackageWorkflowId } from './ids';
import { transferPackage } from './transfer-package';

const activities = proxyActivities<Activities>({
  startToCloseTimeout: '10 minutes',
  heartbeatTimeout: '1 minute',
  retry: { initialInterval: '1 second', maximumInterval: '1 minute' },
});

export type TransferStatusName =
  | 'awaiting_approval'
  | 'lapsed'
  | 'approved'
  | 'notifying'
  | 'awaiting_handover'
  | 'packaging'
  | 'awaiting_acknowledgement'
  | 'acknowledgement_overdue'
  | 'erasing'
  | 'completed'
  | 'cancelled'
  | 'rejected';

/**
 * Runs started before this builds the package in one activity and wait for the acknowledgement
 * without a deadline; from it on, the package is the child workflow `transferPackage`, the
 * acknowledgement has a deadline, and a cancellation or rejection undoes the handover
 * (docs/workflow-changes.md).
 */
export const TRANSFER_PACKAGE_V2 = 'transfer-package-v2';

const ENDABLE: TransferStatusName[] = ['awaiting_approval', 'approved', 'notifying', 'awaiting_handover', 'packaging', 'awaiting_acknowledgement', 'acknowledgement_overdue'];

export interface BusinessTransferInput {
  transferId: string;
  /** Staff token id of the privacy officer who created it: never one of the approvers. */
  createdBy: string;
  handoverAt: string;
  /** Staff are reminded of missing approvals at this instant, and the transfer lapses at the next. */
  approvalReminderAt: string;
  approvalDeadline: string;
  afterHandover: 'keep' | 'erase';
  /** How long the acquirer has to acknowledge once the package is sent (TRANSFER_ACK_TIMEOUT); then staff are told. */
  acknowledgeWithinMs?: number;
  /** Persons per package batch (tests and benchmarks set it; the default suits production). */
  packageBatchSize?: number;
}

export interface TransferProgress {
  status: TransferStatusName;
  approvals: number;
  persons?: number;
  noticesSent?: number;
  files?: number;
  erased?: number;
  /** A cancellation or rejection is being carried out. */
  ending?: 'cancelled' | 'rejected';
  /** Acknowledgements whose hash was not the manifest's. */
  mismatches?: number;
}

export const approveTransferUpdate = defineUpdate<TransferProgress, [{ approverTokenId: string }]>('approve');
export const acknowledgedSignal = defineSignal<[]>('acknowledged');
/** The acquirer posted a hash that is not the manifest's: staff are told. */
export const acknowledgementMismatchSignal = defineSignal<[]>('acknowledgementMismatch');
/** Staff cancel (any time before the acknowledgement) or the acquirer rejects (once it was sent the package). */
export const endTransferUpdate = defineUpdate<TransferProgress, [{ reason: 'cancelled' | 'rejected'; by: string }]>('end');

/**
 * D8 (and D6, D7): a business transfer as a controlled process. Two approvers other than the
 * creator, or it lapses; an inventory that leaves out clients whose contract forbids transfer
 * and persons who restricted processing; a notice to every affected person before the
 * handover; at the handover an encrypted, integrity-checked package for the acquirer and a
 * disclosure per person; the acquirer's acknowledgement of the manifest's hash; then TopCall
 * keeps or erases its copy as decided. Inputs and history carry ids and instants only.
 */
export async function businessTransfer(input: BusinessTransferInput): Promise<TransferProgress> {
  const state: TransferProgress = { status: 'awaiting_approval', approvals: 0 };
  const approvers: string[] = [];
  let acknowledged = false;
  let ended: { reason: 'cancelled' | 'rejected'; by: string } | undefined;
  let mismatches = 0;

  const setStatus = async (status: TransferStatusName) => {
    state.status = status;
    upsertSearchAttributes([{ key: TransferStatus, value: status }]);
    await activities.setTransferStatus({ transferId: input.transferId, status, progress: { ...state } });
  };
  /** Compensation: link revoked, package deleted, the register told what was and was not handed over. */
  const finishEnded = async (): Promise<TransferProgress> => {
    await activities.endTransfer({ transferId: input.transferId, reason: ended!.reason, by: ended!.by });
    delete state.ending;
    await setStatus(ended!.reason);
    return state;
  };

  // No query: setStatus writes the status and progress to Postgres, which the API reads.
  setHandler(acknowledgedSignal, () => {
    acknowledged = true;
  });
  setHandler(acknowledgementMismatchSignal, () => {
    mismatches += 1;
    state.mismatches = mismatches;
  });
  setHandler(
    endTransferUpdate,
    (end) => {
      ended = end;
      state.ending = end.reason;
      return state;
    },
    {
      validator: ({ reason }) => {
        if (ended) throw ApplicationFailure.nonRetryable(`the transfer is already being ${ended.reason}`, 'AlreadyEnding');
        if (acknowledged || !ENDABLE.includes(state.status)) throw ApplicationFailure.nonRetryable(`the transfer is ${acknowledged ? 'acknowledged' : state.status}: it can no longer be ${reason}`, 'NotEndable');
        // The link goes out as the package is sealed, a moment before the status says so: the
        // acquirer (the API checked its token) may reject from then on.
        if (reason === 'rejected' && !['packaging', 'awaiting_acknowledgement', 'acknowledgement_overdue'].includes(state.status)) {
          throw ApplicationFailure.nonRetryable('the acquirer can reject a package only once it was sent', 'NotEndable');
        }
      },
    },
  );
  setHandler(
    approveTransferUpdate,
    async ({ approverTokenId }) => {
      approvers.push(approverTokenId);
      // Roles hold below the API: the activity checks the approver's role in Postgres.
      try {
        await activities.recordTransferApproval({ transferId: input.transferId, approverTokenId });
      } catch (err) {
        approvers.splice(approvers.indexOf(approverTokenId), 1);
        throw err;
      }
      state.approvals = approvers.length;
      return state;
    },
    {
      validator: ({ approverTokenId }) => {
        if (state.status !== 'awaiting_approval' || ended) throw ApplicationFailure.nonRetryable(`the transfer is ${ended ? `being ${ended.reason}` : state.status}, not awaiting approval`, 'NotAwaitingApproval');
        if (approverTokenId === input.createdBy) throw ApplicationFailure.nonRetryable('the creator cannot approve their own transfer', 'FourEyes');
        if (approvers.includes(approverTokenId)) throw ApplicationFailure.nonRetryable('this approver has already approved', 'FourEyes');
      },
    },
  );

  upsertSearchAttributes([{ key: TransferStatus, value: state.status }]);

  // Four eyes, with a reminder and a deadline.
  const approved = () => approvers.length >= 2;
  const approvedOrEnded = () => approved() || ended !== undefined;
  if (!(await condition(approvedOrEnded, Math.max(0, Date.parse(input.approvalReminderAt) - Date.now())))) {
    await activities.sendStaffEmail({
      key: `transfer:${input.transferId}:approval-reminder`,
      subject: `Reminder: business transfer ${input.transferId} needs ${2 - approvers.length} more approval(s)`,
      text: `The business transfer ${input.transferId} lapses at ${input.approvalDeadline} unless two privacy officers or admins other than its creator approve it (POST /v1/transfers/${input.transferId}/approvals).\n`,
    });
    if (!(await condition(approvedOrEnded, Math.max(0, Date.parse(input.approvalDeadline) - Date.now())))) {
      await setStatus('lapsed');
      return state;
    }
  }
  if (ended) return finishEnded();
  await setStatus('approved');

  const inventory = await activities.takeTransferInventory({ transferId: input.transferId });
  state.persons = inventory.persons;
  if (ended) return finishEnded();
  await setStatus('notifying');
  state.noticesSent = (await activities.sendTransferNotices({ transferId: input.transferId })).sent;
  if (ended) return finishEnded();
  await setStatus('awaiting_handover');

  const untilHandover = Date.parse(input.handoverAt) - Date.now();
  if (untilHandover > 0) await condition(() => ended !== undefined, untilHandover);
  if (ended) return finishEnded();

  await setStatus('packaging');
  const v2 = patched(TRANSFER_PACKAGE_V2);
  if (v2) {
    // The package is its own workflow (bounded history, resumable batches); a cancellation stops it between batches.
    const scope = new CancellationScope();
    const building = scope.run(() =>
      executeChild(transferPackage, {
        workflowId: transferPackageWorkflowId(input.transferId),
        args: [{ transferId: input.transferId, ...(input.packageBatchSize ? { batchSize: input.packageBatchSize } : {}) }],
      }),
    );
    const built = await Promise.race([building, condition(() => ended !== undefined).then(() => undefined)]);
    if (!built) {
      scope.cancel();
      await building.catch(() => undefined);
      return finishEnded();
    }
    state.files = built.files;
  } else {
    state.files = (await activities.buildTransferPackage({ transferId: input.transferId })).files;
  }
  await setStatus('awaiting_acknowledgement');

  if (v2) {
    // The acquirer acknowledges with the manifest's hash by a deadline; a wrong hash and a missed deadline go to staff.
    const deadline = Date.now() + (input.acknowledgeWithinMs ?? 14 * 86_400_000);
    let escalated = 0;
    let overdue = false;
    const wake = () => acknowledged || ended !== undefined || mismatches > escalated;
    while (!acknowledged && !ended) {
      const woke = overdue ? await condition(wake) : await condition(wake, Math.max(0, deadline - Date.now()));
      if (!woke) {
        overdue = true;
        await activities.escalateTransfer({ transferId: input.transferId, kind: 'overdue', n: 1 });
        await setStatus('acknowledgement_overdue');
      } else if (mismatches > escalated) {
        escalated = mismatches;
        // Three escalations are enough to act on; a token holder cannot flood staff's inbox.
        if (escalated <= 3) await activities.escalateTransfer({ transferId: input.transferId, kind: 'mismatch', n: escalated });
      }
    }
    if (!acknowledged) return finishEnded();
  } else {
    await condition(() => acknowledged);
  }

  if (input.afterHandover === 'erase') {
    await setStatus('erasing');
    state.erased = (await activities.eraseTransferredCopy({ transferId: input.transferId })).erased;
  }
  await setStatus('completed');
  return state;
}
