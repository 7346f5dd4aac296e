//! Messages: posting exactly once, pages of history by keyset, edits and deletions. Every change a
//! reader must see moves the room's cursor forward and stamps the message with it.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::attachments::{self as attachments_rows, Attachment};
use super::reactions::SavedBy;
use crate::db::schema::{attachments, memberships, messages, rooms, users};
use crate::db::AnyConnection;
use crate::error::{Error, Result};

/// A message as stored.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = messages)]
pub struct Message {
    /// Database id; grows with every message.
    pub id: i64,
    /// The room it was posted in.
    pub room_id: i64,
    /// Who wrote it.
    pub author_id: i64,
    /// The text, cleaned; empty once deleted.
    pub body: String,
    /// The room cursor at the last change to this message.
    pub revision: i64,
    /// When it was posted.
    pub created_at: NaiveDateTime,
    /// When it was last edited.
    pub edited_at: Option<NaiveDateTime>,
    /// When it was deleted.
    pub deleted_at: Option<NaiveDateTime>,
    /// The first message of the thread this one replies to.
    pub parent_id: Option<i64>,
    /// How many replies this one has (the first message of a thread).
    pub reply_count: i32,
    /// When the last of them was posted.
    pub last_reply_at: Option<NaiveDateTime>,
    /// When it was pinned to its room, if it is.
    pub pinned_at: Option<NaiveDateTime>,
    /// Who pinned it.
    pub pinned_by: Option<i64>,
}

/// A message with its author's username.
#[derive(Debug, Clone)]
pub struct Posted {
    /// The message.
    pub message: Message,
    /// Its author's username.
    pub author: String,
    /// When the author's own picture last changed, if they have one.
    pub avatar_at: Option<NaiveDateTime>,
    /// For a reply: the line it shows of the thread's first message (see [`annotate`]).
    pub quote: Option<Quote>,
    /// Its reactions: (emoji, who), oldest first (see [`annotate`]).
    pub reactions: Vec<(String, String)>,
    /// Whether the reader saved it (see [`annotate`]).
    pub saved: bool,
}

/// The line a reply shows of the message that started its thread.
#[derive(Debug, Clone)]
pub struct Quote {
    /// That message.
    pub id: i64,
    /// Its author.
    pub author: String,
    /// The start of its text (empty once deleted).
    pub text: String,
}

/// Characters of the quoted message a reply shows.
const QUOTE_CHARS: i32 = 120;

/// Fills in what pages show beside each message of `posted` for `reader_id`: its reactions and
/// whether the reader saved it (one query), and the quote of every reply (one more, if any).
pub fn annotate(conn: &mut AnyConnection, reader_id: i64, posted: &mut [Posted]) -> Result<()> {
    let saved = annotate_for(conn, Some(reader_id), posted)?;
    for p in posted.iter_mut() {
        p.saved = saved.iter().any(|(id, _)| *id == p.message.id);
    }
    Ok(())
}

/// [`annotate`] for `reader`, or for every reader at once: the reactions and quotes, and who saved
/// which message as (message id, username), for [`saved_by`] to mark each reader's.
pub fn annotate_for(
    conn: &mut AnyConnection,
    reader: Option<i64>,
    posted: &mut [Posted],
) -> Result<SavedBy> {
    let ids: Vec<i64> = posted.iter().map(|p| p.message.id).collect();
    let (reactions, saved) = super::reactions::marks(conn, reader, &ids)?;
    for p in posted.iter_mut() {
        p.reactions = reactions
            .iter()
            .filter(|(id, _, _)| *id == p.message.id)
            .map(|(_, emoji, who)| (emoji.clone(), who.clone()))
            .collect();
    }
    let ids: Vec<i64> = posted.iter().filter_map(|p| p.message.parent_id).collect();
    if ids.is_empty() {
        return Ok(saved);
    }
    let found: Vec<(i64, String, String)> = messages::table
        .inner_join(users::table)
        .filter(messages::id.eq_any(&ids))
        .select((
            messages::id,
            users::username,
            super::mentions::substr(messages::body, 1, QUOTE_CHARS),
        ))
        .load(conn)?;
    for p in posted.iter_mut() {
        p.quote = p.message.parent_id.and_then(|parent| {
            found
                .iter()
                .find(|(id, _, _)| *id == parent)
                .map(|(id, author, text)| Quote {
                    id: *id,
                    author: author.clone(),
                    text: text.clone(),
                })
        });
    }
    Ok(saved)
}

