//! What makes a poll with nothing new cost no query: each room's change cursor, its members and
//! who is around, kept in memory; held polls wait here until their room changes.
//!
//! The database stays the source of truth: a room is loaded on first use, every change made
//! through this instance moves its cursor here, and presence is written back in batches.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use chrono::NaiveDateTime;
use serde::Serialize;
use tokio::sync::watch;

use crate::chat::rooms::Member;

/// Where a reader is, as far as the room is concerned: the version a poll compares against.
/// `cursor` is the room's change cursor; `presence` counts changes of who is around.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Token {
    /// The room's change cursor (from the database).
    pub cursor: i64,
    /// Presence changes seen by this instance.
    pub presence: u64,
}

impl Token {
    /// Parses `<cursor>.<presence>` (or a bare cursor).
    pub fn parse(text: &str) -> Option<Token> {
        let (cursor, presence) = text.split_once('.').unwrap_or((text, "0"));
        let token = Token {
            cursor: cursor.parse().ok()?,
            presence: presence.parse().ok()?,
        };
        (token.cursor >= 0).then_some(token)
    }
}

impl std::fmt::Display for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.cursor, self.presence)
    }
}

/// What a page says about its reader on each poll.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Activity {
    /// Input within `idle_after`, tab visible.
    Active,
    /// Open, but no input for a while.
    Idle,
    /// In a background tab.
    Hidden,
}

impl Activity {
    /// Parses the `state` a poll sends; anything else counts as active.
    pub fn parse(text: Option<&str>) -> Activity {
        match text {
            Some("idle") => Activity::Idle,
            Some("hidden") => Activity::Hidden,
            _ => Activity::Active,
        }
    }
}

/// How a member shows in a room.
#[derive(Debug, Clone, Serialize)]
pub struct Presence {
    /// Username.
    pub username: String,
    /// `active`, `idle` or `away`.
    pub state: &'static str,
    /// When a page of theirs was last open, if ever.
    pub last_seen: Option<NaiveDateTime>,
}

struct Seen {
    activity: Activity,
    at: NaiveDateTime,
    active_at: Option<NaiveDateTime>,
}

struct RoomState {
    token: watch::Sender<Token>,
    members: Vec<Member>,
    member_ids: HashSet<i64>,
    seen: HashMap<i64, Seen>,
    /// When a change of presence last woke the room's polls.
    presence_woke: Option<Instant>,
    /// When the members were read from the database.
    members_read: Instant,
}

/// A room's polls are woken by changes of presence at most this often; a change within it waits
/// for [`Live::wake_presence`]. Every waiting member answers and polls again on a wake-up, so
/// readers coming and going must not keep a busy room re-polling.
pub const PRESENCE_WAKE_EVERY: Duration = Duration::from_secs(1);

#[derive(Default)]
struct Rooms {
    rooms: HashMap<i64, RoomState>,
    by_slug: HashMap<String, i64>,
    /// People seen since the last batch write: user id → (last seen, last active).
    unsaved: HashMap<i64, (NaiveDateTime, Option<NaiveDateTime>)>,
    /// Rooms whose presence changed since their last wake-up, which came too recently.
    presence_pending: HashSet<i64>,
    /// Read markers moved by pages and polls, not written yet: (room id, user id) → newest read.
    unsaved_reads: HashMap<(i64, i64), i64>,
}

/// The in-memory side of rooms, shared by every request and job of this instance.
#[derive(Clone)]
pub struct Live {
    rooms: Arc<Mutex<Rooms>>,
    held: Arc<AtomicUsize>,
    max_held: usize,
    away_after: chrono::Duration,
}

/// A held poll's place; dropping it frees the place.
pub struct Hold {
    held: Arc<AtomicUsize>,
}

