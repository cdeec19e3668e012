-- Campaign notices are rendered when they are sent, from the policy version and the person's
-- locale: 100,000 persons share two texts, so a row need not carry its own copy.
alter table email_outbox alter column text_body drop not null;
alter table email_outbox add column locale text check (locale in ('da', 'en'));
alter table email_outbox add constraint email_outbox_body_or_campaign
  check (text_body is not null or (campaign is not null and locale is not null));

-- The pending index is for one-off emails; campaign rows are found through their own index.
drop index email_outbox_pending;
create index email_outbox_pending on email_outbox (created_at) where status = 'pending' and campaign is null;
