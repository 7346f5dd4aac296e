ALTER TABLE users DROP COLUMN avatar_at;
DROP TABLE avatars;
