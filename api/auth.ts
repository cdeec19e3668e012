import type { Context, MiddlewareHandler } from 'hono';
import { findActiveToken, type StaffRole } from '../db/access-tokens';
import { recordInLedger, type LedgerAction, type LedgerActor, type LedgerObject } from '../db/audit-ledger';
import type { AppEnv } from './context';
import { AppError } from './problem';

export type Principal =
  | { kind: 'staff'; tokenId: string; role: StaffRole }
  | { kind: 'customer'; tokenId: string; customerId: string };

/** Who acts, as the audit ledger records it: ids and the role, nothing else. */
export function ledgerActorOf(principal: Principal | undefined): LedgerActor {
  if (principal?.kind === 'staff') return { type: 'staff', id: principal.tokenId, role: principal.role };
  if (principal?.kind === 'customer') return { type: 'customer', id: principal.customerId, role: null };
  return { type: 'unknown', id: null, role: null };
}

/**
 * D9/issue 12: a read of personal data by someone other than the person is kept in the audit
 * ledger, one entry per record, before the answer leaves (no entry, no answer). A customer
 * reading their own records is not; `always` records a customer principal too (a client's team
 * lead reading the persons who called it).
 */
export async function recordReads(
  c: Context<AppEnv>,
  action: Extract<LedgerAction, `${string}.read` | 'payload.decode'>,
  objectType: LedgerObject,
  ids: readonly string[],
  options: { always?: boolean } = {},
): Promise<void> {
  const principal = c.var.principal;
  if (ids.length === 0 || (principal?.kind !== 'staff' && !options.always)) return;
  const actor = ledgerActorOf(principal);
  await recordInLedger(c.var.deps.sql, ids.map((objectId) => ({ actor, action, outcome: 'done' as const, objectType, objectId })));
}

const bearer = (header: string | undefined) => /^Bearer\s+(\S+)\s*$/i.exec(header ?? '')?.[1];

/** Resolves the bearer token, if any, to a principal. Routes decide what they require. */
export const authenticate: MiddlewareHandler<AppEnv> = async (c, next) => {
  const token = bearer(c.req.header('authorization'));
  if (token) {
    const row = await findActiveToken(c.var.deps.sql, token);
    if (!row) throw new AppError('unauthorized', 401, 'The bearer token is unknown, expired or revoked.');
    c.set(
      'principal',
      row.kind === 'staff'
        ? { kind: 'staff', tokenId: row.id, role: row.role! }
        : { kind: 'customer', tokenId: row.id, customerId: row.subjectId! },
    );
  }
  await next();
};

/** Staff only; with roles given, only those (admin may do everything staff may). */
export const requireStaff =
  (...roles: StaffRole[]): MiddlewareHandler<AppEnv> =>
  async (c, next) => {
    const principal = c.var.principal;
    if (!principal) throw new AppError('unauthorized', 401, 'This route needs a staff bearer token.');
    if (principal.kind !== 'staff') throw new AppError('forbidden', 403, 'This route is for TopCall staff only.');
    if (roles.length && principal.role !== 'admin' && !roles.includes(principal.role)) {
      throw new AppError('forbidden', 403, `This route needs one of the roles: ${['admin', ...roles].join(', ')}.`);
    }
    await next();
  };

export const staffSecurity = [{ bearerAuth: [] }];

/** Customers only (their own data). */
export const requireCustomer: MiddlewareHandler<AppEnv> = async (c, next) => {
  const principal = c.var.principal;
  if (!principal) throw new AppError('unauthorized', 401, 'This route needs a customer token from /v1/auth/login.');
  if (principal.kind !== 'customer') throw new AppError('forbidden', 403, 'This route is for customers; staff use the staff routes.');
  await next();
};

/** Anyone signed in; routes then scope what a customer may see to their own. */
export const requireSignedIn: MiddlewareHandler<AppEnv> = async (c, next) => {
  if (!c.var.principal) throw new AppError('unauthorized', 401, 'This route needs a bearer token.');
  await next();
};

/**
 * D3: staff, or a client's own users — a team lead of that client (`customers.team_lead`).
 * A user of another client gets 404, exactly as for a client that does not exist, so nothing
 * is learnt about other clients; a customer of this client who is no team lead gets 403.
 * Sets `clientUser` when the caller is a client user (views then hide restricted persons).
 */
