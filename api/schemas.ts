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
