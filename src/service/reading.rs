//! Reading: the room list, a page of a room's history, what changed since a cursor, what a member
//! missed, search and exports, and marking what has been read.

use std::sync::Arc;

use super::Services;
use crate::chat::attachments::{self, Attachment};
use crate::chat::messages::{self, Page, PageAt, Posted};
use crate::chat::rooms::{self, Room, RoomSummary};
use crate::chat::search::{self, Budget, Hit, Query};
use crate::chat::{self, users::User};
use crate::db::AnyConnection;
use crate::error::{Error, Result};
use crate::live::Activity;

/// The rooms of the home page and the sidebar: the reader's own with their unread counts and
/// mention markers, and the open ones to join.
pub struct RoomLists {
    /// Mine, by last activity, then archived ones ([`rooms::for_user`]).
    pub mine: Vec<RoomSummary>,
    /// Open rooms I may join, by name.
    pub joinable: Vec<Room>,
}

/// `user`'s room lists, with the first `joinable` open rooms (all of them if `None`).
pub async fn home(svc: &Services, user: &Arc<User>, joinable: Option<i64>) -> Result<RoomLists> {
    let user = Arc::clone(user);
    let counts = Arc::clone(&svc.unread);
    let live = svc.live.clone();
    svc.db
        .run(move |conn| room_lists(conn, &live, &counts, &user, joinable))
        .await
}

fn room_lists(
    conn: &mut AnyConnection,
    live: &crate::live::Live,
    counts: &super::unread::UnreadCounts,
    user: &User,
    joinable: Option<i64>,
) -> Result<RoomLists> {
    Ok(RoomLists {
        mine: my_rooms(conn, live, counts, user)?,
        joinable: rooms::joinable(conn, user.id, joinable)?,
    })
}

/// `user`'s rooms with what is unread in each ([`rooms::for_user`]), counted from their read
/// markers as they stand in memory, reading only the rooms that moved since they were last counted.
fn my_rooms(
    conn: &mut AnyConnection,
    live: &crate::live::Live,
    counts: &super::unread::UnreadCounts,
    user: &User,
) -> Result<Vec<RoomSummary>> {
    let known = counts.of(user);
    let marker = |room, stored| live.read_marker(room, user.id, stored);
    let mine = rooms::for_user(conn, user, marker, |room, marker| known.get(room, marker))?;
    counts.keep(user, &mine);
    Ok(mine)
}

/// A page of a room's history as one member reads it.
pub struct RoomPage {
    /// The room, with the cursor read together with the messages.
    pub room: Room,
    /// The reader's read marker, as it was before this page marked anything read.
    pub last_read_id: i64,
    /// The messages shown.
    pub page: Page,
    /// Their files.
    pub files: Vec<Attachment>,
    /// Which page this is: `Latest` when a day past the last message fell back to the latest.
    pub shown: PageAt,
    /// The room's pinned messages, most recently pinned first.
    pub pinned: Vec<Posted>,
}

/// What a room shows to someone who may see it.
pub enum RoomView {
    /// A member's page of history.
    Member(Box<RoomPage>),
    /// An open room the reader has not joined.
    NotMember(Room),
}

