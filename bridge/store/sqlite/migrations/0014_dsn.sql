-- Delivery status notifications (issue 17, RFC 3461).

-- The ENVID and RET given at MAIL FROM ('' when not given).
ALTER TABLE messages ADD COLUMN envelope_id TEXT NOT NULL DEFAULT '';
ALTER TABLE messages ADD COLUMN dsn_return TEXT NOT NULL DEFAULT '';

-- NOTIFY as bridge.Notify writes it ("success,delay", "never"; '' for
-- recipients from before: failures only), the ORCPT given at RCPT, and
-- whether the one NOTIFY=DELAY notification is queued.
ALTER TABLE recipients ADD COLUMN notify TEXT NOT NULL DEFAULT '';
ALTER TABLE recipients ADD COLUMN orcpt TEXT NOT NULL DEFAULT '';
ALTER TABLE recipients ADD COLUMN delay_notified INTEGER NOT NULL DEFAULT 0;

-- The notifications sent about the recipient, for the conversation log:
-- bridge.Action words ("relayed,delivered", "failed"), in order; '' none.
ALTER TABLE recipients ADD COLUMN notified TEXT NOT NULL DEFAULT '';