impl Drop for Hold {
    fn drop(&mut self) {
        self.held.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Live {
    /// An empty tracker. `max_held` caps held polls server-wide; a member with no poll for
    /// `away_after` shows as away.
    pub fn new(max_held: usize, away_after: Duration) -> Live {
        Live {
            rooms: Arc::default(),
            held: Arc::default(),
            max_held,
            away_after: chrono::Duration::from_std(away_after)
                .unwrap_or(chrono::Duration::seconds(90)),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Rooms> {
        // A panic while holding the lock leaves plain data behind; keep serving it.
        self.rooms
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The id of a room `user_id` is a member of, if this instance has the room loaded.
    pub fn member_room(&self, slug: &str, user_id: i64) -> Option<i64> {
        let rooms = self.lock();
        let id = *rooms.by_slug.get(slug)?;
        rooms
            .rooms
            .get(&id)?
            .member_ids
            .contains(&user_id)
            .then_some(id)
    }

    /// Whether `user_id` is a member of room `slug` as held here, with the members read from the
    /// database within `age` (their "last seen", written by every instance in batches, is no older
    /// than that).
    pub fn members_fresh(&self, slug: &str, user_id: i64, age: Duration) -> bool {
        let rooms = self.lock();
        rooms
            .by_slug
            .get(slug)
            .and_then(|id| rooms.rooms.get(id))
            .is_some_and(|room| {
                room.member_ids.contains(&user_id) && room.members_read.elapsed() < age
            })
    }

    /// Loads a room from the database's answer; a room already loaded keeps the newer cursor.
    pub fn load(&self, slug: &str, room_id: i64, cursor: i64, members: Vec<Member>) {
        let mut rooms = self.lock();
        rooms.by_slug.insert(slug.to_string(), room_id);
        let member_ids = members.iter().map(|m| m.id).collect();
        match rooms.rooms.get_mut(&room_id) {
            Some(room) => {
                room.members = members;
                room.member_ids = member_ids;
                room.members_read = Instant::now();
                room.token.send_if_modified(|t| {
                    let newer = cursor > t.cursor;
                    t.cursor = t.cursor.max(cursor);
                    newer
                });
            }
            None => {
                let (token, _) = watch::channel(Token {
                    cursor,
                    presence: 0,
                });
                rooms.rooms.insert(
                    room_id,
                    RoomState {
                        token,
                        members,
                        member_ids,
                        seen: HashMap::new(),
                        presence_woke: None,
                        members_read: Instant::now(),
                    },
                );
            }
        }
    }

    /// Forgets a room's members (someone joined or left); the next poll reloads them.
    pub fn forget(&self, room_id: i64) {
        let mut rooms = self.lock();
        if let Some(room) = rooms.rooms.get_mut(&room_id) {
            room.member_ids.clear();
        }
    }

    /// Forgets every room's members (changes of membership may have gone unheard); the next poll
    /// of each room reloads them.
    pub fn forget_all(&self) {
        for room in self.lock().rooms.values_mut() {
            room.member_ids.clear();
        }
    }

    /// Like [`Live::forget`], by the room's slug (admin pages know rooms by slug).
    pub fn forget_slug(&self, slug: &str) {
        let id = self.lock().by_slug.get(slug).copied();
        if let Some(id) = id {
            self.forget(id);
        }
    }

    /// Moves a room's cursor forward and wakes every poll held on it.
    pub fn advance(&self, room_id: i64, cursor: i64) {
        let rooms = self.lock();
        if let Some(room) = rooms.rooms.get(&room_id) {
            room.token.send_if_modified(|t| {
                let newer = cursor > t.cursor;
                t.cursor = t.cursor.max(cursor);
                newer
            });
        }
    }

    /// The room's current token, if loaded.
    pub fn token(&self, room_id: i64) -> Option<Token> {
        self.lock()
            .rooms
            .get(&room_id)
            .map(|room| *room.token.borrow())
    }

    /// Notes that `user_id` has a page of the room open; a change of how they show wakes the room,
    /// at once or (within [`PRESENCE_WAKE_EVERY`] of its last such wake-up) at the next
    /// [`Live::wake_presence`].
    pub fn seen(&self, room_id: i64, user_id: i64, activity: Activity, now: NaiveDateTime) {
        let mut rooms = self.lock();
        let active_at = (activity == Activity::Active).then_some(now);
        let entry = rooms.unsaved.entry(user_id).or_insert((now, None));
        entry.0 = entry.0.max(now);
        entry.1 = entry.1.max(active_at);
        let away_after = self.away_after;
        let Some(room) = rooms.rooms.get_mut(&room_id) else {
            return;
        };
        let before = room.seen.get(&user_id).map(|s| state(s, now, away_after));
        let previous_active = room.seen.get(&user_id).and_then(|s| s.active_at);
        let seen = Seen {
            activity,
            at: now,
            active_at: active_at.or(previous_active),
        };
        let after = state(&seen, now, away_after);
        room.seen.insert(user_id, seen);
        if before == Some(after) {
            return;
        }
        if room
            .presence_woke
            .is_some_and(|woke| woke.elapsed() < PRESENCE_WAKE_EVERY)
        {
            rooms.presence_pending.insert(room_id);
        } else {
            room.presence_woke = Some(Instant::now());
            room.token.send_modify(|t| t.presence += 1);
        }
    }

    /// Wakes the rooms whose change of presence waited (see [`Live::seen`]); run every
    /// [`PRESENCE_WAKE_EVERY`].
    pub fn wake_presence(&self) {
        let mut guard = self.lock();
        let rooms = &mut *guard;
        for room_id in rooms.presence_pending.drain() {
            if let Some(room) = rooms.rooms.get_mut(&room_id) {
                room.presence_woke = Some(Instant::now());
                room.token.send_modify(|t| t.presence += 1);
            }
        }
    }

    /// How each member of a room shows now.
    pub fn presence(&self, room_id: i64, now: NaiveDateTime) -> Vec<Presence> {
        let rooms = self.lock();
        let Some(room) = rooms.rooms.get(&room_id) else {
            return Vec::new();
        };
        room.members
            .iter()
            .map(|member| match room.seen.get(&member.id) {
                Some(seen) => Presence {
                    username: member.username.clone(),
                    state: state(seen, now, self.away_after),
                    last_seen: Some(seen.at.max(member.last_seen_at.unwrap_or(seen.at))),
                },
                None => Presence {
                    username: member.username.clone(),
                    state: "away",
                    last_seen: member.last_seen_at,
                },
            })
            .collect()
    }

    /// Takes a place for a held poll, unless the server-wide cap is reached.
    pub fn hold(&self) -> Option<Hold> {
        let taken = self.held.fetch_add(1, Ordering::SeqCst);
        let hold = Hold {
            held: self.held.clone(),
        };
        (taken < self.max_held).then_some(hold)
    }

    /// Waits until the room's token differs from `known`, or `wait` passes. Returns the token then.
    pub async fn wait(&self, room_id: i64, known: Token, wait: Duration) -> Option<Token> {
        let mut receiver = self.lock().rooms.get(&room_id)?.token.subscribe();
        let _ = tokio::time::timeout(wait, receiver.wait_for(|t| *t != known)).await;
        let token = *receiver.borrow();
        Some(token)
    }

    /// Takes the people seen since the last call: (user id, last seen, last active), by user id, so
    /// that writers lock user rows in the same order as other batch updates and never deadlock.
    pub fn take_unsaved(&self) -> Vec<(i64, NaiveDateTime, Option<NaiveDateTime>)> {
        let mut seen: Vec<_> = self
            .lock()
            .unsaved
            .drain()
            .map(|(id, (seen, active))| (id, seen, active))
            .collect();
        seen.sort_unstable_by_key(|(id, _, _)| *id);
        seen
    }

    /// Notes that `user_id` has read room `room_id` up to message `upto`, for the next batch
    /// ([`Live::unsaved_reads`]): a reader at the latest page reads what the page and its polls
    /// show, and a write for each would cost a commit per member per message.
    pub fn read(&self, room_id: i64, user_id: i64, upto: i64) {
        let mut rooms = self.lock();
        let newest = rooms
            .unsaved_reads
            .entry((room_id, user_id))
            .or_insert(upto);
        *newest = (*newest).max(upto);
    }

    /// `user_id`'s read marker in room `room_id`: `stored` (the database's), or a newer one waiting
    /// for the next batch.
    pub fn read_marker(&self, room_id: i64, user_id: i64, stored: i64) -> i64 {
        self.lock()
            .unsaved_reads
            .get(&(room_id, user_id))
            .map_or(stored, |&unsaved| unsaved.max(stored))
    }

    /// The read markers waiting to be written: (room id, user id, newest read), by room and user, so
    /// that writers lock membership rows in one order and never deadlock. They stay here, and count
    /// ([`Live::read_marker`]), until [`Live::saved_reads`] says they were written.
    pub fn unsaved_reads(&self) -> Vec<(i64, i64, i64)> {
        let mut reads: Vec<_> = self
            .lock()
            .unsaved_reads
            .iter()
            .map(|(&(room, user), &upto)| (room, user, upto))
            .collect();
        reads.sort_unstable();
        reads
    }

    /// Forgets the read markers `written` (from [`Live::unsaved_reads`]) once they are in the
    /// database; a marker that moved on meanwhile waits for the next batch.
    pub fn saved_reads(&self, written: &[(i64, i64, i64)]) {
        let mut rooms = self.lock();
        for &(room, user, upto) in written {
            if rooms.unsaved_reads.get(&(room, user)) == Some(&upto) {
                rooms.unsaved_reads.remove(&(room, user));
            }
        }
    }
}

fn state(seen: &Seen, now: NaiveDateTime, away_after: chrono::Duration) -> &'static str {
    if now - seen.at > away_after {
        "away"
    } else if seen.activity == Activity::Active {
        "active"
    } else {
        "idle"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(id: i64, name: &str) -> Member {
        Member {
            id,
            username: name.into(),
            last_seen_at: None,
        }
    }

    #[test]
    fn tokens_round_trip_and_reject_garbage() {
        let token = Token {
            cursor: 42,
            presence: 7,
        };
        assert_eq!(Token::parse(&token.to_string()), Some(token));
        assert_eq!(
            Token::parse("5"),
            Some(Token {
                cursor: 5,
                presence: 0
            })
        );
        for bad in ["", "x", "1.x", "-1.0", "1.2.3", "99999999999999999999"] {
            assert_eq!(Token::parse(bad), None, "{bad}");
        }
    }

    #[tokio::test]
    async fn a_change_wakes_held_polls_and_caps_hold() {
        let live = Live::new(1, Duration::from_secs(90));
        live.load("general", 1, 10, vec![member(1, "ann"), member(2, "bob")]);
        assert_eq!(live.member_room("general", 2), Some(1));
        assert_eq!(live.member_room("general", 3), None);
        let known = live.token(1).expect("loaded");
        let first = live.hold().expect("a place");
        assert!(live.hold().is_none(), "the cap is one");
        let waiter = {
            let live = live.clone();
            tokio::spawn(async move { live.wait(1, known, Duration::from_secs(30)).await })
        };
        tokio::task::yield_now().await;
        live.advance(1, 11);
        let woke = waiter.await.expect("joined").expect("token");
        assert_eq!(woke.cursor, 11);
        drop(first);
        assert!(live.hold().is_some(), "the place is free again");
        live.advance(1, 5);
        assert_eq!(
            live.token(1).map(|t| t.cursor),
            Some(11),
            "cursors never move back"
        );
    }

    #[test]
    fn presence_changes_move_the_token_and_are_saved_in_batches() {
        let live = Live::new(10, Duration::from_secs(90));
        live.load("general", 1, 0, vec![member(1, "ann"), member(2, "bob")]);
        let now = crate::chat::now();
        let before = live.token(1).expect("loaded");
        live.seen(1, 1, Activity::Active, now);
        let after = live.token(1).expect("loaded");
        assert_eq!(after.presence, before.presence + 1);
        live.seen(1, 1, Activity::Active, now);
        assert_eq!(live.token(1), Some(after), "no change, no wake-up");
        live.seen(1, 1, Activity::Hidden, now);
        assert_eq!(
            live.token(1),
            Some(after),
            "a second change within a second waits"
        );
        live.wake_presence();
        let woken = live.token(1).expect("loaded");
        assert_eq!(
            woken.presence,
            after.presence + 1,
            "and then wakes the room"
        );
        live.wake_presence();
        assert_eq!(live.token(1), Some(woken), "once");
        let shown: Vec<_> = live
            .presence(1, now)
            .into_iter()
            .map(|p| (p.username, p.state))
            .collect();
        assert_eq!(
            shown,
            vec![("ann".to_string(), "idle"), ("bob".to_string(), "away")]
        );
        let later = now + chrono::Duration::seconds(120);
        assert_eq!(live.presence(1, later)[0].state, "away");
        let saved = live.take_unsaved();
        assert_eq!(saved, vec![(1, now, Some(now))]);
        assert!(live.take_unsaved().is_empty());
    }

    #[test]
    fn reads_keep_the_newest_per_member_and_come_in_order() {
        let live = Live::new(10, Duration::from_secs(90));
        live.read(2, 1, 30);
        live.read(1, 2, 10);
        live.read(1, 2, 12);
        live.read(1, 2, 11);
        live.read(1, 1, 5);
        let batch = live.unsaved_reads();
        assert_eq!(batch, vec![(1, 1, 5), (1, 2, 12), (2, 1, 30)]);
        assert_eq!(live.read_marker(1, 2, 3), 12, "counted until written");
        live.read(2, 1, 31);
        live.saved_reads(&batch);
        assert_eq!(live.unsaved_reads(), vec![(2, 1, 31)], "moved on meanwhile");
        assert_eq!(live.read_marker(1, 2, 12), 12);
    }
}
