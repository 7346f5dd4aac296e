-- A member's own message never leaves them something unread: when they post having read everything
-- before it, their read marker moves over it in the same statement (so posting needs no separate
-- round trip for it). Messages by others they have not read stay unread.
CREATE TRIGGER messages_author_read AFTER INSERT ON messages BEGIN
    UPDATE memberships SET last_read_id = NEW.id
        WHERE room_id = NEW.room_id AND user_id = NEW.author_id
          AND last_read_id >= (SELECT COALESCE(MAX(id), 0) FROM messages
                               WHERE room_id = NEW.room_id AND id < NEW.id);
END;
