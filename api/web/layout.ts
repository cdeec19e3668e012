import type { Context } from 'hono';
import { html, raw } from 'hono/html';
import type { HtmlEscapedString } from 'hono/utils/html';
import type { AppEnv } from '../context';
import type { WebSession } from './session';
import { CONTACT_BLOCK } from '../../lib/email-templates';
import { T, type Lang } from './i18n';

export type Html = HtmlEscapedString | Promise<HtmlEscapedString>;

/**
 * Danish first (D13: the policy is Danish); `?lang=en` switches a page to English, and a
 * signed-in person's saved language is used when the address does not say.
 */
export function langOf(c: Context<AppEnv>, saved?: string | null): Lang {
  const asked = c.req.query('lang');
  if (asked === 'en' || asked === 'da') return asked;
  return saved === 'en' ? 'en' : 'da';
}

/** A link within the pages that keeps an explicit `?lang=` choice. */
export function href(c: Context<AppEnv>, path: string): string {
  const asked = c.req.query('lang');
  if (asked !== 'en' && asked !== 'da') return path;
  return `${path}${path.includes('?') ? '&' : '?'}lang=${asked}`;
}

const CSS = `
:root { color-scheme: light; --fg: #1b1b1b; --muted: #555; --line: #c9c9c9; --accent: #0b57a4; --bad: #a4000f; --ok: #12632f; --note: #fff7d6 }
* { box-sizing: border-box }
body { margin: 0; font: 1rem/1.5 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--fg); background: #fff }
a { color: var(--accent) }
a:focus-visible, button:focus-visible, input:focus-visible, select:focus-visible, textarea:focus-visible { outline: 3px solid #f5a623; outline-offset: 2px }
.skip { position: absolute; left: -999px } .skip:focus { left: 1rem; top: 1rem; background: #fff; padding: .5rem; z-index: 1 }
header.site { border-bottom: 1px solid var(--line); padding: .75rem 1rem; display: flex; flex-wrap: wrap; gap: .5rem 1rem; align-items: center; justify-content: space-between }
header.site .brand { font-weight: 700; text-decoration: none; color: var(--fg) }
nav ul { list-style: none; margin: 0; padding: 0; display: flex; flex-wrap: wrap; gap: .25rem 1rem }
nav form { display: inline }
main { max-width: 48rem; margin: 0 auto; padding: 1rem }
h1 { font-size: 1.6rem; margin: .5rem 0 1rem } h2 { font-size: 1.25rem; margin-top: 2rem }
label { display: block; margin: 1rem 0 .25rem; font-weight: 600 }
input[type=text], input[type=email], input[type=password], select, textarea { width: 100%; max-width: 30rem; padding: .5rem; font: inherit; border: 1px solid #767676; border-radius: 4px }
textarea { min-height: 6rem }
button, .button { display: inline-block; margin-top: 1rem; padding: .55rem 1.1rem; font: inherit; border-radius: 4px; border: 1px solid var(--accent); background: var(--accent); color: #fff; cursor: pointer; text-decoration: none }
button.link { background: none; border: none; color: var(--accent); padding: 0; margin: 0; text-decoration: underline }
button.danger { background: var(--bad); border-color: var(--bad) }
.hint { color: var(--muted); font-size: .95rem; margin: .25rem 0 }
.error { color: var(--bad); font-weight: 600; margin: .25rem 0 }
.notice { border-left: 4px solid var(--accent); background: #eef4fb; padding: .75rem 1rem; margin: 1rem 0 }
.notice.ok { border-color: var(--ok); background: #eaf6ee } .notice.bad { border-color: var(--bad); background: #fbeeee }
.upcoming { border: 2px solid #b07d00; background: var(--note); padding: .75rem 1rem; margin: 1rem 0 }
table { border-collapse: collapse; width: 100%; margin: .5rem 0 } caption { text-align: left; font-weight: 600; padding: .25rem 0 }
th, td { text-align: left; border-bottom: 1px solid var(--line); padding: .4rem .5rem .4rem 0; vertical-align: top }
dl { display: grid; grid-template-columns: minmax(8rem, max-content) 1fr; gap: .25rem 1rem } dt { font-weight: 600 } dd { margin: 0 }
.policy { white-space: pre-wrap }
footer.site { border-top: 1px solid var(--line); margin-top: 3rem; padding: 1rem; color: var(--muted); font-size: .95rem }
footer.site address { font-style: normal; white-space: pre-line }
@media (max-width: 40rem) { table, thead, tbody, tr, th, td { display: block } thead { position: absolute; left: -999px } td { border: none; padding: .1rem 0 } tr { border-bottom: 1px solid var(--line); padding: .5rem 0 } td[data-label]::before { content: attr(data-label) ": "; font-weight: 600 } }
`;

