-- Queue depth and age for /metrics in constant time (issue 15): counting
-- the queued recipients at every scrape read the whole queue (0.4-0.8 s
-- at 100,000 queued).
--
-- queue_stats holds the number of queued recipients as the sum of its
-- rows, kept by statement triggers in the transaction that changes a
-- recipient's state, so it is exact whichever instance and code path
-- made the change. One row would be one lock every committing
-- transaction of every instance waits for; each backend instead adds to
-- the row of its process id modulo 64, so concurrent transactions rarely
-- share a row (and then one waits for the other's commit; PostgreSQL
-- resolves the rare deadlock that could follow by failing one of them,
-- a temporary error). Statement triggers do one upsert per statement,
-- however many rows it moved.
CREATE TABLE queue_stats (
	slot   smallint PRIMARY KEY,
	queued bigint NOT NULL
);
INSERT INTO queue_stats (slot, queued) SELECT 0, count(*) FROM recipients WHERE state = 'queued';

CREATE FUNCTION queue_stats_add(delta bigint) RETURNS void LANGUAGE sql AS $$
	INSERT INTO queue_stats AS q (slot, queued) VALUES (pg_backend_pid() % 64, delta)
	ON CONFLICT (slot) DO UPDATE SET queued = q.queued + excluded.queued
$$;

CREATE FUNCTION recipients_queued_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
	delta bigint;
BEGIN
	SELECT count(*) INTO delta FROM new_rows WHERE state = 'queued';
	IF delta <> 0 THEN
		PERFORM queue_stats_add(delta);
	END IF;
	RETURN NULL;
END $$;

CREATE FUNCTION recipients_queued_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
	delta bigint;
BEGIN
	SELECT count(*) INTO delta FROM old_rows WHERE state = 'queued';
	IF delta <> 0 THEN
		PERFORM queue_stats_add(-delta);
	END IF;
	RETURN NULL;
END $$;

CREATE FUNCTION recipients_queued_updated() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
	delta bigint;
BEGIN
	SELECT (SELECT count(*) FROM new_rows WHERE state = 'queued')
		- (SELECT count(*) FROM old_rows WHERE state = 'queued') INTO delta;
	IF delta <> 0 THEN
		PERFORM queue_stats_add(delta);
	END IF;
	RETURN NULL;
END $$;

CREATE TRIGGER recipients_queued_insert AFTER INSERT ON recipients
	REFERENCING NEW TABLE AS new_rows
	FOR EACH STATEMENT EXECUTE FUNCTION recipients_queued_inserted();
-- Deletes include ON DELETE CASCADE from messages.
CREATE TRIGGER recipients_queued_delete AFTER DELETE ON recipients
	REFERENCING OLD TABLE AS old_rows
	FOR EACH STATEMENT EXECUTE FUNCTION recipients_queued_deleted();
CREATE TRIGGER recipients_queued_update AFTER UPDATE ON recipients
	REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
	FOR EACH STATEMENT EXECUTE FUNCTION recipients_queued_updated();

-- The oldest queued message: the queued recipient stored first, found at
-- this index's left edge (recipient ids grow with arrival). Partial, so it
-- holds only the queue.
CREATE INDEX recipients_queued ON recipients (id) WHERE state = 'queued';
