-- Idempotency keys of the HTTP API: a retried request with the same key
-- returns the message the first one created instead of sending twice.
CREATE TABLE idempotency_keys (
	account    TEXT NOT NULL,
	key        TEXT NOT NULL,
	message_id TEXT NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
	created    INTEGER NOT NULL,
	PRIMARY KEY (account, key)
) STRICT, WITHOUT ROWID;