/// Marks which of `posted` `username` saved, from who saved what ([`annotate_for`] for everyone).
pub fn saved_by(posted: &mut [Posted], saved: &SavedBy, username: &str) {
    for p in posted.iter_mut() {
        p.saved = saved.contains(&(p.message.id, username.to_string()));
    }
}

/// The author columns read with a message: username and picture time.
const AUTHOR: (users::username, users::avatar_at) = (users::username, users::avatar_at);

/// A row of [`AUTHOR`].
type AuthorRow = (String, Option<NaiveDateTime>);

impl From<(Message, AuthorRow)> for Posted {
    fn from((message, (author, avatar_at)): (Message, AuthorRow)) -> Posted {
        Posted {
            message,
            author,
            avatar_at,
            quote: None,
            reactions: Vec::new(),
            saved: false,
        }
    }
}

/// Which page of a room's history to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PageAt {
    /// The newest messages.
    Latest,
    /// The messages just older than this id.
    Before(i64),
    /// The messages just newer than this id.
    After(i64),
    /// The messages around this id (a permalink); the id must be in the room.
    Around(i64),
    /// The first messages posted at or after this time (jump to a date).
    From(NaiveDateTime),
}

/// A page of history, oldest first.
#[derive(Debug, Clone)]
pub struct Page {
    /// The messages, oldest first.
    pub messages: Vec<Posted>,
    /// Whether older messages exist.
    pub has_older: bool,
    /// Whether newer messages exist.
    pub has_newer: bool,
}

/// Reads one page of a room's history by keyset (never OFFSET), walking the `(room_id, id)` index.
///
/// The room is matched with `eq_any` and the order names `room_id` as well as `id`. PostgreSQL
/// treats `room_id = $1` as a constant and drops it from the order, which lets it walk the primary
/// key instead and skip every newer message of other rooms (slow for a room whose messages are old);
/// with `room_id = ANY($1)` only the `(room_id, id)` index gives the order. SQLite uses that index
/// either way.
pub fn page(conn: &mut AnyConnection, room_id: i64, at: PageAt, size: i64) -> Result<Page> {
    let base = || {
        messages::table
            .inner_join(users::table)
            .filter(messages::room_id.eq_any(vec![room_id]))
            .select((Message::as_select(), AUTHOR))
            .into_boxed()
    };
    let newest_first = (messages::room_id.desc(), messages::id.desc());
    let oldest_first_order = (messages::room_id.asc(), messages::id.asc());
    let oldest_first = |rows: Vec<(Message, AuthorRow)>| rows.into_iter().rev().collect::<Vec<_>>();
    // Whether there is more on each side, when the page's own reads tell (else a probe each).
    let mut known = None;
    let rows: Vec<(Message, AuthorRow)> = match at {
        PageAt::Latest => oldest_first(base().order(newest_first).limit(size).load(conn)?),
        PageAt::Before(id) => oldest_first(
            base()
                .filter(messages::id.lt(id))
                .order(newest_first)
                .limit(size)
                .load(conn)?,
        ),
        PageAt::After(id) => base()
            .filter(messages::id.gt(id))
            .order(oldest_first_order)
            .limit(size)
            .load(conn)?,
        PageAt::From(at) => base()
            .filter(messages::created_at.ge(at))
            .order(oldest_first_order)
            .limit(size)
            .load(conn)?,
        PageAt::Around(id) => {
            // One row more on each side than the page shows, to know whether there is more.
            let newer = size / 2;
            let older = size - newer;
            let mut before: Vec<(Message, AuthorRow)> = base()
                .filter(messages::id.le(id))
                .order(newest_first)
                .limit(older + 1)
                .load(conn)?;
            // Newest first, the message itself leads, unless it is not one of this room's.
            if before.first().map(|(m, _)| m.id) != Some(id) {
                return Err(Error::NotFound);
            }
            let mut after: Vec<(Message, AuthorRow)> = base()
                .filter(messages::id.gt(id))
                .order(oldest_first_order)
                .limit(newer + 1)
                .load(conn)?;
            known = Some((before.len() as i64 > older, after.len() as i64 > newer));
            before.truncate(older as usize);
            after.truncate(newer as usize);
            let mut rows = oldest_first(before);
            rows.extend(after);
            rows
        }
    };
    let messages: Vec<Posted> = rows.into_iter().map(Posted::from).collect();
    // Probes of one row each, by the same index (PostgreSQL plans `EXISTS` without the order).
    let in_room = || {
        messages::table
            .filter(messages::room_id.eq_any(vec![room_id]))
            .select(messages::id)
            .into_boxed()
    };
    let (has_older, has_newer) = match (known, messages.first(), messages.last()) {
        (Some(known), _, _) => known,
        (None, Some(first), Some(last)) => (
            in_room()
                .filter(messages::id.lt(first.message.id))
                .order(newest_first)
                .first::<i64>(conn)
                .optional()?
                .is_some(),
            in_room()
                .filter(messages::id.gt(last.message.id))
                .order(oldest_first_order)
                .first::<i64>(conn)
                .optional()?
                .is_some(),
        ),
        _ => (false, false),
    };
    Ok(Page {
        messages,
        has_older,
        has_newer,
    })
}

