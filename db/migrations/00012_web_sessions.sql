-- Issue 14: the customers' own pages. A browser session is a cookie of its own, separate from
-- API bearer tokens: only its hash is stored, and logging out (or erasure) revokes it.
create table web_sessions (
  id uuid primary key default gen_random_uuid(),
  token_hash bytea not null unique,
  customer_id uuid not null references customers (id),
  created_at timestamptz not null default now(),
  last_seen_at timestamptz not null default now(),
  expires_at timestamptz not null,
  revoked_at timestamptz
);
create index web_sessions_customer on web_sessions (customer_id);

-- A new email address waits here until a link sent to it is followed (D10 rectification of
-- the address): the change itself is then a rectification request like any other.
create table email_changes (
  id uuid primary key default gen_random_uuid(),
  customer_id uuid not null references customers (id),
  new_email text not null,
  token_hash bytea unique,
  requested_at timestamptz not null default now(),
  expires_at timestamptz not null,
  confirmed_at timestamptz,
  request_id uuid references data_requests (id)
);
create index email_changes_customer on email_changes (customer_id);

-- One-time links minted by an activity are derived from this key and the email's business key,
-- so a retried send carries the same link as the first (issue 13), and only hashes are stored.
insert into app_secrets (name, value)
  values ('link_key', decode(replace(gen_random_uuid()::text, '-', '') || replace(gen_random_uuid()::text, '-', ''), 'hex'))
  on conflict do nothing;
