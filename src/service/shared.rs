//! One read for every member a change wakes: the members of a room hold their polls at the same
//! cursor, a post answers them all at once, and each would otherwise read the same messages. The
//! first to ask reads them; the others wait for that read and share it. Reads are kept by room,
//! cursor range and limit, so a shared read is never older than the cursor it answers for, and
//! only for moments: a few dozen, within a few MiB.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use tokio::sync::OnceCell;

use crate::chat::attachments::Attachment;
use crate::chat::messages::Posted;
use crate::chat::reactions::SavedBy;

/// A room's changes after a cursor, as every member sees them: the messages with their reactions
/// and quotes, their files, and who saved which message (message id, username).
#[derive(Debug, Default)]
pub struct Changes {
    /// The changed messages, in the order they changed (`saved` unset).
    pub messages: Vec<Posted>,
    /// Their files.
    pub files: Vec<Attachment>,
    /// Who saved which of them.
    pub saved: SavedBy,
}

impl Changes {
    /// Roughly what it holds in memory, in bytes.
    fn bytes(&self) -> usize {
        self.messages
            .iter()
            .map(|p| p.message.body.len() + 256)
            .sum::<usize>()
            + self.files.len() * 256
            + self.saved.len() * 64
    }
}

/// Which read: a room's changes after `after`, as of its cursor `upto`, at most `limit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Key {
    /// The room.
    pub room_id: i64,
    /// The cursor the polls hold.
    pub after: i64,
    /// The room's cursor that woke them.
    pub upto: i64,
    /// How many changes one answer carries.
    pub limit: i64,
}

/// A read under way or made.
pub type Read = Arc<OnceCell<Arc<Changes>>>;

/// The reads being made or recently made, newest last.
#[derive(Default)]
pub struct SharedChanges {
    reads: Mutex<VecDeque<(Key, Read)>>,
}

/// Reads kept: those of the rooms changed most recently, at most this many and (but for the
/// newest) within [`KEPT_BYTES`]. A poll that comes later reads on its own. Members woken
/// together ask within moments, so few are needed.
const KEPT: usize = 64;

/// See [`KEPT`].
const KEPT_BYTES: usize = 8 << 20;

impl SharedChanges {
    /// The read for `key`: the one under way or made, else a new one to make. A read that fails
    /// stays unmade, for the next to try.
    pub fn read(&self, key: Key) -> Read {
        let Ok(mut reads) = self.reads.lock() else {
            return Arc::default();
        };
        if let Some((_, read)) = reads.iter().rev().find(|(k, _)| *k == key) {
            return read.clone();
        }
        let read = Arc::new(OnceCell::new());
        reads.push_back((key, read.clone()));
        let mut bytes: usize = reads
            .iter()
            .filter_map(|(_, r)| r.get().map(|c| c.bytes()))
            .sum();
        while reads.len() > 1 && (reads.len() > KEPT || bytes > KEPT_BYTES) {
            if let Some((_, gone)) = reads.pop_front() {
                bytes -= gone.get().map_or(0, |c| c.bytes());
            }
        }
        read
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(room_id: i64, upto: i64) -> Key {
        Key {
            room_id,
            after: 1,
            upto,
            limit: 10,
        }
    }

    #[test]
    fn a_key_shares_one_read_and_old_reads_go() {
        let shared = SharedChanges::default();
        let first = shared.read(key(1, 2));
        assert!(Arc::ptr_eq(&first, &shared.read(key(1, 2))), "shared");
        assert!(
            !Arc::ptr_eq(&first, &shared.read(key(1, 3))),
            "a newer cursor reads again"
        );
        for room in 2..=KEPT as i64 {
            shared.read(key(room, 2));
        }
        assert!(!Arc::ptr_eq(&first, &shared.read(key(1, 2))), "forgotten");
    }

    #[test]
    fn large_reads_are_not_kept_past_the_budget() {
        let shared = SharedChanges::default();
        let big = shared.read(key(1, 2));
        let changes = Changes {
            saved: (0..(KEPT_BYTES / 64 + 1) as i64)
                .map(|id| (id, String::new()))
                .collect(),
            ..Changes::default()
        };
        assert!(big.set(Arc::new(changes)).is_ok());
        assert!(
            Arc::ptr_eq(&big, &shared.read(key(1, 2))),
            "the newest stays"
        );
        shared.read(key(2, 2));
        assert!(
            !Arc::ptr_eq(&big, &shared.read(key(1, 2))),
            "over the budget"
        );
    }
}
