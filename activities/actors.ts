import { ApplicationFailure } from '@temporalio/common';
import { activeStaffRole, type StaffRole } from '../db/access-tokens';
import { ledgerId, recordInLedger, type LedgerActor, type LedgerEntryInput } from '../db/audit-ledger';
import type { Sql } from '../db/index';
import { ACTOR_NOT_ALLOWED } from '../workflows/request-types';


type Act = Omit<LedgerEntryInput, 'actor' | 'outcome'>;

/**
 * Issue 12, roles below the API: anyone who reaches Temporal can send an update naming any
 * actor, so the activity that carries out the act asks Postgres. The attempt is kept in the
 * ledger (committed on its own: nothing else happens), and the act fails for good.
 */
export async function refuseActor(sql: Sql, actor: LedgerActor, act: Act): Promise<never> {
  await recordInLedger(sql, { ...act, actor, outcome: 'refused' });
  throw ApplicationFailure.nonRetryable('the stated actor does not hold a role that may do this', ACTOR_NOT_ALLOWED);
}

/**
 * The ledger's actor when `actorId` is an active staff token holding one of `roles` (admin may
 * do everything staff may, as in the API's `requireStaff`); otherwise refuses (above).
 */
export async function requireStaffActor(sql: Sql, actorId: string | null | undefined, roles: StaffRole[], act: Act): Promise<LedgerActor> {
  const role = await activeStaffRole(sql, actorId);
  const id = ledgerId(actorId);
  if (role && (role === 'admin' || roles.includes(role))) return { type: 'staff', id, role };
  return refuseActor(sql, { type: role ? 'staff' : 'unknown', id, role: role ?? null }, act);
}
