DROP INDEX messages_room_created;
DROP TRIGGER attachment_search_delete;
DROP TRIGGER attachment_search_insert;
DROP TRIGGER message_search_delete;
DROP TRIGGER message_search_update;
DROP TRIGGER message_search_insert;
DROP TABLE message_search;
