import pino from 'pino';

/**
 * Structured JSON logs. Log ids, counts, statuses and durations; never names, email
 * addresses, phone numbers, tokens or request bodies. The redact list is a safety net.
 */
export function createLogger(name: string, level = process.env.LOG_LEVEL ?? 'info') {
  return pino({
    name,
    level,
    base: { service: name },
    redact: {
      paths: ['email', 'to', 'password', 'token', 'authorization', '*.email', '*.to', '*.password', '*.token', '*.authorization'],
      censor: '[redacted]',
    },
  });
}

export type Logger = ReturnType<typeof createLogger>;
