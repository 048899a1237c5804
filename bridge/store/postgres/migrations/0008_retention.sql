-- Retention (store.retention) deletes finished records oldest first, a
-- batch at a time, continuing after the last one looked at: each kind's
-- purge order needs an index, or every batch would read the whole table.
-- conversations_updated (0002) serves conversations; the cascade from
-- messages to idempotency keys uses idempotency_keys_message (0001).
--
-- messages_created is one more entry per Enqueue, the hot path; created
-- grows with time, so entries go to the index's right edge.
CREATE INDEX messages_created ON messages (created, id);
CREATE INDEX inbound_created ON inbound (created, id);
-- Mail delivered or given up, by when that happened.
CREATE INDEX outbox_done ON outbox (updated, id) WHERE state <> 'queued';
