-- Smart encoding, length policy and provider prices (issue 16). Mirrors
-- the SQLite store's 0011_encoding_cost.sql.

-- The text sent when it differs from text (smart encoding replaced its
-- look-alikes, or the length policy cut it); '' sends text, which stays
-- as submitted for the conversation log. bytea as text is: it is cut
-- from it. encoding and parts are how the text sent travels ('' and 0
-- for messages from before, and for a template without text).
ALTER TABLE messages ADD COLUMN sms_text bytea NOT NULL DEFAULT '';
ALTER TABLE messages ADD COLUMN encoding text NOT NULL DEFAULT '';
ALTER TABLE messages ADD COLUMN parts integer NOT NULL DEFAULT 0;

-- What the provider reported the SMS cost (bridge.ParseCost's decimal);
-- '' when it reported nothing.
ALTER TABLE recipients ADD COLUMN cost text NOT NULL DEFAULT '';
