-- D8: a business transfer as a controlled process (workflow transfer:{id}).
create table transfers (
  id uuid primary key,
  acquirer_name text not null,
  acquirer_email text not null,
  acquirer_public_key text not null,
  scope jsonb not null,
  legal_basis text not null check (legal_basis in ('merger', 'acquisition', 'bankruptcy')),
  handover_at timestamptz not null,
  after_handover text not null check (after_handover in ('keep', 'erase')),
  status text not null default 'awaiting_approval',
  created_by uuid not null,
  created_at timestamptz not null default now(),
  inventory jsonb,
  excluded jsonb,
  progress jsonb not null default '{}',
  manifest_sha256 text,
  package_file_key text,
  package_bytes bigint,
  package_files integer,
  acquirer_token_hash bytea unique,
  recipient_id uuid references recipients (id),
  acknowledged_at timestamptz
);
-- Four eyes: two distinct approvers other than the creator.
create table transfer_approvals (
  transfer_id uuid not null references transfers (id),
  approver_token_id uuid not null,
  approved_at timestamptz not null default now(),
  primary key (transfer_id, approver_token_id)
);
-- Who is handed over (fixed by the inventory), by id only.
create table transfer_persons (
  transfer_id uuid not null references transfers (id),
  customer_id uuid not null references customers (id),
  primary key (transfer_id, customer_id)
);
