-- Queue depth and age for /metrics in constant time (issue 15): counting
-- the queued recipients at every scrape read the whole queue (0.4-0.8 s
-- at 100,000 queued).
--
-- queue_stats holds the number of queued recipients as the sum of its
-- rows, kept by triggers in the transaction that changes a recipient's
-- state, so it is exact whichever instance and code path made the change.
--
-- One row would be one lock every committing transaction of every
-- instance waits for; each backend instead adds to the row of its process
-- id modulo 64, so concurrent transactions rarely share a row. And the row
-- is written once per transaction, at commit: a row trigger adds each
-- recipient's change to a transaction-local setting, and a deferred
-- trigger writes the sum on its first run at commit (the later runs find
-- nothing to write). So the counter row is the last lock a transaction
-- takes, after which it waits for nothing else: sharing a row can delay a
-- commit but never deadlock with the store's own locking (recipients in
-- id order, see Complete); and a transaction moving many recipients
-- leaves one new version of the row, not a chain of one per recipient.
-- Only rows entering or leaving the queue fire them: claims, reports and
-- other updates that keep the state cost nothing. A rollback, to a
-- savepoint too, takes back the setting with the changes.
CREATE TABLE queue_stats (
	slot   smallint PRIMARY KEY,
	queued bigint NOT NULL
);
INSERT INTO queue_stats (slot, queued) SELECT 0, count(*) FROM recipients WHERE state = 'queued';

CREATE FUNCTION queue_stats_note() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
	delta bigint := coalesce(nullif(current_setting('smsbridge.queued_delta', true), ''), '0')::bigint;
BEGIN
	IF TG_OP IN ('INSERT', 'UPDATE') AND NEW.state = 'queued' THEN
		delta := delta + 1;
	END IF;
	IF TG_OP IN ('DELETE', 'UPDATE') AND OLD.state = 'queued' THEN
		delta := delta - 1;
	END IF;
	PERFORM set_config('smsbridge.queued_delta', delta::text, true);
	RETURN NULL;
END $$;

CREATE FUNCTION queue_stats_flush() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
	delta bigint := coalesce(nullif(current_setting('smsbridge.queued_delta', true), ''), '0')::bigint;
BEGIN
	IF delta <> 0 THEN
		PERFORM set_config('smsbridge.queued_delta', '0', true);
		INSERT INTO queue_stats AS q (slot, queued) VALUES (pg_backend_pid() % 64, delta)
		ON CONFLICT (slot) DO UPDATE SET queued = q.queued + excluded.queued;
	END IF;
	RETURN NULL;
END $$;

CREATE TRIGGER recipients_queued_insert AFTER INSERT ON recipients FOR EACH ROW
	WHEN (NEW.state = 'queued') EXECUTE FUNCTION queue_stats_note();
-- Deletes include ON DELETE CASCADE from messages.
CREATE TRIGGER recipients_queued_delete AFTER DELETE ON recipients FOR EACH ROW
	WHEN (OLD.state = 'queued') EXECUTE FUNCTION queue_stats_note();
CREATE TRIGGER recipients_queued_update AFTER UPDATE OF state ON recipients FOR EACH ROW
	WHEN ((OLD.state = 'queued') <> (NEW.state = 'queued')) EXECUTE FUNCTION queue_stats_note();

CREATE CONSTRAINT TRIGGER recipients_queued_flush_insert AFTER INSERT ON recipients
	DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
	WHEN (NEW.state = 'queued') EXECUTE FUNCTION queue_stats_flush();
CREATE CONSTRAINT TRIGGER recipients_queued_flush_delete AFTER DELETE ON recipients
	DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
	WHEN (OLD.state = 'queued') EXECUTE FUNCTION queue_stats_flush();
CREATE CONSTRAINT TRIGGER recipients_queued_flush_update AFTER UPDATE OF state ON recipients
	DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
	WHEN ((OLD.state = 'queued') <> (NEW.state = 'queued')) EXECUTE FUNCTION queue_stats_flush();

-- The oldest queued message: the queued recipient stored first, found at
-- this index's left edge (recipient ids grow with arrival). Partial, so it
-- holds only the queue.
CREATE INDEX recipients_queued ON recipients (id) WHERE state = 'queued';
