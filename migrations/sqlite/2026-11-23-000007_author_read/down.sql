DROP TRIGGER messages_author_read;
