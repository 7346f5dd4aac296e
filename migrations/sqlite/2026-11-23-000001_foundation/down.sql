DROP TABLE messages;
DROP TABLE memberships;
DROP TABLE rooms;
DROP TABLE user_tokens;
DROP TABLE sessions;
DROP TABLE users;
