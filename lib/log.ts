import { createRequire } from 'node:module';
import pino from 'pino';
import type PinoPretty from 'pino-pretty';
import { safeErrorObject, withSafeErrors } from './safe-error';

/**
 * On a terminal (`npm start` by hand), one readable line per entry through pino-pretty; anywhere
 * else (a pipe, a file, a container's log driver, the tests) JSON lines for machines. Pretty
 * printing runs in this process, synchronously: no transport thread, and loaded only on a terminal.
 */
function terminalStream(): PinoPretty.PrettyStream | undefined {
  if (!process.stdout.isTTY) return undefined;
  const pretty = createRequire(import.meta.url)('pino-pretty') as typeof PinoPretty;
  return pretty({ colorize: true, sync: true, singleLine: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'service' });
}

/**
 * Structured logs. Log ids, counts, statuses and durations; never names, email
 * addresses, phone numbers, tokens or request bodies. The redact list is a safety net, and so
 * are the error serializers (issue 12): an error anywhere in a log entry (`err`, the SDK's
 * `{ sdk: { error } }`, a cause of a cause) is written as its class, codes and stack frames,
 * never its message, since an SMTP 550 or a Postgres detail quotes the address or value it refused.
 */
export function createLogger(name: string, level = process.env.LOG_LEVEL ?? 'info') {
  const options = {
    name,
    level,
    base: { service: name },
    serializers: { err: safeErrorObject, error: safeErrorObject },
    formatters: { log: (object: Record<string, unknown>) => withSafeErrors(object) as Record<string, unknown> },
    redact: {
      paths: ['email', 'to', 'password', 'token', 'authorization', '*.email', '*.to', '*.password', '*.token', '*.authorization'],
      censor: '[redacted]',
    },
  };
  const stream = terminalStream();
  return stream ? pino(options, stream) : pino(options);
}

export type Logger = ReturnType<typeof createLogger>;
