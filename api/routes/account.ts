import { createHmac } from 'node:crypto';
import { Hono, type Context, type MiddlewareHandler } from 'hono';
import { csrf } from 'hono/csrf';
import { html } from 'hono/html';
import { z } from '@hono/zod-openapi';
import type { AppEnv } from '../context';
import { AppError } from '../problem';
import { checkLogin } from '../login';
import { QUOTAS, takeQuota } from '../quota';
import { hashPassword, verifyPassword } from '../passwords';
import { hasRefusedCharacter, personName } from '../schemas';
import { fileRequest } from '../file-request';
import { exportDownload } from './exports';
import { recordInLedger } from '../../db/audit-ledger';
import { requestEmailChange, requestPasswordReset } from '../account-emails';
import { consumePasswordToken, findCustomer, passwordTokenUsable, } from '../../db/customers';
import { awaitAnswer, findRequest, listRequests, REQUEST_TYPES, type RequestRow, type RequestType } from '../../db/requests';
import { hashToken } from '../../db/access-tokens';
import { findClient } from '../../db/clients';
import { exportSubject, resolveSubject } from '../../db/personal-data';
import { recipientsOfPerson } from '../../db/disclosures';
import { callStats, listCallMessages } from '../../db/call-messages';
import { outcomeLines } from '../../activities/requests';
import { complaintLines, REFUSAL_REASONS, REQUEST_TYPE_NAMES } from '../../lib/email-templates';
import { customerWorkflowId } from '../../workflows/ids';
import { setPreferencesUpdate } from '../../workflows/customer-lifecycle';
import { T, type Lang } from '../web/i18n';
import { csrfInput, field, formatDate, href, langOf, page, type Html } from '../web/layout';
import { csrfValid, currentSession, endSession, startSession, type WebSession } from '../web/session';

/**
 * The customers' own pages (issue 14; D1–D3, D7, D10–D14): server-rendered HTML, forms that work
 * without JavaScript, Danish first. Everything a page shows comes from the same places the API,
 * the access export and erasure use (the personal-data map of D15).
 */
type PageEnv = AppEnv;
type PageContext = Context<PageEnv>;

const FORM_TEXT_MAX = 2000;
/** How long a page waits for a self-service change to be carried out before answering anyway. */
const SELF_SERVICE_WAIT_MS = 15_000;
/** A closure confirmation page stays valid this long after the password was given. */
const CLOSE_TICKET_MS = 10 * 60_000;

const redirect = (c: Context<AppEnv>, to: string) => c.redirect(href(c, to), 303);

type Status = 200 | 400 | 401 | 403 | 404 | 429;
/** A page for someone not logged in, in the language the address asks for (or the person's saved one). */
const publicPage = (c: Context<AppEnv>, make: (tr: (typeof T)[Lang]) => { title: string; body: Html }, status: Status = 200, saved?: string | null) => {
  const lang = langOf(c, saved);
  return c.html(page(c, { lang, ...make(T[lang]) }), status);
};

async function form(c: Context<AppEnv>): Promise<Record<string, string>> {
  const body = await c.req.parseBody();
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(body)) if (typeof v === 'string') out[k] = v;
  return out;
}

/** Text from a form field: trimmed, bounded, and never a character Postgres refuses. */
function text(value: string | undefined, max: number): string | undefined {
  const v = (value ?? '').trim();
  if (!v || v.length > max || hasRefusedCharacter(v)) return undefined;
  return v;
}

const isEmail = (v: string) => z.email().max(254).safeParse(v).success;

/** Pages behind a login: a live session (else the login page) and, on every POST, its CSRF token. */
const signedIn: MiddlewareHandler<PageEnv> = async (c, next) => {
  const session = await currentSession(c);
  if (!session) return redirect(c, '/account/login');
  const me = await findCustomer(c.var.deps.sql, session.customerId);
  if (!me || me.status !== 'active') {
    await endSession(c, session);
    return redirect(c, '/account/login');
  }
  if (c.req.method === 'POST') {
    const body = await c.req.parseBody();
    if (!csrfValid(session, body.csrf)) return c.html(page(c, { lang: langOf(c, me.locale), title: T[langOf(c, me.locale)].badForm, session, body: html`` }), 403);
  }
  c.set('session', session);
  c.set('me', me);
  await next();
};

const lang = (c: PageContext): Lang => langOf(c, c.var.me!.locale);
const t = (c: PageContext) => T[lang(c)];
const show = (c: PageContext, title: string, body: Html, status: 200 | 400 | 401 | 403 | 404 | 429 = 200) =>
  c.html(page(c, { lang: lang(c), title, session: c.var.session!, clientUser: c.var.me!.teamLead, body }), status);
const notice = (message: string, kind: 'ok' | 'bad' | '' = 'ok') => html`<div class="notice ${kind}" role="status">${message}</div>`;

/** Waits (bounded) until a request the person just filed has been answered, so the page can say "done". */
const answeredSoon = (c: Context<AppEnv>, requestId: string) => awaitAnswer(c.var.deps.sql, requestId, SELF_SERVICE_WAIT_MS);

