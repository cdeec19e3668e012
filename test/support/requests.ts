import { expect } from 'vitest';
import { json } from './api';
import { waitFor } from './wait';

type App = { request: (path: string, init?: RequestInit) => Response | Promise<Response> };
type Auth = { authorization: string };

/** Files a data-subject request through the API (202) and returns its id. */
export async function fileRequest(app: App, who: Auth, body: Record<string, unknown>): Promise<string> {
  const res = await app.request('/v1/requests', json(body, who));
  expect(res.status, await res.clone().text()).toBe(202);
  return ((await res.json()) as { id: string }).id;
}

/** Waits until the request's assessment is in and it awaits an officer's decision. */
export async function awaitDecision(app: App, officer: Auth, id: string): Promise<void> {
  await waitFor(async () => ((await (await app.request(`/v1/requests/${id}`, { headers: officer })).json()) as { status: string }).status === 'awaiting_decision', {
    what: `request ${id} to await a decision`,
  });
}

/** Files a request, waits for the assessment, and has the officer approve it (200, carried out). */
export async function fileAndApprove(app: App, who: Auth, officer: Auth, body: Record<string, unknown>): Promise<{ id: string; outcome: Record<string, unknown> }> {
  const id = await fileRequest(app, who, body);
  await awaitDecision(app, officer, id);
  const decided = await app.request(`/v1/requests/${id}/decision`, json({ decision: 'approve' }, { ...officer, prefer: 'wait=30' }));
  expect(decided.status).toBe(200);
  return (await decided.json()) as { id: string; outcome: Record<string, unknown> };
}
