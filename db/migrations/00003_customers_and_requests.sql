-- Customers, their logins and preferences, data-subject requests, exports, audit (D1, D2, D3, D7, D10, D11).

create table customers (
  id uuid primary key,
  client_id uuid not null references clients (id),
  email text,
  name text,
  locale text not null default 'da' check (locale in ('da', 'en')),
  -- D2: who gave us this person's data and when ('self' when the person did).
  provided_by text not null default 'self',
  provided_at timestamptz not null default now(),
  registered_by_token uuid,
  -- A team lead may register the members of their own client's team (D2).
  team_lead boolean not null default false,
  password_hash text,
  password_set_at timestamptz,
  -- D11: marketing mail is opt-out; service mail is always sent.
  marketing_emails boolean not null default true,
  -- Art. 18 / 21: flags the workflows obey.
  processing_restricted boolean not null default false,
  objected_to_processing boolean not null default false,
  status text not null default 'active' check (status in ('active', 'erased')),
  erased_at timestamptz,
  created_at timestamptz not null default now(),
  check ((status = 'erased') = (email is null))
);
create unique index customers_email on customers (lower(email)) where email is not null;
create index customers_by_client on customers (client_id);

-- One-time links to set a password: only the hash of the token is kept.
create table password_tokens (
  token_hash bytea primary key,
  customer_id uuid not null references customers (id),
  expires_at timestamptz not null,
  used_at timestamptz
);

-- Failed logins, to rate-limit by address and by account without state in the API process.
create table login_failures (
  id bigserial primary key,
  key_hash bytea not null,
  at timestamptz not null default now()
);
create index login_failures_recent on login_failures (key_hash, at);

-- D3: what TopCall told a customer after a call, visible to that customer.
create table call_messages (
  id uuid primary key default gen_random_uuid(),
  client_id uuid not null references clients (id),
  customer_id uuid references customers (id),
  sent_at timestamptz not null default now(),
  channel text not null check (channel in ('sms', 'email')),
  body text not null
);
create index call_messages_by_customer on call_messages (customer_id);

-- D7: every disclosure of personal data to a third party, and whose data it was.
create table disclosures (
  id uuid primary key default gen_random_uuid(),
  recipient text not null,
  category text not null,
  legal_basis text not null,
  disclosed_at timestamptz not null default now()
);
create table disclosure_subjects (
  disclosure_id uuid not null references disclosures (id),
  customer_id uuid not null references customers (id),
  primary key (disclosure_id, customer_id)
);

-- D10: data-subject requests. Staff may file one for a caller without an account.
create table data_requests (
  id uuid primary key,
  customer_id uuid references customers (id),
  type text not null check (type in ('access', 'rectification', 'erasure', 'restriction', 'objection', 'marketing_opt_out')),
  status text not null default 'received'
    check (status in ('received', 'awaiting_decision', 'executing', 'answered', 'refused')),
  received_at timestamptz not null,
  due_at timestamptz not null,
  details jsonb not null default '{}',
  -- for a caller without an account: how to answer and how identity was checked
  requester jsonb,
  locale text not null default 'da' check (locale in ('da', 'en')),
  filed_by text not null check (filed_by in ('customer', 'staff')),
  flags text[] not null default '{}',
  earlier_request_ids uuid[] not null default '{}',
  decision text check (decision in ('approve', 'refuse')),
  reason_code text,
  reason text,
  decided_by text,
  outcome jsonb,
  sla_breached boolean not null default false,
  answered_at timestamptz,
  check (customer_id is not null or requester is not null)
);
create index data_requests_by_customer on data_requests (customer_id, type, received_at);
create index data_requests_open on data_requests (due_at) where answered_at is null;

-- Access exports: an expiring link per request; only the token's hash is kept.
create table export_packages (
  id uuid primary key,
  request_id uuid not null unique references data_requests (id),
  token_hash bytea not null unique,
  file_key text not null,
  bytes bigint not null,
  sha256 text not null,
  expires_at timestamptz not null,
  created_at timestamptz not null default now(),
  downloads integer not null default 0
);

-- Who changed what: rectifications keep the old values here.
create table audit_log (
  id bigserial primary key,
  at timestamptz not null default now(),
  actor text not null,
  action text not null,
  subject_type text not null,
  subject_id uuid not null,
  old_values jsonb,
  new_values jsonb
);
create index audit_log_by_subject on audit_log (subject_type, subject_id, at);

-- Recordings name the person they belong to, when known (checked for rows from now on).
alter table recordings add constraint recordings_customer_fk foreign key (customer_id) references customers (id) not valid;
