-- D2: who gave us a person's data, as a kind the workflows and answers can rely on, and how.
-- 'self' is recorded only when it is true: staff must say so (the API has no default).
alter table customers add column provided_by_kind text check (provided_by_kind in ('self', 'client', 'team_lead', 'third_party'));
alter table customers add column provided_via text check (provided_via in ('phone', 'email', 'in_person', 'web'));
update customers set provided_by_kind = case
  when provided_by = 'self' then 'self'
  when provided_by like '%(teamansvarlig / team lead)' then 'team_lead'
  else 'third_party' end;
alter table customers alter column provided_by drop default;
