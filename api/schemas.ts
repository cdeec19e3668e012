import { z } from '@hono/zod-openapi';

/**
 * A person's name as it will appear in emails TopCall sends (issue 11): one line, no control
 * characters, no links — so nobody can make an invitation carry their own text and URL.
 */
export const personName = () =>
  z
    .string()
    .trim()
    .min(1)
    .max(200)
    .regex(/^[^\p{Cc}\p{Cs}]*$/u, 'must be a single line without control characters')
    .refine((v) => !/(https?:\/\/|www\.|\b[a-z0-9-]+\.(?:com|dk|net|org|io|info|biz)\b)/i.test(v), 'must not contain a link');

/** Earliest and latest instant the API accepts from a client (year 0 or 10000 is a client mistake, not data). */
export const MIN_TIMESTAMP = Date.parse('1900-01-01T00:00:00Z');
export const MAX_TIMESTAMP = Date.parse('2200-01-01T00:00:00Z');

/** An ISO-8601 timestamp with offset, between 1900 and 2200. */
export const boundedTimestamp = (message = 'must be an ISO-8601 timestamp, e.g. 2026-11-27T10:15:00Z') =>
  z.iso
    .datetime({ offset: true, message })
    .refine((v) => {
      const ms = Date.parse(v);
      return Number.isFinite(ms) && ms >= MIN_TIMESTAMP && ms < MAX_TIMESTAMP;
    }, 'must be between 1900-01-01 and 2200-01-01');

/** Characters Postgres refuses in text and jsonb: NUL and UTF-16 surrogates without their pair. */
const REFUSED = /\u0000|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;
export const hasRefusedCharacter = (v: string) => REFUSED.test(v);

/** The path (a.b.0.c) of the first string or key in a parsed JSON value that Postgres would refuse. */
export function findRefusedString(value: unknown, at = ''): string | undefined {
  if (typeof value === 'string') return hasRefusedCharacter(value) ? at || '(root)' : undefined;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const found = findRefusedString(value[i], at ? `${at}.${i}` : String(i));
      if (found) return found;
    }
    return undefined;
  }
  if (value && typeof value === 'object') {
    for (const [key, inner] of Object.entries(value)) {
      const path = at ? `${at}.${key}` : key;
      if (hasRefusedCharacter(key)) return path;
      const found = findRefusedString(inner, path);
      if (found) return found;
    }
  }
  return undefined;
}
