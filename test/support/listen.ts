import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { serve, type ServerType } from '@hono/node-server';

type Fetch = (req: Request) => Response | Promise<Response>;

/**
 * An HTTP server on a port the OS gives it, listening before the app it serves exists (503
 * until `serve` is called). For tests whose configuration needs the API's own URL — a public
 * URL, a codec endpoint — before the stack is up: picking a free port and binding it only after
 * the stack's start let something else take it in between (EADDRINUSE, seen in CI).
 */
export async function listenFirst(): Promise<{ server: ServerType; url: string; serve(fetch: Fetch): void }> {
  let current: Fetch = () => new Response('starting', { status: 503 });
  const server = serve({ fetch: (req) => current(req), port: 0, hostname: '127.0.0.1' });
  if (!server.listening) await once(server, 'listening');
  return {
    server,
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    serve: (fetch) => {
      current = fetch;
    },
  };
}
