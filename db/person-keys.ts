import { createCipheriv, createDecipheriv, randomBytes, randomUUID } from 'node:crypto';
import type { Db, Fragment, Sql } from './index';
import { resolveDataKeyRing, type KeyRing } from '../lib/payload-keys';
import type { DataKey, DataKeyLookup } from '../lib/at-rest';

/**
 * Issue 12, D15: crypto-shredding. A data key per person — an account holder, or a caller's
 * request when there is no account — seals their export packages and outbox bodies; each
 * recording's audio has a key of its own (its person's erasure deletes it, and with it the key;
 * a recording a dispute holds keeps its key, as the law keeps the recording). Keys are random 256-bit, kept only
 * wrapped by the current master key of DATA_KEYS (AES-256-GCM, the row id as additional data);
 * unwrapping takes the master key the row names, and the data-retention sweep re-wraps live rows under the current one (rewrapBatch), so an older master key can be retired.
 * Destroying a key overwrites the wrapped key with null: nothing then opens what it sealed.
 */
export type KeyOwner = { customerId: string } | { requestId: string } | { audioKey: string };

/** What sealed data names a key that no longer exists (or never did). Carries ids only. */
export class KeyDestroyedError extends Error {
  constructor(readonly keyId: string, readonly destroyedAt?: Date) {
    super(
      destroyedAt
        ? `data key ${keyId} was destroyed at ${destroyedAt.toISOString()} (erasure or deletion): what it sealed cannot be opened`
        : `data key ${keyId} is unknown: what it sealed cannot be opened`,
    );
    this.name = 'KeyDestroyedError';
  }
}

export interface WrappedKey {
  id: string;
  masterKeyId: string;
  wrapped: Buffer;
}

const IV_BYTES = 12;
const TAG_BYTES = 16;
const aad = (id: string) => Buffer.from(`person-key:${id}`, 'utf8');

type KeyRow = { id: string; masterKeyId: string; wrapped: Buffer | null; destroyedAt: Date | null };
/** The key rows `where` selects (a fragment of `db`), as every reader of person_keys takes them. */
const keyRows = (db: Db, where: Fragment) => db<KeyRow[]>`select id, master_key_id as "masterKeyId", wrapped, destroyed_at as "destroyedAt" from person_keys where ${where}`;

export interface MasterKeyStatus {
  currentKeyId: string;
  /** When a process first wrapped or read with the current master key. */
  currentSince: Date;
  /** Live keys still wrapped by an older key of the ring: the data-retention sweep re-wraps them. */
  liveUnderOlderKeys: number;
  /** Live keys wrapped by a master key no longer in DATA_KEYS: they do not open (a key retired too early). */
  liveUnderMissingKeys: number;
}

/**
 * Opens a wrapped data key with the master key its row names. Exported for tests that open a
 * backup's copy of a row with a given ring (one that still has, or no longer has, its master key).
 */
export function unwrapWith(ring: KeyRing, row: { id: string; masterKeyId: string; wrapped: Buffer }): Buffer {
  const master = ring.keys.get(row.masterKeyId);
  if (!master) throw new Error(`data key ${row.id} is wrapped by master key ${JSON.stringify(row.masterKeyId)}, which is not in DATA_KEYS (it has ${[...ring.keys.keys()].join(', ')}); add it behind the current one`);
  try {
    const decipher = createDecipheriv('aes-256-gcm', master, row.wrapped.subarray(0, IV_BYTES), { authTagLength: TAG_BYTES });
    decipher.setAAD(aad(row.id));
    decipher.setAuthTag(row.wrapped.subarray(row.wrapped.length - TAG_BYTES));
    return Buffer.concat([decipher.update(row.wrapped.subarray(IV_BYTES, row.wrapped.length - TAG_BYTES)), decipher.final()]);
  } catch {
    throw new Error(`data key ${row.id} does not unwrap with master key ${JSON.stringify(row.masterKeyId)} (another key under that id, or an altered row)`);
  }
}

