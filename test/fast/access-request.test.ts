import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApplicationFailure } from '@temporalio/common';
import { decideUpdate, type accessRequest, type AccessRequestInput, type Decision } from '../../workflows/access-request';
import { requestWorkflowId } from '../../workflows/ids';
import { PERMANENT_SMTP_FAILURE } from '../../workflows/request-types';
import { waitFor } from '../support/wait';
import { gate, startFakeWorker, type FakeWorker } from './fake-worker';
import { updateRefusal } from '../support/updates';

let w: FakeWorker;
/** Per request: what the assessment finds, whether execution is held, whether the answer bounces for good. */
const flagsOf = new Map<string, string[]>();
const executionGate = new Map<string, ReturnType<typeof gate>>();
const bouncing = new Set<string>();

beforeAll(async () => {
  w = await startFakeWorker({
    async acknowledgeRequest() {},
    async assessRequest({ requestId }) {
      return { flags: flagsOf.get(requestId) ?? [], earlierRequestIds: [] };
    },
    async sendStaffEmail({ key }) {
      return { messageId: `<${key}@fast>` };
    },
    async markSlaBreached() {},
    async recordDecision() {},
    async executeRequest({ requestId }) {
      await executionGate.get(requestId)?.promise;
      return { exported: true };
    },
    async sendRequestAnswer({ requestId }) {
      if (bouncing.has(requestId)) throw ApplicationFailure.nonRetryable('SMTP 550 after RCPT TO', PERMANENT_SMTP_FAILURE);
    },
    async markDeliveryFailed() {},
    async forgetContact() {},
  });
});
afterAll(async () => w?.stop());

const at = (ms: number) => new Date(Date.now() + ms).toISOString();
/** A request received now whose reminders, escalation and due date are `offsets` ms away (hours unless given). */
function input(offsets: { reminders?: number[]; escalation?: number; due?: number; filedAt?: string } = {}): AccessRequestInput {
  const hour = 3_600_000;
  return {
    requestId: randomUUID(),
    type: 'access',
    customerId: null,
    receivedAt: at(0),
    reminderAts: (offsets.reminders ?? [hour, 2 * hour]).map(at),
    escalationAt: at(offsets.escalation ?? 3 * hour),
    dueAt: at(offsets.due ?? 4 * hour),
    repeatWindowStart: at(-365 * 24 * hour),
    ...(offsets.filedAt ? { filedAt: offsets.filedAt } : {}),
  };
}
const start = (i: AccessRequestInput) =>
  w.client.workflow.start<typeof accessRequest>('accessRequest', { workflowId: requestWorkflowId(i.requestId), taskQueue: w.taskQueue, args: [i] });
const mine = (i: AccessRequestInput) => (c: { input: unknown }) => JSON.stringify(c.input).includes(i.requestId);
const staffKeys = (i: AccessRequestInput) => w.calls.filter((c) => c.name === 'sendStaffEmail' && mine(i)(c)).map((c) => (c.input as { key: string }).key.replace(`request:${i.requestId}:`, ''));
const approve: Decision = { decision: 'approve', decidedBy: 'officer-token' };

