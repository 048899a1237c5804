-- ListConversations by provider (the console's and the API's provider
-- filter), newest first, as conversations_account (0004) does by account.
CREATE INDEX conversations_provider ON conversations (provider, updated);
