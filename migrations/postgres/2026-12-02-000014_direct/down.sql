DROP INDEX rooms_direct_key;
ALTER TABLE rooms DROP COLUMN direct_key;
ALTER TABLE rooms DROP COLUMN kind;
