-- Sticky senders (issue 17). Mirrors the SQLite store's
-- 0015_sender_claims.sql: which writer holds which of our numbers with
-- which phone, until when (bridge.SenderClaim). Claims for one phone are
-- made under a transaction-level advisory lock on the phone (see
-- ClaimSenders), so instances sharing the database never hand one free
-- number to two writers.
CREATE TABLE sender_claims (
	phone  text NOT NULL,
	our    text NOT NULL,
	writer text NOT NULL,
	until  bigint NOT NULL, -- Unix milliseconds
	PRIMARY KEY (phone, our, writer)
);
CREATE INDEX sender_claims_until ON sender_claims (until);
