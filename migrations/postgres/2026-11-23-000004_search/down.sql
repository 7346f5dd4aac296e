DROP INDEX messages_room_created;
DROP INDEX attachments_search;
DROP INDEX messages_search;
