import { appendFile, mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, inject, it } from 'vitest';
import { createMailer } from '../lib/mailer';
import { startMailSink, type MailSink, type SinkMessage } from '../scripts/mail-sink';

/** The sink of `npm start` with a store directory; a sink of its own per test, not the run's shared one. */
let dir: string;
const open: MailSink[] = [];
beforeEach(async () => {
  dir = path.join(await mkdtemp(path.join(inject('runTempDir'), 'sink-')), 'mail-sink');
});
afterEach(async () => {
  await Promise.all(open.splice(0).map((s) => s.close()));
  await rm(path.dirname(dir), { recursive: true, force: true });
});

async function startSink(options: { limit?: number } = {}) {
  const sink = await startMailSink({ dir, ...options });
  open.push(sink);
  return sink;
}

async function stopSink(sink: MailSink) {
  open.splice(open.indexOf(sink), 1);
  await sink.close();
}

async function send(sink: MailSink, to: string, messageId: string, subject = `about ${messageId}`) {
  const mailer = createMailer(`smtp://127.0.0.1:${sink.smtpPort}`);
  try {
    await mailer.send({ from: 'TopCall <kundeservice@topcall.dk>', to, subject, text: `Hej ${to}\nline two`, messageId });
  } finally {
    mailer.close();
  }
}

async function list(sink: MailSink, query = ''): Promise<SinkMessage[]> {
  return (await (await fetch(`http://127.0.0.1:${sink.webPort}/api/messages${query}`)).json()) as SinkMessage[];
}