/** Wraps a data key with the ring's current master key (AES-256-GCM, the key id as additional data). */
function wrapWith(ring: KeyRing, id: string, key: Buffer): Buffer {
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv('aes-256-gcm', ring.keys.get(ring.currentKeyId)!, iv, { authTagLength: TAG_BYTES });
  cipher.setAAD(aad(id));
  return Buffer.concat([iv, cipher.update(key), cipher.final(), cipher.getAuthTag()]);
}

const ownerColumns = (owner: KeyOwner) => ({
  customer_id: 'customerId' in owner ? owner.customerId : null,
  request_id: 'requestId' in owner ? owner.requestId : null,
  audio_key: 'audioKey' in owner ? owner.audioKey : null,
});

export class PersonKeys implements DataKeyLookup {
  private ringPromise?: Promise<KeyRing>;

  constructor(
    private readonly sql: Sql,
    private readonly loadRing: () => Promise<KeyRing>,
  ) {}

  private ring(): Promise<KeyRing> {
    // The first use of a master key is recorded: its age bounds how long backups stay readable.
    this.ringPromise ??= this.loadRing()
      .then(async (ring) => {
        await this.sql`insert into data_master_keys (id) values (${ring.currentKeyId}) on conflict do nothing`;
        return ring;
      })
      .catch((err: unknown) => {
      this.ringPromise = undefined;
      throw err;
    });
    return this.ringPromise;
  }

  /** A fresh data key and its wrapped form, not stored yet (the recording store saves it at commit). */
  async generate(): Promise<{ dataKey: DataKey; wrapped: WrappedKey }> {
    const ring = await this.ring();
    const dataKey = { id: randomUUID(), key: randomBytes(32) };
    return { dataKey, wrapped: { id: dataKey.id, masterKeyId: ring.currentKeyId, wrapped: wrapWith(ring, dataKey.id, dataKey.key) } };
  }

  private async unwrap(row: KeyRow): Promise<Buffer> {
    if (!row.wrapped) throw new KeyDestroyedError(row.id, row.destroyedAt ?? undefined);
    return unwrapWith(await this.ring(), row as KeyRow & { wrapped: Buffer });
  }

  /** Stores a generated key for its owner. Idempotent for the same key id. */
  async save(owner: KeyOwner, w: WrappedKey, db: Db = this.sql): Promise<void> {
    await db`insert into person_keys ${db({ id: w.id, ...ownerColumns(owner), master_key_id: w.masterKeyId, wrapped: w.wrapped })} on conflict (id) do nothing`;
  }

  /** The owner's key, made on first use; throws KeyDestroyedError once the owner was erased. */
  async keyFor(owner: KeyOwner, db: Db = this.sql): Promise<DataKey> {
    const columns = ownerColumns(owner);
    const [column, value] = Object.entries(columns).find(([, v]) => v !== null)!;
    let [row] = await keyRows(db, db`${db(column)} = ${value}`);
    if (!row) {
      const { wrapped } = await this.generate();
      // Two first uses at once: one insert wins, both read the winner.
      await db`insert into person_keys ${db({ id: wrapped.id, ...columns, master_key_id: wrapped.masterKeyId, wrapped: wrapped.wrapped })} on conflict do nothing`;
      [row] = await keyRows(db, db`${db(column)} = ${value}`);
    }
    return { id: row!.id, key: await this.unwrap(row!) };
  }

  /**
   * The data keys of many recordings' audio in one query (a transfer batch reads a thousand
   * recordings; a lookup each was a query each). Ids not among them — audio sealed under
   * another key since — fall back to `keyById`; a destroyed key throws as `keyById` does.
   */
  async audioKeys(audioKeys: string[]): Promise<DataKeyLookup> {
    const rows = audioKeys.length ? await keyRows(this.sql, this.sql`audio_key = any(${audioKeys}::text[])`) : [];
    const byId = new Map(rows.map((row) => [row.id, row]));
    return {
      keyById: (id) => {
        const row = byId.get(id);
        return row ? this.unwrap(row) : this.keyById(id);
      },
    };
  }

