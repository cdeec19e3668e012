import { readFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NO_PERSONAL_DATA, PLACES } from '../db/personal-data';
import { personalDataDocPath, renderPersonalDataDoc } from '../scripts/personal-data-doc';
import { openStack, type TestStack } from './support/stack';

/**
 * D15: the map must name every place personal data can live. A migration that adds a column
 * able to hold text (names, addresses, numbers, free text, hashes) fails here until the map
 * says what it holds and what access, erasure, restriction and retention do to it.
 */
let s: TestStack;
beforeAll(async () => {
  s = await openStack();
});
afterAll(() => s.close());

const TEXT_LIKE = ['text', 'character varying', 'character', 'jsonb', 'json', 'bytea', 'ARRAY', 'inet', 'USER-DEFINED'];

describe('the personal-data map against the live schema', () => {
  it('names every text-like column of every table, or the table holds no personal data', async () => {
    const columns = await s.sql<{ table: string; column: string; type: string }[]>`
      select c.table_name as table, c.column_name as column, c.data_type as type
      from information_schema.columns c join information_schema.tables t using (table_schema, table_name)
      where c.table_schema = 'public' and t.table_type = 'BASE TABLE' order by 1, 2`;
    const unmapped: string[] = [];
    for (const { table, column, type } of columns) {
      if (!TEXT_LIKE.includes(type) || table in NO_PERSONAL_DATA) continue;
      const place = PLACES.find((p) => p.kind === 'table' && p.where === table);
      if (!place || !(column in place.personal || column in (place.other ?? {}))) unmapped.push(`${table}.${column} (${type})`);
    }
    expect(unmapped, 'columns the map (db/personal-data.ts) does not name').toEqual([]);
  });

  it('names only tables and columns that exist', async () => {
    const present = new Set((await s.sql<{ name: string }[]>`select table_name || '.' || column_name as name from information_schema.columns where table_schema = 'public'`).map((r) => r.name));
    const tables = new Set([...present].map((n) => n.split('.')[0]!));
    const stale: string[] = [];
    for (const place of PLACES.filter((p) => p.kind === 'table')) {
      if (!tables.has(place.where)) stale.push(place.where);
      for (const column of [...Object.keys(place.personal), ...Object.keys(place.other ?? {})]) if (!present.has(`${place.where}.${column}`)) stale.push(`${place.where}.${column}`);
    }
    for (const table of Object.keys(NO_PERSONAL_DATA)) if (!tables.has(table)) stale.push(table);
    expect(stale).toEqual([]);
  });

  it('gives every place what access, rectification, erasure and restriction do, and a retention period', () => {
    const ids = PLACES.map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
    for (const p of PLACES) {
      for (const field of ['access', 'rectification', 'erasure', 'restriction'] as const) expect(p[field], `${p.id}.${field}`).toMatch(/\w{3}/);
      expect(p.retention.period, `${p.id}.retention`).toMatch(/\w{3}/);
      // A place with a configured period is swept (or is swept by its own Schedule: recordings, D4).
      if (p.retention.config && p.retention.config !== 'RECORDING_RETENTION') expect(p.sweep ?? PLACES.find((q) => q.retention.config === p.retention.config && q.sweep), p.id).toBeTruthy();
    }
  });

  it('says, for every place a person’s export reads, what a business transfer hands over from it or why nothing (D8)', () => {
    const silent = PLACES.filter((p) => p.export && !p.handover).map((p) => p.id);
    expect(silent, 'places with an export but no handover decision').toEqual([]);
  });
});

describe('docs/personal-data.md', () => {
  it('is the map as it is now (regenerate with npm run docs:personal-data)', async () => {
    expect(await readFile(personalDataDocPath, 'utf8')).toBe(renderPersonalDataDoc());
  });
});