describe('mail sink with a store directory', () => {
  it('lists earlier messages after a restart on the same directory, raw and deduped, and keeps deduping', async () => {
    const first = await startSink();
    await send(first, 'anna@example.dk', '<one@topcall.dk>');
    await send(first, 'anna@example.dk', '<one@topcall.dk>'); // a repeat: the mailbox shows it once
    await send(first, 'bo@example.dk', '<two@topcall.dk>');
    const raw = await list(first, '?raw=1');
    const deduped = await list(first);
    expect(raw.map((m) => [m.id, m.duplicateOf])).toEqual([[1, undefined], [2, 1], [3, undefined]]);
    expect(deduped.map((m) => m.id)).toEqual([1, 3]);
    await stopSink(first);

    const second = await startSink();
    expect(second.smtpPort).not.toBe(0);
    expect(await list(second, '?raw=1')).toEqual(raw);
    expect(await list(second)).toEqual(deduped);
    expect(await list(second, '?to=bo%40example.dk')).toEqual([deduped[1]]);
    expect(raw[0]!.text.trimEnd()).toBe('Hej anna@example.dk\nline two');
    const stats = await (await fetch(`http://127.0.0.1:${second.webPort}/api/stats`)).json();
    expect(stats).toEqual({ count: 3, duplicates: 1, lastId: 3 });

    // Ids go on from where they were; a repeat of a Message-ID from before the restart is still a repeat.
    await send(second, 'anna@example.dk', '<one@topcall.dk>');
    await send(second, 'anna@example.dk', '<three@topcall.dk>');
    expect((await list(second, '?raw=1')).slice(3).map((m) => [m.id, m.duplicateOf])).toEqual([[4, 1], [5, undefined]]);
    expect((await list(second)).map((m) => m.id)).toEqual([1, 3, 5]);
    const page = await (await fetch(`http://127.0.0.1:${second.webPort}/`)).text();
    expect(page).toContain('Sent mail (3)');
    expect(page).toContain('2 repeated deliveries');
  });

  it('writes its files for the owner only', async () => {
    const sink = await startSink();
    await send(sink, 'anna@example.dk', '<private@topcall.dk>');
    expect((await stat(dir)).mode & 0o777).toBe(0o700);
    const files = await readdir(dir);
    expect(files.length).toBeGreaterThan(0);
    for (const file of files) expect({ file, mode: (await stat(path.join(dir, file))).mode & 0o777 }).toEqual({ file, mode: 0o600 });
    // The personal data really is in there (so the mode matters).
    expect(await readFile(path.join(dir, files[0]!), 'utf8')).toContain('anna@example.dk');
  });

  it('forgets cleared mail for good, and ids keep growing', async () => {
    const first = await startSink();
    await send(first, 'anna@example.dk', '<a@topcall.dk>');
    await send(first, 'anna@example.dk', '<b@topcall.dk>');
    expect(await (await fetch(`http://127.0.0.1:${first.webPort}/api/messages`, { method: 'DELETE' })).json()).toEqual({ cleared: true });
    await stopSink(first);

    const second = await startSink();
    expect(await list(second, '?raw=1')).toEqual([]);
    await send(second, 'anna@example.dk', '<a@topcall.dk>');
    expect((await list(second, '?raw=1')).map((m) => [m.id, m.duplicateOf])).toEqual([[3, undefined]]);
  });

  it('survives a line cut short by a crash, and keeps only `limit` messages', async () => {
    const first = await startSink({ limit: 2 });
    for (const n of [1, 2, 3]) await send(first, 'anna@example.dk', `<m${n}@topcall.dk>`);
    await stopSink(first);
    const [file] = await readdir(dir);
    await appendFile(path.join(dir, file!), '{"id":4,"messageId":"<m4@top'); // the write a crash interrupted

    const second = await startSink({ limit: 2 });
    expect((await list(second, '?raw=1')).map((m) => m.messageId)).toEqual(['<m2@topcall.dk>', '<m3@topcall.dk>']);
    await send(second, 'anna@example.dk', '<m5@topcall.dk>');
    await stopSink(second);

    const third = await startSink({ limit: 10 });
    expect((await list(third, '?raw=1')).map((m) => [m.id, m.messageId])).toEqual([
      [2, '<m2@topcall.dk>'],
      [3, '<m3@topcall.dk>'],
      [4, '<m5@topcall.dk>'],
    ]);
    expect((await stat(path.join(dir, file!))).mode & 0o777).toBe(0o600);
  });

  it('still injects faults', async () => {
    const sink = await startSink();
    await fetch(`http://127.0.0.1:${sink.webPort}/api/faults?refuse=1`, { method: 'POST' });
    await expect(send(sink, 'anna@example.dk', '<refused@topcall.dk>')).rejects.toThrow(/451/);
    await send(sink, 'anna@example.dk', '<accepted@topcall.dk>');
    await stopSink(sink);
    expect((await list(await startSink(), '?raw=1')).map((m) => m.messageId)).toEqual(['<accepted@topcall.dk>']);
  });

  it('scopes an injected outage to an address or a domain, so one test file never hits another\'s mail', async () => {
    const sink = await startSink();
    const fault = (query: string) => fetch(`http://127.0.0.1:${sink.webPort}/api/faults?${query}`, { method: 'POST' });
    await fault('refuse=2&domain=a.test');
    await send(sink, 'bo@b.test', '<other-domain@topcall.dk>'); // not in scope: accepted, and the count is untouched
    await expect(send(sink, 'anna@a.test', '<a1@topcall.dk>')).rejects.toThrow(/451/);
    await expect(send(sink, 'carl@a.test', '<a2@topcall.dk>')).rejects.toThrow(/451/);
    await send(sink, 'anna@a.test', '<a3@topcall.dk>'); // the two are used up

    await fault('refuse=1&to=bo%40b.test');
    await send(sink, 'dora@b.test', '<b1@topcall.dk>');
    await expect(send(sink, 'bo@b.test', '<b2@topcall.dk>')).rejects.toThrow(/451/);
    await send(sink, 'bo@b.test', '<b3@topcall.dk>');
    expect((await list(sink, '?raw=1')).map((m) => m.messageId)).toEqual(['<other-domain@topcall.dk>', '<a3@topcall.dk>', '<b1@topcall.dk>', '<b3@topcall.dk>']);
  });

  it('filters on the server by recipient, domain, text and id', async () => {
    const sink = await startSink();
    await send(sink, 'anna@a.test', '<f1@topcall.dk>', 'Kvittering 1');
    await send(sink, 'bo@b.test', '<f2@topcall.dk>', 'Kvittering 2');
    await send(sink, 'anna@a.test', '<f3@topcall.dk>', 'Påmindelse');
    const ids = async (query: string) => (await list(sink, query)).map((m) => m.messageId);
    expect(await ids('?to=ANNA%40a.test')).toEqual(['<f1@topcall.dk>', '<f3@topcall.dk>']);
    expect(await ids('?domain=b.test')).toEqual(['<f2@topcall.dk>']);
    expect(await ids('?contains=Kvittering')).toEqual(['<f1@topcall.dk>', '<f2@topcall.dk>']);
    expect(await ids('?contains=Hej%20bo%40b.test')).toEqual(['<f2@topcall.dk>']); // the text too
    const [first] = await list(sink, '?raw=1');
    expect(await ids(`?to=anna%40a.test&since=${first!.id}`)).toEqual(['<f3@topcall.dk>']);
  });
});

describe('mail sink without a directory', () => {
  it('keeps mail in memory only', async () => {
    const sink = await startMailSink();
    try {
      await send(sink, 'anna@example.dk', '<memory@topcall.dk>');
      expect(sink.messages.map((m) => m.messageId)).toEqual(['<memory@topcall.dk>']);
    } finally {
      await sink.close();
    }
    await expect(stat(dir)).rejects.toThrow(/ENOENT/);
  });
});
