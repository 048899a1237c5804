-- Retention (store.retention) deletes finished records oldest first, a
-- batch at a time, continuing after the last one looked at: each kind's
-- purge order needs an index, or every batch would read the whole table
-- while holding the writer. conversations_updated (0004) serves
-- conversations: a WITHOUT ROWID table's index entries end with the id.
--
-- messages_created is one more entry per Enqueue, the hot path; created
-- grows with time, so it is appended at the index's right edge, on a page
-- the commit writes anyway.
CREATE INDEX messages_created ON messages (created, id);
-- Deleting a message deletes its idempotency key (ON DELETE CASCADE):
-- without this index each deletion would read the whole key table.
CREATE INDEX idempotency_keys_message ON idempotency_keys (message_id);
CREATE INDEX inbound_created ON inbound (created, id);
-- Mail delivered or given up, by when that happened.
CREATE INDEX outbox_done ON outbox (updated, id) WHERE state <> 'queued';
