-- Full-text search over message bodies and file names (FTS5), kept in step by triggers.
CREATE VIRTUAL TABLE message_search USING fts5(body, file_name, tokenize = 'unicode61 remove_diacritics 2');

INSERT INTO message_search (rowid, body, file_name)
SELECT m.id, m.body, COALESCE(a.file_name, '')
FROM messages m LEFT JOIN attachments a ON a.message_id = m.id
WHERE m.deleted_at IS NULL;

CREATE TRIGGER message_search_insert AFTER INSERT ON messages BEGIN
    INSERT INTO message_search (rowid, body, file_name) VALUES (new.id, new.body, '');
END;

CREATE TRIGGER message_search_update AFTER UPDATE OF body, deleted_at ON messages BEGIN
    DELETE FROM message_search WHERE rowid = old.id;
    INSERT INTO message_search (rowid, body, file_name)
    SELECT new.id, new.body, COALESCE((SELECT file_name FROM attachments WHERE message_id = new.id), '')
    WHERE new.deleted_at IS NULL;
END;

CREATE TRIGGER message_search_delete AFTER DELETE ON messages BEGIN
    DELETE FROM message_search WHERE rowid = old.id;
END;

CREATE TRIGGER attachment_search_insert AFTER INSERT ON attachments BEGIN
    UPDATE message_search SET file_name = new.file_name WHERE rowid = new.message_id;
END;

CREATE TRIGGER attachment_search_delete AFTER DELETE ON attachments BEGIN
    UPDATE message_search SET file_name = '' WHERE rowid = old.message_id;
END;

CREATE INDEX messages_room_created ON messages (room_id, created_at);
