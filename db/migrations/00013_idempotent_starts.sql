-- Issue 13: starts that survive a crash and a retry.
--
-- A row and the workflow start it needs are written in one transaction: the start waits here
-- until Temporal has it (started_at), and the Schedule `workflow-starts` starts any left
-- behind by a crash between the two steps. Ids and instants only: the same arguments the API
-- would have passed, never names or addresses.
create table workflow_starts (
  workflow_id text primary key,
  workflow_type text not null,
  task_queue text not null,
  args jsonb not null,
  memo jsonb,
  recorded_at timestamptz not null default now(),
  started_at timestamptz
);
create index workflow_starts_pending on workflow_starts (recorded_at) where started_at is null;

-- Idempotency-Key: the first answer to a key, replayed to a retry with the same body. The key
-- is stored as a hash scoped to the caller and the path; answers hold ids and statuses only.
create table idempotency_keys (
  key_hash bytea primary key,
  request_sha256 bytea not null,
  status int,
  response jsonb,
  created_at timestamptz not null default now(),
  completed_at timestamptz
);
create index idempotency_keys_created on idempotency_keys (created_at);