/// Opens page `at` of room `slug` for `reader`, with their room lists (the first `joinable` open
/// rooms) read in the same trip to the database: the latest page marks what it shows as read (with
/// the next batch of read markers), and the reader counts as active in the room. The readers who
/// open the same page of a room at the same cursor share one read of its history
/// ([`SharedPages`](super::shared::SharedPages)). A member's room and read marker come with their
/// room list; only a room they are not in is read on its own.
pub async fn room_page(
    svc: &Services,
    slug: String,
    reader: &Arc<User>,
    at: PageAt,
    (size, joinable): (i64, i64),
) -> Result<(RoomView, RoomLists)> {
    let uid = reader.id;
    // The members (and when each was last seen) are read again at most as often as presence is
    // written, and when this instance does not hold the room or its members changed.
    let age = std::time::Duration::from_secs(svc.settings.presence_flush_secs);
    let known = svc.live.members_fresh(&slug, uid, age);
    let user = Arc::clone(reader);
    let counts = Arc::clone(&svc.unread);
    let live = svc.live.clone();
    let (room, last_read_id, members, mut lists) = svc
        .db
        .run(move |conn| {
            let lists = room_lists(conn, &live, &counts, &user, Some(joinable))?;
            let (room, last_read_id) = match lists.mine.iter().find(|s| s.room.slug == slug) {
                Some(mine) => (mine.room.clone(), Some(mine.marker)),
                None => {
                    let (room, membership) = rooms::visible(conn, &slug, uid)?;
                    let marker = membership.map(|m| live.read_marker(room.id, uid, m.last_read_id));
                    (room, marker)
                }
            };
            let members = match last_read_id {
                Some(_) if !known => Some(rooms::members(conn, room.id)?),
                _ => None,
            };
            Ok::<_, Error>((room, last_read_id, members, lists))
        })
        .await?;
    let Some(last_read_id) = last_read_id else {
        return Ok((RoomView::NotMember(room), lists));
    };
    if let Some(members) = members {
        svc.live.load(&room.slug, room.id, room.cursor, members);
    }
    let key = super::shared::PageKey {
        room_id: room.id,
        cursor: room.cursor,
        at,
        size,
    };
    let room_id = room.id;
    let shared = svc
        .pages
        .get(&svc.db, key, move |conn| {
            let mut page = messages::page(conn, room_id, at, size)?;
            let mut shown = at;
            if matches!(at, PageAt::From(_)) && page.messages.is_empty() {
                shown = PageAt::Latest;
                page = messages::page(conn, room_id, shown, size)?;
            }
            let saved = messages::annotate_for(conn, None, &mut page.messages)?;
            let files = attachments::for_messages(conn, &message_ids(&page.messages))?;
            let pinned = messages::pinned(conn, room_id, PINNED_SHOWN)?;
            Ok(super::shared::HistoryPage {
                page,
                shown,
                files,
                pinned,
                saved,
            })
        })
        .await?;
    let mut page = shared.page.clone();
    messages::saved_by(&mut page.messages, &shared.saved, &reader.username);
    // Shown the latest page, the reader has read it; one who had already read it costs no write.
    if let Some(newest) = page
        .messages
        .last()
        .filter(|m| shared.shown == PageAt::Latest && m.message.id > last_read_id)
    {
        svc.live.read(room.id, uid, newest.message.id);
        // The room list beside it was read before: there, too, this room is now read.
        if let Some(mine) = lists.mine.iter_mut().find(|s| s.room.id == room.id) {
            mine.read_through(newest.message.id);
        }
    }
    svc.live.seen(room.id, uid, Activity::Active, chat::now());
    let page = RoomPage {
        room,
        last_read_id,
        page,
        files: shared.files.clone(),
        shown: shared.shown,
        pinned: shared.pinned.clone(),
    };
    Ok((RoomView::Member(Box::new(page)), lists))
}

fn message_ids(posted: &[Posted]) -> Vec<i64> {
    posted.iter().map(|p| p.message.id).collect()
}

/// A thread as one member reads it.
pub struct Thread {
    /// The room.
    pub room: Room,
    /// The thread's first message.
    pub root: Posted,
    /// A page of its replies, oldest first.
    pub replies: Vec<Posted>,
    /// Whether older replies exist before this page.
    pub has_older: bool,
    /// The files of the root and the replies.
    pub files: Vec<Attachment>,
}

/// The thread started by message `id` of room `slug`, for its member `uid`: the latest `size`
/// replies, or those before reply `before`. Anyone else, and a reply's id, get "not found".
pub async fn thread(
    svc: &Services,
    slug: String,
    uid: i64,
    id: i64,
    before: Option<i64>,
    size: i64,
) -> Result<Thread> {
    svc.db
        .run(move |conn| {
            let (room, _) = rooms::for_member(conn, &slug, uid)?;
            let (mut root, mut replies, has_older) =
                messages::thread(conn, room.id, id, before, size)?;
            messages::annotate(conn, uid, std::slice::from_mut(&mut root))?;
            messages::annotate(conn, uid, &mut replies)?;
            let mut ids = message_ids(&replies);
            ids.push(root.message.id);
            let files = attachments::for_messages(conn, &ids)?;
            Ok(Thread {
                room,
                root,
                replies,
                has_older,
                files,
            })
        })
        .await
}

