-- Issue 10: the business-transfer package is one tar built in resumable batches, signed by
-- TopCall, acknowledged or escalated, and undone (link revoked, package deleted) when the
-- transfer is cancelled or the acquirer rejects it.
alter table transfers
  -- {offset, clientIds, clientIndex, after, part, seq, persons, recordings}: where the next batch starts
  add column package_state jsonb,
  -- the data key wrapped for the acquirer (RSA-OAEP-SHA256, base64): randomised, so kept for rebuilds
  add column package_key_wrapped text,
  add column package_started_at timestamptz,
  add column package_sealed_at timestamptz,
  add column signer_key_sha256 text,
  add column downloads integer not null default 0,
  add column first_downloaded_at timestamptz,
  add column ack_mismatches integer not null default 0,
  add column ended_at timestamptz,
  -- cancelled (staff) or rejected (acquirer): the reason as a code, and who
  add column ended_by text,
  add column end_reason text check (end_reason in ('cancelled', 'rejected')),
  -- what was and was not handed over, for the register
  add column outcome jsonb,
  add column disclosure_id uuid references disclosures (id);

-- Who of the inventory was actually packaged (a person erased or restricted since is not), and
-- their client, so the package reads a client's persons in id order straight off an index.
alter table transfer_persons add column handed_over boolean not null default false, add column client_id uuid references clients (id);
update transfer_persons p set client_id = c.client_id from customers c where c.id = p.customer_id;
alter table transfer_persons alter column client_id set not null;
create index transfer_persons_by_client on transfer_persons (transfer_id, client_id, customer_id);

-- The manifest's file list, written batch by batch (paths hold client and recording ids only).
create table transfer_files (
  transfer_id uuid not null references transfers (id),
  seq integer not null,
  path text not null,
  bytes bigint not null,
  sha256 text not null,
  primary key (transfer_id, seq)
);

-- A disclosure that was recorded but never happened (a package deleted before anyone downloaded it).
alter table disclosures add column withdrawn_at timestamptz, add column withdrawn_reason text;

-- Per-transfer data keys derive from this key (HMAC), so a resumed build writes the same bytes;
-- the manifest is signed with an Ed25519 key made from the seed.
insert into app_secrets (name, value)
  values ('transfer_key', decode(replace(gen_random_uuid()::text, '-', '') || replace(gen_random_uuid()::text, '-', ''), 'hex')),
         ('transfer_signing_seed', decode(replace(gen_random_uuid()::text, '-', '') || replace(gen_random_uuid()::text, '-', ''), 'hex'))
  on conflict do nothing;
