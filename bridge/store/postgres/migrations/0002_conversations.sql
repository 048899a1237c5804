-- Two-way SMS: the conversation log, inbound SMS, the mail queue for the
-- smarthost, and the cursors and leases of pollers. The schema mirrors
-- the SQLite store's 0004_conversations.sql.
--
-- Enqueue is the hot path (every SMTP session waits for its commit), so
-- nothing here makes it do more work: new recipient columns are NULL or
-- empty at enqueue (and with a constant default, adding them rewrites no
-- rows), and the new recipient indexes are partial, on rows an outcome or
-- a delivery report has touched, so an inserted queued recipient enters
-- none of them. Building them reads the table once, under a lock that
-- holds writes back for that long; that is the price of one upgrade.

-- Where the phone's replies go (see bridge.Message.ReplyTo). bytea, as
-- the other fields copied from a mail.
ALTER TABLE messages ADD COLUMN reply_to bytea NOT NULL DEFAULT '';

-- The conversation a recipient was filed under when its outcome was
-- recorded; NULL until then. No foreign key: it would be checked on every
-- recipient insert, and the conversation is written in the same
-- transaction that files the recipient anyway.
ALTER TABLE recipients ADD COLUMN conversation_id text;
-- ConversationLog: the outbound side of one conversation.
CREATE INDEX recipients_conversation ON recipients (conversation_id)
	WHERE conversation_id IS NOT NULL;
-- Report: the recipients of one provider id. Report's query states the
-- condition too, so that the planner knows the index holds its rows
-- whatever the parameters.
CREATE INDEX recipients_report ON recipients (provider, provider_id)
	WHERE provider_id <> '';
-- Outstanding: sent recipients waiting for a report, by provider and age.
CREATE INDEX recipients_outstanding ON recipients (provider, updated)
	WHERE state = 'sent';

-- One phone talking with one of our sender IDs; id is
-- bridge.ConversationID(phone, our). The reply routing (account through
-- last_out) is the person who wrote last; all '' / 0 until someone has.
CREATE TABLE conversations (
	id              text PRIMARY KEY,
	phone           text NOT NULL,
	our             text NOT NULL DEFAULT '',
	account         text NOT NULL DEFAULT '',
	reply_to        text NOT NULL DEFAULT '',
	mail_message_id text NOT NULL DEFAULT '',
	subject         text NOT NULL DEFAULT '',
	last_out        bigint NOT NULL DEFAULT 0,
	created         bigint NOT NULL,
	updated         bigint NOT NULL,
	-- LatestConversation and ListConversations by phone: a phone has a
	-- conversation per sender of ours, a handful to sort at most.
	UNIQUE (phone, our)
);
-- ListConversations, newest first: all, or one account's.
CREATE INDEX conversations_updated ON conversations (updated);
CREATE INDEX conversations_account ON conversations (account, updated);

-- SMS received from phones. A provider retries a callback it thinks
-- failed: (provider, dedupe_key) records each message once. raw is the
-- request as received, bytes and all.
CREATE TABLE inbound (
	id              text PRIMARY KEY,
	provider        text NOT NULL,
	dedupe_key      text NOT NULL,
	conversation_id text NOT NULL,
	from_addr       text NOT NULL,
	to_addr         text NOT NULL DEFAULT '',
	text            text NOT NULL DEFAULT '',
	received        bigint NOT NULL,
	raw             bytea NOT NULL DEFAULT '',
	mail_to         text NOT NULL DEFAULT '',
	created         bigint NOT NULL,
	UNIQUE (provider, dedupe_key)
);
CREATE INDEX inbound_conversation ON inbound (conversation_id, received);

-- Mail for the smarthost (replies, bounces), complete and ready to send,
-- so that a retry sends the same bytes.
CREATE TABLE outbox (
	id           text PRIMARY KEY,
	kind         text NOT NULL,
	ref          text NOT NULL DEFAULT '',
	from_addr    text NOT NULL DEFAULT '',
	to_addr      text NOT NULL,
	data         bytea NOT NULL,
	state        text NOT NULL,
	attempts     integer NOT NULL DEFAULT 0,
	next_attempt bigint NOT NULL DEFAULT 0,
	error        text NOT NULL DEFAULT '',
	created      bigint NOT NULL,
	updated      bigint NOT NULL
);
-- ClaimMail and MailStats: queued mail in the order it is handed out.
CREATE INDEX outbox_due ON outbox (next_attempt, created, id) WHERE state = 'queued';

-- A poller's position at its provider, saved with what it fetched.
CREATE TABLE cursors (
	name  text PRIMARY KEY,
	value text NOT NULL
);

-- Who runs a job that only one runner may (a poller), across instances;
-- expires is when the holder's claim lapses unless renewed.
CREATE TABLE leases (
	name    text PRIMARY KEY,
	holder  text NOT NULL,
	expires bigint NOT NULL
);
