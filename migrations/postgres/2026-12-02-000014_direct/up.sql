-- Direct conversations: rooms of kind 'direct' with a fixed set of members. `direct_key` (the
-- members' ids, sorted) makes starting one with the same people twice open the same room.
ALTER TABLE rooms ADD COLUMN kind TEXT NOT NULL DEFAULT 'room';
ALTER TABLE rooms ADD COLUMN direct_key TEXT;
CREATE UNIQUE INDEX rooms_direct_key ON rooms (direct_key) WHERE direct_key IS NOT NULL;
