import { DateTime, Duration } from 'luxon';

/** The policy's periods are calendar periods in Danish time: 31 Jan + P3M is 30 Apr. */
export const POLICY_ZONE = 'Europe/Copenhagen';

export function parseIsoDuration(text: string): Duration | undefined {
  const duration = Duration.fromISO(text.trim());
  if (!duration.isValid) return undefined;
  const hasPositivePart = Object.values(duration.toObject()).some((v) => typeof v === 'number' && v > 0);
  const hasNegativePart = Object.values(duration.toObject()).some((v) => typeof v === 'number' && v < 0);
  return hasPositivePart && !hasNegativePart ? duration : undefined;
}

/** Adds an ISO-8601 duration to an instant in calendar terms of Europe/Copenhagen. */
export function addCalendarDuration(from: Date, iso: string): Date {
  const duration = parseIsoDuration(iso);
  if (!duration) throw new RangeError(`not a positive ISO-8601 duration: ${iso}`);
  return DateTime.fromJSDate(from, { zone: POLICY_ZONE }).plus(duration).toJSDate();
}

/** Whether a duration has a fixed length in milliseconds (no years, months or weeks-of-months). */
export function isFixedLength(duration: Duration): boolean {
  const parts = duration.toObject();
  return !parts.years && !parts.quarters && !parts.months;
}

/**
 * Milliseconds of a fixed-length duration; days count as 24 hours. Used for intervals
 * (sweep cadence, review reminders) that Temporal needs as a plain length.
 */
export function fixedDurationMs(iso: string): number {
  const duration = parseIsoDuration(iso);
  if (!duration || !isFixedLength(duration)) throw new RangeError(`not a fixed-length ISO-8601 duration: ${iso}`);
  return duration.as('milliseconds');
}

/** Subtracts an ISO-8601 duration from an instant in calendar terms of Europe/Copenhagen. */
export function subtractCalendarDuration(from: Date, iso: string): Date {
  const duration = parseIsoDuration(iso);
  if (!duration) throw new RangeError(`not a positive ISO-8601 duration: ${iso}`);
  return DateTime.fromJSDate(from, { zone: POLICY_ZONE }).minus(duration).toJSDate();
}
