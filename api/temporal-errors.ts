import { WorkflowUpdateFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { AppError } from './problem';

/** The failure types workflows and activities throw, as the API answers them. */
const statusOfFailure: Record<string, { status: 403 | 404 | 409 | 422; code: string }> = {
  DisputeNotFound: { status: 404, code: 'not-found' },
  DisputeNotOpen: { status: 409, code: 'conflict' },
  RecordingDeleted: { status: 409, code: 'conflict' },
  UnknownRecordings: { status: 422, code: 'validation-failed' },
  RecordingOfAnotherClient: { status: 422, code: 'validation-failed' },
  InvalidRecordingIds: { status: 422, code: 'validation-failed' },
  AlreadyDecided: { status: 409, code: 'conflict' },
  InvalidDecision: { status: 422, code: 'validation-failed' },
  NotAwaitingApproval: { status: 409, code: 'conflict' },
  FourEyes: { status: 409, code: 'conflict' },
  NotAllowed: { status: 409, code: 'conflict' },
  TransferNotFound: { status: 404, code: 'not-found' },
  NotEndable: { status: 409, code: 'conflict' },
  AlreadyEnding: { status: 409, code: 'conflict' },
  // The token was revoked (or lost its role) between the API's check and the activity's (issue 12).
  ActorNotAllowed: { status: 403, code: 'forbidden' },
};

/** Turns a rejected or failed update into the AppError it means; anything else passes through. */
export function updateFailureToAppError(err: unknown): unknown {
  if (!(err instanceof WorkflowUpdateFailedError)) return err;
  let cause: unknown = err.cause;
  while (cause instanceof Error && !(cause instanceof ApplicationFailure) && cause.cause) cause = cause.cause;
  if (cause instanceof ApplicationFailure && cause.type && statusOfFailure[cause.type]) {
    const { status, code } = statusOfFailure[cause.type]!;
    const details = (cause.details?.[0] ?? {}) as Record<string, unknown>;
    return new AppError(code, status, `${cause.message}.`, { reasonCode: cause.type, ...details });
  }
  return err;
}
