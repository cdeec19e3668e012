-- Issue 13: two officers deciding at once. Each one's reason (and evidence) waits here under
-- their token until the workflow accepts one decision; recordDecision copies the winner's onto
-- the request, so the stored reason is always the winner's.
create table decision_drafts (
  request_id uuid not null references data_requests (id),
  token_id text not null,
  reason text,
  evidence text,
  created_at timestamptz not null default now(),
  primary key (request_id, token_id)
);
