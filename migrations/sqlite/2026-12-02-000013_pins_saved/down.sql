DROP TABLE saved_messages;
DROP INDEX messages_pinned;
ALTER TABLE messages DROP COLUMN pinned_by;
ALTER TABLE messages DROP COLUMN pinned_at;
