-- Messages and their recipients: the durable queue.
--
-- Times are INTEGER unix milliseconds, UTC; 0 stands for the zero
-- time.Time ("none"). JSON columns are NULL when empty.

CREATE TABLE messages (
	id              TEXT PRIMARY KEY,
	channel         TEXT NOT NULL,
	account         TEXT NOT NULL,
	envelope_from   TEXT NOT NULL DEFAULT '',
	mail_message_id TEXT NOT NULL DEFAULT '',
	headers         TEXT NOT NULL DEFAULT '',
	sender          TEXT NOT NULL DEFAULT '',
	text            TEXT NOT NULL DEFAULT '',
	template        TEXT NOT NULL DEFAULT '',
	params          TEXT,                      -- JSON object
	send_at         INTEGER NOT NULL DEFAULT 0,
	created         INTEGER NOT NULL
) STRICT;

-- No AUTOINCREMENT: its sqlite_sequence row would add a page to every
-- commit. Ids are reused only if the newest recipient is deleted.
CREATE TABLE recipients (
	id           INTEGER PRIMARY KEY,
	message_id   TEXT NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
	to_addr      TEXT NOT NULL,
	providers    TEXT NOT NULL DEFAULT '[]',  -- JSON list, route order
	provider     TEXT NOT NULL DEFAULT '',
	state        TEXT NOT NULL,
	attempts     INTEGER NOT NULL DEFAULT 0,
	next_attempt INTEGER NOT NULL DEFAULT 0,
	provider_id  TEXT NOT NULL DEFAULT '',
	error        TEXT NOT NULL DEFAULT '',
	info         TEXT,                        -- JSON object
	updated      INTEGER NOT NULL DEFAULT 0
) STRICT;

-- Claim and NextDue: due queued recipients in (next_attempt, id) order;
-- the rowid that ends every index entry supplies the id tie-break.
CREATE INDEX recipients_due ON recipients (state, next_attempt);
CREATE INDEX recipients_message ON recipients (message_id);
