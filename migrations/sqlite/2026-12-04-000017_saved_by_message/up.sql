-- Who saved a message, by message: a poll answer's marks for every member at once, and the
-- cascade when a message goes.
CREATE INDEX saved_messages_message ON saved_messages (message_id);
