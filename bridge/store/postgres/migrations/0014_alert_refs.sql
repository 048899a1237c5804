-- Alert references (issue 19). Mirrors the SQLite store's
-- 0016_alert_refs.sql: each alert group a phone was paged about, under
-- the short reference (#3) its SMS carried (bridge.AlertRef). A phone's
-- next reference is chosen under a transaction-level advisory lock on the
-- phone (see PageAlert), so instances paging one phone at once never
-- hand out one reference twice.
CREATE TABLE alert_refs (
	id             text PRIMARY KEY,
	phone          text NOT NULL,
	ref            integer NOT NULL,
	account        text NOT NULL,
	source         text NOT NULL,
	group_key      text NOT NULL,
	labels         text NOT NULL, -- JSON object
	title          text NOT NULL,
	paged          bigint NOT NULL, -- Unix milliseconds
	silence_id     text NOT NULL DEFAULT '',
	silenced_until bigint NOT NULL DEFAULT 0,
	UNIQUE (phone, ref),
	UNIQUE (phone, account, source, group_key)
);
CREATE INDEX alert_refs_latest ON alert_refs (phone, account, paged);
CREATE INDEX alert_refs_paged ON alert_refs (paged, id);
