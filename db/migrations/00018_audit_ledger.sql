-- Issue 12: the append-only audit ledger. Every decision, disclosure, deletion, override,
-- audio or export download — and every refused attempt below the API — as one hash-chained row
-- of ids: who (actor type, id, role), what (action, outcome), to which record (type, id), when.
-- No personal values: the columns are uuids or words from a fixed vocabulary, and the checks
-- below keep anything else (an address, a number, free text) out.
create table audit_ledger (
  seq bigint primary key,
  at timestamptz not null,
  actor_type text not null check (actor_type in ('staff', 'customer', 'system', 'link', 'unknown')),
  actor_id uuid,
  actor_role text check (actor_role ~ '^[a-z][a-z_-]{0,39}$'),
  action text not null check (action ~ '^[a-z][a-z_.]{0,59}$'),
  outcome text not null check (outcome in ('done', 'refused')),
  object_type text not null check (object_type ~ '^[a-z][a-z_]{0,39}$'),
  object_id uuid not null,
  prev_hash text not null check (prev_hash ~ '^[0-9a-f]{64}$'),
  hash text not null unique check (hash ~ '^[0-9a-f]{64}$')
);
create index audit_ledger_by_object on audit_ledger (object_type, object_id, seq);

-- Append-only: the database itself refuses to change or remove an entry, whoever asks.
create function audit_ledger_refuse_change() returns trigger language plpgsql as $$
begin
  raise exception 'audit_ledger is append-only: % is refused', tg_op using errcode = '42501';
end
$$;
create trigger audit_ledger_no_update_or_delete before update or delete on audit_ledger
  for each row execute function audit_ledger_refuse_change();
create trigger audit_ledger_no_truncate before truncate on audit_ledger
  for each statement execute function audit_ledger_refuse_change();

-- Roles below the API: a request the person's own account pages approve with no staff step
-- says so here, written by the API when it files it, so the activity that records the approval
-- checks Postgres rather than trusting a workflow input anyone with Temporal access can write.
alter table data_requests add column auto_approve text check (auto_approve in ('account-closure', 'self-service'));
-- Runs already approved that way keep their authority.
update data_requests set auto_approve = decided_by where decided_by in ('account-closure', 'self-service') and filed_by = 'customer';
