DROP INDEX saved_messages_message;
