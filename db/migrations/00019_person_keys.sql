-- Issue 12 (D9, D15): crypto-shredding. Each person has a random 256-bit data key that seals
-- their export packages and the bodies of the emails sent to them (lib/at-rest.ts); each
-- recording's audio has a key of its own. A key is kept here only wrapped (AES-256-GCM) by a
-- master key from DATA_KEYS, named by master_key_id so the ring can rotate. Erasure destroys
-- the key: `wrapped` is overwritten with null and destroyed_at set, so every copy of what it
-- sealed (backups of DATA_DIR and of the outbox included) can no longer be opened.
create table person_keys (
  id uuid primary key,
  -- whose key: a person with an account, a caller's request (no account), or one recording's audio
  customer_id uuid unique references customers (id),
  request_id uuid unique references data_requests (id),
  audio_key text unique,
  master_key_id text not null,
  wrapped bytea,
  created_at timestamptz not null default now(),
  destroyed_at timestamptz,
  constraint person_keys_one_owner check (num_nonnulls(customer_id, request_id, audio_key) = 1),
  constraint person_keys_destroyed check ((wrapped is null) = (destroyed_at is not null))
);
