import { CompleteAsyncError } from '@temporalio/activity';
import { ApplicationFailure, TemporalFailure } from '@temporalio/common';
import type { ActivityInboundCallsInterceptor, ActivityInterceptorsFactory } from '@temporalio/worker';
import { safeErrorText } from '../lib/safe-error';

/**
 * Issue 12, D9: what an activity throws becomes a failure in the workflow's history, in the Web
 * UI and in the worker's log. A driver's error text quotes what it refused (an SMTP 550 names
 * the address, a Postgres detail the value), so every activity error that is not already a
 * failure the back office wrote is rethrown as an ApplicationFailure that says only the class and
 * the code (the SQLSTATE, the SMTP reply code and command; lib/safe-error.ts):
 *
 * - an ApplicationFailure the activity threw on purpose keeps its type, message, details and
 *   nonRetryable (the workflows branch on types such as PermanentSmtpFailure), only a cause
 *   that is not itself a Temporal failure is made safe the same way;
 * - cancellation (CancelledFailure, AbortError) and async completion pass through untouched:
 *   the SDK reads them;
 * - anything else keeps its retry semantics (retryable, as the SDK treats a plain error) and its
 *   class as the failure type, as the default converter would have set it.
 */
export function sanitisedFailure(err: unknown): unknown {
  if (err instanceof CompleteAsyncError) return err;
  if (err instanceof Error && err.name === 'AbortError') return err;
  if (err instanceof ApplicationFailure) {
    if (err.cause === undefined || err.cause instanceof TemporalFailure) return err;
    return ApplicationFailure.create({
      message: err.message,
      type: err.type ?? undefined,
      nonRetryable: err.nonRetryable ?? undefined,
      details: err.details ? [...err.details] : undefined,
      nextRetryDelay: err.nextRetryDelay ?? undefined,
      category: err.category ?? undefined,
      cause: sanitisedFailure(err.cause) as Error,
    });
  }
  if (err instanceof TemporalFailure) return err;
  const name = (err as { name?: unknown } | null)?.name;
  return ApplicationFailure.create({
    message: safeErrorText(err),
    type: typeof name === 'string' && /^[A-Za-z]{1,40}$/.test(name) ? name : 'Error',
    nonRetryable: false,
  });
}

class SanitiseFailures implements ActivityInboundCallsInterceptor {
  async execute(input: Parameters<NonNullable<ActivityInboundCallsInterceptor['execute']>>[0], next: Parameters<NonNullable<ActivityInboundCallsInterceptor['execute']>>[1]) {
    try {
      return await next(input);
    } catch (err) {
      throw sanitisedFailure(err);
    }
  }
}

export const sanitiseActivityFailures: ActivityInterceptorsFactory = () => ({ inbound: new SanitiseFailures() });
