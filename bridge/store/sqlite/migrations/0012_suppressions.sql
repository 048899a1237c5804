-- The suppression list: phones that get no SMS from a number (our, the
-- conversation's OurKey), an account, or at all ('' in our or account
-- covers every one), and the history of every change to it. Retention
-- never purges either: an opt-out must outlive the messages around it.
CREATE TABLE suppressions (
	phone   TEXT NOT NULL,
	our     TEXT NOT NULL DEFAULT '',
	account TEXT NOT NULL DEFAULT '',
	reason  TEXT NOT NULL DEFAULT '',
	source  TEXT NOT NULL,          -- sms, api, cli
	author  TEXT NOT NULL,          -- the phone, an account, a system user
	created INTEGER NOT NULL,
	PRIMARY KEY (phone, our, account)
) STRICT, WITHOUT ROWID;
CREATE INDEX suppressions_created ON suppressions (created);

CREATE TABLE suppression_events (
	id      INTEGER PRIMARY KEY,
	action  TEXT NOT NULL,          -- add, remove
	phone   TEXT NOT NULL,
	our     TEXT NOT NULL DEFAULT '',
	account TEXT NOT NULL DEFAULT '',
	reason  TEXT NOT NULL DEFAULT '',
	source  TEXT NOT NULL,
	author  TEXT NOT NULL,
	at      INTEGER NOT NULL
) STRICT;
CREATE INDEX suppression_events_phone ON suppression_events (phone, id);

-- Scheduled messages, for the sends a provider holds that an opt-out must
-- recall (HeldAtProvider). Partial: a message sent now enters no index.
CREATE INDEX messages_scheduled ON messages (send_at) WHERE send_at > 0;
