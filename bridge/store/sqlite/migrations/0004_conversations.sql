-- Two-way SMS: the conversation log, inbound SMS, the mail queue for the
-- smarthost, and the cursors and leases of pollers.
--
-- Enqueue is the hot path (every SMTP session waits for its commit), so
-- nothing here makes it do more work: new recipient columns are NULL or
-- empty at enqueue, and the new recipient indexes are partial, on rows an
-- outcome or a delivery report has touched, so an inserted queued
-- recipient enters none of them.

-- Where the phone's replies go (see bridge.Message.ReplyTo).
ALTER TABLE messages ADD COLUMN reply_to TEXT NOT NULL DEFAULT '';

-- The conversation a recipient was filed under when its outcome was
-- recorded; NULL until then. No REFERENCES clause: a foreign key would be
-- checked on every recipient insert, and the conversation is written in
-- the same transaction that files the recipient anyway.
ALTER TABLE recipients ADD COLUMN conversation_id TEXT;
-- ConversationLog: the outbound side of one conversation.
CREATE INDEX recipients_conversation ON recipients (conversation_id)
	WHERE conversation_id IS NOT NULL;
-- Report: the recipients of one provider id. Report's query states the
-- condition too, so that the planner knows the index holds its rows. (Not
-- "state IN ('sent', ...)": SQLite would build a table of that list for
-- every recipient inserted, to test it.)
CREATE INDEX recipients_report ON recipients (provider, provider_id)
	WHERE provider_id <> '';
-- Outstanding: sent recipients waiting for a report, by provider and age.
CREATE INDEX recipients_outstanding ON recipients (provider, updated)
	WHERE state = 'sent';

-- One phone talking with one of our sender IDs; id is
-- bridge.ConversationID(phone, our). The reply routing (account through
-- last_out) is the person who wrote last; all '' / 0 until someone has.
CREATE TABLE conversations (
	id              TEXT PRIMARY KEY,
	phone           TEXT NOT NULL,
	our             TEXT NOT NULL DEFAULT '',
	account         TEXT NOT NULL DEFAULT '',
	reply_to        TEXT NOT NULL DEFAULT '',
	mail_message_id TEXT NOT NULL DEFAULT '',
	subject         TEXT NOT NULL DEFAULT '',
	last_out        INTEGER NOT NULL DEFAULT 0,
	created         INTEGER NOT NULL,
	updated         INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
-- LatestConversation and ListConversations by phone: a phone has a
-- conversation per sender of ours, a handful to sort at most.
CREATE UNIQUE INDEX conversations_phone_our ON conversations (phone, our);
-- ListConversations, newest first: all, or one account's.
CREATE INDEX conversations_updated ON conversations (updated);
CREATE INDEX conversations_account ON conversations (account, updated);

-- SMS received from phones. A provider retries a callback it thinks
-- failed: (provider, dedupe_key) records each message once.
CREATE TABLE inbound (
	id              TEXT PRIMARY KEY,
	provider        TEXT NOT NULL,
	dedupe_key      TEXT NOT NULL,
	conversation_id TEXT NOT NULL,
	from_addr       TEXT NOT NULL,
	to_addr         TEXT NOT NULL DEFAULT '',
	text            TEXT NOT NULL DEFAULT '',
	received        INTEGER NOT NULL,
	raw             TEXT NOT NULL DEFAULT '',
	mail_to         TEXT NOT NULL DEFAULT '',
	created         INTEGER NOT NULL
) STRICT;
CREATE UNIQUE INDEX inbound_dedupe ON inbound (provider, dedupe_key);
CREATE INDEX inbound_conversation ON inbound (conversation_id, received);

-- Mail for the smarthost (replies, bounces), complete and ready to send,
-- so that a retry sends the same bytes. Not WITHOUT ROWID: rows carry
-- whole mails, and such tables suit small rows.
CREATE TABLE outbox (
	id           TEXT PRIMARY KEY,
	kind         TEXT NOT NULL,
	ref          TEXT NOT NULL DEFAULT '',
	from_addr    TEXT NOT NULL DEFAULT '',
	to_addr      TEXT NOT NULL,
	data         BLOB NOT NULL,
	state        TEXT NOT NULL,
	attempts     INTEGER NOT NULL DEFAULT 0,
	next_attempt INTEGER NOT NULL DEFAULT 0,
	error        TEXT NOT NULL DEFAULT '',
	created      INTEGER NOT NULL,
	updated      INTEGER NOT NULL
) STRICT;
-- ClaimMail and MailStats: queued mail in the order it is handed out.
CREATE INDEX outbox_due ON outbox (next_attempt, created, id) WHERE state = 'queued';

-- A poller's position at its provider, saved with what it fetched.
CREATE TABLE cursors (
	name  TEXT PRIMARY KEY,
	value TEXT NOT NULL
) STRICT, WITHOUT ROWID;

-- Who runs a job that only one runner may (a poller); expires is when
-- the holder's claim lapses unless renewed.
CREATE TABLE leases (
	name    TEXT PRIMARY KEY,
	holder  TEXT NOT NULL,
	expires INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
