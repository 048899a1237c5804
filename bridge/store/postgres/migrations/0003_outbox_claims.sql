-- claimed_by is the instance id of the store that handed the mail to a
-- mail worker, as recipients.claimed_by is for SMS: RecoverMail makes the
-- mail of instances that are gone due at once instead of after their lease.
ALTER TABLE outbox ADD COLUMN claimed_by integer;
