import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { NoticeBatchResult } from '../../activities/policies';
import { policyWorkflowId } from '../../workflows/ids';
import type { policyChange, PolicyChangeInput } from '../../workflows/policy-change';
import { startFakeWorker, type FakeWorker } from './fake-worker';

/**
 * The campaign's outbox, per version, as the fakes keep it: `people` notices to send, of which
 * the first `failing` fail in the first pass; each retry round makes `healedPerRound` of the
 * failed ones deliverable again.
 */
interface Outbox {
  people: number;
  failing: number;
  healedPerRound: number;
  sent: number;
  failed: number;
  pending: number;
}
const outboxes = new Map<string, Outbox>();
let w: FakeWorker;

beforeAll(async () => {
  w = await startFakeWorker({
    async sendPolicyNotices({ version, cursor }): Promise<NoticeBatchResult> {
      const o = outboxes.get(version)!;
      if (cursor !== null && o.sent + o.failed === 0) {
        // The first pass: everyone gets a row; the failing ones fail.
        o.failed = o.failing;
        o.sent = o.people - o.failing;
      } else {
        // A catch-up: what was made pending again is sent now.
        o.sent += o.pending;
        o.pending = 0;
      }
      return { cursor: cursor === null ? null : 'ffffffff-ffff-ffff-ffff-ffffffffffff', sent: 0, failed: 0, done: true, totals: { sent: o.sent, failed: o.failed } };
    },
    async retryFailedNotices({ version }) {
      const o = outboxes.get(version)!;
      const healed = Math.min(o.healedPerRound, o.failed);
      o.failed -= healed;
      o.pending += healed;
      return healed;
    },
    async makePolicyCurrent() {},
  });
});
afterAll(async () => w?.stop());

async function campaign(outbox: Omit<Outbox, 'sent' | 'failed' | 'pending'>, options: Pick<PolicyChangeInput, 'retryDelaysMs'> & { effectiveInMs: number }) {
  const version = `fast-${randomUUID().slice(0, 8)}`;
  outboxes.set(version, { ...outbox, sent: 0, failed: 0, pending: 0 });
  const handle = await w.client.workflow.start<typeof policyChange>('policyChange', {
    workflowId: policyWorkflowId(version),
    taskQueue: w.taskQueue,
    args: [{ version, effectiveAt: new Date(Date.now() + options.effectiveInMs).toISOString(), material: true, catchUpIntervalMs: 60_000, retryDelaysMs: options.retryDelaysMs }],
  });
  const result = await handle.result();
  const calls = w.calls.filter((c) => (c.input as { version: string }).version === version);
  return { result, names: calls.map((c) => c.name), outbox: outboxes.get(version)! };
}

describe('policyChange retry rounds (fast tier: real workflow, fake activities)', () => {
  it('gives failed notices another pass after each delay until none fail, then makes the version current at its date', async () => {
    const { result, names } = await campaign({ people: 10, failing: 3, healedPerRound: 2 }, { retryDelaysMs: [200, 200, 200], effectiveInMs: 3_000 });
    expect(result).toMatchObject({ phase: 'current', sent: 10, failed: 0, retryRound: 2 });
    // First pass, catch-up, then per round: retry, and a pass for what it made pending; then
    // catch-ups until the date (how many depends on the clock) and the version made current.
    expect(names.slice(0, 6)).toEqual(['sendPolicyNotices', 'sendPolicyNotices', 'retryFailedNotices', 'sendPolicyNotices', 'retryFailedNotices', 'sendPolicyNotices']);
    expect(names.slice(6, -1).every((n) => n === 'sendPolicyNotices')).toBe(true);
    expect(names.at(-1)).toBe('makePolicyCurrent');
  });

  it('stops after the last delay with notices still failing, and leaves them for staff', async () => {
    const { result, names } = await campaign({ people: 5, failing: 2, healedPerRound: 0 }, { retryDelaysMs: [100, 100], effectiveInMs: 2_500 });
    expect(result).toMatchObject({ phase: 'current', sent: 3, failed: 2, retryRound: 2 });
    expect(names.filter((n) => n === 'retryFailedNotices')).toHaveLength(2);
  });

  it('skips a round whose delay would end after the effective date', async () => {
    const { result, names } = await campaign({ people: 5, failing: 1, healedPerRound: 0 }, { retryDelaysMs: [100, 60_000], effectiveInMs: 2_500 });
    expect(result).toMatchObject({ phase: 'current', failed: 1, retryRound: 1 });
    expect(names.filter((n) => n === 'retryFailedNotices')).toHaveLength(1);
  });
});
