-- D15: the places the personal-data map (db/personal-data.ts) names, and what erasure,
-- restriction and objection need to find a person in each of them.

-- Every address an account has had, so erasure finds mail sent to an earlier one. Kept by a
-- trigger, so no code path that changes an address can forget it.
create table customer_emails (
  customer_id uuid not null references customers (id),
  email text not null,
  since timestamptz not null default now(),
  primary key (customer_id, email)
);
insert into customer_emails (customer_id, email, since)
  select id, lower(email), created_at from customers where email is not null;
create function remember_customer_email() returns trigger language plpgsql as $$
begin
  if new.email is not null then
    insert into customer_emails (customer_id, email) values (new.id, lower(new.email)) on conflict do nothing;
  end if;
  return new;
end $$;
create trigger customers_remember_email after insert or update of email on customers
  for each row execute function remember_customer_email();

-- Whose email a row is, from its business key: `customer:{id}:…`, `request:{id}:…`,
-- `policy:{version}:{customerId}`. Erasure finds a person's mail by this, not only by address.
alter table email_outbox add column subject_id uuid generated always as (
  case
    when key ~ '^(customer|request):[0-9a-f-]{36}(:|$)' then substring(key from '^[a-z]+:([0-9a-f-]{36})')::uuid
    when key ~ '^policy:.+:[0-9a-f-]{36}$' then substring(key from ':([0-9a-f-]{36})$')::uuid
  end) stored;
create index email_outbox_by_subject on email_outbox (subject_id) where subject_id is not null;
create index email_outbox_by_recipient on email_outbox (lower(recipient));
create index email_outbox_by_age on email_outbox (created_at) where recipient <> '[erased]';

-- Audit records keep that a change happened and which fields, never the values.
update audit_log set
  new_values = jsonb_build_object('fields', (select coalesce(jsonb_agg(k order by k), '[]'::jsonb) from jsonb_object_keys(coalesce(new_values, '{}'::jsonb)) k)),
  old_values = null;

-- Phone numbers are E.164 everywhere (the API normalises with libphonenumber-js); earlier rows
-- get the same shape for Danish numbers so one caller is one string.
create function e164_dk(n text) returns text language sql immutable as $$
  select case
    when n is null then null
    when regexp_replace(n, '[^0-9+]', '', 'g') ~ '^00' then '+' || substring(regexp_replace(n, '[^0-9]', '', 'g') from 3)
    when regexp_replace(n, '[^0-9+]', '', 'g') ~ '^\+' then regexp_replace(n, '[^0-9+]', '', 'g')
    when regexp_replace(n, '[^0-9]', '', 'g') ~ '^[0-9]{8}$' then '+45' || regexp_replace(n, '[^0-9]', '', 'g')
    else regexp_replace(n, '[^0-9+]', '', 'g')
  end $$;
update recordings set caller_number = e164_dk(caller_number) where caller_number is not null;
update data_requests set requester = jsonb_set(requester, '{phone}', to_jsonb(e164_dk(requester ->> 'phone')))
  where requester ? 'phone' and requester ->> 'phone' is not null;
create index recordings_by_caller on recordings (caller_number) where caller_number is not null;

-- A number is kept only to recognise it again, as a keyed hash: the key lives here, made at
-- migration from the server's random generator.
create table app_secrets (name text primary key, value bytea not null);
insert into app_secrets (name, value)
  values ('phone_hash_key', decode(replace(gen_random_uuid()::text, '-', '') || replace(gen_random_uuid()::text, '-', ''), 'hex'));
create function phone_hash(e164 text) returns bytea language sql stable as $$
  select sha256((select value from app_secrets where name = 'phone_hash_key') || convert_to(e164, 'UTF8')) $$;

-- Art. 18 for callers without an account (an account carries customers.processing_restricted).
create table restricted_numbers (
  phone_hash bytea primary key,
  request_id uuid not null references data_requests (id),
  since timestamptz not null default now()
);
-- Art. 21 upheld against the recording: calls from these numbers are not kept past the next sweep.
create table do_not_keep_numbers (
  phone_hash bytea primary key,
  request_id uuid not null references data_requests (id),
  since timestamptz not null default now()
);
-- A privacy officer's override to play a restricted person's recording, with the reason.
create table restriction_overrides (
  id bigserial primary key,
  recording_id uuid not null references recordings (id),
  actor_token_id uuid not null,
  reason text not null,
  at timestamptz not null default now()
);

-- Held recordings of a person who asked for erasure (or whose objection was upheld) are
-- deleted the moment their dispute releases them, whatever their age.
alter table recordings add column erasure_request_id uuid references data_requests (id);
alter table deletion_receipts drop constraint deletion_receipts_reason_check;
alter table deletion_receipts add constraint deletion_receipts_reason_check
  check (reason in ('retention', 'dispute_resolved', 'erasure', 'objection'));

-- What each run of the data-retention Schedule removed, per place of the map.
create table data_retention_runs (
  id bigserial primary key,
  workflow_id text not null,
  run_id text not null unique,
  finished_at timestamptz not null default now(),
  counts jsonb not null
);

-- A request's caller details and notes are scrubbed after REQUEST_DETAILS_RETENTION (or at erasure).
alter table data_requests add column details_erased_at timestamptz;
