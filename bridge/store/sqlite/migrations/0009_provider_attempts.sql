-- provider_attempts counts the claims of a recipient at its current
-- provider since it moved there: the dispatcher fails over to the route's
-- next provider on it (attempts counts every claim, at every provider).
-- Recipients queued before start from zero at their current provider.
ALTER TABLE recipients ADD COLUMN provider_attempts INTEGER NOT NULL DEFAULT 0;
-- Claim takes each provider's due recipients up to that provider's quota,
-- and NextDue skips providers with no room: both read this index.
CREATE INDEX recipients_provider_due ON recipients (state, provider, next_attempt);
