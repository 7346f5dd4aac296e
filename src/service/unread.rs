//! Members' unread counts, kept per room with the room's cursor and the read marker they were
//! counted from. What is unread in a room changes only when its cursor moves (every change a reader
//! must see moves it) or the member reads on, so a count is reused until one of the two moves: a
//! page then counts only the rooms where something happened, instead of every room of the member.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use crate::chat::rooms::{Room, RoomSummary, Unread};
use crate::chat::users::User;

/// Members whose counts are kept per generation: a member not seen for two generations is counted
/// afresh.
const MEMBERS_KEPT: usize = 10_000;

/// One member's counts: by room id, the marker and cursor counted at, and what was unread.
#[derive(Clone, Default)]
pub struct Counted {
    /// The username mentions were looked for by.
    username: String,
    rooms: HashMap<i64, (i64, i64, Unread)>,
}

impl Counted {
    /// What was unread in `room` counted from `marker`, if the room has not moved since.
    pub fn get(&self, room: &Room, marker: i64) -> Option<Unread> {
        self.rooms
            .get(&room.id)
            .filter(|(counted_from, cursor, _)| *counted_from == marker && *cursor == room.cursor)
            .map(|(_, _, unread)| *unread)
    }
}

/// The counts of recently seen members, in two generations.
#[derive(Default)]
pub struct UnreadCounts {
    generations: Mutex<(HashMap<i64, Counted>, HashMap<i64, Counted>)>,
}

impl UnreadCounts {
    /// `user`'s counts as kept (none for a member not seen lately, or renamed since).
    pub fn of(&self, user: &User) -> Counted {
        let generations = self.lock();
        let (newer, older) = &*generations;
        newer
            .get(&user.id)
            .or_else(|| older.get(&user.id))
            .filter(|counted| counted.username == user.username)
            .cloned()
            .unwrap_or_default()
    }

    /// Keeps `user`'s counts from `summaries` (all their rooms) for next time.
    pub fn keep(&self, user: &User, summaries: &[RoomSummary]) {
        let counted = Counted {
            username: user.username.clone(),
            rooms: summaries
                .iter()
                .map(|s| (s.room.id, (s.marker, s.room.cursor, s.unread())))
                .collect(),
        };
        let mut generations = self.lock();
        let (newer, older) = &mut *generations;
        if newer.len() >= MEMBERS_KEPT && !newer.contains_key(&user.id) {
            *older = std::mem::take(newer);
        }
        older.remove(&user.id);
        newer.insert(user.id, counted);
    }

    fn lock(&self) -> MutexGuard<'_, (HashMap<i64, Counted>, HashMap<i64, Counted>)> {
        // Every change is whole within one call, so a holder's panic leaves the maps usable.
        self.generations
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
