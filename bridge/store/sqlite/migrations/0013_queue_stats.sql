-- Queue depth and age for /metrics in constant time (issue 15): counting
-- the queued recipients at every scrape read the whole queue (0.4-0.8 s
-- at 100,000 queued).
--
-- queue_stats holds the number of queued recipients, kept by triggers in
-- the transaction that changes a recipient's state, so it is exact
-- whichever code path (enqueue, outcome, cancel, retention, import, a
-- second process on the file) made the change. A commit that changes the
-- count writes this one-row table's page once more, however many
-- recipients it moved.
CREATE TABLE queue_stats (
	id     INTEGER PRIMARY KEY CHECK (id = 1),
	queued INTEGER NOT NULL
) STRICT;
INSERT INTO queue_stats (id, queued) SELECT 1, count(*) FROM recipients WHERE state = 'queued';

CREATE TRIGGER recipients_queued_insert AFTER INSERT ON recipients
	WHEN new.state = 'queued'
BEGIN
	UPDATE queue_stats SET queued = queued + 1 WHERE id = 1;
END;
-- Deletes include ON DELETE CASCADE from messages.
CREATE TRIGGER recipients_queued_delete AFTER DELETE ON recipients
	WHEN old.state = 'queued'
BEGIN
	UPDATE queue_stats SET queued = queued - 1 WHERE id = 1;
END;
CREATE TRIGGER recipients_queued_update AFTER UPDATE OF state ON recipients
	WHEN (old.state = 'queued') <> (new.state = 'queued')
BEGIN
	UPDATE queue_stats SET queued = queued + (new.state = 'queued') - (old.state = 'queued') WHERE id = 1;
END;

-- The oldest queued message: the queued recipient stored first, found at
-- this index's left edge (recipient ids grow with arrival). Partial, so it
-- holds only the queue: an entry is added at enqueue, at the right edge,
-- and removed with the outcome.
CREATE INDEX recipients_queued ON recipients (id) WHERE state = 'queued';
