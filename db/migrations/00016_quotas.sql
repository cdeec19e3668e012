-- Issue 11: per-caller quotas on the routes that create things (requests, registrations,
-- uploads). A fixed window per caller and route; the key is a hash, never an id in the clear.
create table quota_counters (
  key_hash bytea not null,
  window_start timestamptz not null,
  count int not null default 0,
  primary key (key_hash, window_start)
);
create index quota_counters_window on quota_counters (window_start);
