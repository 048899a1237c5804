-- Alert references (issue 19): each alert group a phone was paged about,
-- under the short reference (#3) its SMS carried, with the group's labels
-- (what a silence by SMS matches) and the silence the phone made
-- (bridge.AlertRef). Retention purges references not paged since its
-- cutoff, found by alert_refs_paged.
CREATE TABLE alert_refs (
	id             TEXT PRIMARY KEY,
	phone          TEXT NOT NULL,
	ref            INTEGER NOT NULL,
	account        TEXT NOT NULL,
	source         TEXT NOT NULL,
	group_key      TEXT NOT NULL,
	labels         TEXT NOT NULL, -- JSON object
	title          TEXT NOT NULL,
	paged          INTEGER NOT NULL, -- Unix milliseconds
	silence_id     TEXT NOT NULL DEFAULT '',
	silenced_until INTEGER NOT NULL DEFAULT 0,
	UNIQUE (phone, ref),
	UNIQUE (phone, account, source, group_key)
);
CREATE INDEX alert_refs_latest ON alert_refs (phone, account, paged);
CREATE INDEX alert_refs_paged ON alert_refs (paged, id);