/// One message of a room, with its author; another room's message is "not found".
pub fn get(conn: &mut AnyConnection, room_id: i64, id: i64) -> Result<Posted> {
    let row: (Message, AuthorRow) = messages::table
        .inner_join(users::table)
        .filter(messages::room_id.eq(room_id))
        .filter(messages::id.eq(id))
        .select((Message::as_select(), AUTHOR))
        .first(conn)?;
    Ok(Posted::from(row))
}

/// Moves a room's cursor one step forward and returns it; an archived room takes no changes.
fn advance_cursor(conn: &mut AnyConnection, room_id: i64) -> Result<i64> {
    let room = rooms::table
        .find(room_id)
        .filter(rooms::archived_at.is_null());
    diesel::update(room)
        .set(rooms::cursor.eq(rooms::cursor + 1))
        .returning(rooms::cursor)
        .get_result(conn)
        .optional()?
        .ok_or_else(archived)
}

/// Moves room `room_id`'s cursor and stamps message `id` with it: a change beside the message
/// (a reaction, a pin) then reaches every open page like an edit. Returns the new cursor.
pub fn touch(conn: &mut AnyConnection, room_id: i64, id: i64) -> Result<i64> {
    let revision = advance_cursor(conn, room_id)?;
    diesel::update(messages::table.find(id))
        .set(messages::revision.eq(revision))
        .execute(conn)?;
    Ok(revision)
}

/// Pins message `id` of room `room_id` (any member may), or unpins it; returns whether it is pinned
/// now and the room's new cursor (the change reaches open pages like an edit). A deleted message
/// cannot be pinned.
pub fn toggle_pin(
    conn: &mut AnyConnection,
    room_id: i64,
    id: i64,
    user_id: i64,
    now: NaiveDateTime,
) -> Result<(bool, i64)> {
    let current = get(conn, room_id, id)?;
    let pin = current.message.pinned_at.is_none();
    if pin && current.message.deleted_at.is_some() {
        return Err(Error::Invalid("This message was deleted.".into()));
    }
    let revision = advance_cursor(conn, room_id)?;
    diesel::update(messages::table.find(id))
        .set((
            messages::pinned_at.eq(pin.then_some(now)),
            messages::pinned_by.eq(pin.then_some(user_id)),
            messages::revision.eq(revision),
        ))
        .execute(conn)?;
    Ok((pin, revision))
}

/// The pinned messages of a room, most recently pinned first, at most `limit`.
pub fn pinned(conn: &mut AnyConnection, room_id: i64, limit: i64) -> Result<Vec<Posted>> {
    let rows: Vec<(Message, AuthorRow)> = messages::table
        .inner_join(users::table)
        .filter(messages::room_id.eq(room_id))
        .filter(messages::pinned_at.is_not_null())
        .filter(messages::deleted_at.is_null())
        .order(messages::pinned_at.desc())
        .limit(limit)
        .select((Message::as_select(), AUTHOR))
        .load(conn)?;
    Ok(rows.into_iter().map(Posted::from).collect())
}

/// A message just stored, or the one an earlier send of the same form stored.
#[derive(Debug, Clone)]
pub struct Stored {
    /// The room it is in.
    pub room_id: i64,
    /// Its id.
    pub id: i64,
    /// The room's cursor with it.
    pub cursor: i64,
    /// The message as stored: for a resent form, the one its first send stored (which may since
    /// have been edited or deleted), never the resent text.
    pub message: Message,
}

