-- Reply by email: the reply address of each mail, a per-member number that revokes every reply
-- address given out so far, and the log of the planner's decisions shown in Settings → Email.
-- The unsubscribe link is signed from the member's id when the mail is sent, so the outbox no
-- longer keeps a copy of it.
ALTER TABLE users ADD COLUMN reply_epoch INTEGER NOT NULL DEFAULT 0;
ALTER TABLE outbox DROP COLUMN unsubscribe_url;
ALTER TABLE outbox ADD COLUMN reply_to TEXT;
CREATE TABLE alert_log (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    at TIMESTAMP NOT NULL,
    -- `sent`, `muted`, `active`, `digest` or `daily`, and the oldest unread message it was about:
    -- a decision is logged once for each.
    kind TEXT NOT NULL,
    message_id BIGINT NOT NULL,
    decision TEXT NOT NULL
);
CREATE INDEX alert_log_user ON alert_log (user_id, at);
