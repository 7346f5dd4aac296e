-- Instances sharing one database learn of each other's changes through LISTEN/NOTIFY: a room's
-- cursor moving, and its members changing. Notifications are delivered when the change commits.
CREATE FUNCTION confab_notify_cursor() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('confab_rooms', NEW.id || ':' || NEW.cursor);
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER rooms_cursor_notify AFTER UPDATE OF cursor ON rooms
    FOR EACH ROW WHEN (NEW.cursor <> OLD.cursor) EXECUTE FUNCTION confab_notify_cursor();

CREATE FUNCTION confab_notify_members() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('confab_members', COALESCE(NEW.room_id, OLD.room_id)::text);
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER memberships_notify AFTER INSERT OR DELETE ON memberships
    FOR EACH ROW EXECUTE FUNCTION confab_notify_members();