/// Why a post stored nothing new. Either way the caller's transaction must roll back.
#[derive(Debug)]
pub enum NotPosted {
    /// The same form (its `client_id`) was sent before: this is the message it stored.
    Duplicate(Box<Stored>),
    /// The post failed.
    Failed(Error),
}

impl From<Error> for NotPosted {
    fn from(e: Error) -> NotPosted {
        NotPosted::Failed(e)
    }
}

impl From<diesel::result::Error> for NotPosted {
    fn from(e: diesel::result::Error) -> NotPosted {
        NotPosted::Failed(e.into())
    }
}

impl From<crate::db::DbUnavailable> for NotPosted {
    fn from(e: crate::db::DbUnavailable) -> NotPosted {
        NotPosted::Failed(e.into())
    }
}

impl NotPosted {
    /// A duplicate is the message the first send stored; only a failure is an error.
    pub fn into_stored(result: std::result::Result<Stored, NotPosted>) -> Result<(Stored, bool)> {
        match result {
            Ok(stored) => Ok((stored, true)),
            Err(NotPosted::Duplicate(stored)) => Ok((*stored, false)),
            Err(NotPosted::Failed(e)) => Err(e),
        }
    }
}

fn archived() -> Error {
    Error::Invalid("This room is archived: it keeps its history but takes no new messages.".into())
}

/// Posts a message (the body already validated) by a member of room `slug`, in two statements: one
/// moves the room's cursor forward (only for a member, only while the room is open), one stores the
/// message. The author's read marker follows by trigger. With a `client_id` (the form's one-time
/// token) a second send of the same form is [`NotPosted::Duplicate`].
pub fn post(
    conn: &mut AnyConnection,
    slug: &str,
    author_id: i64,
    body: &str,
    client_id: Option<&str>,
    reply_to: Option<i64>,
    now: NaiveDateTime,
) -> std::result::Result<Stored, NotPosted> {
    let Some((room_id, cursor)) = advance_for(conn, slug, author_id, 1, now)? else {
        // Not a member ("not found"), or the room is archived; or, on PostgreSQL, a membership
        // committed just after the update looked.
        let (room, _) = super::rooms::for_member(conn, slug, author_id)?;
        return Err(match room.archived_at {
            Some(_) => archived(),
            None => Error::Invalid("You have only just joined this room: send again.".into()),
        }
        .into());
    };
    let parent_id = match reply_to {
        Some(id) => Some(thread_of(conn, room_id, id)?),
        None => None,
    };
    let message = insert(
        conn,
        NewPost {
            author_id,
            body,
            client_id,
        },
        room_id,
        cursor,
        parent_id,
        now,
    )?
    .ok_or_else(used_elsewhere)?;
    let (id, revision, parent_id) = (message.id, message.revision, message.parent_id);
    if revision == cursor {
        let mut cursor = cursor;
        if let Some(parent) = parent_id {
            // The thread's first message counts the reply, and changes one step after it (each
            // change its own revision, so no page of changes can split them).
            cursor = advance_cursor(conn, room_id)?;
            diesel::update(messages::table.find(parent))
                .set((
                    messages::reply_count.eq(messages::reply_count + 1),
                    messages::last_reply_at.eq(now),
                    messages::revision.eq(cursor),
                ))
                .execute(conn)?;
        }
        return Ok(Stored {
            room_id,
            id,
            cursor,
            message,
        });
    }
    Err(NotPosted::Duplicate(Box::new(Stored {
        room_id,
        id,
        cursor: cursor - 1,
        message,
    })))
}

/// One post of a batch: who writes what, and the form's one-time token if any.
#[derive(Debug, Clone, Copy)]
pub struct NewPost<'a> {
    /// The author, a member of the room.
    pub author_id: i64,
    /// The text, already validated.
    pub body: &'a str,
    /// The form's one-time token.
    pub client_id: Option<&'a str>,
}

