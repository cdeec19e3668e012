import { OpenAPIHono } from '@hono/zod-openapi';
import type { AppEnv } from './context';
import { fieldErrors, problem, type FieldError } from './problem';

/** A router whose validation failures answer problem+json with the failing fields. */
export function createRouter() {
  return new OpenAPIHono<AppEnv>({
    defaultHook: (result, c) => {
      if (!result.success) {
        const errors: FieldError[] = fieldErrors(result.error.issues, result.target === 'json' ? 'body' : (result.target as FieldError['in']));
        return problem(c, 422, 'validation-failed', `${errors.length} field(s) failed validation.`, { errors });
      }
    },
  });
}
