DROP TRIGGER memberships_notify ON memberships;
DROP FUNCTION confab_notify_members();
DROP TRIGGER rooms_cursor_notify ON rooms;
DROP FUNCTION confab_notify_cursor();
