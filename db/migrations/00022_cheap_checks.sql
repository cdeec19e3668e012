-- Issue 15: the same rules, checked without counted regular expressions. Postgres's regex engine
-- expands `{0,59}` and `{64}` into large automata and runs them per row: the ledger's five
-- checks cost ~14 µs per entry (a sweep writes one per deleted recording; 1,988 ms against
-- 659 ms for 100,000 entries), and the outbox's subject_id ~9 µs per insert and update of every
-- email (946 ms against 48 ms for 100,000 policy keys). Every value the old checks accepted is
-- accepted, every value they refused is refused (test/cheap-checks.test.ts compares them).

alter table audit_ledger
  drop constraint audit_ledger_actor_role_check,
  drop constraint audit_ledger_action_check,
  drop constraint audit_ledger_object_type_check,
  drop constraint audit_ledger_prev_hash_check,
  drop constraint audit_ledger_hash_check;
alter table audit_ledger
  add constraint audit_ledger_actor_role_check check (actor_role ~ '^[a-z][a-z_-]*$' and length(actor_role) <= 40),
  add constraint audit_ledger_action_check check (action ~ '^[a-z][a-z_.]*$' and length(action) <= 60),
  add constraint audit_ledger_object_type_check check (object_type ~ '^[a-z][a-z_]*$' and length(object_type) <= 40),
  add constraint audit_ledger_prev_hash_check check (length(prev_hash) = 64 and prev_hash !~ '[^0-9a-f]'),
  add constraint audit_ledger_hash_check check (length(hash) = 64 and hash !~ '[^0-9a-f]');

-- Whose email a row is, from its business key (00006): `customer:{id}…` and `request:{id}…`
-- name the person second, `policy:{version}:{customerId}` last. A generated column's expression
-- cannot be altered in place (Postgres 15), so the column and its index are made again.
alter table email_outbox drop column subject_id;
alter table email_outbox add column subject_id uuid generated always as (
  case
    when (key like 'customer:%' or key like 'request:%')
         and length(split_part(key, ':', 2)) = 36 and split_part(key, ':', 2) !~ '[^0-9a-f-]'
      then split_part(key, ':', 2)::uuid
    when key like 'policy:%' and length(key) >= 45 and substr(key, length(key) - 36, 1) = ':'
         and right(key, 36) !~ '[^0-9a-f-]'
      then right(key, 36)::uuid
  end) stored;
create index email_outbox_by_subject on email_outbox (subject_id) where subject_id is not null;