describe('accessRequest (fast tier: real workflow, fake activities)', () => {
  it('reminds, escalates, then records the breach in that order however the reminders come in, and goes on to the decision', async () => {
    // Reminders given out of order: the workflow sorts every point by time.
    const i = input({ reminders: [1_600, 1_000], escalation: 2_200, due: 2_800 });
    const handle = await start(i);
    // The breach is recorded, then staff are told; a decision sent between the two is carried
    // out at once (its update runs beside the timers), so wait for the email before deciding.
    await waitFor(() => staffKeys(i).includes('breach'), { what: 'the breach and its staff email', timeoutMs: 10_000 });
    await handle.executeUpdate(decideUpdate, { args: [approve] });
    const result = await handle.result();

    expect(result).toMatchObject({ status: 'answered', decision: 'approve', slaBreached: true, escalated: true, reminders: 2 });
    expect(w.names(mine(i))).toEqual([
      'acknowledgeRequest',
      'assessRequest',
      'sendStaffEmail',
      'sendStaffEmail',
      'sendStaffEmail',
      'markSlaBreached',
      'sendStaffEmail',
      'recordDecision',
      'executeRequest',
      'sendRequestAnswer',
    ]);
    expect(staffKeys(i)).toEqual(['reminder:1', 'reminder:2', 'escalation', 'breach']);
  });

  it('filed late: reminders already due are skipped, the escalation comes at once', async () => {
    const i = input({ reminders: [-2_000, 60_000], escalation: -1_000, due: 60_000, filedAt: at(0) });
    i.receivedAt = at(-3_000);
    const handle = await start(i);
    await waitFor(() => staffKeys(i).includes('escalation'), { what: 'the escalation', timeoutMs: 10_000 });
    await handle.executeUpdate(decideUpdate, { args: [approve] });
    expect(await handle.result()).toMatchObject({ status: 'answered', escalated: true, reminders: 0, slaBreached: false });
    expect(staffKeys(i)).toEqual(['escalation']);
  });

  it('an early decision answers once recorded, before it is carried out, and no staff reminder follows', async () => {
    const i = input();
    executionGate.set(i.requestId, gate());
    const handle = await start(i);
    // Sent at once: the update waits for the assessment, then records the decision and returns.
    const answered = await handle.executeUpdate(decideUpdate, { args: [approve] });
    expect(answered).toMatchObject({ decision: 'approve', status: 'awaiting_decision' });
    // The execution is still held: the officer's call did not wait for it.
    expect(w.names(mine(i))).not.toContain('sendRequestAnswer');
    executionGate.get(i.requestId)!.open();
    expect(await handle.result()).toMatchObject({ status: 'answered', reminders: 0, escalated: false, slaBreached: false });
    expect(w.names(mine(i))).toEqual(['acknowledgeRequest', 'assessRequest', 'recordDecision', 'executeRequest', 'sendRequestAnswer']);
  });

  it('validators refuse an unlawful refusal and a second decision before anything is recorded; a lawful refusal is answered, not executed', async () => {
    const i = input();
    const handle = await start(i);
    await waitFor(() => w.names(mine(i)).includes('assessRequest'), { what: 'the assessment' });
    expect(await updateRefusal(handle.executeUpdate(decideUpdate, { args: [{ decision: 'refuse', decidedBy: 'x' }] }))).toBe('InvalidDecision');
    expect(await updateRefusal(handle.executeUpdate(decideUpdate, { args: [{ decision: 'refuse', reasonCode: 'legal_claims', hasReason: true, decidedBy: 'x' }] }))).toBe('InvalidDecision'); // an erasure ground
    // "excessive" needs the repetitive flag or evidence; this request has neither.
    expect(await updateRefusal(handle.executeUpdate(decideUpdate, { args: [{ decision: 'refuse', reasonCode: 'excessive', hasReason: true, decidedBy: 'x' }] }))).toBe('InvalidDecision');
    expect(w.names(mine(i))).not.toContain('recordDecision');

    await handle.executeUpdate(decideUpdate, { args: [{ decision: 'refuse', reasonCode: 'manifestly_unfounded', hasReason: true, decidedBy: 'officer-token' }] });
    expect(await updateRefusal(handle.executeUpdate(decideUpdate, { args: [approve] }))).toBe('AlreadyDecided');
    expect(await handle.result()).toMatchObject({ status: 'refused', decision: 'refuse' });
    expect(w.names(mine(i))).toEqual(['acknowledgeRequest', 'assessRequest', 'recordDecision', 'sendRequestAnswer']);
  });

  it('excessive is lawful against a request flagged repetitive', async () => {
    const i = input();
    flagsOf.set(i.requestId, ['repetitive']);
    const handle = await start(i);
    await handle.executeUpdate(decideUpdate, { args: [{ decision: 'refuse', reasonCode: 'excessive', hasReason: true, decidedBy: 'officer-token' }] });
    expect(await handle.result()).toMatchObject({ status: 'refused', flags: ['repetitive'] });
  });

  it('an answer refused for good marks the request delivery_failed instead of retrying', async () => {
    const i = input();
    bouncing.add(i.requestId);
    const handle = await start(i);
    await handle.executeUpdate(decideUpdate, { args: [approve] });
    expect(await handle.result()).toMatchObject({ status: 'delivery_failed' });
    const marked = w.calls.filter((c) => c.name === 'markDeliveryFailed' && mine(i)(c));
    expect(marked.map((c) => c.input)).toEqual([{ requestId: i.requestId, stage: 'answer' }]);
    expect(w.calls.filter((c) => c.name === 'sendRequestAnswer' && mine(i)(c))).toHaveLength(1);
  });
});
