-- Privacy policy versions and the notice campaigns of material changes (D12).

create table policy_versions (
  version text primary key,
  effective_at timestamptz not null,
  material boolean not null,
  summary text not null,
  body text not null,
  status text not null default 'scheduled' check (status in ('scheduled', 'current', 'superseded')),
  created_at timestamptz not null default now(),
  became_current_at timestamptz
);
create index policy_versions_current on policy_versions (effective_at desc) where status = 'current';

-- A notice is an outbox row keyed 'policy:{version}:{customer id}': one per version and person.
alter table email_outbox add column campaign text;
alter table email_outbox drop constraint email_outbox_status_check;
alter table email_outbox add constraint email_outbox_status_check check (status in ('pending', 'sent', 'suppressed', 'failed'));
create index email_outbox_by_campaign on email_outbox (campaign, status, key) where campaign is not null;
