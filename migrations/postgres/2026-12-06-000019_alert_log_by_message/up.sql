-- The alert log by member and message: a decision is logged once per member, kind and message
-- within the week kept, so each round looks up what it would log instead of reading the member's
-- whole week.
CREATE INDEX alert_log_message ON alert_log (user_id, message_id, kind, at);
