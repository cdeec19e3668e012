-- Foundation: who may call the API, the email outbox, and end-to-end system checks.

-- Bearer tokens for staff (with a role) and, later, customers. Only a SHA-256 of each
-- token is stored: tokens are 256-bit random values, so a fast hash is enough and a
-- leaked table does not let anyone log in.
create table access_tokens (
  id uuid primary key default gen_random_uuid(),
  token_hash bytea not null unique,
  kind text not null check (kind in ('staff', 'customer')),
  role text check (role in ('admin', 'privacy_officer', 'support')),
  subject_id uuid,
  label text not null default '',
  created_at timestamptz not null default now(),
  expires_at timestamptz,
  revoked_at timestamptz,
  last_used_at timestamptz,
  check ((kind = 'staff') = (role is not null))
);

-- Every email goes through here first, keyed by its business key (e.g.
-- 'policy:2026-01:<customer id>'), so a retried activity never sends a second copy.
create table email_outbox (
  key text primary key,
  message_id text not null unique,
  recipient text not null,
  category text not null check (category in ('service', 'marketing')),
  subject text not null,
  text_body text not null,
  status text not null default 'pending' check (status in ('pending', 'sent', 'suppressed')),
  attempts integer not null default 0,
  last_error text,
  created_at timestamptz not null default now(),
  sent_at timestamptz
);
create index email_outbox_pending on email_outbox (created_at) where status = 'pending';

-- A system check is a trivial workflow run that proves API, Temporal, worker,
-- Postgres and SMTP work together.
create table system_checks (
  id uuid primary key,
  workflow_id text not null,
  requested_by uuid,
  completed_at timestamptz not null default now()
);
