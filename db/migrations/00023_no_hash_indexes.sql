-- Issue 15: the receipt chain and the audit ledger stop keeping a unique index on `hash`.
-- Nothing looks an entry up by its hash (verification walks the chain by seq), and two entries
-- cannot share one: each hash covers its own seq, which the primary key keeps unique, and its
-- predecessor's hash. The index cost every deletion and every ledgered act a random insert into
-- a B-tree of 64-character keys (deletion_receipts: 761 ms against 461 ms per 100,000 rows
-- without it) and ~100 bytes per row.
alter table deletion_receipts drop constraint deletion_receipts_hash_key;
alter table audit_ledger drop constraint audit_ledger_hash_key;
