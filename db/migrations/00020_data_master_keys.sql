-- Issue 12 (D15): a database backup taken before an erasure still holds the person's data key,
-- wrapped by a master key of DATA_KEYS. It stops opening once that master key is retired: every
-- live key re-wrapped under the next master (the data-retention sweep does this) and the old
-- one removed from DATA_KEYS and the secret store. How long a master key has been the current
-- one bounds how long such backups stay readable, so it is recorded here: the first time a
-- process wraps with a master key id, that id and the time. Ids and times only, no key material.
create table data_master_keys (
  id text primary key check (id ~ '^[A-Za-z0-9._-]{1,64}$'),
  first_used_at timestamptz not null default now()
);
-- Keys already in use date from their oldest wrapped key.
insert into data_master_keys (id, first_used_at)
select master_key_id, min(created_at) from person_keys group by master_key_id
on conflict do nothing;
-- Re-wrapping finds the rows still under another master key without reading every row.
create index person_keys_live_by_master on person_keys (master_key_id) where wrapped is not null;
