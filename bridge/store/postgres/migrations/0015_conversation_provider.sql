-- ListConversations by provider (the console's and the API's provider
-- filter), newest first. Mirrors the SQLite store's
-- 0017_conversation_provider.sql.
CREATE INDEX conversations_provider ON conversations (provider, updated);
