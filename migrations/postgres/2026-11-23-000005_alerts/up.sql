ALTER TABLE users ADD COLUMN alert_mode TEXT NOT NULL DEFAULT 'on';
ALTER TABLE users ADD COLUMN digest_hour INTEGER NOT NULL DEFAULT 8;
ALTER TABLE users ADD COLUMN last_alert_at TIMESTAMP;
ALTER TABLE memberships ADD COLUMN alert_level TEXT NOT NULL DEFAULT 'all';
ALTER TABLE memberships ADD COLUMN alerted_through_id BIGINT NOT NULL DEFAULT 0;

CREATE TABLE outbox (
    id BIGSERIAL PRIMARY KEY,
    kind TEXT NOT NULL,
    user_id BIGINT REFERENCES users (id) ON DELETE CASCADE,
    recipient TEXT NOT NULL,
    subject TEXT NOT NULL,
    text_body TEXT NOT NULL,
    html_body TEXT NOT NULL,
    summary TEXT NOT NULL DEFAULT '',
    unsubscribe_url TEXT,
    status TEXT NOT NULL DEFAULT 'pending',
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMP NOT NULL,
    locked_until TIMESTAMP,
    last_error TEXT,
    created_at TIMESTAMP NOT NULL,
    sent_at TIMESTAMP
);
CREATE INDEX outbox_due ON outbox (status, next_attempt_at);
CREATE INDEX outbox_user ON outbox (user_id, created_at);
