-- Rooms by name: the open rooms a member may join are listed by name, the first few beside every
-- page, so that listing them stops after those instead of sorting every open room.
CREATE INDEX rooms_name ON rooms (name);
