-- Replies: a reply names the first message of its thread; that message counts its replies and
-- keeps the time of the last one (both change with the room cursor, so pages update live).
ALTER TABLE messages ADD COLUMN parent_id BIGINT REFERENCES messages (id);
ALTER TABLE messages ADD COLUMN reply_count INTEGER NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN last_reply_at TIMESTAMP;
CREATE INDEX messages_thread ON messages (parent_id, id) WHERE parent_id IS NOT NULL;
