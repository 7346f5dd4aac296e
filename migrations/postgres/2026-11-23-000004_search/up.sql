-- Full-text search over message bodies and file names: GIN indexes on the same expressions the
-- search query uses ('simple': no stemming, so any language works the same).
CREATE INDEX messages_search ON messages USING GIN (to_tsvector('simple', body));
CREATE INDEX attachments_search ON attachments USING GIN (to_tsvector('simple', translate(file_name, '._-', '   ')));
CREATE INDEX messages_room_created ON messages (room_id, created_at);
