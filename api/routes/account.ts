import { Hono } from 'hono';
import type { AppEnv } from '../context';

/** The small page the invitation link opens: choose a password, which posts to /v1/auth/password. */
const PAGE = `<!doctype html>
<html lang="da">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <meta name="referrer" content="no-referrer">
  <title>TopCall — vælg adgangskode</title>
  <style>
    body { font-family: system-ui, sans-serif; max-width: 28rem; margin: 3rem auto; padding: 0 1rem; color: #222 }
    label { display: block; margin: 1rem 0 .3rem } input { width: 100%; padding: .5rem; font-size: 1rem }
    button { margin-top: 1rem; padding: .6rem 1.2rem; font-size: 1rem } #msg { margin-top: 1rem }
    footer { margin-top: 3rem; font-size: .85rem; color: #555 }
  </style>
</head>
<body>
  <h1>Vælg din adgangskode</h1>
  <p>Choose your password for your TopCall account.</p>
  <form id="f">
    <label for="p1">Adgangskode / password (mindst 10 tegn)</label>
    <input id="p1" type="password" autocomplete="new-password" minlength="10" required>
    <label for="p2">Gentag / repeat</label>
    <input id="p2" type="password" autocomplete="new-password" minlength="10" required>
    <button type="submit">Gem / save</button>
  </form>
  <p id="msg" role="status"></p>
  <footer>TopCall ApS · Axeltorv 8 · 4700 Næstved · kundeservice@topcall.dk · tlf. 48 22 10 00</footer>
  <script>
    const token = new URLSearchParams(location.search).get('token');
    history.replaceState(null, '', location.pathname); // keep the one-time token out of history
    const msg = document.getElementById('msg');
    document.getElementById('f').addEventListener('submit', async (e) => {
      e.preventDefault();
      const p1 = document.getElementById('p1').value, p2 = document.getElementById('p2').value;
      if (p1 !== p2) { msg.textContent = 'Adgangskoderne er ikke ens. / The passwords differ.'; return; }
      const res = await fetch('/v1/auth/password', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ token, password: p1 }) });
      if (res.status === 204) { msg.textContent = 'Din adgangskode er gemt. Du kan nu logge ind. / Your password is saved; you can log in now.'; e.target.remove(); }
      else { const p = await res.json().catch(() => ({})); msg.textContent = p.detail || 'Noget gik galt. / Something went wrong.'; }
    });
  </script>
</body>
</html>`;

export function accountRoutes() {
  const app = new Hono<AppEnv>();
  app.get('/account/set-password', (c) => {
    c.header('cache-control', 'no-store');
    c.header('referrer-policy', 'no-referrer');
    return c.html(PAGE);
  });
  return app;
}