/// Stores `post` in room `room_id` with revision `revision` (a cursor step the caller has taken):
/// the message as stored, which for a resent form is the one its first send stored; `None` for a
/// form already used in another room (whose message is left as it was).
fn insert(
    conn: &mut AnyConnection,
    post: NewPost<'_>,
    room_id: i64,
    revision: i64,
    parent_id: Option<i64>,
    now: NaiveDateTime,
) -> Result<Option<Message>> {
    // A resent form updates nothing and returns the row it stored first (upserts are not part of
    // the multi-backend dialect, so the statement goes to the backend's own connection).
    let insert = diesel::insert_into(messages::table)
        .values((
            messages::room_id.eq(room_id),
            messages::author_id.eq(post.author_id),
            messages::body.eq(post.body),
            messages::client_id.eq(post.client_id),
            messages::revision.eq(revision),
            messages::created_at.eq(now),
            messages::parent_id.eq(parent_id),
        ))
        .on_conflict((messages::author_id, messages::client_id))
        .do_update()
        .set(messages::client_id.eq(diesel::upsert::excluded(messages::client_id)))
        .returning((
            messages::id,
            messages::room_id,
            messages::revision,
            messages::body,
            messages::created_at,
            messages::edited_at,
            messages::deleted_at,
            messages::parent_id,
        ));
    type Row = (
        i64,
        i64,
        i64,
        String,
        NaiveDateTime,
        Option<NaiveDateTime>,
        Option<NaiveDateTime>,
        Option<i64>,
    );
    let (id, stored_room, revision, body, created_at, edited_at, deleted_at, parent_id): Row =
        match conn {
            AnyConnection::Postgresql(pg) => insert.get_result(pg)?,
            AnyConnection::Sqlite(sqlite) => insert.get_result(sqlite)?,
        };
    // A message of another room may hold any revision, even this cursor: the room decides first.
    if stored_room != room_id {
        return Ok(None);
    }
    Ok(Some(Message {
        id,
        room_id,
        author_id: post.author_id,
        body,
        revision,
        created_at,
        edited_at,
        deleted_at,
        parent_id,
        reply_count: 0,
        last_reply_at: None,
        pinned_at: None,
        pinned_by: None,
    }))
}

/// Moves room `slug`'s cursor `steps` forward for posts by `author_id`, only for a member and only
/// while the room is open; returns the room's id and its new cursor.
fn advance_for(
    conn: &mut AnyConnection,
    slug: &str,
    author_id: i64,
    steps: i64,
    now: NaiveDateTime,
) -> Result<Option<(i64, i64)>> {
    let member_of = memberships::table
        .filter(memberships::user_id.eq(author_id))
        .select(memberships::room_id);
    Ok(diesel::update(
        rooms::table
            .filter(rooms::slug.eq(slug))
            .filter(rooms::archived_at.is_null())
            .filter(rooms::id.eq_any(member_of)),
    )
    .set((
        rooms::cursor.eq(rooms::cursor + steps),
        rooms::last_message_at.eq(now),
    ))
    .returning((rooms::id, rooms::cursor))
    .get_result(conn)
    .optional()?)
}

/// The answer to a form already used in another room.
fn used_elsewhere() -> Error {
    Error::Invalid("This form was already used in another room: send again.".into())
}

/// What [`post_many`] wrote.
pub struct Batch {
    /// The room.
    pub room_id: i64,
    /// The room's cursor after the batch.
    pub cursor: i64,
    /// Each post's outcome, in the order given.
    pub outcomes: Vec<std::result::Result<Stored, NotPosted>>,
}

