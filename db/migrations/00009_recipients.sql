-- D7: the recipient register (with contact details, so a person can contact them directly)
-- and disclosures linked to it, for account holders (by id) and callers (by keyed number hash).
create table recipients (
  id uuid primary key default gen_random_uuid(),
  type text not null check (type in ('affiliate', 'processor', 'referral_partner', 'acquirer', 'authority', 'network_advertiser')),
  name text not null,
  email text not null,
  address text,
  legal_basis text not null,
  created_at timestamptz not null default now()
);
alter table disclosures add column recipient_id uuid references recipients (id);
alter table disclosures add column recorded_by uuid;
create index disclosures_by_recipient on disclosures (recipient_id);
create index disclosure_subjects_by_customer on disclosure_subjects (customer_id);
create table disclosure_callers (
  disclosure_id uuid not null references disclosures (id),
  phone_hash bytea not null,
  primary key (disclosure_id, phone_hash)
);
create index disclosure_callers_by_hash on disclosure_callers (phone_hash);
