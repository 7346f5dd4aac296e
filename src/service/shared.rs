//! One read for every member a change wakes: the members of a room hold their polls at the same
//! cursor, a post answers them all at once, and each would otherwise read the same messages. The
//! first to ask reads them; the others wait for that read and share it. The same page of a room
//! opened at the same cursor is shared the same way. Reads are kept by room, cursor and size, so a
//! shared read is never older than the cursor it answers for, and only for moments ([`KEPT_FOR`];
//! a few dozen, within a few MiB).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::OnceCell;

use crate::chat::attachments::Attachment;
use crate::chat::messages::{Page, PageAt, Posted};
use crate::chat::reactions::SavedBy;
use crate::db::{AnyConnection, Db};
use crate::error::{Error, Result};

/// What a shared read holds, and roughly how much memory that takes.
pub trait Footprint {
    /// Roughly what it holds in memory, in bytes.
    fn bytes(&self) -> usize;
}

/// Roughly what messages and their files and saved marks take in memory, in bytes.
fn messages_bytes(messages: &[Posted], files: &[Attachment], saved: &SavedBy) -> usize {
    messages
        .iter()
        .map(|p| p.message.body.len() + 256)
        .sum::<usize>()
        + files.len() * 256
        + saved.len() * 64
}

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

impl Footprint for Changes {
    fn bytes(&self) -> usize {
        messages_bytes(&self.messages, &self.files, &self.saved)
    }
}

/// Which read of changes: a room's changes after `after`, as of its cursor `upto`, at most `limit`.
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

/// A page of a room's history as every member sees it: the page with reactions and quotes, its
/// files, the room's pinned messages and who saved which message shown.
#[derive(Debug)]
pub struct HistoryPage {
    /// The page (`saved` unset).
    pub page: Page,
    /// Which page it is: `Latest` when a day past the last message fell back to the latest.
    pub shown: PageAt,
    /// Its files.
    pub files: Vec<Attachment>,
    /// The room's pinned messages, most recently pinned first.
    pub pinned: Vec<Posted>,
    /// Who saved which message of the page.
    pub saved: SavedBy,
}

impl Footprint for HistoryPage {
    fn bytes(&self) -> usize {
        messages_bytes(&self.page.messages, &self.files, &self.saved)
            + messages_bytes(&self.pinned, &[], &SavedBy::new())
    }
}

/// Which page: page `at` of room `room_id` at cursor `cursor`, `size` messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageKey {
    /// The room.
    pub room_id: i64,
    /// The room's cursor when the reader opened it.
    pub cursor: i64,
    /// Which page.
    pub at: PageAt,
    /// How many messages a page shows.
    pub size: i64,
}

/// A read under way or made, or how it failed (its waiters fail with it, and it is forgotten for
/// the next reader to try again).
pub type Read<V> = Arc<OnceCell<Result<Arc<V>, Arc<Error>>>>;

/// The reads of one kind being made or recently made, newest last, with when each began.
pub struct SharedReads<K, V> {
    reads: Mutex<VecDeque<(K, Instant, Read<V>)>>,
}

impl<K, V> Default for SharedReads<K, V> {
    fn default() -> Self {
        SharedReads {
            reads: Mutex::default(),
        }
    }
}

/// Poll answers' reads of changes.
pub type SharedChanges = SharedReads<Key, Changes>;

/// Room pages' reads of history.
pub type SharedPages = SharedReads<PageKey, HistoryPage>;

/// Reads kept: those of the rooms changed most recently, at most this many and (but for the
/// newest) within [`KEPT_BYTES`]. A reader who comes later reads on their own. Members woken
/// together ask within moments, so few are needed.
const KEPT: usize = 64;

/// See [`KEPT`].
const KEPT_BYTES: usize = 8 << 20;

/// A read older than this is not shared: what is not in the room's cursor (who saved a message,
/// an author's picture) may have changed since.
const KEPT_FOR: Duration = Duration::from_secs(2);

impl<K: Copy + Eq, V: Footprint> SharedReads<K, V> {
    /// The read for `key`: the one under way or made within [`KEPT_FOR`], else a new one to make.
    fn read(&self, key: K) -> Read<V> {
        let Ok(mut reads) = self.reads.lock() else {
            return Arc::default();
        };
        let now = Instant::now();
        if let Some((_, _, read)) = reads
            .iter()
            .rev()
            .find(|(k, began, _)| *k == key && now.duration_since(*began) < KEPT_FOR)
        {
            return read.clone();
        }
        let read = Read::default();
        reads.push_back((key, now, read.clone()));
        let size = |read: &Read<V>| {
            read.get()
                .and_then(|made| made.as_ref().ok())
                .map_or(0, |v| v.bytes())
        };
        let mut bytes: usize = reads.iter().map(|(_, _, r)| size(r)).sum();
        while reads.len() > 1
            && (reads.len() > KEPT
                || bytes > KEPT_BYTES
                || reads
                    .front()
                    .is_some_and(|(_, began, _)| now.duration_since(*began) >= KEPT_FOR))
        {
            if let Some((_, _, gone)) = reads.pop_front() {
                bytes -= size(&gone);
            }
        }
        read
    }

    /// Forgets `read` (it failed: the next reader tries again), but not a newer read of its key.
    fn forget_read(&self, read: &Read<V>) {
        if let Ok(mut reads) = self.reads.lock() {
            reads.retain(|(_, _, kept)| !Arc::ptr_eq(kept, read));
        }
    }

    /// Forgets the reads whose key is `gone` (what they hold changed without the room's cursor
    /// moving: a saved mark, a picture).
    pub fn forget_if(&self, gone: impl Fn(&K) -> bool) {
        if let Ok(mut reads) = self.reads.lock() {
            reads.retain(|(k, _, _)| !gone(k));
        }
    }
}

impl<K: Copy + Eq, V: Footprint + Send + Sync + 'static> SharedReads<K, V> {
    /// The shared read for `key`: made now by `make` on `db` when nobody is making it or made it
    /// moments ago, else the one under way or made. When it fails, everyone waiting for it fails
    /// with it at once (the same refusal, or the same failure's description), and the next reader
    /// tries again.
    pub async fn get(
        &self,
        db: &Db,
        key: K,
        make: impl FnOnce(&mut AnyConnection) -> Result<V> + Send + 'static,
    ) -> Result<Arc<V>> {
        let read = self.read(key);
        let made = read
            .get_or_init(|| async move {
                db.run(move |conn| make(conn).map(Arc::new))
                    .await
                    .map_err(Arc::new)
            })
            .await;
        made.clone().map_err(|failed| {
            self.forget_read(&read);
            failed.again()
        })
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
    fn a_failed_read_is_forgotten() {
        let shared = SharedChanges::default();
        let failed = shared.read(key(1, 2));
        assert!(failed.set(Err(Arc::new(Error::NotFound))).is_ok());
        shared.forget_read(&failed);
        assert!(
            !Arc::ptr_eq(&failed, &shared.read(key(1, 2))),
            "tried again"
        );
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
        assert!(big.set(Ok(Arc::new(changes))).is_ok());
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
