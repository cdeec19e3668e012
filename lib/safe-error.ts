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
