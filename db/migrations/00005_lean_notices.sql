-- Campaign notices are rendered when they are sent, from the policy version and the person's
-- locale: 100,000 persons share two texts, so a row need not carry its own copy.
alter table email_outbox alter column text_body drop not null;
alter table email_outbox add column locale text check (locale in ('da', 'en'));
alter table email_outbox add constraint email_outbox_body_or_campaign
  check (text_body is not null or (campaign is not null and locale is not null));

-- Marking a notice sent changes its status and nothing any index looks at, so Postgres can
-- update the row in place (a HOT update: no new index entries) when its page has room.
drop index email_outbox_pending; -- read by no query
drop index email_outbox_by_campaign;
create index email_outbox_by_campaign on email_outbox (campaign, key) where campaign is not null;
alter table email_outbox set (fillfactor = 70);
