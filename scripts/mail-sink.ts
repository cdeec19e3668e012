import http from 'node:http';
import { chmod, mkdir, open, readFile, rename, writeFile, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { SMTPServer } from 'smtp-server';
import { simpleParser } from 'mailparser';

/**
 * A local SMTP server that keeps what it receives and shows it on a web page: the
 * embedded mail viewer of `npm start`, and the real SMTP peer the tests read.
 * Mail stays in memory, and with `dir` also in `dir/messages.jsonl` (one delivery a line,
 * mode 0600: it holds personal data), read back at start so `npm start` keeps its mail
 * across restarts. It is a development sink, not a mail store.
 */
export interface SinkMessage {
  id: number;
  messageId: string;
  from: string;
  to: string[];
  subject: string;
  text: string;
  /** How many attachments the message carried. */
  attachments: number;
  /** Set when this delivery repeats a Message-ID the recipients already had (a mailbox shows it once). */
  duplicateOf?: number;
  headers: Record<string, string>;
  receivedAt: string;
}

export interface MailSink {
  smtpPort: number;
  webPort: number;
  host: string;
  messages: SinkMessage[];
  /** Forgets every message (as DELETE /api/messages does). */
  clear(): void;
  close(): Promise<void>;
}

export interface MailSinkOptions {
  host?: string;
  smtpPort?: number;
  webPort?: number;
  /** Keep at most this many messages (oldest dropped first). */
  limit?: number;
  /** Keep the messages in this directory too, and load what it holds at start; in memory only when absent. */
  dir?: string;
}

/** Written in place of the messages when they are cleared, so ids keep growing across restarts. */
interface ClearedMark {
  lastId: number;
}

/**
 * The sink's file: one JSON line per delivery, appended in id order. A line cut short by a
 * crash, or more lines than `limit`, makes the loader rewrite the file with what it kept.
 */
async function openStore(dir: string, limit: number) {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await chmod(dir, 0o700);
  const file = path.join(dir, 'messages.jsonl');
  const text = await readFile(file, 'utf8').catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return '';
    throw err;
  });
  const loaded: SinkMessage[] = [];
  let lastId = 0;
  let damaged = text !== '' && !text.endsWith('\n');
  for (const line of text.split('\n')) {
    if (!line) continue;
    try {
      const entry = JSON.parse(line) as Partial<SinkMessage & ClearedMark>;
      if (typeof entry.id === 'number') {
        loaded.push(entry as SinkMessage);
        lastId = Math.max(lastId, entry.id);
      } else if (typeof entry.lastId === 'number') {
        lastId = Math.max(lastId, entry.lastId);
      } else damaged = true;
    } catch {
      damaged = true;
    }
  }
  const kept = loaded.slice(-limit);
  const contents = (messages: SinkMessage[], last: number) =>
    (messages.length ? messages : [{ lastId: last } satisfies ClearedMark]).map((m) => `${JSON.stringify(m)}\n`).join('');
  if (damaged || kept.length < loaded.length) {
    await writeFile(`${file}.tmp`, contents(kept, lastId), { mode: 0o600 });
    await rename(`${file}.tmp`, file);
  }
  const handle: FileHandle = await open(file, 'a', 0o600);
  await handle.chmod(0o600);
  // One write at a time, in the order they were asked for: the file's lines stay in id order.
  let queue: Promise<unknown> = Promise.resolve();
  const enqueue = (write: () => Promise<unknown>) => {
    const done = queue.then(write);
    queue = done.catch(() => {});
    return done.then(() => {});
  };
  return {
    loaded: kept,
    lastId,
    append: (message: SinkMessage) => enqueue(() => handle.appendFile(`${JSON.stringify(message)}\n`)),
    clear: (last: number) =>
      enqueue(async () => {
        await handle.truncate(0);
        await handle.appendFile(contents([], last));
      }),
    close: async () => {
      await queue;
      await handle.close();
    },
  };
}

const escapeHtml = (s: string) =>
  s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

