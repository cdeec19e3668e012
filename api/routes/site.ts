import { Hono } from 'hono';
import { html } from 'hono/html';
import type { AppEnv } from '../context';
import { currentPolicy, upcomingPolicies } from '../../db/policies';
import { fixedDurationMs } from '../../lib/durations';
import { T } from '../web/i18n';
import { formatDate, langOf, page } from '../web/layout';
import { currentSession, sessionCookieName } from '../web/session';

/** Public pages: the policy in force with any announced version highlighted (D12), and the cookie statement (D14). */
export function siteRoutes() {
  const app = new Hono<AppEnv>();

  app.get('/privacy', async (c) => {
    const { sql } = c.var.deps;
    const l = langOf(c);
    const tr = T[l];
    const [current, upcoming, session] = await Promise.all([currentPolicy(sql), upcomingPolicies(sql), currentSession(c)]);
    return c.html(
      page(c, {
        lang: l,
        title: tr.privacyTitle,
        session,
        body: html`${upcoming.map(
          (p) => html`<section class="upcoming" aria-labelledby="up-${p.version}"><h2 id="up-${p.version}">${tr.upcoming(p.version, formatDate(p.effectiveAt, l))}</h2>
            <p>${tr.upcomingIntro} ${p.summary}</p>
            <details><summary>${tr.upcoming(p.version, formatDate(p.effectiveAt, l))}</summary><div class="policy" lang="da">${p.body}</div></details></section>`,
        )}
          ${
            current
              ? html`<p>${tr.inForceSince(current.version, formatDate(current.effectiveAt, l))}</p><div class="policy" lang="da">${current.body}</div>`
              : ''
          }`,
      }),
    );
  });

  app.get('/cookies', async (c) => {
    const l = langOf(c);
    const tr = T[l];
    const days = Math.round(fixedDurationMs(c.var.deps.config.CUSTOMER_SESSION_TTL) / 86_400_000);
    const name = sessionCookieName(c);
    return c.html(
      page(c, {
        lang: l,
        title: tr.cookiesTitle,
        session: await currentSession(c),
        body: html`${tr.cookiesBody(name, days).map((p) => html`<p>${p}</p>`)}
          <table><thead><tr><th scope="col">${tr.cookieTable.name}</th><th scope="col">${tr.cookieTable.purpose}</th><th scope="col">${tr.cookieTable.lifetime}</th></tr></thead>
            <tbody><tr><td data-label="${tr.cookieTable.name}"><code>${name}</code></td><td data-label="${tr.cookieTable.purpose}">${tr.cookieTable.purposeValue}</td><td data-label="${tr.cookieTable.lifetime}">${tr.cookieTable.lifetimeValue(days)}</td></tr></tbody></table>`,
      }),
    );
  });

  return app;
}
