-- A member's own message never leaves them something unread: when they post having read everything
-- before it, their read marker moves over it in the same statement (so posting needs no separate
-- round trip for it). Messages by others they have not read stay unread.
--
-- The previous message of the room is found through the (room_id, id) index: `room_id = ANY(…)`
-- with the order on both columns, as in the page queries, because with `room_id = …` the planner
-- may walk the primary key back past every newer message of other rooms.
CREATE FUNCTION confab_author_read() RETURNS trigger AS $$
BEGIN
    UPDATE memberships SET last_read_id = NEW.id
        WHERE room_id = NEW.room_id AND user_id = NEW.author_id
          AND last_read_id >= COALESCE((SELECT id FROM messages
                                        WHERE room_id = ANY (ARRAY[NEW.room_id]) AND id < NEW.id
                                        ORDER BY room_id DESC, id DESC LIMIT 1), 0);
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER messages_author_read AFTER INSERT ON messages
    FOR EACH ROW EXECUTE FUNCTION confab_author_read();
