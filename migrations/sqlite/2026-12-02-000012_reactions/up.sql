-- Reactions: one row per (message, member, emoji). Adding or removing one moves the room cursor
-- and stamps the message with it, so the change arrives live like an edit.
CREATE TABLE reactions (
    message_id BIGINT NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    emoji TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    PRIMARY KEY (message_id, user_id, emoji)
);
