DROP INDEX messages_thread;
ALTER TABLE messages DROP COLUMN last_reply_at;
ALTER TABLE messages DROP COLUMN reply_count;
ALTER TABLE messages DROP COLUMN parent_id;
