-- claimed marks a recipient handed to a dispatcher and not yet completed.
-- After a crash those are the sends that were in flight: Recover makes them
-- due again at the next start instead of waiting out their lease.
ALTER TABLE recipients ADD COLUMN claimed INTEGER NOT NULL DEFAULT 0;
