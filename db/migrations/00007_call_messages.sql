-- D3: what TopCall sends a client after a call (the caller's personal data: in their export,
-- gone at their erasure) and per-day call statistics (counts only, so they outlive erasure).
alter table call_messages add column caller_name text;
alter table call_messages add column caller_number text;
alter table call_messages add column created_at timestamptz not null default now();
alter table call_messages alter column channel drop not null;
create index call_messages_by_client on call_messages (client_id, sent_at desc, id);
create index call_messages_by_caller on call_messages (caller_number) where caller_number is not null;

create table call_stats (
  client_id uuid not null references clients (id),
  -- the day in Europe/Copenhagen
  day date not null,
  calls integer not null default 0,
  messages integer not null default 0,
  primary key (client_id, day)
);
-- Calls recorded so far count too.
insert into call_stats (client_id, day, calls)
  select client_id, (recorded_at at time zone 'Europe/Copenhagen')::date, count(*)::int from recordings group by 1, 2
  on conflict (client_id, day) do update set calls = excluded.calls;
insert into call_stats (client_id, day, messages)
  select client_id, (sent_at at time zone 'Europe/Copenhagen')::date, count(*)::int from call_messages group by 1, 2
  on conflict (client_id, day) do update set messages = call_stats.messages + excluded.messages;