/// How many pinned messages a room shows.
pub const PINNED_SHOWN: i64 = 50;

/// The pinned messages of room `slug`, for its member `uid`, most recently pinned first.
pub async fn pinned(
    svc: &Services,
    slug: String,
    uid: i64,
) -> Result<(Room, Vec<Posted>, Vec<Attachment>)> {
    svc.db
        .run(move |conn| {
            let (room, _) = rooms::for_member(conn, &slug, uid)?;
            let mut pinned = messages::pinned(conn, room.id, PINNED_SHOWN)?;
            messages::annotate(conn, uid, &mut pinned)?;
            let files = attachments::for_messages(conn, &message_ids(&pinned))?;
            Ok((room, pinned, files))
        })
        .await
}

/// `uid`'s saved messages (in rooms they are still in), most recently saved first, and beside
/// them each message's room (slug, name).
pub async fn saved(svc: &Services, uid: i64, limit: i64) -> Result<chat::saved::SavedList> {
    svc.db
        .run(move |conn| {
            let (mut posted, rooms) = chat::saved::list(conn, uid, limit)?;
            messages::annotate(conn, uid, &mut posted)?;
            Ok((posted, rooms))
        })
        .await
}

/// The id of room `slug` for its member `uid`: from memory when this instance knows the room,
/// else from the database (which then loads the room's head and members into memory).
pub async fn member_room(svc: &Services, slug: &str, uid: i64) -> Result<i64> {
    if let Some(room_id) = svc.live.member_room(slug, uid) {
        return Ok(room_id);
    }
    let lookup = slug.to_string();
    let (room, members) = svc
        .db
        .run(move |conn| {
            let (room, _) = rooms::for_member(conn, &lookup, uid)?;
            let members = rooms::members(conn, room.id)?;
            Ok::<_, Error>((room, members))
        })
        .await?;
    svc.live.load(slug, room.id, room.cursor, members);
    Ok(room.id)
}

/// The messages of room `room_id` changed after `cursor` (the room being at `upto`), at most
/// `limit`, with their files, for its member `uid` (`username`); with `reads`, what they deliver
/// counts as read.
///
/// The members a change wakes share one read ([`SharedChanges`](super::shared::SharedChanges)),
/// so the caller checks that `uid` is a member ([`member_room`], in memory and kept current by
/// every change of membership).
pub async fn changes(
    svc: &Services,
    room_id: i64,
    (uid, username): (i64, &str),
    (cursor, upto): (i64, i64),
    limit: i64,
    reads: bool,
) -> Result<(Vec<Posted>, Vec<Attachment>)> {
    let key = super::shared::Key {
        room_id,
        after: cursor,
        upto,
        limit,
    };
    let shared = svc
        .changes
        .get(&svc.db, key, move |conn| {
            let (mut messages, files) = messages::changed_since(conn, room_id, cursor, limit)?;
            let saved = messages::annotate_for(conn, None, &mut messages)?;
            Ok(super::shared::Changes {
                messages,
                files,
                saved,
            })
        })
        .await?;
    let mut changed = shared.messages.clone();
    messages::saved_by(&mut changed, &shared.saved, username);
    if let Some(newest) = changed.iter().map(|p| p.message.id).max().filter(|_| reads) {
        svc.live.read(room_id, uid, newest);
    }
    Ok((changed, shared.files.clone()))
}

/// Marks everything in a room read for `uid`, up to its newest message.
fn read_to_newest(conn: &mut AnyConnection, room_id: i64, uid: i64) -> Result<()> {
    let newest = rooms::newest_message_id(conn, room_id)?;
    rooms::mark_read(conn, room_id, uid, newest)
}

