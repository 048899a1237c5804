-- Messages and their recipients: the durable queue, shared by every
-- smsbridge instance that points at this database.
--
-- The schema mirrors the SQLite store's. Times are bigint unix
-- milliseconds, UTC; 0 stands for the zero time.Time ("none"), which keeps
-- "due now" an ordinary comparison rather than a NULL special case.
-- Fields copied from a mail as received (envelope, headers, sender, text)
-- are bytea: a mail may carry NUL bytes or invalid UTF-8, which a text
-- column refuses, and a message must not be refused for its bytes.
-- JSON columns are json, not jsonb: jsonb rejects \u0000, which a
-- template parameter may contain; nothing queries inside them.

CREATE TABLE messages (
	id              text PRIMARY KEY,
	channel         text NOT NULL,
	account         text NOT NULL,
	envelope_from   bytea NOT NULL DEFAULT '',
	mail_message_id bytea NOT NULL DEFAULT '',
	headers         bytea NOT NULL DEFAULT '',
	sender          bytea NOT NULL DEFAULT '',
	text            bytea NOT NULL DEFAULT '',
	template        text NOT NULL DEFAULT '',
	params          json,                         -- object; NULL when empty
	send_at         bigint NOT NULL DEFAULT 0,
	created         bigint NOT NULL
);

CREATE TABLE recipients (
	id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	message_id   text NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
	to_addr      text NOT NULL,
	providers    json NOT NULL DEFAULT '[]',      -- list, route order
	provider     text NOT NULL DEFAULT '',
	state        text NOT NULL,
	attempts     integer NOT NULL DEFAULT 0,
	next_attempt bigint NOT NULL DEFAULT 0,
	provider_id  text NOT NULL DEFAULT '',
	error        text NOT NULL DEFAULT '',
	info         json,                            -- object; NULL when empty
	updated      bigint NOT NULL DEFAULT 0,
	-- claimed_by is the instance id of the store that handed the
	-- recipient to its dispatcher and has not recorded an outcome yet;
	-- NULL when nobody holds it. Recover uses it to tell the claims of a
	-- dead instance from those of a live one.
	claimed_by   integer
);

-- Claim, NextDue and Stats: queued recipients in (next_attempt, id) order.
-- Partial, so finished recipients (most of the table) cost it nothing.
CREATE INDEX recipients_due ON recipients (next_attempt, id) WHERE state = 'queued';
CREATE INDEX recipients_message ON recipients (message_id);

-- Idempotency keys of the HTTP API: a retried request with the same key
-- returns the message the first one created instead of sending twice.
CREATE TABLE idempotency_keys (
	account    text NOT NULL,
	key        text NOT NULL,
	message_id text NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
	created    bigint NOT NULL,
	PRIMARY KEY (account, key)
);
CREATE INDEX idempotency_keys_message ON idempotency_keys (message_id);