export interface PageOptions {
  lang: Lang;
  title: string;
  session?: WebSession;
  /** Shows the client-users link (D3) for a team lead. */
  clientUser?: boolean;
  body: Html;
}

/** Every page: landmarks, a skip link, the language switch, and the contact block of D13. */
export function page(c: Context<AppEnv>, o: PageOptions): Html {
  const t = T[o.lang];
  const other: Lang = o.lang === 'da' ? 'en' : 'da';
  const switchTo = (() => {
    const url = new URL(c.req.url);
    url.searchParams.set('lang', other);
    url.searchParams.delete('token'); // a one-time link stays in the address bar it came in
    return `${url.pathname}?${url.searchParams.toString()}`;
  })();
  const nav = o.session
    ? html`<nav aria-label="${t.navLabel}"><ul>
        <li><a href="${href(c, '/account')}">${t.navData}</a></li>
        <li><a href="${href(c, '/account/profile')}">${t.navProfile}</a></li>
        <li><a href="${href(c, '/account/requests')}">${t.navRequests}</a></li>
        <li><a href="${href(c, '/account/preferences')}">${t.navPreferences}</a></li>
        ${o.clientUser ? html`<li><a href="${href(c, '/account/client')}">${t.navClient}</a></li>` : ''}
        <li><a href="${href(c, '/account/close')}">${t.navClose}</a></li>
        <li><form method="post" action="${href(c, '/account/logout')}"><input type="hidden" name="csrf" value="${o.session.csrf}"><button class="link" type="submit">${t.logout}</button></form></li>
      </ul></nav>`
    : html`<nav aria-label="${t.navLabel}"><ul><li><a href="${href(c, '/account/login')}">${t.login}</a></li></ul></nav>`;
  return html`<!doctype html>
<html lang="${o.lang}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>${o.title} · TopCall</title>
<style>${raw(CSS)}</style>
</head>
<body>
<a class="skip" href="#main">${t.skip}</a>
<header class="site">
  <a class="brand" href="${href(c, o.session ? '/account' : '/privacy')}">TopCall</a>
  ${nav}
  <a href="${switchTo}" lang="${other}" hreflang="${other}">${t.otherLanguage}</a>
</header>
<main id="main" tabindex="-1">
<h1>${o.title}</h1>
${o.body}
</main>
<footer class="site">
  <address>${CONTACT_BLOCK[o.lang]}</address>
  <p><a href="${href(c, '/privacy')}">${t.navPrivacy}</a> · <a href="${href(c, '/cookies')}">${t.navCookies}</a></p>
</footer>
</body>
</html>`;
}

/** A labelled field with its hint and error tied to it (aria-describedby, aria-invalid). */
export function field(o: {
  name: string;
  label: string;
  type?: string;
  value?: string;
  error?: string;
  hint?: string;
  autocomplete?: string;
  required?: boolean;
}): Html {
  const id = `f-${o.name}`;
  const described = [o.hint ? `${id}-hint` : '', o.error ? `${id}-error` : ''].filter(Boolean).join(' ');
  return html`<label for="${id}">${o.label}</label>
${o.hint ? html`<p class="hint" id="${id}-hint">${o.hint}</p>` : ''}
${o.error ? html`<p class="error" id="${id}-error">${o.error}</p>` : ''}
<input id="${id}" name="${o.name}" type="${o.type ?? 'text'}" value="${o.value ?? ''}"${raw(o.autocomplete ? ` autocomplete="${o.autocomplete}"` : '')}${raw(o.required ? ' required' : '')}${raw(described ? ` aria-describedby="${described}"` : '')}${raw(o.error ? ' aria-invalid="true"' : '')}>`;
}

export const csrfInput = (session: WebSession) => html`<input type="hidden" name="csrf" value="${session.csrf}">`;

export function formatDate(iso: string | Date | null | undefined, lang: Lang, withTime = false): string {
  if (!iso) return '—';
  const d = iso instanceof Date ? iso : new Date(iso);
  return new Intl.DateTimeFormat(lang === 'da' ? 'da-DK' : 'en-GB', { dateStyle: 'long', ...(withTime ? { timeStyle: 'short' } : {}), timeZone: 'Europe/Copenhagen' }).format(d);
}
