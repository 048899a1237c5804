-- Trust boundaries: which provider speaks for which conversation, and
-- what an idempotency key was first used for.

-- The provider a conversation's phone answers through: the one that
-- carried the SMS whose writer gets the replies, or, for a conversation
-- the phone started, the one it wrote through. bridge.Receive files an
-- SMS from another provider elsewhere (bridge.ConversationIDVia), so one
-- provider's callback cannot plant replies in another's conversations.
ALTER TABLE conversations ADD COLUMN provider TEXT NOT NULL DEFAULT '';
-- Conversations from before: the provider of their newest SMS sent,
-- else of their newest inbound SMS.
UPDATE conversations SET provider = coalesce(
	(SELECT r.provider FROM recipients r
		WHERE r.conversation_id = conversations.id AND r.provider <> '' AND r.provider_id <> ''
		ORDER BY r.updated DESC, r.id DESC LIMIT 1),
	(SELECT i.provider FROM inbound i
		WHERE i.conversation_id = conversations.id ORDER BY i.received DESC, i.id DESC LIMIT 1),
	'');
-- A phone and one of our numbers may now have a conversation per provider
-- (the second one holding what a foreign provider reported), so the pair
-- is no longer unique.
DROP INDEX conversations_phone_our;
CREATE INDEX conversations_phone_our ON conversations (phone, our);

-- The digest of the request that first used the key (the front end's,
-- see bridge.Message.RequestDigest); '' for keys stored before.
ALTER TABLE idempotency_keys ADD COLUMN request_digest TEXT NOT NULL DEFAULT '';
