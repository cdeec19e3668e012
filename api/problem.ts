import type { Context } from 'hono';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { z } from '@hono/zod-openapi';

/** The one error type domain code throws; the app's onError turns it into problem+json. */
export class AppError extends Error {
  constructor(
    readonly code: string,
    readonly status: ContentfulStatusCode,
    readonly detail: string,
    readonly extra: Record<string, unknown> = {},
  ) {
    super(detail);
    this.name = 'AppError';
  }
}

export interface FieldError {
  field: string;
  in: 'body' | 'query' | 'param' | 'header' | 'form';
  message: string;
}

const titles: Record<string, string> = {
  'validation-failed': 'The request is not valid',
  'bad-request': 'The request could not be read',
  'malformed-json': 'The request body is not valid JSON',
  'unsupported-media-type': 'Unsupported media type',
  'payload-too-large': 'The request body is too large',
  unauthorized: 'Authentication required',
  forbidden: 'Not allowed for this role',
  restricted: 'Processing is restricted (GDPR Art. 18)',
  'not-found': 'Not found',
  gone: 'Gone',
  'invalid-link': 'The link is not valid',
  'too-many-attempts': 'Too many attempts',
  conflict: 'Conflict',
  'not-ready': 'Not ready',
  timeout: 'Timed out',
  undecodable: 'A payload cannot be decoded with the configured keys',
  internal: 'Internal error',
};

export const problemType = (code: string) => `https://privacy.topcall.dk/problems/${code}`;

/** RFC 9457 problem details, as every error of this API is answered. */
export function problem(
  c: Context,
  status: ContentfulStatusCode,
  code: string,
  detail: string,
  extra: Record<string, unknown> = {},
) {
  const body = {
    type: problemType(code),
    title: titles[code] ?? code,
    status,
    detail,
    requestId: c.get('requestId' as never) as string | undefined,
    ...extra,
  };
  return c.body(JSON.stringify(body), status, { 'content-type': 'application/problem+json' });
}

/** Turns zod issues into the failing fields, one entry per field (unknown keys included). */
export function fieldErrors(issues: z.core.$ZodIssue[], location: FieldError['in']): FieldError[] {
  return issues.flatMap((issue) => {
    const at = issue.path.map(String).join('.');
    if (issue.code === 'unrecognized_keys') {
      return issue.keys.map((key) => ({ field: at ? `${at}.${key}` : key, in: location, message: 'unknown field' }));
    }
    return [{ field: at || '(root)', in: location, message: issue.message }];
  });
}

export const ProblemSchema = z
  .object({
    type: z.string().openapi({ example: problemType('validation-failed') }),
    title: z.string(),
    status: z.number().int(),
    detail: z.string(),
    requestId: z.string().optional(),
    errors: z
      .array(z.object({ field: z.string(), in: z.string(), message: z.string() }))
      .optional()
      .openapi({ description: 'The failing fields, for validation errors' }),
  })
  .openapi('Problem');

export const problemResponse = (description: string) => ({
  description,
  content: { 'application/problem+json': { schema: ProblemSchema } },
});
