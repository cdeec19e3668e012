-- Clients, call recordings, dispute holds and deletion receipts (D4, D6).

create table clients (
  id uuid primary key default gen_random_uuid(),
  name text not null,
  -- D6: contract restrictions the workflows obey, e.g. {no_marketing, no_third_party_transfer}.
  restrictions text[] not null default '{}',
  created_at timestamptz not null default now()
);

create table recordings (
  id uuid primary key,
  client_id uuid not null references clients (id),
  customer_id uuid,
  caller_number text,
  recorded_at timestamptz not null,
  duration_seconds integer not null check (duration_seconds >= 0),
  delete_after timestamptz not null,
  audio_key text not null,
  audio_sha256 text not null,
  audio_bytes bigint not null,
  content_type text not null,
  -- 'held' is not a status of its own: a recording is held while an open dispute holds it.
  status text not null default 'retained' check (status in ('retained', 'deleted')),
  deleted_at timestamptz,
  created_at timestamptz not null default now(),
  check ((status = 'deleted') = (deleted_at is not null))
);
-- The sweep reads only what is due: its cost grows with the expired recordings, not all retained.
create index recordings_due on recordings (delete_after, id) where status = 'retained';
create index recordings_by_client on recordings (client_id, recorded_at desc, id);
create index recordings_by_customer on recordings (customer_id) where customer_id is not null;

create table disputes (
  id uuid primary key,
  client_id uuid not null references clients (id),
  reason text not null,
  status text not null default 'open' check (status in ('open', 'resolved')),
  resolution text,
  opened_at timestamptz not null default now(),
  resolved_at timestamptz
);

-- A hold is in force while released_at is null. Placing one locks the recording row first,
-- and the sweep checks holds after locking the same rows, so a hold and a delete never pass.
create table recording_holds (
  recording_id uuid not null references recordings (id),
  dispute_id uuid not null references disputes (id),
  placed_at timestamptz not null default now(),
  released_at timestamptz,
  primary key (recording_id, dispute_id)
);
create index recording_holds_active on recording_holds (recording_id) where released_at is null;
create index recording_holds_by_dispute on recording_holds (dispute_id);

-- One receipt per deleted recording, chained: each hash covers the previous one, so editing
-- or removing a receipt breaks every hash after it.
create table deletion_receipts (
  seq bigint primary key,
  recording_id uuid not null unique references recordings (id),
  client_id uuid not null,
  recorded_at timestamptz not null,
  delete_after timestamptz not null,
  deleted_at timestamptz not null,
  audio_sha256 text not null,
  reason text not null check (reason in ('retention', 'dispute_resolved', 'erasure')),
  workflow_id text not null,
  run_id text not null,
  dispute_id uuid,
  prev_hash text not null,
  hash text not null unique
);
-- A resumed sweep counts what its run already deleted.
create index deletion_receipts_by_run on deletion_receipts (run_id);
create index deletion_receipts_by_dispute on deletion_receipts (dispute_id) where dispute_id is not null;
