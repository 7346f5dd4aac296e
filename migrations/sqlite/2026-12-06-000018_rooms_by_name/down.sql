DROP INDEX rooms_name;
