ALTER TABLE users DROP COLUMN last_active_at;
ALTER TABLE users DROP COLUMN last_seen_at;