  async keyById(id: string): Promise<Buffer> {
    const [row] = await keyRows(this.sql, this.sql`id = ${id}`);
    if (!row) throw new KeyDestroyedError(id);
    return this.unwrap(row);
  }

  /**
   * Issue 12: re-wraps up to `limit` live keys held under an older master key of the ring with the
   * current one, in one transaction (rows locked, so an erasure destroying one of them waits and
   * then destroys the re-wrapped row). Once none is left under a master key, that key can be
   * retired from DATA_KEYS and the secret store, and every database backup taken while it was
   * current stops opening what it sealed. Returns how many it re-wrapped: 0 when done.
   */
  async rewrapBatch(limit = 500): Promise<number> {
    const ring = await this.ring();
    const older = [...ring.keys.keys()].filter((id) => id !== ring.currentKeyId);
    if (!older.length) return 0;
    return this.sql.begin(async (tx) => {
      const rows = await keyRows(tx, tx`wrapped is not null and master_key_id = any(${older}::text[]) limit ${limit} for update skip locked`);
      await Promise.all(
        rows.map(async (row) => {
          const wrapped = wrapWith(ring, row.id, await this.unwrap(row));
          await tx`update person_keys set master_key_id = ${ring.currentKeyId}, wrapped = ${wrapped} where id = ${row.id}`;
        }),
      );
      return rows.length;
    });
  }

  /** Where the master keys stand: the current one, since when, and live keys still wrapped by others. */
  async masterKeyStatus(): Promise<MasterKeyStatus> {
    const ring = await this.ring();
    const [since] = await this.sql<{ at: Date }[]>`select first_used_at as at from data_master_keys where id = ${ring.currentKeyId}`;
    const rows = await this.sql<{ masterKeyId: string; n: number }[]>`
      select master_key_id as "masterKeyId", count(*)::int as n from person_keys
      where wrapped is not null and master_key_id <> ${ring.currentKeyId} group by master_key_id`;
    return {
      currentKeyId: ring.currentKeyId,
      currentSince: since!.at,
      liveUnderOlderKeys: rows.filter((r) => ring.keys.has(r.masterKeyId)).reduce((n, r) => n + r.n, 0),
      liveUnderMissingKeys: rows.filter((r) => !ring.keys.has(r.masterKeyId)).reduce((n, r) => n + r.n, 0),
    };
  }

  /** Destroys the keys of deleted audio (the files are gone; so are the keys of every copy). */
  async destroyAudioKeys(audioKeys: string[], db: Db = this.sql): Promise<number> {
    if (!audioKeys.length) return 0;
    return (await db`update person_keys set wrapped = null, destroyed_at = now() where audio_key = any(${audioKeys}::text[]) and destroyed_at is null`).count;
  }
}

/** Erasure's last step: the person's keys (their account's and their requests') are destroyed. */
export async function destroyPersonKeys(db: Db, s: { customerId: string | null; requestIds: string[] }): Promise<number> {
  return (
    await db`update person_keys set wrapped = null, destroyed_at = now()
             where (customer_id = ${s.customerId} or request_id = any(${s.requestIds}::uuid[])) and destroyed_at is null`
  ).count;
}

/** Whose key seals what belongs to a request: its account holder's, or the request's own for a caller without an account. */
export const ownerOfRequest = (r: { id: string; customerId: string | null }): KeyOwner => (r.customerId ? { customerId: r.customerId } : { requestId: r.id });

const byConnection = new WeakMap<Sql, PersonKeys>();

/**
 * The key service of a connection pool, its master ring from DATA_KEYS (or in development
 * app_secrets.data_key_dev) read on first use. One per pool, so the API, activities and the
 * recording store of one process share it.
 */
export function personKeysFor(sql: Sql, config: { DATA_KEYS?: string; DATA_KEY_ID?: string; NODE_ENV?: string }): PersonKeys {
  let keys = byConnection.get(sql);
  if (!keys) {
    keys = new PersonKeys(sql, () => resolveDataKeyRing(config, sql));
    byConnection.set(sql, keys);
  }
  return keys;
}
