import { createApp } from '../../api/app';
import { insertStaffToken, newToken, type StaffRole } from '../../db/access-tokens';
import type { Sql } from '../../db/index';
import { silentLog, type TestStack } from './stack';

export const appFor = (s: TestStack) => createApp({ config: s.config, sql: s.sql, temporal: s.client, store: s.store, log: silentLog, payloadCodec: s.payloadCodec });

/** Issues a real staff token (hash stored in Postgres) and returns the bearer header for it. */
export async function staffAuth(sql: Sql, role: StaffRole): Promise<{ authorization: string; token: string }> {
  const token = newToken('staff');
  await insertStaffToken(sql, { token, role, label: `test ${role}` });
  return { authorization: `Bearer ${token}`, token };
}

export const json = (body: unknown, headers: Record<string, string> = {}) => ({
  method: 'POST',
  headers: { 'content-type': 'application/json', ...headers },
  body: JSON.stringify(body),
});
