DROP TABLE outbox;
ALTER TABLE memberships DROP COLUMN alerted_through_id;
ALTER TABLE memberships DROP COLUMN alert_level;
ALTER TABLE users DROP COLUMN last_alert_at;
ALTER TABLE users DROP COLUMN digest_hour;
ALTER TABLE users DROP COLUMN alert_mode;