function closeTicket(session: WebSession, at: number): string {
  return `${at}.${createHmac('sha256', session.csrf).update(`close:${at}`).digest('base64url')}`;
}
function closeTicketValid(session: WebSession, ticket: string | undefined): boolean {
  const at = Number(ticket?.split('.')[0]);
  return Number.isFinite(at) && Date.now() - at < CLOSE_TICKET_MS && Date.now() >= at && ticket === closeTicket(session, at);
}

export function accountRoutes() {
  const app = new Hono<AppEnv>();

  // Forms posted from another origin are refused (issue 14); sessions add their own token too.
  app.use(
    '/account/*',
    csrf({
      origin: (origin, c) => origin === new URL(c.req.url).origin || origin === new URL((c as Context<AppEnv>).var.deps.config.PUBLIC_URL).origin,
    }),
  );

  // ---- signing in and out -------------------------------------------------------------------
  const loginPage = (c: Context<AppEnv>, o: { email?: string; error?: string; message?: string }, status: Status = 200) =>
    publicPage(
      c,
      (tr) => ({
        title: tr.loginTitle,
        body: html`${o.message ? notice(o.message) : ''}
          ${o.error ? html`<div class="notice bad" role="alert" id="login-error">${o.error}</div>` : ''}
          <form method="post" action="${href(c, '/account/login')}" novalidate>
            ${field({ name: 'email', label: tr.email, type: 'email', value: o.email, autocomplete: 'username', required: true })}
            ${field({ name: 'password', label: tr.password, type: 'password', autocomplete: 'current-password', required: true })}
            <button type="submit">${tr.loginButton}</button>
          </form>
          <p><a href="${href(c, '/account/forgot-password')}">${tr.forgotLink}</a></p>`,
      }),
      status,
    );

  app.get('/account/login', async (c) => {
    if (await currentSession(c)) return redirect(c, '/account');
    const done = c.req.query('done');
    const tr = T[langOf(c)];
    return loginPage(c, { message: done === 'logout' ? tr.loggedOut : done === 'password' ? tr.setDone : done === 'closed' ? tr.closeDone : undefined });
  });

  app.post('/account/login', async (c) => {
    const f = await form(c);
    const tr = T[langOf(c)];
    const email = (f.email ?? '').trim();
    if (!isEmail(email) || !f.password || f.password.length > 200) return loginPage(c, { email: hasRefusedCharacter(email) ? '' : email, error: tr.wrongLogin }, 401);
    try {
      const customerId = await checkLogin(c, email, f.password);
      await startSession(c, customerId);
      return redirect(c, '/account');
    } catch (err) {
      if (err instanceof AppError && err.status === 429) return loginPage(c, { email, error: tr.tooMany(Number(err.extra?.retryAfterSeconds ?? 60)) }, 429);
      if (err instanceof AppError && err.status === 401) return loginPage(c, { email, error: tr.wrongLogin }, 401);
      throw err;
    }
  });

  app.post('/account/logout', async (c) => {
    const session = await currentSession(c);
    if (session && !csrfValid(session, (await c.req.parseBody()).csrf)) throw new AppError('forbidden', 403, 'The form is not from this session.');
    await endSession(c, session);
    return redirect(c, '/account/login?done=logout');
  });

  // ---- forgot and set password --------------------------------------------------------------
  const forgotPage = (c: Context<AppEnv>, o: { sent?: boolean; error?: string; email?: string }, status: Status = 200) =>
    publicPage(
      c,
      (tr) => ({
        title: tr.forgotTitle,
        body: o.sent
          ? notice(tr.forgotSent)
          : html`<p>${tr.forgotIntro}</p>
              <form method="post" action="${href(c, '/account/forgot-password')}" novalidate>
                ${field({ name: 'email', label: tr.email, type: 'email', value: o.email, autocomplete: 'username', required: true, error: o.error })}
                <button type="submit">${tr.forgotButton}</button>
              </form>`,
      }),
      status,
    );
  app.get('/account/forgot-password', (c) => forgotPage(c, {}));
  app.post('/account/forgot-password', async (c) => {
    const email = ((await form(c)).email ?? '').trim();
    if (!isEmail(email)) return forgotPage(c, { error: T[langOf(c)].emailInvalid }, 400);
    await requestPasswordReset(c, email);
    return forgotPage(c, { sent: true });
  });

  const setPasswordPage = (c: Context<AppEnv>, o: { token: string; errors?: { password?: string; repeat?: string }; invalid?: boolean }, status: Status = 200) =>
    publicPage(
      c,
      (tr) => ({
        title: tr.setTitle,
        body: o.invalid
          ? html`<div class="notice bad" role="alert">${tr.linkInvalid}</div><p><a href="${href(c, '/account/forgot-password')}">${tr.forgotLink}</a></p>`
          : html`<p>${tr.setIntro}</p>
              <form method="post" action="${href(c, '/account/set-password')}" novalidate>
                <input type="hidden" name="token" value="${o.token}">
                ${field({ name: 'password', label: tr.newPassword, type: 'password', autocomplete: 'new-password', hint: tr.passwordHint, required: true, error: o.errors?.password })}
                ${field({ name: 'repeat', label: tr.repeatPassword, type: 'password', autocomplete: 'new-password', required: true, error: o.errors?.repeat })}
                <button type="submit">${tr.setButton}</button>
              </form>`,
      }),
      status,
    );
  app.get('/account/set-password', async (c) => {
    const token = c.req.query('token') ?? '';
    const usable = /^[\w-]{20,200}$/.test(token) && (await passwordTokenUsable(c.var.deps.sql, token));
    return setPasswordPage(c, { token, invalid: !usable }, usable ? 200 : 400);
  });
  app.post('/account/set-password', async (c) => {
    const f = await form(c);
    const tr = T[langOf(c)];
    const token = f.token ?? '';
    if (!/^[\w-]{20,200}$/.test(token) || !(await passwordTokenUsable(c.var.deps.sql, token))) return setPasswordPage(c, { token: '', invalid: true }, 400);
    const password = f.password ?? '';
    if (password.length < 10 || password.length > 200 || hasRefusedCharacter(password)) return setPasswordPage(c, { token, errors: { password: tr.passwordTooShort } }, 400);
    if (password !== f.repeat) return setPasswordPage(c, { token, errors: { repeat: tr.passwordsDiffer } }, 400);
    const customerId = await consumePasswordToken(c.var.deps.sql, token, await hashPassword(password));
    if (!customerId) return setPasswordPage(c, { token: '', invalid: true }, 400);
    return redirect(c, '/account/login?done=password');
  });

  // ---- confirming a new address (the link in the email to it; no session needed) -------------
  const changeByToken = async (c: Context<AppEnv>, token: string) => {
    if (!/^[\w-]{20,200}$/.test(token)) return undefined;
    const [row] = await c.var.deps.sql<{ id: string; customerId: string; newEmail: string }[]>`
      select id, customer_id as "customerId", new_email as "newEmail" from email_changes
      where token_hash = ${hashToken(token)} and confirmed_at is null and expires_at > now()`;
    return row;
  };
  app.get('/account/confirm-email', async (c) => {
    const token = c.req.query('token') ?? '';
    const change = await changeByToken(c, token);
    const me = change ? await findCustomer(c.var.deps.sql, change.customerId) : undefined;
    if (!change || me?.status !== 'active') return publicPage(c, (tr) => ({ title: tr.confirmTitle, body: html`<div class="notice bad" role="alert">${tr.confirmInvalid}</div>` }), 400, me?.locale);
    // A GET changes nothing (mail scanners open links); the button posts.
    return publicPage(
      c,
      (tr) => ({
        title: tr.confirmTitle,
        body: html`<p>${tr.confirmIntro(change.newEmail)}</p>
          <form method="post" action="${href(c, '/account/confirm-email')}"><input type="hidden" name="token" value="${token}"><button type="submit">${tr.confirmButton}</button></form>`,
      }),
      200,
      me.locale,
    );
  });
  app.post('/account/confirm-email', async (c) => {
    const token = (await form(c)).token ?? '';
    const { sql } = c.var.deps;
    const change = await changeByToken(c, token);
    const me = change ? await findCustomer(sql, change.customerId) : undefined;
    const fail = (message: (tr: (typeof T)[Lang]) => string) =>
      publicPage(c, (tr) => ({ title: tr.confirmTitle, body: html`<div class="notice bad" role="alert">${message(tr)}</div>` }), 400, me?.locale);
    if (!change || !me || me.status !== 'active') return fail((tr) => tr.confirmInvalid);
    const claimed = await sql`update email_changes set confirmed_at = now() where id = ${change.id} and confirmed_at is null
                              and not exists (select 1 from customers where lower(email) = lower(${change.newEmail})) returning 1`;
    if (!claimed.length) return fail((tr) => tr.emailUnavailable);
    // The change itself is a rectification like any other: recorded, audited, recipients told (Art. 19).
    const filed = await fileRequest(c.var.deps, {
      type: 'rectification',
      customerId: me.id,
      details: { fields: { email: change.newEmail }, note: 'email address confirmed by a link sent to it' },
      caller: null,
      locale: me.locale,
      filedBy: 'customer',
      autoApprove: true,
      autoApproveReason: 'self-service',
    });
    await sql`update email_changes set request_id = ${filed.id} where id = ${change.id}`;
    await answeredSoon(c, filed.id);
    return publicPage(c, (tr) => ({ title: tr.confirmTitle, body: notice(tr.confirmDone) }), 200, me.locale);
  });

  // ---- everything below needs a session -----------------------------------------------------
  const mine = new Hono<PageEnv>();
  // Named paths, not '*': this router is mounted at the root, and a wildcard would guard every route.
  for (const p of ['/account', '/account/profile', '/account/profile/*', '/account/requests', '/account/requests/*', '/account/preferences', '/account/close', '/account/close/*', '/account/client']) {
    mine.use(p, signedIn);
  }

  mine.get('/account', async (c) => {
    const { sql } = c.var.deps;
    const me = c.var.me!;
    const tr = t(c);
    const l = lang(c);
    const subject = await resolveSubject(sql, { customerId: me.id });
    const { data } = await exportSubject(sql, subject);
    const recipients = await recipientsOfPerson(sql, subject);
    const client = await findClient(sql, me.clientId);
    const self = me.providedByKind === 'self' || (me.providedByKind === null && me.providedBy === 'self');
    const provenance = self
      ? tr.providedSelf(me.providedVia ? (tr.via[me.providedVia] ?? '') : '', formatDate(me.providedAt, l))
      : tr.providedBy(me.providedBy, formatDate(me.providedAt, l));
    const recordings = data.recordings ?? [];
    const messages = data.messages ?? [];
    const requests = await listRequests(sql, { customerId: me.id, limit: 100 });
    return show(
      c,
      tr.dataTitle,
      html`<p>${tr.dataIntro}</p>
        ${me.processingRestricted ? notice(tr.restricted, '') : ''}${me.objectedToProcessing ? notice(tr.objected, '') : ''}
        <section aria-labelledby="h-profile"><h2 id="h-profile">${tr.profileHeading}</h2>
          <dl>
            <dt>${tr.name}</dt><dd>${me.name}</dd>
            <dt>${tr.email}</dt><dd>${me.email}</dd>
            <dt>${tr.language}</dt><dd>${tr.languageNames[me.locale]}</dd>
            <dt>${tr.client}</dt><dd>${client?.name ?? '—'}</dd>
            <dt>${tr.provenance}</dt><dd data-testid="provenance">${provenance}</dd>
            <dt>${tr.marketing}</dt><dd>${me.marketingEmails ? tr.marketingOn : tr.marketingOff} (<a href="${href(c, '/account/preferences')}">${tr.navPreferences}</a>)</dd>
          </dl>
          <p><a href="${href(c, '/account/profile')}">${tr.navProfile}</a></p>
        </section>
        <section aria-labelledby="h-recordings"><h2 id="h-recordings">${tr.recordingsHeading}</h2>
          <p>${tr.recordingsIntro}</p>
          ${
            recordings.length
              ? html`<table><thead><tr><th scope="col">${tr.recordedAt}</th><th scope="col">${tr.duration}</th><th scope="col">${tr.deletion}</th></tr></thead><tbody>
                ${recordings.map(
                  (r) => html`<tr data-recording="${String(r.id)}">
                    <td data-label="${tr.recordedAt}">${formatDate(String(r.recorded_at), l, true)}</td>
                    <td data-label="${tr.duration}">${tr.seconds(Number(r.duration_seconds))}</td>
                    <td data-label="${tr.deletion}">${r.status === 'deleted' ? tr.deleted : r.held ? tr.heldReason : formatDate(String(r.delete_after), l)}</td></tr>`,
                )}</tbody></table>`
              : html`<p>${tr.noRecordings}</p>`
          }
        </section>
        <section aria-labelledby="h-messages"><h2 id="h-messages">${tr.messagesHeading}</h2>
          ${
            messages.length
              ? html`<table><thead><tr><th scope="col">${tr.sentAt}</th><th scope="col">${tr.message}</th></tr></thead><tbody>
                ${messages.map((m) => html`<tr><td data-label="${tr.sentAt}">${formatDate(String(m.sent_at), l, true)}</td><td data-label="${tr.message}">${String(m.body ?? '')}</td></tr>`)}</tbody></table>`
              : html`<p>${tr.noMessages}</p>`
          }
        </section>
        <section aria-labelledby="h-requests"><h2 id="h-requests">${tr.requestsHeading}</h2>
          ${requests.length ? requestTable(c, requests) : html`<p>${tr.noRequests}</p>`}
          <p><a href="${href(c, '/account/requests')}">${tr.fileHeading}</a></p>
        </section>
        <section aria-labelledby="h-recipients"><h2 id="h-recipients">${tr.recipientsHeading}</h2>
          ${
            recipients.length
              ? html`<p>${tr.recipientsIntro}</p><table><thead><tr><th scope="col">${tr.recipient}</th><th scope="col">${tr.contact}</th><th scope="col">${tr.category}</th><th scope="col">${tr.disclosedAt}</th></tr></thead><tbody>
                ${recipients.map(
                  (r) => html`<tr><td data-label="${tr.recipient}">${r.name}</td><td data-label="${tr.contact}">${r.email}${r.address ? html`<br>${r.address}` : ''}</td>
                    <td data-label="${tr.category}">${r.category}</td><td data-label="${tr.disclosedAt}">${formatDate(r.disclosedAt, l)}</td></tr>`,
                )}</tbody></table>`
              : html`<p>${tr.noRecipients}</p>`
          }
        </section>
        <section aria-labelledby="h-export"><h2 id="h-export">${tr.exportHeading}</h2>
          <p>${tr.exportIntro}</p>
          <form method="post" action="${href(c, '/account/requests')}">${csrfInput(c.var.session!)}<input type="hidden" name="type" value="access"><button type="submit">${tr.exportButton}</button></form>
        </section>`,
    );
  });

  const requestTable = (c: PageContext, rows: RequestRow[]) => {
    const tr = t(c);
    const l = lang(c);
    return html`<table><thead><tr><th scope="col">${tr.type}</th><th scope="col">${tr.status}</th><th scope="col">${tr.receivedAt}</th><th scope="col">${tr.dueAt}</th></tr></thead><tbody>
      ${rows.map(
        (r) => html`<tr><td data-label="${tr.type}"><a href="${href(c, `/account/requests/${r.id}`)}">${capital(REQUEST_TYPE_NAMES[l][r.type] ?? r.type)}</a></td>
          <td data-label="${tr.status}">${tr.statusNames[r.status] ?? r.status}${r.slaBreached ? html` (${tr.late})` : ''}</td>
          <td data-label="${tr.receivedAt}">${formatDate(r.receivedAt, l)}</td><td data-label="${tr.dueAt}">${formatDate(r.dueAt, l)}</td></tr>`,
      )}</tbody></table>`;
  };

  // ---- correct ------------------------------------------------------------------------------
  const profilePage = (c: PageContext, o: { message?: Html; errors?: Record<string, string>; values?: Record<string, string> } = {}, status: 200 | 400 = 200) => {
    const tr = t(c);
    const me = c.var.me!;
    return show(
      c,
      tr.profileTitle,
      html`${o.message ?? ''}
        <section aria-labelledby="h-name"><h2 id="h-name">${tr.nameAndLanguage}</h2><p>${tr.nameAndLanguageIntro}</p>
          <form method="post" action="${href(c, '/account/profile/name')}" novalidate>${csrfInput(c.var.session!)}
            ${field({ name: 'name', label: tr.name, value: o.values?.name ?? me.name ?? '', autocomplete: 'name', required: true, error: o.errors?.name })}
            <label for="f-locale">${tr.language}</label>
            <select id="f-locale" name="locale">
              <option value="da"${me.locale === 'da' ? html` selected` : ''}>Dansk</option>
              <option value="en"${me.locale === 'en' ? html` selected` : ''}>English</option>
            </select>
            <div><button type="submit">${tr.save}</button></div>
          </form></section>
        <section aria-labelledby="h-email"><h2 id="h-email">${tr.emailHeading}</h2><p>${tr.emailIntro}</p>
          <form method="post" action="${href(c, '/account/profile/email')}" novalidate>${csrfInput(c.var.session!)}
            ${field({ name: 'email', label: tr.newEmail, type: 'email', value: o.values?.email, autocomplete: 'email', required: true, error: o.errors?.email })}
            <div><button type="submit">${tr.save}</button></div>
          </form></section>
        <section aria-labelledby="h-other"><h2 id="h-other">${tr.otherHeading}</h2><p>${tr.otherIntro}</p>
          <form method="post" action="${href(c, '/account/profile/other')}" novalidate>${csrfInput(c.var.session!)}
            <label for="f-note">${tr.otherLabel}</label>
            ${o.errors?.note ? html`<p class="error" id="f-note-error">${o.errors.note}</p>` : ''}
            <textarea id="f-note" name="note" maxlength="${FORM_TEXT_MAX}"${o.errors?.note ? html` aria-invalid="true" aria-describedby="f-note-error"` : ''}>${o.values?.note ?? ''}</textarea>
            <div><button type="submit">${tr.fileIt}</button></div>
          </form></section>`,
      status,
    );
  };
  mine.get('/account/profile', (c) => profilePage(c));
  mine.post('/account/profile/name', async (c) => {
    const f = await form(c);
    const tr = t(c);
    const me = c.var.me!;
    const name = personName().safeParse(f.name ?? '');
    if (!name.success || hasRefusedCharacter(f.name ?? '')) return profilePage(c, { errors: { name: tr.nameRequired }, values: { name: hasRefusedCharacter(f.name ?? '') ? '' : (f.name ?? '') } }, 400);
    const locale = f.locale === 'en' ? 'en' : 'da';
    const fields = { ...(name.data !== me.name ? { name: name.data } : {}), ...(locale !== me.locale ? { locale } : {}) };
    if (!Object.keys(fields).length) return profilePage(c, { message: notice(tr.savedNothing, '') });
    const filed = await fileRequest(c.var.deps, {
      type: 'rectification',
      customerId: me.id,
      details: { fields },
      caller: null,
      locale: me.locale,
      filedBy: 'customer',
      autoApprove: true,
      autoApproveReason: 'self-service',
    });
    await answeredSoon(c, filed.id);
    // The page answers in the language just chosen (unless the address says otherwise).
    const updated = (await findCustomer(c.var.deps.sql, me.id)) ?? me;
    c.set('me', updated);
    return profilePage(c, { message: notice(t(c).saved) });
  });
  mine.post('/account/profile/email', async (c) => {
    const email = ((await form(c)).email ?? '').trim();
    const tr = t(c);
    if (!isEmail(email) || hasRefusedCharacter(email)) return profilePage(c, { errors: { email: tr.emailInvalid }, values: { email: hasRefusedCharacter(email) ? '' : email } }, 400);
    if (email.toLowerCase() !== (c.var.me!.email ?? '').toLowerCase()) await requestEmailChange(c, c.var.me!.id, email);
    return profilePage(c, { message: notice(tr.emailSent(email)) });
  });
  mine.post('/account/profile/other', async (c) => {
    const f = await form(c);
    const note = text(f.note, FORM_TEXT_MAX);
    if (!note) return profilePage(c, { errors: { note: t(c).otherRequired }, values: { note: hasRefusedCharacter(f.note ?? '') ? '' : (f.note ?? '').slice(0, FORM_TEXT_MAX) } }, 400);
    const filed = await fileRequest(c.var.deps, { type: 'rectification', customerId: c.var.me!.id, details: { note }, caller: null, locale: c.var.me!.locale, filedBy: 'customer' });
    return redirect(c, `/account/requests/${filed.id}?done=filed`);
  });

  // ---- requests (and the export's download) -------------------------------------------------
  const requestsPage = (c: PageContext, rows: RequestRow[], o: { error?: string; details?: string } = {}, status: 200 | 400 | 429 = 200) => {
    const tr = t(c);
    const l = lang(c);
    return show(
      c,
      tr.requestsTitle,
      html`${rows.length ? requestTable(c, rows) : html`<p>${tr.noRequests}</p>`}
        <section aria-labelledby="h-new"><h2 id="h-new">${tr.fileHeading}</h2><p>${tr.fileIntro}</p>
          <form method="post" action="${href(c, '/account/requests')}" novalidate>${csrfInput(c.var.session!)}
            <label for="f-type">${tr.typeLabel}</label>
            <select id="f-type" name="type">${REQUEST_TYPES.map((type) => html`<option value="${type}">${capital(REQUEST_TYPE_NAMES[l][type] ?? type)}</option>`)}</select>
            <label for="f-details">${tr.detailsLabel}</label>
            ${o.error ? html`<p class="error" id="f-details-error">${o.error}</p>` : ''}
            <textarea id="f-details" name="details" maxlength="${FORM_TEXT_MAX}"${o.error ? html` aria-invalid="true" aria-describedby="f-details-error"` : ''}>${o.details ?? ''}</textarea>
            <div><button type="submit">${tr.fileIt}</button></div>
          </form></section>`,
      status,
    );
  };
  mine.get('/account/requests', async (c) => requestsPage(c, await listRequests(c.var.deps.sql, { customerId: c.var.me!.id, limit: 100 })));
  mine.post('/account/requests', async (c) => {
    const f = await form(c);
    const type = REQUEST_TYPES.find((x) => x === f.type) as RequestType | undefined;
    const raw = f.details ?? '';
    const note = raw.trim() ? text(raw, FORM_TEXT_MAX) : '';
    if (!type || note === undefined) {
      const rows = await listRequests(c.var.deps.sql, { customerId: c.var.me!.id, limit: 100 });
      return requestsPage(c, rows, { error: t(c).detailsTooLong, details: hasRefusedCharacter(raw) ? '' : raw.slice(0, FORM_TEXT_MAX) }, 400);
    }
    // The same hourly quota as the API's POST /v1/requests (issue 11).
    const taken = await takeQuota(c.var.deps.sql, 'requests', `customer:${c.var.me!.id}`, QUOTAS.requests.customer);
    if (!taken.ok) {
      c.header('Retry-After', String(taken.retryAfterSeconds));
      const rows = await listRequests(c.var.deps.sql, { customerId: c.var.me!.id, limit: 100 });
      return requestsPage(c, rows, { error: t(c).quotaUsed(Math.ceil(taken.retryAfterSeconds / 60)), details: raw.slice(0, FORM_TEXT_MAX) }, 429);
    }
    const filed = await fileRequest(c.var.deps, { type, customerId: c.var.me!.id, details: note ? { note } : {}, caller: null, locale: c.var.me!.locale, filedBy: 'customer' });
    return redirect(c, `/account/requests/${filed.id}?done=filed`);
  });

  /** The person's own request, or a 404 page (another person's id looks exactly like no id). */
  const ownRequest = async (c: PageContext): Promise<RequestRow | undefined> => {
    const id = c.req.param('id') ?? '';
    if (!z.uuid().safeParse(id).success) return undefined;
    const r = await findRequest(c.var.deps.sql, id);
    return r && r.customerId === c.var.me!.id ? r : undefined;
  };
  const exportOf = async (c: PageContext, requestId: string) => {
    const [pkg] = await c.var.deps.sql<{ id: string; fileKey: string; bytes: number; sha256: string; expiresAt: Date; expired: boolean }[]>`
      select id, file_key as "fileKey", bytes::int as bytes, sha256, expires_at as "expiresAt", expires_at <= now() as expired from export_packages where request_id = ${requestId}`;
    return pkg;
  };

  mine.get('/account/requests/:id', async (c) => {
    const r = await ownRequest(c);
    const tr = t(c);
    const l = lang(c);
    if (!r) return show(c, tr.notFound, html``, 404);
    const pkg = r.type === 'access' && r.status === 'answered' ? await exportOf(c, r.id) : undefined;
    const answer =
      r.status === 'refused'
        ? html`<p>${tr.refusedBecause} ${REFUSAL_REASONS[r.reasonCode ?? '']?.[l] ?? ''}</p>${r.reason ? html`<p>${r.reason}</p>` : ''}${complaintLines(l).map((x) => html`<p>${x}</p>`)}`
        : r.status === 'answered'
          ? html`${
              // An access answer is its download (below); the email's lines are about its link.
              r.type === 'access' ? '' : outcomeLines(r, l).map((x) => (x ? html`<p>${x}</p>` : ''))
            }
            ${
              r.type === 'access'
                ? pkg && !pkg.expired
                  ? html`<p><a class="button" href="${href(c, `/account/requests/${r.id}/export`)}" download>${tr.download}</a></p><p class="hint">${tr.downloadExpires(formatDate(pkg.expiresAt, l, true))}</p>`
                  : html`<p>${tr.downloadGone}</p>`
                : ''
            }`
          : html`<p>${tr.noAnswerYet(formatDate(r.dueAt, l))}</p>`;
    return show(
      c,
      `${tr.requestTitle}: ${REQUEST_TYPE_NAMES[l][r.type] ?? r.type}`,
      html`${c.req.query('done') === 'filed' ? notice(tr.filed) : ''}
        <dl><dt>${tr.status}</dt><dd data-testid="request-status">${tr.statusNames[r.status] ?? r.status}${r.slaBreached ? html` (${tr.late})` : ''}</dd>
          <dt>${tr.receivedAt}</dt><dd>${formatDate(r.receivedAt, l, true)}</dd><dt>${tr.dueAt}</dt><dd>${formatDate(r.dueAt, l)}</dd></dl>
        <section aria-labelledby="h-answer"><h2 id="h-answer">${tr.answer}</h2>${answer}</section>
        <p><a href="${href(c, '/account/requests')}">${tr.requestsTitle}</a></p>`,
    );
  });

  mine.get('/account/requests/:id/export', async (c) => {
    const r = await ownRequest(c);
    const pkg = r?.type === 'access' ? await exportOf(c, r.id) : undefined;
    if (!r || !pkg) return show(c, t(c).notFound, html``, 404);
    if (pkg.expired) return show(c, t(c).downloadGone, html`<p><a href="${href(c, '/account')}">${t(c).exportButton}</a></p>`, 404);
    await recordInLedger(c.var.deps.sql, { actor: { type: 'customer', id: c.var.me!.id, role: null }, action: 'export.download', outcome: 'done', objectType: 'export', objectId: pkg.id });
    return (await exportDownload(c.var.deps, pkg)) as never;
  });

  // ---- preferences --------------------------------------------------------------------------
  const preferencesPage = (c: PageContext, message?: Html) => {
    const tr = t(c);
    const on = c.var.me!.marketingEmails;
    return show(
      c,
      tr.prefsTitle,
      html`${message ?? ''}<p>${tr.prefsIntro}</p>
        <form method="post" action="${href(c, '/account/preferences')}">${csrfInput(c.var.session!)}
          <fieldset><legend>${tr.marketingLegend}</legend>
            <div><input type="radio" id="m-yes" name="marketing" value="yes"${on ? html` checked` : ''}> <label for="m-yes" style="display:inline">${tr.yes}</label></div>
            <div><input type="radio" id="m-no" name="marketing" value="no"${on ? '' : html` checked`}> <label for="m-no" style="display:inline">${tr.no}</label></div>
          </fieldset>
          <button type="submit">${tr.save}</button>
        </form>`,
    );
  };
  mine.get('/account/preferences', (c) => preferencesPage(c));
  mine.post('/account/preferences', async (c) => {
    const choice = (await form(c)).marketing;
    if (choice !== 'yes' && choice !== 'no') return preferencesPage(c, notice(t(c).badForm, 'bad'));
    // The lifecycle workflow owns the preference (D11): the same update the API uses.
    await c.var.deps.temporal.workflow.getHandle(customerWorkflowId(c.var.me!.id)).executeUpdate(setPreferencesUpdate, { args: [{ marketingEmails: choice === 'yes' }] });
    c.set('me', { ...c.var.me!, marketingEmails: choice === 'yes' });
    return preferencesPage(c, notice(t(c).prefsSaved));
  });

  // ---- close account ------------------------------------------------------------------------
  const closeStart = (c: PageContext, error?: string, status: 200 | 403 = 200) => {
    const tr = t(c);
    return show(
      c,
      tr.closeTitle,
      html`<p>${tr.closeIntro}</p>
        <form method="post" action="${href(c, '/account/close')}" novalidate>${csrfInput(c.var.session!)}
          ${field({ name: 'password', label: tr.password, type: 'password', autocomplete: 'current-password', required: true, error })}
          <button type="submit">${tr.continue}</button>
        </form>`,
      status,
    );
  };
  mine.get('/account/close', (c) => closeStart(c));
  mine.post('/account/close', async (c) => {
    const { sql } = c.var.deps;
    const tr = t(c);
    const [stored] = await sql<{ hash: string | null }[]>`select password_hash as hash from customers where id = ${c.var.me!.id}`;
    if (!(await verifyPassword(stored?.hash, (await form(c)).password ?? ''))) return closeStart(c, tr.wrongPassword, 403);
    // What erasure will do, from the same map erasure runs (D15): every category with data goes,
    // except what the law makes us keep, which is listed with its reason.
    const subject = await resolveSubject(sql, { customerId: c.var.me!.id });
    const { data } = await exportSubject(sql, subject);
    const held = (data.recordings ?? []).filter((r) => r.held && r.status !== 'deleted').length;
    const erased = Object.entries(data)
      .filter(([category, rows]) => tr.categoryNames[category] && rows.length > (category === 'recordings' ? held : 0))
      .map(([category, rows]) => ({ name: tr.categoryNames[category]!, count: rows.length - (category === 'recordings' ? held : 0) }));
    const kept = [...(held ? [tr.keptHeld(held)] : []), tr.keptRequests, tr.keptReceipts, ...((data.recipients ?? []).length ? [tr.keptRecipients] : [])];
    return show(
      c,
      tr.closeTitle,
      html`<section aria-labelledby="h-erase"><h2 id="h-erase">${tr.closeWillErase}</h2>
          <ul data-testid="will-erase">${erased.map((e) => html`<li>${e.name}: ${tr.items(e.count)}</li>`)}</ul></section>
        <section aria-labelledby="h-keep"><h2 id="h-keep">${tr.closeWillKeep}</h2>
          <ul data-testid="will-keep">${kept.map((k) => html`<li>${k}</li>`)}</ul></section>
        <form method="post" action="${href(c, '/account/close/confirm')}">${csrfInput(c.var.session!)}
          <input type="hidden" name="ticket" value="${closeTicket(c.var.session!, Date.now())}">
          <button type="submit" class="danger">${tr.closeConfirm}</button>
        </form>
        <p><a href="${href(c, '/account')}">${tr.cancel}</a></p>`,
    );
  });
  mine.post('/account/close/confirm', async (c) => {
    if (!closeTicketValid(c.var.session!, (await form(c)).ticket)) return closeStart(c, t(c).badForm, 403);
    const me = c.var.me!;
    await fileRequest(c.var.deps, { type: 'erasure', customerId: me.id, details: { note: 'account closure' }, caller: null, locale: me.locale, filedBy: 'customer', autoApprove: true });
    await endSession(c, c.var.session!);
    return redirect(c, '/account/login?done=closed');
  });

  // ---- a client's own users (D3) ------------------------------------------------------------
  mine.get('/account/client', async (c) => {
    const me = c.var.me!;
    const tr = t(c);
    const l = lang(c);
    if (!me.teamLead) return show(c, tr.notFound, html``, 404);
    const to = new Date();
    const from = new Date(to.getTime() - 30 * 86_400_000);
    const [messages, stats] = await Promise.all([
      listCallMessages(c.var.deps.sql, { clientId: me.clientId, limit: 200, forClientUser: true }),
      callStats(c.var.deps.sql, { clientId: me.clientId, from: from.toISOString().slice(0, 10), to: to.toISOString().slice(0, 10) }),
    ]);
    return show(
      c,
      tr.clientTitle,
      html`<p>${tr.clientIntro}</p>
        <section aria-labelledby="h-cm"><h2 id="h-cm">${tr.messagesHeading}</h2>
          ${
            messages.length
              ? html`<table><thead><tr><th scope="col">${tr.sentAt}</th><th scope="col">${tr.caller}</th><th scope="col">${tr.message}</th></tr></thead><tbody>
                ${messages.map((m) => html`<tr><td data-label="${tr.sentAt}">${formatDate(m.sentAt, l, true)}</td><td data-label="${tr.caller}">${m.callerName ?? ''} ${m.callerNumber ?? ''}</td><td data-label="${tr.message}">${m.body}</td></tr>`)}</tbody></table>`
              : html`<p>${tr.noMessages}</p>`
          }</section>
        <section aria-labelledby="h-stats"><h2 id="h-stats">${tr.statsHeading}</h2>
          <table><thead><tr><th scope="col">${tr.day}</th><th scope="col">${tr.calls}</th><th scope="col">${tr.messages}</th></tr></thead><tbody>
            ${stats.map((s) => html`<tr><td data-label="${tr.day}">${s.day}</td><td data-label="${tr.calls}">${s.calls}</td><td data-label="${tr.messages}">${s.messages}</td></tr>`)}</tbody></table></section>`,
    );
  });

  app.route('/', mine);
  return app;
}

const capital = (s: string) => s.charAt(0).toUpperCase() + s.slice(1);