/// Posts several messages (bodies validated, none a reply) to room `slug` at once, in one statement
/// that moves the room's cursor a step for each, then one insert each: posts that arrive together
/// share one transaction and one commit. `None` when the room is archived or missing, or the first
/// author is not a member: nothing is written. Another author who is not a member, or a form
/// already used in another room, fails the batch, which the caller must then roll back. Either way
/// each post must then go alone through [`post`] to learn why. Otherwise the [`Batch`]: each post
/// stored, or for a resent form [`NotPosted::Duplicate`] (whose step of the cursor is left unused);
/// the caller commits them all.
pub fn post_many(
    conn: &mut AnyConnection,
    slug: &str,
    posts: &[NewPost<'_>],
    now: NaiveDateTime,
) -> Result<Option<Batch>> {
    let mut authors: Vec<i64> = posts.iter().map(|p| p.author_id).collect();
    authors.sort_unstable();
    authors.dedup();
    let steps = i64::try_from(posts.len()).map_err(|e| Error::internal("a batch of posts", e))?;
    let Some(&first) = authors.first() else {
        return Ok(None);
    };
    // The statement a post alone uses (prepared once) moves the cursor for the first author; the
    // other authors' memberships are then checked in the room it moved.
    let advanced = advance_for(conn, slug, first, steps, now)?;
    let others = &authors[1..];
    if let Some((room_id, _)) = advanced.filter(|_| !others.is_empty()) {
        let members: i64 = memberships::table
            .filter(memberships::room_id.eq(room_id))
            .filter(memberships::user_id.eq_any(others))
            .count()
            .get_result(conn)?;
        if members != i64::try_from(others.len()).unwrap_or(i64::MAX) {
            return Err(Error::NotFound);
        }
    }
    let Some((room_id, cursor)) = advanced else {
        return Ok(None);
    };
    let mut outcomes = Vec::with_capacity(posts.len());
    for (step, post) in (cursor - steps + 1..).zip(posts) {
        let outcome = match insert(conn, *post, room_id, step, None, now)? {
            None => return Err(used_elsewhere()),
            Some(message) if message.revision == step => Ok(Stored {
                room_id,
                id: message.id,
                cursor: step,
                message,
            }),
            Some(message) => Err(NotPosted::Duplicate(Box::new(Stored {
                room_id,
                id: message.id,
                cursor: step - 1,
                message,
            }))),
        };
        outcomes.push(outcome);
    }
    Ok(Some(Batch {
        room_id,
        cursor,
        outcomes,
    }))
}

/// The thread a reply to message `id` of room `room_id` joins: the first message of its thread (a
/// reply to a reply joins the same thread). Another room's message is "not found"; a deleted one
/// takes no replies.
fn thread_of(conn: &mut AnyConnection, room_id: i64, id: i64) -> Result<i64> {
    let deleted = || Error::Invalid("That message was deleted: it takes no replies.".into());
    let mut parent = get(conn, room_id, id)?;
    if parent.message.deleted_at.is_some() {
        return Err(deleted());
    }
    if let Some(root) = parent.message.parent_id {
        parent = get(conn, room_id, root)?;
        if parent.message.deleted_at.is_some() {
            return Err(deleted());
        }
    }
    Ok(parent.message.id)
}

/// The thread of message `id` (the one it started, or the one it replies in): its first message
/// and a page of its replies, oldest first (keyset by id, newest page first; `before` pages back).
pub fn thread(
    conn: &mut AnyConnection,
    room_id: i64,
    id: i64,
    before: Option<i64>,
    size: i64,
) -> Result<(Posted, Vec<Posted>, bool)> {
    let mut root = get(conn, room_id, id)?;
    if let Some(parent) = root.message.parent_id {
        root = get(conn, room_id, parent)?;
    }
    let id = root.message.id;
    let mut query = messages::table
        .inner_join(users::table)
        .filter(messages::parent_id.eq(id))
        .select((Message::as_select(), AUTHOR))
        .order(messages::id.desc())
        .limit(size + 1)
        .into_boxed();
    if let Some(before) = before {
        query = query.filter(messages::id.lt(before));
    }
    let mut rows: Vec<(Message, AuthorRow)> = query.load(conn)?;
    let has_older = rows.len() as i64 > size;
    rows.truncate(size as usize);
    let replies = rows.into_iter().rev().map(Posted::from).collect();
    Ok((root, replies, has_older))
}

/// Replaces the text of one's own message (the body already validated).
pub fn edit(
    conn: &mut AnyConnection,
    room_id: i64,
    id: i64,
    editor_id: i64,
    body: &str,
    now: NaiveDateTime,
) -> Result<()> {
    let current = get(conn, room_id, id)?;
    if current.message.author_id != editor_id {
        return Err(Error::Forbidden);
    }
    if current.message.deleted_at.is_some() {
        return Err(Error::Invalid("This message was deleted.".into()));
    }
    if current.message.body == body {
        return Ok(());
    }
    let revision = advance_cursor(conn, room_id)?;
    diesel::update(messages::table.find(id))
        .set((
            messages::body.eq(body),
            messages::edited_at.eq(now),
            messages::revision.eq(revision),
        ))
        .execute(conn)?;
    Ok(())
}

/// Deletes a message: its text, attachment, reactions and pin are erased and a "message deleted"
/// line stays in the history (a reply leaves its thread's count). Authors may delete their own messages, admins anyone's. Returns the removed attachment,
/// whose files the caller removes once this commits.
pub fn delete(
    conn: &mut AnyConnection,
    room_id: i64,
    id: i64,
    actor_id: i64,
    actor_is_admin: bool,
    now: NaiveDateTime,
) -> Result<Option<Attachment>> {
    let current = get(conn, room_id, id)?;
    if current.message.author_id != actor_id && !actor_is_admin {
        return Err(Error::Forbidden);
    }
    if current.message.deleted_at.is_some() {
        return Ok(None);
    }
    let revision = advance_cursor(conn, room_id)?;
    diesel::update(messages::table.find(id))
        .set((
            messages::body.eq(""),
            messages::deleted_at.eq(now),
            messages::revision.eq(revision),
            messages::pinned_at.eq(None::<NaiveDateTime>),
            messages::pinned_by.eq(None::<i64>),
        ))
        .execute(conn)?;
    diesel::delete(
        crate::db::schema::reactions::table.filter(crate::db::schema::reactions::message_id.eq(id)),
    )
    .execute(conn)?;
    if let Some(parent) = current.message.parent_id {
        // The thread counts one reply fewer, and shows it.
        let revision = advance_cursor(conn, room_id)?;
        diesel::update(messages::table.find(parent))
            .set((
                messages::reply_count.eq(messages::reply_count - 1),
                messages::revision.eq(revision),
            ))
            .execute(conn)?;
    }
    attachments_rows::remove_for_message(conn, id)
}

/// The messages of a room changed after `cursor` (new, edited, deleted), in the order they changed,
/// at most `limit` of them, with their attachments, in one query. The same for every member: the
/// caller checks that its reader is one.
pub fn changed_since(
    conn: &mut AnyConnection,
    room_id: i64,
    cursor: i64,
    limit: i64,
) -> Result<(Vec<Posted>, Vec<Attachment>)> {
    let rows: Vec<(Message, AuthorRow, Option<Attachment>)> = messages::table
        .inner_join(users::table)
        .left_join(attachments::table)
        .filter(messages::room_id.eq(room_id))
        .filter(messages::revision.gt(cursor))
        .order(messages::revision.asc())
        .limit(limit)
        .select((
            Message::as_select(),
            AUTHOR,
            Option::<Attachment>::as_select(),
        ))
        .load(conn)?;
    let mut files = Vec::new();
    let posted = rows
        .into_iter()
        .map(|(message, author, file)| {
            files.extend(file);
            Posted::from((message, author))
        })
        .collect();
    Ok((posted, files))
}

/// Unread messages by others in a room, oldest first: those after `last_read_id`, not deleted, at
/// most `limit` (by the `(room_id, id)` index, as [`page`] explains).
pub fn unread(
    conn: &mut AnyConnection,
    room_id: i64,
    reader_id: i64,
    last_read_id: i64,
    limit: i64,
) -> Result<Vec<Posted>> {
    let rows: Vec<(Message, AuthorRow)> = messages::table
        .inner_join(users::table)
        .filter(messages::room_id.eq_any(vec![room_id]))
        .filter(messages::id.gt(last_read_id))
        .filter(messages::author_id.ne(reader_id))
        .filter(messages::deleted_at.is_null())
        .order((messages::room_id.asc(), messages::id.asc()))
        .limit(limit)
        .select((Message::as_select(), AUTHOR))
        .load(conn)?;
    Ok(rows.into_iter().map(Posted::from).collect())
}

/// The next `limit` messages of a room after `after_id`, oldest first (for exports; by the
/// `(room_id, id)` index, as [`page`] explains).
pub fn batch_after(
    conn: &mut AnyConnection,
    room_id: i64,
    after_id: i64,
    limit: i64,
) -> Result<Vec<Posted>> {
    let rows: Vec<(Message, AuthorRow)> = messages::table
        .inner_join(users::table)
        .filter(messages::room_id.eq_any(vec![room_id]))
        .filter(messages::id.gt(after_id))
        .order((messages::room_id.asc(), messages::id.asc()))
        .limit(limit)
        .select((Message::as_select(), AUTHOR))
        .load(conn)?;
    Ok(rows.into_iter().map(Posted::from).collect())
}