export const requireStaffOrClientUser =
  (param = 'id'): MiddlewareHandler<AppEnv> =>
  async (c, next) => {
    const principal = c.var.principal;
    if (!principal) throw new AppError('unauthorized', 401, 'This route needs a bearer token.');
    if (principal.kind === 'customer') {
      const clientId = c.req.param(param);
      const [me] = await c.var.deps.sql<{ clientId: string; teamLead: boolean; status: string }[]>`
        select client_id as "clientId", team_lead as "teamLead", status from customers where id = ${principal.customerId}`;
      if (!me || me.status !== 'active' || me.clientId !== clientId) throw new AppError('not-found', 404, 'No client with that id.');
      if (!me.teamLead) throw new AppError('forbidden', 403, 'Only the client’s own users (its team leads) see its call messages and statistics.');
      c.set('clientUser' as never, true as never);
    }
    await next();
  };

/** The peer's address as the socket saw it; null for a call that came over no socket (in-process, tests). */
function peerAddress(env: unknown): string | null | undefined {
  const incoming = (env as { incoming?: { socket?: { remoteAddress?: string } } } | undefined)?.incoming;
  if (!incoming) return null;
  return incoming.socket?.remoteAddress;
}

/** 127.0.0.0/8, ::1, and IPv4 loopback as an IPv6-mapped address. */
export function isLoopback(address: string): boolean {
  const v4 = address.toLowerCase().replace(/^::ffff:/, '');
  return address === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(v4);
}

/**
 * Issue 15: scrapers of /metrics. Only callers on this machine (a loopback peer, not relayed by
 * a proxy on it) unless METRICS_ALLOW_REMOTE is true, e.g. for a Prometheus in the compose
 * network. A call that came over no socket at all (in-process) is local.
 */
export const requireLocalScraper: MiddlewareHandler<AppEnv> = async (c, next) => {
  if (!c.var.deps.config.METRICS_ALLOW_REMOTE) {
    const peer = peerAddress(c.env);
    const relayed = c.req.header('x-forwarded-for') !== undefined || c.req.header('forwarded') !== undefined;
    if (peer !== null && (!peer || !isLoopback(peer) || relayed)) {
      throw new AppError('forbidden', 403, 'Metrics are served to callers on this machine only; set METRICS_ALLOW_REMOTE=true to let a Prometheus elsewhere scrape them.');
    }
  }
  await next();
};

/**
 * Who may call a route, declared where the route is defined: `...access.staff('privacy_officer')`
 * puts the guard in the route's middleware and the declaration in /openapi.json (`x-access`),
 * where `test/authorization-matrix.test.ts` reads it and tries every kind of caller. A route
 * without a declaration fails that test.
 */
export type Access = 'public' | 'signed-in' | 'customer' | 'staff' | `staff:${string}` | 'staff-or-client-user' | 'link-token' | 'scraper';
export const access = {
  public: () => ({ 'x-access': 'public' as Access }),
  /** No token; callers on this machine only unless METRICS_ALLOW_REMOTE (`requireLocalScraper`). */
  scraper: () => ({ middleware: [requireLocalScraper] as MiddlewareHandler<AppEnv>[], 'x-access': 'scraper' as Access }),
  /** A one-time secret in the link (an export, the acquirer's package): no bearer token. */
  linkToken: () => ({ 'x-access': 'link-token' as Access }),
  signedIn: (...then: MiddlewareHandler<AppEnv>[]) => ({ middleware: [requireSignedIn, ...then] as MiddlewareHandler<AppEnv>[], 'x-access': 'signed-in' as Access }),
  customer: () => ({ middleware: [requireCustomer] as MiddlewareHandler<AppEnv>[], 'x-access': 'customer' as Access }),
  staff: (...roles: StaffRole[]) => ({ middleware: [requireStaff(...roles)] as MiddlewareHandler<AppEnv>[], 'x-access': (roles.length ? `staff:${roles.join(',')}` : 'staff') as Access }),
  staffOrClientUser: (param = 'id') => ({ middleware: [requireStaffOrClientUser(param)] as MiddlewareHandler<AppEnv>[], 'x-access': 'staff-or-client-user' as Access }),
};
