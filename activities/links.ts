import { createHmac } from 'node:crypto';
import type { Db } from '../db/index';

/**
 * A one-time link derived from a server key (app_secrets.link_key) and the email's outbox key:
 * a retried send — after the SMTP server accepted the first but the worker died before the
 * outbox said so — carries the same link under the same Message-ID, so whichever copy the
 * person opens works (issue 13). Only the link's hash is ever stored.
 */
export async function linkTokenFor(db: Db, outboxKey: string): Promise<string> {
  return createHmac('sha256', await appSecret(db, 'link_key')).update(outboxKey).digest('base64url');
}

/** A server key the migrations put in app_secrets (link_key, transfer_key, transfer_signing_seed, …). */
export async function appSecret(db: Db, name: string): Promise<Buffer> {
  const [row] = await db<{ value: Buffer }[]>`select value from app_secrets where name = ${name}`;
  if (!row) throw new Error(`app_secrets.${name} is missing: run the migrations`);
  return row.value;
}
