DROP TRIGGER messages_author_read ON messages;
DROP FUNCTION confab_author_read();
