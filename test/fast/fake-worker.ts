import { randomUUID } from 'node:crypto';
import { inject } from 'vitest';
import { Client, Connection, type WorkflowHandle } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import { DefaultLogger, NativeConnection, Runtime, Worker } from '@temporalio/worker';
import type { Activities } from '../../activities';
import { testDataConverter } from '../support/stack';

/** Fakes typed against the real activities: a renamed activity or a changed signature fails tsc here. */
export type FakeActivities = Partial<Activities>;

export interface ActivityCall {
  name: keyof Activities;
  input: unknown;
}

export interface FakeWorker {
  client: Client;
  taskQueue: string;
  /** Every activity call the workflows made, in the order they started. */
  calls: ActivityCall[];
  /** The names of the calls, in order, optionally only those of one workflow run's inputs (matched by `where`). */
  names(where?: (call: ActivityCall) => boolean): string[];
  stop(): Promise<void>;
}

let runtimeInstalled = false;

/**
 * The fast tier's worker: the run's real workflow bundle on a task queue of its own, with fake
 * activities that record each call. No Postgres, no SMTP: the workflow logic alone, in seconds.
 */
export async function startFakeWorker(fakes: FakeActivities): Promise<FakeWorker> {
  if (!runtimeInstalled) {
    Runtime.install({ logger: new DefaultLogger('WARN'), shutdownSignals: [] });
    runtimeInstalled = true;
  }
  const calls: ActivityCall[] = [];
  const recorded = Object.fromEntries(
    Object.entries(fakes).map(([name, fn]) => [
      name,
      (input: unknown) => {
        calls.push({ name: name as keyof Activities, input });
        return (fn as (input: unknown) => unknown)(input);
      },
    ]),
  );
  const taskQueue = `fast-${randomUUID()}`;
  const address = inject('temporalAddress');
  const nativeConnection = await NativeConnection.connect({ address });
  const worker = await Worker.create({
    connection: nativeConnection,
    taskQueue,
    activities: recorded,
    dataConverter: testDataConverter(),
    workflowBundle: { codePath: inject('workflowBundlePath') },
  });
  const running = worker.run();
  const connection = await Connection.connect({ address });
  const client = new Client({ connection, dataConverter: testDataConverter() });
  return {
    client,
    taskQueue,
    calls,
    names: (where) => calls.filter(where ?? (() => true)).map((c) => c.name),
    async stop() {
      if (worker.getState() === 'RUNNING') worker.shutdown();
      await running;
      await nativeConnection.close();
      await connection.close();
    },
  };
}

/** A promise the test settles by hand: holds a fake activity until the test lets it go. */
export function gate(): { promise: Promise<void>; open(): void } {
  let open!: () => void;
  const promise = new Promise<void>((resolve) => (open = resolve));
  return { promise, open };
}

export const EventType = temporal.api.enums.v1.EventType;

/** The event types of a run's history so far, in order. */
export async function eventTypesOf(handle: WorkflowHandle): Promise<temporal.api.enums.v1.EventType[]> {
  return ((await handle.fetchHistory()).events ?? []).map((e) => e.eventType ?? EventType.EVENT_TYPE_UNSPECIFIED);
}
