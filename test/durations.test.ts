import { describe, expect, it } from 'vitest';
import { addCalendarDuration, fixedDurationMs } from '../lib/durations';

const at = (iso: string) => new Date(iso);

describe('policy periods in calendar terms (Europe/Copenhagen)', () => {
  it('keeps a recording from 31 January three months: until 30 April, never 1 May', () => {
    // 31 Jan 2026 12:00 in Copenhagen (CET, UTC+1) → 30 Apr 12:00 (CEST, UTC+2)
    expect(addCalendarDuration(at('2026-01-31T11:00:00Z'), 'P3M').toISOString()).toBe('2026-04-30T10:00:00.000Z');
  });

  it('clamps to the last day of a shorter month, leap years included', () => {
    expect(addCalendarDuration(at('2027-11-30T11:00:00Z'), 'P3M').toISOString()).toBe('2028-02-29T11:00:00.000Z');
    expect(addCalendarDuration(at('2026-11-30T11:00:00Z'), 'P3M').toISOString()).toBe('2027-02-28T11:00:00.000Z');
  });

  it('keeps the wall-clock time across the change to summer time', () => {
    // 20 Mar 2026 09:00 CET + P7D = 27 Mar... and across 29 Mar: 25 Mar 09:00 CET + P7D = 1 Apr 09:00 CEST
    expect(addCalendarDuration(at('2026-03-25T08:00:00Z'), 'P7D').toISOString()).toBe('2026-04-01T07:00:00.000Z');
  });

  it('adds fixed lengths exactly', () => {
    expect(addCalendarDuration(at('2026-06-01T00:00:00Z'), 'PT20S').toISOString()).toBe('2026-06-01T00:00:20.000Z');
    expect(fixedDurationMs('PT1H')).toBe(3_600_000);
    expect(fixedDurationMs('P30D')).toBe(30 * 86_400_000);
  });

  it('rejects what is not a positive duration', () => {
    expect(() => addCalendarDuration(at('2026-06-01T00:00:00Z'), 'seven')).toThrow(RangeError);
    expect(() => fixedDurationMs('P1M')).toThrow(RangeError);
  });
});
