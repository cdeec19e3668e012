/**
 * What may be said about a failure outside the process: to Temporal (history, Web UI), to the
 * outbox's `last_error`, to logs. An SMTP server's text quotes the address it refused ("550
 * <mette@…>: no such user") and a Postgres error's detail quotes the values it refused, so only
 * codes leave: the SMTP reply code and command, the SQLSTATE, the error's class.
 */
export function safeErrorText(err: unknown): string {
  const e = (err ?? {}) as { responseCode?: unknown; command?: unknown; code?: unknown; name?: unknown };
  const name = typeof e.name === 'string' && /^[A-Za-z]{1,40}$/.test(e.name) ? e.name : 'Error';
  if (typeof e.responseCode === 'number') return `SMTP ${e.responseCode}${typeof e.command === 'string' && /^[A-Z ]{1,20}$/.test(e.command) ? ` after ${e.command}` : ''}`;
  if (typeof e.code === 'string' && /^[A-Z0-9_]{1,20}$/.test(e.code)) return `${name} ${e.code}`;
  return name;
}

/** A stack trace without its message: only the `    at …` frames (the first line repeats the message). */
export function stackFrames(stack: unknown): string | undefined {
  if (typeof stack !== 'string') return undefined;
  const frames = stack.split('\n').filter((line) => /^\s+at /.test(line));
  return frames.length ? frames.join('\n') : undefined;
}

const SAFE_NAME = /^[A-Za-z]{1,40}$/;
const SAFE_CODE = /^[A-Z0-9_]{1,20}$/;

/**
 * What a log line may say about an error (issue 12): its class, the code (SQLSTATE, errno, the
 * SMTP reply code and command), the stack frames, its causes the same way — never a message, a
 * detail, a server response or a parameter, which quote addresses and values. The one exception
 * is a Temporal ApplicationFailure's message and type: the back office writes those itself, and
 * the activity interceptor (worker/sanitise-failures.ts) turns every other activity error into one
 * with a safe text.
 */
export function safeErrorObject(err: unknown, depth = 0): Record<string, unknown> {
  const e = (err ?? {}) as Record<string, unknown>;
  const name = typeof e.name === 'string' && SAFE_NAME.test(e.name) ? e.name : 'Error';
  const out: Record<string, unknown> = { name, text: safeErrorText(err) };
  if (typeof e.code === 'string' && SAFE_CODE.test(e.code)) out.code = e.code;
  if (typeof e.responseCode === 'number') out.responseCode = e.responseCode;
  if (typeof e.command === 'string' && /^[A-Z ]{1,20}$/.test(e.command)) out.command = e.command;
  if (name === 'ApplicationFailure') {
    if (typeof e.message === 'string') out.message = e.message;
    if (typeof e.type === 'string' && SAFE_NAME.test(e.type.replace(/[_-]/g, ''))) out.type = e.type;
    if (typeof e.nonRetryable === 'boolean') out.nonRetryable = e.nonRetryable;
  }
  const stack = stackFrames(e.stack);
  if (stack) out.stack = stack;
  if (e.cause !== undefined && e.cause !== null && depth < 5) out.cause = safeErrorObject(e.cause, depth + 1);
  return out;
}

/** Deep copy of a log object with every Error in it (at any depth, in arrays too) made safe. */
export function withSafeErrors(value: unknown, depth = 0): unknown {
  if (value instanceof Error) return safeErrorObject(value);
  if (depth > 6 || value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) return value.map((v) => withSafeErrors(v, depth + 1));
  if (Buffer.isBuffer(value) || value instanceof Date) return value;
  let changed = false;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    const safe = withSafeErrors(v, depth + 1);
    if (safe !== v) changed = true;
    out[k] = safe;
  }
  return changed ? out : value;
}
