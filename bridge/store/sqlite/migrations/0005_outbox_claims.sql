-- claimed marks a mail handed to a mail worker and not yet completed, as
-- recipients.claimed does for SMS: after a crash RecoverMail makes those
-- due at the next start instead of after their lease.
ALTER TABLE outbox ADD COLUMN claimed INTEGER NOT NULL DEFAULT 0;
