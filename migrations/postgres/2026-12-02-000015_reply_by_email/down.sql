DROP TABLE alert_log;
ALTER TABLE outbox DROP COLUMN reply_to;
ALTER TABLE outbox ADD COLUMN unsubscribe_url TEXT;
ALTER TABLE users DROP COLUMN reply_epoch;
