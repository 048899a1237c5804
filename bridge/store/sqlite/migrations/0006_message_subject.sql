-- The mail's decoded Subject, filed with the conversation when the SMS is
-- sent: decoded once at submission instead of from headers by the
-- dispatcher for every SMS. Messages stored before have none; the
-- dispatcher reads it from their headers.
ALTER TABLE messages ADD COLUMN subject TEXT NOT NULL DEFAULT '';
