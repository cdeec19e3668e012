import type { SinkMessage } from '../../scripts/mail-sink';
import { stack } from './stack';
import { waitFor } from './wait';

/** What to ask the sink for; it filters on its side, so a poll downloads only the matching messages. */
export interface MailQuery {
  /** Messages to this address. */
  to?: string;
  /** Messages to an address at this domain. */
  domain?: string;
  /** Messages whose subject or text contains this. */
  contains?: string;
  /** Messages after this sink id. */
  since?: number;
  /** Every SMTP delivery, repeats of a Message-ID included (a mailbox shows a repeat once). */
  raw?: boolean;
}

/** Reads from the real SMTP sink the messages matching `query` (at least a recipient, a domain or a text). */
export async function queryMessages(query: MailQuery & ({ to: string } | { domain: string } | { contains: string })): Promise<SinkMessage[]> {
  const params = new URLSearchParams();
  if (query.to) params.set('to', query.to);
  if (query.domain) params.set('domain', query.domain);
  if (query.contains) params.set('contains', query.contains);
  if (query.since) params.set('since', String(query.since));
  if (query.raw) params.set('raw', '1');
  const res = await fetch(`${stack().mailSinkUrl}/api/messages?${params}`);
  return (await res.json()) as SinkMessage[];
}

/** Reads what the real SMTP sink received for `address` (a repeated Message-ID once; `raw`: every SMTP delivery). */
export function messagesTo(address: string, options: Omit<MailQuery, 'to'> = {}): Promise<SinkMessage[]> {
  return queryMessages({ ...options, to: address });
}

/** Per address, how many messages whose subject or text contains `marker` the sink received (`raw`: every SMTP delivery) or holds. */
export async function countPerAddress(marker: string, options: { raw: boolean }): Promise<Map<string, number>> {
  const byAddress = new Map<string, number>();
  for (const m of await queryMessages({ contains: marker, raw: options.raw })) for (const to of m.to) byAddress.set(to, (byAddress.get(to) ?? 0) + 1);
  return byAddress;
}

/** Waits until a message to `to` matching `match` reached the sink (only `to`'s messages are fetched). */
export function waitForMessage(to: string, match: (m: SinkMessage) => boolean, what: string, timeoutMs = 20_000): Promise<SinkMessage> {
  return waitFor(async () => (await messagesTo(to)).find(match), { timeoutMs, what });
}

/**
 * Makes the sink refuse the next `count` messages to one address or domain with a temporary
 * SMTP error. Scoped on purpose: the sink is shared by every test file of the run.
 */
export async function refuseNextMessages(count: number, scope: { to: string } | { domain: string }): Promise<void> {
  const params = new URLSearchParams({ refuse: String(count), ...scope });
  await fetch(`${stack().mailSinkUrl}/api/faults?${params}`, { method: 'POST' });
}

/** Makes the sink refuse these recipients for good (550 mailbox unavailable). */
export async function rejectRecipients(addresses: string[]): Promise<void> {
  const query = addresses.map((a) => `reject=${encodeURIComponent(a)}`).join('&');
  await fetch(`${stack().mailSinkUrl}/api/faults?${query}`, { method: 'POST' });
}

/** Lets these recipients through again (undoes `rejectRecipients`). */
export async function releaseRecipients(addresses: string[]): Promise<void> {
  const query = addresses.map((a) => `release=${encodeURIComponent(a)}`).join('&');
  await fetch(`${stack().mailSinkUrl}/api/faults?${query}`, { method: 'POST' });
}
