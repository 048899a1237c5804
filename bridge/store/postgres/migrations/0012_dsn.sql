-- Delivery status notifications (issue 17, RFC 3461). Mirrors the SQLite
-- store's 0013_dsn.sql.

-- The ENVID and RET given at MAIL FROM ('' when not given).
ALTER TABLE messages ADD COLUMN envelope_id text NOT NULL DEFAULT '';
ALTER TABLE messages ADD COLUMN dsn_return text NOT NULL DEFAULT '';

-- NOTIFY as bridge.Notify writes it ("success,delay", "never"; '' for
-- recipients from before: failures only), the ORCPT given at RCPT, and
-- whether the one NOTIFY=DELAY notification is queued.
ALTER TABLE recipients ADD COLUMN notify text NOT NULL DEFAULT '';
ALTER TABLE recipients ADD COLUMN orcpt text NOT NULL DEFAULT '';
ALTER TABLE recipients ADD COLUMN delay_notified boolean NOT NULL DEFAULT false;

-- The notifications sent about the recipient, for the conversation log:
-- bridge.Action words ("relayed,delivered", "failed"), in order; '' none.
ALTER TABLE recipients ADD COLUMN notified text NOT NULL DEFAULT '';
