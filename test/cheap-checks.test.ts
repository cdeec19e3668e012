import { beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import type { TestStack } from './support/stack';
import { useStack } from './support/fixture';

/**
 * Migration 00022 replaced counted regular expressions (slow in Postgres) with checks that
 * accept exactly the same values: the audit ledger's column checks and the outbox's
 * `subject_id`. Each test reads what the database has installed now and compares it, on
 * generated values around every boundary, with the expression it replaced (00018, 00006).
 */

let s: TestStack;
const fixture = useStack();
beforeAll(() => {
  ({ s } = fixture);
});

const SEED = Number(process.env.FUZZ_SEED ?? 20261207);

/** Strings from a small alphabet that hits every class the checks tell apart. */
const stringOf = (alphabet: string, maxLength: number, minLength = 0) => fc.string({ unit: fc.constantFrom(...alphabet), minLength, maxLength });
/** …mostly at lengths around `limit` (fast-check's own lengths stay short), some short. */
const around = (alphabet: string, limit: number) =>
  fc.oneof(
    fc.integer({ min: limit - 2, max: limit + 1 }).chain((n) => stringOf(alphabet, n, n)),
    fc.integer({ min: limit - 2, max: limit + 1 }).chain((n) => stringOf(alphabet[0]!, n, n).map((x) => x.slice(0, -1) + alphabet[1 + (n % (alphabet.length - 1))]!)),
    stringOf(alphabet, 4),
  );
const HEX = '0123456789abcdef';
const uuidLike = fc.oneof(fc.uuid(), around(`${HEX}-`, 36), fc.constant('-'.repeat(36)), around(`${HEX}-:gA\n`, 36));

/** Evaluates `expression` (over the column `column`) for every value, in one statement. */
async function evaluate(expression: string, column: string, values: string[]): Promise<(string | null)[]> {
  const rows = await s.sql.unsafe<{ v: string | null }[]>(`select (${expression})::text as v from unnest($1::text[]) with ordinality as t(${column}, i) order by i`, [values as never]);
  return rows.map((r) => r.v);
}

describe('migration 00022: cheaper checks, the same verdicts', () => {
  it('audit_ledger accepts and refuses exactly what the counted regular expressions did', async () => {
    const installed = await s.sql<{ name: string; def: string }[]>`
      select conname as name, pg_get_constraintdef(oid) as def from pg_constraint where conrelid = 'audit_ledger'::regclass and contype = 'c'`;
    const old: Record<string, { column: string; expression: string; values: fc.Arbitrary<string> }> = {
      audit_ledger_actor_role_check: { column: 'actor_role', expression: `actor_role ~ '^[a-z][a-z_-]{0,39}$'`, values: around('ab_-.A1 ', 40) },
      audit_ledger_action_check: { column: 'action', expression: `action ~ '^[a-z][a-z_.]{0,59}$'`, values: around('ab_.-A1 ', 60) },
      audit_ledger_object_type_check: { column: 'object_type', expression: `object_type ~ '^[a-z][a-z_]{0,39}$'`, values: around('ab_.-A1', 40) },
      audit_ledger_prev_hash_check: { column: 'prev_hash', expression: `prev_hash ~ '^[0-9a-f]{64}$'`, values: fc.oneof(around(HEX, 64), around(`${HEX}gA\n `, 64)) },
      audit_ledger_hash_check: { column: 'hash', expression: `hash ~ '^[0-9a-f]{64}$'`, values: fc.oneof(around(HEX, 64), around(`${HEX}gA\n `, 64)) },
    };
    for (const [name, was] of Object.entries(old)) {
      const now = installed.find((c) => c.name === name);
      expect(now, name).toBeDefined();
      const expression = now!.def.replace(/^CHECK /, '');
      expect(expression, `${name} is no longer a counted regular expression`).not.toMatch(/\{\d/);
      await fc.assert(
        fc.asyncProperty(fc.array(was.values, { minLength: 1, maxLength: 400 }), async (values) => {
          expect(await evaluate(expression, was.column, values)).toEqual(await evaluate(was.expression, was.column, values));
        }),
        { numRuns: 25, seed: SEED },
      );
    }
  });

  it('email_outbox.subject_id names the same person for every key as before', async () => {
    const [column] = await s.sql<{ expression: string }[]>`
      select pg_get_expr(d.adbin, d.adrelid) as expression from pg_attrdef d
      join pg_attribute a on a.attrelid = d.adrelid and a.attnum = d.adnum
      where d.adrelid = 'email_outbox'::regclass and a.attname = 'subject_id'`;
    const was = `case
      when key ~ '^(customer|request):[0-9a-f-]{36}(:|$)' then substring(key from '^[a-z]+:([0-9a-f-]{36})')::uuid
      when key ~ '^policy:.+:[0-9a-f-]{36}$' then substring(key from ':([0-9a-f-]{36})$')::uuid
    end`;
    // The casts are the same on both sides; comparing the text they cast keeps a malformed
    // uuid (36 dashes) from failing the statement instead of telling the two apart.
    const uncast = (e: string) => e.replace(/::uuid/g, '');
    expect(column!.expression).not.toMatch(/\{\d/);
    const keys = fc
      .tuple(fc.constantFrom('customer:', 'request:', 'policy:', 'policy:2026-12-07:', 'policy::', 'customerx:', 'Customer:', ''), uuidLike, fc.constantFrom('', ':ack', ':', 'x', ':reminder:1'), fc.boolean())
      .map(([prefix, id, suffix, swap]) => (swap ? `${prefix}${suffix}${id}` : `${prefix}${id}${suffix}`));
    await fc.assert(
      fc.asyncProperty(fc.array(fc.oneof(keys, stringOf(`${HEX}-:pocy`, 50)), { minLength: 1, maxLength: 400 }), async (values) => {
        expect(await evaluate(uncast(column!.expression), 'key', values)).toEqual(await evaluate(uncast(was), 'key', values));
      }),
      { numRuns: 40, seed: SEED },
    );
    // And it still finds the person: one key of each kind.
    const id = '8c3f5a0e-1b2d-4c6e-9f70-1a2b3c4d5e6f';
    expect(await evaluate(uncast(column!.expression), 'key', [`customer:${id}:welcome`, `request:${id}`, `policy:2026-12-07:${id}`, `other:${id}`])).toEqual([id, id, id, null]);
  });
});
