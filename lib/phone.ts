import { z } from '@hono/zod-openapi';
import { parsePhoneNumberFromString } from 'libphonenumber-js';

/**
 * Phone numbers are stored in E.164 (`+4548221000`) everywhere, so one person is found by one
 * string whether a caller typed "48 22 10 00", "+45 48 22 10 00" or "0045 48221000". National
 * numbers without a country code are Danish (TopCall answers Danish lines).
 */
export function normalizePhone(input: string): string | undefined {
  const text = input.trim().replace(/^00/, '+');
  if (!/^\+?[0-9][0-9 ().-]{2,30}$/.test(text)) return undefined;
  const parsed = parsePhoneNumberFromString(text, 'DK');
  return parsed?.isPossible() ? parsed.number : undefined;
}

/** A phone number field: any common way of writing it in, E.164 out; a clear message otherwise. */
export const phoneNumberSchema = () =>
  z
    .string()
    .max(40)
    .transform((v, ctx) => {
      const e164 = normalizePhone(v);
      if (!e164) {
        ctx.addIssue({ code: 'custom', message: 'must be a phone number, e.g. +45 48 22 10 00' });
        return z.NEVER;
      }
      return e164;
    });
