-- Sticky senders (issue 17): which writer holds which of our numbers with
-- which phone, until when (bridge.SenderClaim). A writer's later message
-- extends their claim; claims run out after the reply window and are
-- deleted by later claims (see ClaimSenders), found by sender_claims_until.
CREATE TABLE sender_claims (
	phone  TEXT NOT NULL,
	our    TEXT NOT NULL,
	writer TEXT NOT NULL,
	until  INTEGER NOT NULL, -- Unix milliseconds
	PRIMARY KEY (phone, our, writer)
) WITHOUT ROWID;
CREATE INDEX sender_claims_until ON sender_claims (until);