/// Marks room `slug` read for its member `uid`; returns the room.
pub async fn mark_room_read(svc: &Services, slug: String, uid: i64) -> Result<Room> {
    svc.db
        .write(move |conn| {
            let (room, _) = rooms::for_member(conn, &slug, uid)?;
            read_to_newest(conn, room.id, uid)?;
            Ok(room)
        })
        .await
}

/// Marks every room of `uid` read.
pub async fn mark_all_read(svc: &Services, uid: i64) -> Result<()> {
    svc.db
        .write(move |conn| {
            for (room, _) in rooms::memberships(conn, uid)? {
                read_to_newest(conn, room.id, uid)?;
            }
            Ok(())
        })
        .await
}

/// One room on "what you missed".
pub struct Missed {
    /// The room and its unread count.
    pub summary: RoomSummary,
    /// The oldest unread messages, at most the limit asked for.
    pub messages: Vec<Posted>,
    /// Their files.
    pub files: Vec<Attachment>,
    /// The reader's read marker in the room.
    pub last_read_id: i64,
}

/// The rooms where `uid` has unread messages, each with its oldest `per_room` unread ones.
pub async fn missed(svc: &Services, user: &Arc<User>, per_room: i64) -> Result<Vec<Missed>> {
    let user = Arc::clone(user);
    let counts = Arc::clone(&svc.unread);
    let live = svc.live.clone();
    let uid = user.id;
    svc.db
        .run(move |conn| {
            let mut missed = Vec::new();
            for summary in my_rooms(conn, &live, &counts, &user)?
                .into_iter()
                .filter(|s| s.unread > 0)
            {
                let last_read_id = summary.marker;
                let mut messages =
                    messages::unread(conn, summary.room.id, uid, last_read_id, per_room)?;
                messages::annotate(conn, uid, &mut messages)?;
                let files = attachments::for_messages(conn, &message_ids(&messages))?;
                missed.push(Missed {
                    summary,
                    messages,
                    files,
                    last_read_id,
                });
            }
            Ok(missed)
        })
        .await
}

/// Searches what `reader` may read, newest first, at most `limit` hits older than `before`.
pub async fn search(
    svc: &Services,
    reader: &User,
    query: Query,
    before: Option<i64>,
    limit: i64,
) -> Result<Vec<Hit>> {
    let (uid, tz) = (reader.id, reader.tz());
    let budget = Budget {
        timeout_ms: svc.settings.search_timeout_ms,
        scan_rows: svc.settings.search_scan_rows,
    };
    svc.db
        .run(move |conn| {
            let mut query = query;
            // `in:@name`: the direct conversation with that person (or nothing).
            if let Some(name) = query.room.as_deref().and_then(|r| r.strip_prefix('@')) {
                query.room = Some(
                    chat::direct::between(conn, uid, name)?
                        .unwrap_or_else(|| "@no-such-conversation".into()),
                );
            }
            search::search(conn, uid, &query, tz, before, limit, budget)
        })
        .await
}

/// Room `slug`, for its member `uid` to export.
pub async fn member_room_details(svc: &Services, slug: String, uid: i64) -> Result<Room> {
    let (room, _) = svc
        .db
        .run(move |conn| rooms::for_member(conn, &slug, uid))
        .await?;
    Ok(room)
}

/// The next `limit` messages of a room after `after_id`, oldest first, with their files (a batch
/// of an export).
pub async fn batch_after(
    svc: &Services,
    room_id: i64,
    reader_id: i64,
    after_id: i64,
    limit: i64,
) -> Result<(Vec<Posted>, Vec<Attachment>)> {
    svc.db
        .run(move |conn| {
            let mut posted = messages::batch_after(conn, room_id, after_id, limit)?;
            messages::annotate(conn, reader_id, &mut posted)?;
            let files = attachments::for_messages(conn, &message_ids(&posted))?;
            Ok((posted, files))
        })
        .await
}
