-- A member's own picture: a square PNG made from their upload, and when it last changed (pages
-- link `/avatars/<id>?v=<that time>`, so a new picture is fetched at once and the old one cached).
CREATE TABLE avatars (
    user_id BIGINT PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    image BYTEA NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
ALTER TABLE users ADD COLUMN avatar_at TIMESTAMP;