export async function startMailSink(options: MailSinkOptions = {}): Promise<MailSink> {
  const host = options.host ?? '127.0.0.1';
  const limit = options.limit ?? 200_000;
  const store = options.dir ? await openStore(options.dir, limit) : undefined;
  const messages: SinkMessage[] = [];
  /** First delivery of each Message-ID, to spot repeats without scanning every message. */
  const firstByMessageId = new Map<string, SinkMessage>();
  let duplicates = 0;
  let nextId = (store?.lastId ?? 0) + 1;
  for (const message of store?.loaded ?? []) {
    messages.push(message);
    if (message.duplicateOf) duplicates++;
    else if (message.messageId && !firstByMessageId.has(message.messageId)) firstByMessageId.set(message.messageId, message);
  }
  const clear = () => {
    messages.length = 0;
    firstByMessageId.clear();
    duplicates = 0;
    store?.clear(nextId - 1).catch(() => {});
  };
  // Fault injection for tests: refuse the next N messages with a temporary SMTP error —
  // unscoped, or only messages to one address or domain, so that a test file's outage never
  // hits another file's mail (POST /api/faults?refuse=N[&to=…|&domain=…]).
  const refusals: { to?: string; domain?: string; remaining: number }[] = [];
  const refusalFor = (rcpts: string[]) =>
    refusals.find(
      (r) => r.remaining > 0 && (r.to ? rcpts.includes(r.to) : r.domain ? rcpts.some((a) => a.endsWith(`@${r.domain}`)) : true),
    );
  // …and refuse these recipients for good (550), like a mailbox that does not exist.
  const rejected = new Set<string>();

  const smtp = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS'],
    logger: false,
    size: 10 * 1024 * 1024,
    onAuth(_auth, _session, callback) {
      callback(null, { user: 'sink' });
    },
    onRcptTo(address, _session, callback) {
      if (rejected.has(address.address.toLowerCase())) {
        return callback(Object.assign(new Error('mailbox unavailable (fault injected)'), { responseCode: 550 }));
      }
      callback();
    },
    onData(stream, session, callback) {
      const refusal = refusalFor(session.envelope.rcptTo.map((r) => r.address.toLowerCase()));
      if (refusal) {
        refusal.remaining--;
        if (refusal.remaining === 0) refusals.splice(refusals.indexOf(refusal), 1);
        stream.resume();
        stream.on('end', () => callback(Object.assign(new Error('mail sink is refusing mail (fault injected)'), { responseCode: 451 })));
        return;
      }
      simpleParser(stream)
        .then((parsed) => {
          const headers: Record<string, string> = {};
          for (const [k, v] of parsed.headers) headers[k] = typeof v === 'string' ? v : JSON.stringify(v);
          const messageId = parsed.messageId ?? '';
          const rcpts = session.envelope.rcptTo.map((r) => r.address.toLowerCase());
          const first = messageId ? firstByMessageId.get(messageId) : undefined;
          const earlier = first && rcpts.every((r) => first.to.includes(r)) ? first : undefined;
          if (earlier) duplicates++;
          const message: SinkMessage = {
            ...(earlier ? { duplicateOf: earlier.id } : {}),
            id: nextId++,
            messageId: parsed.messageId ?? '',
            from: parsed.from?.text ?? '',
            to: session.envelope.rcptTo.map((r) => r.address.toLowerCase()),
            subject: parsed.subject ?? '',
            text: parsed.text ?? '',
            attachments: parsed.attachments.length,
            headers,
            receivedAt: new Date().toISOString(),
          };
          messages.push(message);
          if (messageId && !first) firstByMessageId.set(messageId, message);
          if (messages.length > limit) {
            for (const dropped of messages.splice(0, messages.length - limit)) {
              if (firstByMessageId.get(dropped.messageId) === dropped) firstByMessageId.delete(dropped.messageId);
            }
          }
          // With a store, the sender hears 250 only once the message is on disk.
          return store?.append(message);
        })
        .then(() => callback())
        .catch((err: Error) => callback(err));
    },
  });

  // A client that vanishes mid-session (a killed worker) resets its socket: that is the
  // client's problem, not a reason to take the sink (and whoever hosts it) down.
  smtp.on('error', () => {});

  const web = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', `http://${host}`);
    const json = (status: number, body: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    if (url.pathname === '/api/messages' && req.method === 'GET') {
      // Filters on the server, so a poll downloads only what it looks for: a recipient (`to`), a
      // recipient domain (`domain`), messages after an id (`since`), a text in the subject or body (`contains`).
      const to = url.searchParams.get('to')?.toLowerCase();
      const domain = url.searchParams.get('domain')?.toLowerCase();
      const since = Number(url.searchParams.get('since') ?? 0);
      const contains = url.searchParams.get('contains');
      // Like a mailbox, a repeated Message-ID shows once; ?raw=1 lists every SMTP delivery.
      const raw = url.searchParams.get('raw') === '1';
      return json(
        200,
        messages.filter(
          (m) =>
            m.id > since &&
            (!to || m.to.includes(to)) &&
            (!domain || m.to.some((a) => a.endsWith(`@${domain}`))) &&
            (!contains || m.subject.includes(contains) || m.text.includes(contains)) &&
            (raw || !m.duplicateOf),
        ),
      );
    }
    if (url.pathname === '/api/messages' && req.method === 'DELETE') {
      clear();
      return json(200, { cleared: true });
    }
    if (url.pathname === '/api/stats' && req.method === 'GET') {
      return json(200, { count: messages.length, duplicates, lastId: nextId - 1 });
    }
    if (url.pathname === '/api/faults' && req.method === 'POST') {
      if (url.searchParams.has('refuse')) {
        const to = url.searchParams.get('to')?.toLowerCase() || undefined;
        const domain = url.searchParams.get('domain')?.toLowerCase() || undefined;
        const count = Number(url.searchParams.get('refuse'));
        // A new count for the same scope replaces the old one (refuse=0 ends it).
        const same = refusals.findIndex((r) => r.to === to && r.domain === domain);
        if (same >= 0) refusals.splice(same, 1);
        if (count > 0) refusals.push({ ...(to ? { to } : {}), ...(domain ? { domain } : {}), remaining: count });
      }
      for (const address of url.searchParams.getAll('reject')) rejected.add(address.toLowerCase());
      for (const address of url.searchParams.getAll('release')) rejected.delete(address.toLowerCase());
      return json(200, { refusals, rejected: [...rejected] });
    }
    const match = /^\/messages\/(\d+)$/.exec(url.pathname);
    if (match) {
      const m = messages.find((x) => x.id === Number(match[1]));
      if (!m) return json(404, { error: 'no such message' });
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      return res.end(
        `<!doctype html><meta charset="utf-8"><title>${escapeHtml(m.subject)}</title>` +
          `<p><a href="/">← all mail</a></p><h1>${escapeHtml(m.subject)}</h1>` +
          `<p><b>From</b> ${escapeHtml(m.from)}<br><b>To</b> ${escapeHtml(m.to.join(', '))}<br>` +
          `<b>Message-ID</b> ${escapeHtml(m.messageId)}<br><b>Received</b> ${m.receivedAt}</p>` +
          `<pre style="white-space:pre-wrap">${escapeHtml(m.text)}</pre>`,
      );
    }
    if (url.pathname === '/') {
      const rows = messages
        .filter((m) => !m.duplicateOf)
        .reverse()
        .slice(0, 500)
        .map(
          (m) =>
            `<tr><td>${m.receivedAt}</td><td>${escapeHtml(m.to.join(', '))}</td>` +
            `<td><a href="/messages/${m.id}">${escapeHtml(m.subject || '(no subject)')}</a></td></tr>`,
        )
        .join('');
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      return res.end(
        `<!doctype html><meta charset="utf-8"><title>Sent mail</title>` +
          `<style>body{font-family:sans-serif;margin:2em}td,th{padding:.3em .8em;text-align:left;border-bottom:1px solid #ddd}</style>` +
          `<h1>Sent mail (${messages.length - duplicates})</h1><p>Everything the back office sent through the local SMTP sink. ` +
          `${duplicates ? `${duplicates} repeated deliveries of a Message-ID are hidden, as a mailbox would. ` : ''}` +
          `JSON: <a href="/api/messages">/api/messages</a></p>` +
          `<table><tr><th>received</th><th>to</th><th>subject</th></tr>${rows}</table>`,
      );
    }
    json(404, { error: 'not found' });
  });

  const listen = (server: { listen: (port: number, host: string, cb: () => void) => unknown; once: (e: string, cb: (err: Error) => void) => unknown }, port: number) =>
    new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => resolve());
    });

  try {
    await listen(smtp.server, options.smtpPort ?? 0);
    await listen(web, options.webPort ?? 0);
  } catch (err) {
    smtp.server.close();
    web.close();
    await store?.close();
    throw err;
  }
  const smtpPort = (smtp.server.address() as { port: number }).port;
  const webPort = (web.address() as { port: number }).port;

  return {
    host,
    smtpPort,
    webPort,
    messages,
    clear,
    close: async () => {
      await new Promise<void>((r) => smtp.close(() => r()));
      await new Promise<void>((r) => web.close(() => r()));
      await store?.close();
    },
  };
}
