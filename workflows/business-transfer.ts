import { ApplicationFailure, condition, defineQuery, defineSignal, defineUpdate, proxyActivities, setHandler, sleep, upsertSearchAttributes } from '@temporalio/workflow';
import type { Activities } from '../activities';
import { TransferStatus } from './search-attributes';

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
  | 'erasing'
  | 'completed';

export interface BusinessTransferInput {
  transferId: string;
  /** Staff token id of the privacy officer who created it: never one of the approvers. */
  createdBy: string;
  handoverAt: string;
  /** Staff are reminded of missing approvals at this instant, and the transfer lapses at the next. */
  approvalReminderAt: string;
  approvalDeadline: string;
  afterHandover: 'keep' | 'erase';
}

export interface TransferProgress {
  status: TransferStatusName;
  approvals: number;
  persons?: number;
  noticesSent?: number;
  files?: number;
  erased?: number;
}

export const approveTransferUpdate = defineUpdate<TransferProgress, [{ approverTokenId: string }]>('approve');
export const acknowledgedSignal = defineSignal<[]>('acknowledged');
export const transferProgressQuery = defineQuery<TransferProgress>('transferProgress');

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

  const setStatus = async (status: TransferStatusName) => {
    state.status = status;
    upsertSearchAttributes([{ key: TransferStatus, value: status }]);
    await activities.setTransferStatus({ transferId: input.transferId, status, progress: { ...state } });
  };

  setHandler(transferProgressQuery, () => state);
  setHandler(acknowledgedSignal, () => {
    acknowledged = true;
  });
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
        if (state.status !== 'awaiting_approval') throw ApplicationFailure.nonRetryable(`the transfer is ${state.status}, not awaiting approval`, 'NotAwaitingApproval');
        if (approverTokenId === input.createdBy) throw ApplicationFailure.nonRetryable('the creator cannot approve their own transfer', 'FourEyes');
        if (approvers.includes(approverTokenId)) throw ApplicationFailure.nonRetryable('this approver has already approved', 'FourEyes');
      },
    },
  );

  upsertSearchAttributes([{ key: TransferStatus, value: state.status }]);

  // Four eyes, with a reminder and a deadline.
  const approved = () => approvers.length >= 2;
  if (!(await condition(approved, Math.max(0, Date.parse(input.approvalReminderAt) - Date.now())))) {
    await activities.sendStaffEmail({
      key: `transfer:${input.transferId}:approval-reminder`,
      subject: `Reminder: business transfer ${input.transferId} needs ${2 - approvers.length} more approval(s)`,
      text: `The business transfer ${input.transferId} lapses at ${input.approvalDeadline} unless two privacy officers or admins other than its creator approve it (POST /v1/transfers/${input.transferId}/approvals).\n`,
    });
    if (!(await condition(approved, Math.max(0, Date.parse(input.approvalDeadline) - Date.now())))) {
      await setStatus('lapsed');
      return state;
    }
  }
  await setStatus('approved');

  const inventory = await activities.takeTransferInventory({ transferId: input.transferId });
  state.persons = inventory.persons;
  await setStatus('notifying');
  state.noticesSent = (await activities.sendTransferNotices({ transferId: input.transferId })).sent;
  await setStatus('awaiting_handover');

  const untilHandover = Date.parse(input.handoverAt) - Date.now();
  if (untilHandover > 0) await sleep(untilHandover);

  await setStatus('packaging');
  state.files = (await activities.buildTransferPackage({ transferId: input.transferId })).files;
  await setStatus('awaiting_acknowledgement');
  await condition(() => acknowledged);

  if (input.afterHandover === 'erase') {
    await setStatus('erasing');
    state.erased = (await activities.eraseTransferredCopy({ transferId: input.transferId })).erased;
  }
  await setStatus('completed');
  return state;
}
