import type { SinkMessage } from '../../scripts/mail-sink';
import { stack } from './stack';
import { waitFor } from './wait';

/** Reads what the real SMTP sink received for `address` (a repeated Message-ID once; `raw`: every SMTP delivery). */
export async function messagesTo(address: string, options: { raw?: boolean } = {}): Promise<SinkMessage[]> {
  const res = await fetch(`${stack().mailSinkUrl}/api/messages?to=${encodeURIComponent(address)}${options.raw ? '&raw=1' : ''}`);
  return (await res.json()) as SinkMessage[];
}

/** What the mailboxes hold (a repeated Message-ID once); `raw` lists every SMTP delivery. */
export async function allMessages(options: { raw?: boolean } = {}): Promise<SinkMessage[]> {
  return (await (await fetch(`${stack().mailSinkUrl}/api/messages${options.raw ? '?raw=1' : ''}`)).json()) as SinkMessage[];
}

/** Per address, how many messages whose text contains `marker` the sink received (`raw`: every SMTP delivery) or holds. */
export async function countPerAddress(marker: string, options: { raw: boolean }): Promise<Map<string, number>> {
  const byAddress = new Map<string, number>();
  for (const m of await allMessages(options)) if (m.text.includes(marker)) for (const to of m.to) byAddress.set(to, (byAddress.get(to) ?? 0) + 1);
  return byAddress;
}

/** Waits until a message matching `match` reached the sink. */
export function waitForMessage(match: (m: SinkMessage) => boolean, what: string, timeoutMs = 20_000): Promise<SinkMessage> {
  return waitFor(async () => (await allMessages()).find(match), { timeoutMs, what });
}

/** Makes the sink refuse the next `count` messages with a temporary SMTP error. */
export async function refuseNextMessages(count: number): Promise<void> {
  await fetch(`${stack().mailSinkUrl}/api/faults?refuse=${count}`, { method: 'POST' });
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
