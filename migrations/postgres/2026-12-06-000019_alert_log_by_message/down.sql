DROP INDEX alert_log_message;
