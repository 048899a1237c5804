-- The suppression list and its history; mirrors the SQLite store's
-- 0012_suppressions.sql. Shared by every instance on the database, so a
-- STOP received by one is honoured by all. Retention never purges either.
CREATE TABLE suppressions (
	phone   text NOT NULL,
	our     text NOT NULL DEFAULT '',
	account text NOT NULL DEFAULT '',
	reason  text NOT NULL DEFAULT '',
	source  text NOT NULL,
	author  text NOT NULL,
	created bigint NOT NULL,
	PRIMARY KEY (phone, our, account)
);
CREATE INDEX suppressions_created ON suppressions (created);

CREATE TABLE suppression_events (
	id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	action  text NOT NULL,
	phone   text NOT NULL,
	our     text NOT NULL DEFAULT '',
	account text NOT NULL DEFAULT '',
	reason  text NOT NULL DEFAULT '',
	source  text NOT NULL,
	author  text NOT NULL,
	at      bigint NOT NULL
);
CREATE INDEX suppression_events_phone ON suppression_events (phone, id);

-- Scheduled messages, for the sends a provider holds that an opt-out must
-- recall (HeldAtProvider). Partial: a message sent now enters no index.
CREATE INDEX messages_scheduled ON messages (send_at) WHERE send_at > 0;
