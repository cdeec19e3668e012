import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client, Connection } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import { testDataConverter } from './test-keys';

/**
 * Recorded workflow histories (issue 13, docs/workflow-changes.md): `RECORD_HISTORIES=1 npm test`
 * (or `npm run histories:record`) saves, at the end of the run, runs of every workflow type from
 * the test stack's dev server — open ones (what a deploy must not break) and completed,
 * continued-as-new, failed, terminated or timed out ones, the crash drills' included — and `test/replay.test.ts` replays every file
 * against the current workflow bundle. A change that would break a run in flight fails there.
 */
export const HISTORIES_DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'histories');

/** Per workflow type and closing status, this many runs (the shortest and the longest first). */
const PER_KIND = 2;

export interface RecordedHistory {
  workflowId: string;
  workflowType: string;
  status: string;
  events: number;
  /** The history as Temporal's protobuf encoding, base64 (the SDK's JSON helpers need the same protobufjs copy). */
  history: string;
}

export async function recordHistories(address: string, namespaces: string[], log: (line: string) => void): Promise<number> {
  const connection = await Connection.connect({ address });
  let saved = 0;
  try {
    // Refreshes the recorded files; `kept/` holds runs of paths a patch retired (kept until its deprecatePatch step).
    await mkdir(HISTORIES_DIR, { recursive: true });
    for (const f of await readdir(HISTORIES_DIR)) if (f.endsWith('.json')) await rm(path.join(HISTORIES_DIR, f));
    for (const namespace of namespaces) {
      // The tests' data converter: memos and search attributes of the listed runs are encoded by the codec.
      const client = new Client({ connection, namespace, dataConverter: testDataConverter() });
      const byKind = new Map<string, { workflowId: string; runId: string; type: string; status: string; length: number }[]>();
      // Open runs too: an in-flight run is exactly what a deploy must not break.
      for await (const w of client.workflow.list()) {
        const kind = `${w.type}.${w.status.name}`;
        const list = byKind.get(kind) ?? [];
        list.push({ workflowId: w.workflowId, runId: w.runId, type: w.type, status: w.status.name, length: w.historyLength ?? 0 });
        byKind.set(kind, list);
      }
      for (const [kind, runs] of [...byKind].sort()) {
        runs.sort((a, b) => a.length - b.length);
        const picks = [...new Map([runs[0], runs[runs.length - 1]].filter(Boolean).map((r) => [r!.runId, r!])).values()].slice(0, PER_KIND);
        for (const [i, run] of picks.entries()) {
          const history = await client.workflow.getHandle(run.workflowId, run.runId).fetchHistory();
          const file = path.join(HISTORIES_DIR, `${namespace}.${kind}.${i + 1}.json`);
          const recorded: RecordedHistory = {
            workflowId: run.workflowId,
            workflowType: run.type,
            status: run.status,
            events: history.events?.length ?? 0,
            history: Buffer.from(temporal.api.history.v1.History.encode(history).finish()).toString('base64'),
          };
          await writeFile(file, JSON.stringify(recorded, null, 1) + '\n');
          saved++;
        }
      }
    }
    log(`recorded ${saved} workflow histories into ${path.relative(process.cwd(), HISTORIES_DIR)}`);
    return saved;
  } finally {
    await connection.close();
  }
}

/** Histories of code paths a patch has since retired: what proves old runs still replay (docs/workflow-changes.md). */
export const KEPT_DIR = path.join(HISTORIES_DIR, 'kept');

export async function loadHistories(): Promise<{ file: string; workflowId: string; workflowType: string; history: temporal.api.history.v1.IHistory }[]> {
  const list = async (dir: string, prefix: string) => (await readdir(dir).catch(() => [] as string[])).filter((f) => f.endsWith('.json')).map((f) => `${prefix}${f}`);
  const files = [...(await list(HISTORIES_DIR, '')), ...(await list(KEPT_DIR, 'kept/'))].sort();
  return Promise.all(
    files.map(async (file) => {
      const recorded = JSON.parse(await readFile(path.join(HISTORIES_DIR, file), 'utf8')) as RecordedHistory;
      return { file, workflowId: recorded.workflowId, workflowType: recorded.workflowType, history: temporal.api.history.v1.History.decode(Buffer.from(recorded.history, 'base64')) };
    }),
  );
}
