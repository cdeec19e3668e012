-- D3 / contract: a retried POST /v1/call-messages with the same Idempotency-Key answers as the
-- first did and stores no second message (nor counts it twice). Only hashes are kept: the
-- key is the caller's opaque string, the request hash tells "same body" from "another body".
-- The columns go with their row: once a message is erased or swept, its key is free again.
alter table call_messages add column idempotency_key_hash bytea;
alter table call_messages add column request_sha256 bytea;
alter table call_messages add constraint call_messages_idempotency_pair
  check ((idempotency_key_hash is null) = (request_sha256 is null));
create unique index call_messages_by_idempotency_key on call_messages (idempotency_key_hash) where idempotency_key_hash is not null;
