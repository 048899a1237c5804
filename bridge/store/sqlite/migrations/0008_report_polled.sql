-- When the delivery-report poller last asked about a sent recipient (0:
-- never). Outstanding hands out the ids asked least recently first, so
-- sends that never get a final report cannot starve newer ones (they
-- used to: the 100 oldest were asked every round).
ALTER TABLE recipients ADD COLUMN polled INTEGER NOT NULL DEFAULT 0;
