-- Pinned messages (any member pins; the room lists them) and saved messages (each member's own).
ALTER TABLE messages ADD COLUMN pinned_at TIMESTAMP;
ALTER TABLE messages ADD COLUMN pinned_by BIGINT REFERENCES users (id) ON DELETE SET NULL;
CREATE INDEX messages_pinned ON messages (room_id, pinned_at) WHERE pinned_at IS NOT NULL;
CREATE TABLE saved_messages (
    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    message_id BIGINT NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    saved_at TIMESTAMP NOT NULL,
    PRIMARY KEY (user_id, message_id)
);
