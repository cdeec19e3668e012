#!/usr/bin/env node
// Runs after every `npm install` / `npm ci` (package.json "postinstall"). Plain JavaScript with
// no dependencies, so it also runs in the image's production-only install.
//
// postgres.js 3.4.9 (the newest release) mishandles a connection that closes while a write is
// buffered (porsager/postgres#1066, #1154, #1208; no fix released). The Postgres restart drill
// (test/postgres-restart.test.ts) showed both halves of it on a fast shutdown:
//  - a transaction cut off mid-query sends its ROLLBACK into the closed connection; the write
//    runs from a setImmediate on a null socket and throws an uncaught TypeError, which ends
//    the worker or the API process;
//  - a connection that closed with a write pending keeps a stale write timer, so every later
//    write on it (the next startup message included) stays in its buffer: after Postgres is
//    back that pool answers CONNECT_TIMEOUT for as long as the process lives.
// The repair: a write on a closed socket fails the queries waiting on it (CONNECTION_CLOSED,
// which callers catch and Temporal retries) instead of throwing, and closing a connection
// drops its buffered bytes and clears its write timer.

import { existsSync, readFileSync, writeFileSync } from 'node:fs';

const MARK = '/* privacy-backoffice: closed-socket write fix */';
const root = new URL('../node_modules/postgres/', import.meta.url);
const files = ['src/connection.js', 'cjs/src/connection.js', 'cf/src/connection.js'];

const edits = [
  {
    what: 'a write on a closed socket fails its queries instead of throwing',
    from: '  function nextWrite(fn) {\n    const x = socket.write(chunk, fn)',
    to:
      `  function nextWrite(fn) {\n    ${MARK}\n` +
      '    if (!socket) {\n' +
      '      nextWriteTimer !== null && clearImmediate(nextWriteTimer)\n' +
      '      chunk = nextWriteTimer = null\n' +
      "      const err = Errors.connection('CONNECTION_CLOSED', options)\n" +
      '      fn && fn(err)\n' +
      '      error(err)\n' +
      '      return false\n' +
      '    }\n' +
      '    const x = socket.write(chunk, fn)',
  },
  {
    what: 'terminate() drops the buffered write',
    from: '    clearImmediate(nextWriteTimer)\n    if (socket) {',
    to: '    clearImmediate(nextWriteTimer)\n    chunk = nextWriteTimer = null\n    if (socket) {',
  },
  {
    what: 'closed() drops the buffered write',
    from: "    clearImmediate(nextWriteTimer)\n    socket.removeListener('data', data)",
    to: "    clearImmediate(nextWriteTimer)\n    chunk = nextWriteTimer = null\n    socket.removeListener('data', data)",
  },
];

if (!existsSync(root)) {
  console.log('patch-postgres: postgres is not installed here; nothing to patch');
  process.exit(0);
}
const { version } = JSON.parse(readFileSync(new URL('package.json', root), 'utf8'));
let patched = 0;
for (const file of files) {
  const url = new URL(file, root);
  if (!existsSync(url)) continue;
  let text = readFileSync(url, 'utf8');
  if (text.includes(MARK)) continue;
  for (const edit of edits) {
    if (text.split(edit.from).length !== 2) {
      console.error(
        `patch-postgres: postgres ${version} ${file} does not read as 3.4.9 did where ${edit.what}.\n` +
          'Check whether this version fixes porsager/postgres#1208 (then remove scripts/patch-postgres.mjs and its postinstall),\n' +
          'or bring the edits up to date. Until then a Postgres restart can crash the api and the worker.',
      );
      process.exit(1);
    }
    text = text.replace(edit.from, edit.to);
  }
  writeFileSync(url, text);
  patched += 1;
}
console.log(patched ? `patch-postgres: patched ${patched} build(s) of postgres ${version} (closed-socket writes)` : `patch-postgres: postgres ${version} already patched`);
