//! Rooms and who is in them: open rooms anyone may join, private rooms an admin fills.

use std::collections::BTreeSet;

use chrono::NaiveDateTime;
use diesel::dsl::exists;
use diesel::prelude::*;
use serde::Serialize;

use super::is_unique_violation;
use super::mentions::mentions;
use super::users::User;
use crate::db::schema::{memberships, messages, rooms, users};
use crate::db::AnyConnection;
use crate::error::{Error, Result};

/// A room.
#[derive(Debug, Clone, Queryable, Selectable, Serialize)]
#[diesel(table_name = rooms)]
pub struct Room {
    /// Database id.
    pub id: i64,
    /// The room's address: `/rooms/<slug>`.
    pub slug: String,
    /// Display name.
    pub name: String,
    /// One line about the room.
    pub description: String,
    /// Only members an admin added may see it.
    pub is_private: bool,
    /// Archived rooms keep their history but take no new messages.
    pub archived_at: Option<NaiveDateTime>,
    /// Moves forward on every change a reader must see.
    pub cursor: i64,
    /// When the last message was posted.
    pub last_message_at: Option<NaiveDateTime>,
    /// When the room was made.
    pub created_at: NaiveDateTime,
    /// `room`, or `direct` for a direct conversation (fixed members, listed to no admin).
    pub kind: String,
    /// A direct conversation's members' ids, sorted: the same people find the same room.
    #[serde(skip)]
    pub direct_key: Option<String>,
}

impl Room {
    /// Whether this is a direct conversation.
    pub fn is_direct(&self) -> bool {
        self.kind == super::direct::KIND
    }

    /// What the room is called for `viewer`: a direct conversation is named by the others in it.
    pub fn title_for(&self, viewer: &str) -> String {
        if !self.is_direct() {
            return self.name.clone();
        }
        let others: Vec<&str> = self.name.split(", ").filter(|n| *n != viewer).collect();
        if others.is_empty() {
            viewer.to_string()
        } else {
            others.join(", ")
        }
    }
}

/// A person's place in a room.
#[derive(Debug, Clone, Queryable, Selectable, Serialize)]
#[diesel(table_name = memberships)]
pub struct Membership {
    /// The room.
    pub room_id: i64,
    /// The member.
    pub user_id: i64,
    /// The newest message id the member has seen.
    pub last_read_id: i64,
    /// When they joined.
    pub joined_at: NaiveDateTime,
    /// Email alerts for this room: `all`, `mentions` or `muted`.
    pub alert_level: String,
    /// The newest message an alert mail has covered.
    pub alerted_through_id: i64,
}

/// A room in someone's room list.
#[derive(Debug, Clone, Serialize)]
pub struct RoomSummary {
    /// The room.
    pub room: Room,
    /// The member's read marker the counts start from.
    pub marker: i64,
    /// Messages by others, not deleted, after the member's read cursor, counted up to
    /// [`UNREAD_COUNTED`].
    pub unread: i64,
    /// There are more than that ("100+").
    pub unread_more: bool,
    /// Whether one of the newest [`UNREAD_COUNTED`] names the member (`@username`), or replies in a
    /// thread they took part in.
    pub mentioned: bool,
}

impl RoomSummary {
    /// The summary once the member has read through message `id`, the room's newest.
    pub fn read_through(&mut self, id: i64) {
        self.marker = id;
        self.unread = 0;
        self.unread_more = false;
        self.mentioned = false;
    }
}

/// What a member has unread in one room, counted from their read marker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unread {
    /// See [`RoomSummary::unread`].
    pub count: i64,
    /// See [`RoomSummary::unread_more`].
    pub more: bool,
    /// See [`RoomSummary::mentioned`].
    pub mentioned: bool,
}

impl RoomSummary {
    /// What the member has unread here.
    pub fn unread(&self) -> Unread {
        Unread {
            count: self.unread,
            more: self.unread_more,
            mentioned: self.mentioned,
        }
    }
}

/// Fields an admin sets on a room; validated by the caller.
pub struct RoomFields<'a> {
    /// Address.
    pub slug: &'a str,
    /// Display name.
    pub name: &'a str,
    /// One line about the room.
    pub description: &'a str,
    /// Members only.
    pub is_private: bool,
}

/// Creates a room; a taken slug is a conflict.
pub fn create(conn: &mut AnyConnection, fields: &RoomFields, now: NaiveDateTime) -> Result<Room> {
    let id: i64 = diesel::insert_into(rooms::table)
        .values((
            rooms::slug.eq(fields.slug),
            rooms::name.eq(fields.name),
            rooms::description.eq(fields.description),
            rooms::is_private.eq(fields.is_private),
            rooms::created_at.eq(now),
        ))
        .returning(rooms::id)
        .get_result(conn)
        .map_err(|e| {
            if is_unique_violation(&e) {
                Error::Conflict(format!("There is already a room at `{}`.", fields.slug))
            } else {
                e.into()
            }
        })?;
    Ok(rooms::table
        .find(id)
        .select(Room::as_select())
        .first(conn)?)
}

/// Whether any room (of any kind) has the address `slug`.
pub fn slug_taken(conn: &mut AnyConnection, slug: &str) -> Result<bool> {
    Ok(diesel::select(exists(rooms::table.filter(rooms::slug.eq(slug)))).get_result(conn)?)
}

/// A room by its slug, whoever asks (admin pages and commands only: a direct conversation is
/// "not found" here).
pub fn find_by_slug(conn: &mut AnyConnection, slug: &str) -> Result<Room> {
    Ok(rooms::table
        .filter(rooms::slug.eq(slug))
        .filter(rooms::kind.ne(super::direct::KIND))
        .select(Room::as_select())
        .first(conn)?)
}

/// Every room but the direct conversations, by name (admin).
pub fn list(conn: &mut AnyConnection) -> Result<Vec<Room>> {
    Ok(rooms::table
        .filter(rooms::kind.ne(super::direct::KIND))
        .order(rooms::name)
        .select(Room::as_select())
        .load(conn)?)
}

/// Renames and describes a room.
pub fn update(conn: &mut AnyConnection, id: i64, name: &str, description: &str) -> Result<()> {
    diesel::update(rooms::table.find(id))
        .set((rooms::name.eq(name), rooms::description.eq(description)))
        .execute(conn)?;
    Ok(())
}

/// Archives a room (`Some(now)`) or brings it back (`None`).
pub fn set_archived(
    conn: &mut AnyConnection,
    id: i64,
    archived_at: Option<NaiveDateTime>,
) -> Result<()> {
    diesel::update(rooms::table.find(id))
        .set(rooms::archived_at.eq(archived_at))
        .execute(conn)?;
    Ok(())
}

/// A room as `user_id` may see it: with their membership, or without one for an open, active room
/// they could join. Private rooms of others and unknown slugs are both "not found".
pub fn visible(
    conn: &mut AnyConnection,
    slug: &str,
    user_id: i64,
) -> Result<(Room, Option<Membership>)> {
    let (room, membership): (Room, Option<Membership>) = rooms::table
        .left_join(
            memberships::table.on(memberships::room_id
                .eq(rooms::id)
                .and(memberships::user_id.eq(user_id))),
        )
        .filter(rooms::slug.eq(slug))
        .select((Room::as_select(), Option::<Membership>::as_select()))
        .first(conn)?;
    if membership.is_none() && (room.is_private || room.archived_at.is_some()) {
        return Err(Error::NotFound);
    }
    Ok((room, membership))
}

/// A room `user_id` is a member of; anything else is "not found".
pub fn for_member(
    conn: &mut AnyConnection,
    slug: &str,
    user_id: i64,
) -> Result<(Room, Membership)> {
    match visible(conn, slug, user_id)? {
        (room, Some(membership)) => Ok((room, membership)),
        (_, None) => Err(Error::NotFound),
    }
}

/// Joins an open, active room; joining twice is fine.
pub fn join(
    conn: &mut AnyConnection,
    slug: &str,
    user_id: i64,
    now: NaiveDateTime,
) -> Result<Room> {
    let (room, membership) = visible(conn, slug, user_id)?;
    if membership.is_none() {
        if room.is_private || room.archived_at.is_some() {
            return Err(Error::NotFound);
        }
        add_member(conn, room.id, user_id, now)?;
    }
    Ok(room)
}

/// Adds a member (admin, or [`join`]); adding twice is fine. Everything already in the room counts as read.
pub fn add_member(
    conn: &mut AnyConnection,
    room_id: i64,
    user_id: i64,
    now: NaiveDateTime,
) -> Result<()> {
    let already: bool = diesel::select(exists(
        memberships::table
            .filter(memberships::room_id.eq(room_id))
            .filter(memberships::user_id.eq(user_id)),
    ))
    .get_result(conn)?;
    if already {
        return Ok(());
    }
    let last_id = newest_message_id(conn, room_id)?;
    let inserted = diesel::insert_into(memberships::table)
        .values((
            memberships::room_id.eq(room_id),
            memberships::user_id.eq(user_id),
            memberships::last_read_id.eq(last_id),
            memberships::joined_at.eq(now),
        ))
        .execute(conn);
    match inserted {
        Ok(_) => Ok(()),
        Err(e) if is_unique_violation(&e) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Removes a member; leaving a room one is not in is "not found".
pub fn remove_member(conn: &mut AnyConnection, room_id: i64, user_id: i64) -> Result<()> {
    let n = diesel::delete(memberships::table.find((room_id, user_id))).execute(conn)?;
    if n == 0 {
        return Err(Error::NotFound);
    }
    Ok(())
}

/// A member as room pages list them.
#[derive(Debug, Clone, Queryable, Serialize)]
pub struct Member {
    /// User id.
    pub id: i64,
    /// Username.
    pub username: String,
    /// When a page of theirs was last open, as last written by the presence tracker.
    pub last_seen_at: Option<NaiveDateTime>,
}

/// The members of a room, by name.
pub fn members(conn: &mut AnyConnection, room_id: i64) -> Result<Vec<Member>> {
    Ok(memberships::table
        .inner_join(users::table)
        .filter(memberships::room_id.eq(room_id))
        .order(users::username)
        .select((users::id, users::username, users::last_seen_at))
        .load(conn)?)
}

/// A room's change cursor.
pub fn cursor(conn: &mut AnyConnection, room_id: i64) -> Result<i64> {
    Ok(rooms::table
        .find(room_id)
        .select(rooms::cursor)
        .first(conn)?)
}

/// Unread messages are counted up to this many a room (shown as "100+" beyond), and the newest
/// of them are the ones looked at for mentions: a member who was away for months must not make
/// every page they open read everything they missed.
pub const UNREAD_COUNTED: i64 = 100;

/// One of the newest unread messages of a room.
#[derive(QueryableByName)]
struct UnreadRow {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    room_id: i64,
    #[diesel(sql_type = diesel::sql_types::Text)]
    body: String,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::BigInt>)]
    parent_id: Option<i64>,
}

/// The newest unread messages by others (at most [`UNREAD_COUNTED`] + 1 a room, their bodies only
/// where they may mention `user`) of every
/// (room, last read id) in `marks`, in one statement: a `UNION ALL` of one keyset read per room
/// (by the `(room_id, id)` index, as [`super::messages::page`] explains), on the backend's own
/// connection (a compound of limited reads is not in the multi-backend dialect). Every value in
/// the text is an id from the database.
fn newest_unread(
    conn: &mut AnyConnection,
    user: &User,
    marks: &[(i64, i64)],
) -> Result<Vec<UnreadRow>> {
    if marks.is_empty() {
        return Ok(Vec::new());
    }
    let user_id = user.id;
    // Only a body that may name the member is read (`_` in a name matches any character: a
    // superset, told apart by [`mentions`]); a username holds no quote.
    let name: String = user
        .username
        .to_lowercase()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || "_.-".contains(*c))
        .collect();
    let body = format!("CASE WHEN lower(body) LIKE '%@{name}%' THEN body ELSE '' END AS body");
    let postgres = matches!(conn, AnyConnection::Postgresql(_));
    let reads: Vec<String> = marks
        .iter()
        .enumerate()
        .map(|(i, (room, last_read))| {
            let room_is = if postgres {
                format!("room_id = ANY (ARRAY[{room}]::bigint[])")
            } else {
                format!("room_id = {room}")
            };
            format!(
                "SELECT * FROM (SELECT room_id, {body}, parent_id FROM messages \
                 WHERE {room_is} AND id > {last_read} AND author_id <> {user_id} AND deleted_at IS NULL \
                 ORDER BY room_id DESC, id DESC LIMIT {}) AS unread{i}",
                UNREAD_COUNTED + 1
            )
        })
        .collect();
    // SQLite takes at most 500 terms in one compound statement.
    let mut rows = Vec::new();
    for chunk in reads.chunks(UNION_TERMS) {
        let query = diesel::sql_query(chunk.join(" UNION ALL "));
        rows.extend(match conn {
            AnyConnection::Postgresql(pg) => query.load::<UnreadRow>(pg)?,
            AnyConnection::Sqlite(sqlite) => query.load::<UnreadRow>(sqlite)?,
        });
    }
    Ok(rows)
}

/// Rooms read per statement by [`newest_unread`] (SQLite's compound limit is 500).
const UNION_TERMS: usize = 200;

/// The rooms `user` is in, with unread counts and whether an unread message mentions them: active
/// rooms by last activity, then archived ones. `marker(room, stored)` gives the read marker to
/// count from, given the stored one (a newer one may be waiting to be written); `counted(room,
/// marker)` what is unread in a room as counted before, if the room and the marker are where they
/// were then (a room's unread messages change only with its cursor), so that only the other rooms
/// are read.
pub fn for_user(
    conn: &mut AnyConnection,
    user: &User,
    marker: impl Fn(i64, i64) -> i64,
    counted: impl Fn(&Room, i64) -> Option<Unread>,
) -> Result<Vec<RoomSummary>> {
    let user_id = user.id;
    let rooms: Vec<(Room, i64)> = rooms::table
        .inner_join(memberships::table)
        .filter(memberships::user_id.eq(user_id))
        .select((Room::as_select(), memberships::last_read_id))
        .load(conn)?;
    let rooms: Vec<(Room, i64, Option<Unread>)> = rooms
        .into_iter()
        .map(|(room, stored)| {
            let marker = marker(room.id, stored);
            let known = counted(&room, marker);
            (room, marker, known)
        })
        .collect();
    let marks: Vec<(i64, i64)> = rooms
        .iter()
        .filter(|(_, _, known)| known.is_none())
        .map(|(room, marker, _)| (room.id, *marker))
        .collect();
    let unread = newest_unread(conn, user, &marks)?;
    // Replies in a thread the member started or took part in count as mentions too.
    let mut threads: Vec<i64> = unread.iter().filter_map(|u| u.parent_id).collect();
    threads.sort_unstable();
    threads.dedup();
    let mine: BTreeSet<i64> = if threads.is_empty() {
        BTreeSet::new()
    } else {
        let took_part: Vec<(i64, Option<i64>)> = messages::table
            .filter(messages::author_id.eq(user_id))
            .filter(
                messages::id
                    .eq_any(&threads)
                    .or(messages::parent_id.eq_any(&threads)),
            )
            .select((messages::id, messages::parent_id))
            .load(conn)?;
        took_part
            .into_iter()
            .map(|(id, parent)| parent.unwrap_or(id))
            .collect()
    };
    let mut by_room: std::collections::HashMap<i64, Vec<&UnreadRow>> =
        std::collections::HashMap::new();
    for row in &unread {
        by_room.entry(row.room_id).or_default().push(row);
    }
    let mut summaries: Vec<RoomSummary> = rooms
        .into_iter()
        .map(|(room, marker, known)| {
            let unread = known.unwrap_or_else(|| {
                let here = by_room.remove(&room.id).unwrap_or_default();
                let count = here.len() as i64;
                let mentioned = here.iter().any(|u| {
                    mentions(&u.body, &user.username)
                        || u.parent_id.is_some_and(|p| mine.contains(&p))
                });
                Unread {
                    count: count.min(UNREAD_COUNTED),
                    more: count > UNREAD_COUNTED,
                    // Every unread message of a direct conversation counts like a mention.
                    mentioned: mentioned || (room.is_direct() && count > 0),
                }
            });
            RoomSummary {
                room,
                marker,
                unread: unread.count,
                unread_more: unread.more,
                mentioned: unread.mentioned,
            }
        })
        .collect();
    summaries.sort_by(|a, b| {
        (
            a.room.archived_at.is_some(),
            std::cmp::Reverse(a.room.last_message_at),
            &a.room.name,
        )
            .cmp(&(
                b.room.archived_at.is_some(),
                std::cmp::Reverse(b.room.last_message_at),
                &b.room.name,
            ))
    });
    Ok(summaries)
}

/// Open, active rooms `user_id` could join, by name; the first `limit` of them, if given.
pub fn joinable(conn: &mut AnyConnection, user_id: i64, limit: Option<i64>) -> Result<Vec<Room>> {
    let mine = memberships::table
        .filter(memberships::user_id.eq(user_id))
        .select(memberships::room_id);
    Ok(rooms::table
        .filter(rooms::is_private.eq(false))
        .filter(rooms::archived_at.is_null())
        .filter(diesel::dsl::not(rooms::id.eq_any(mine)))
        .order(rooms::name)
        .limit(limit.unwrap_or(i64::MAX))
        .select(Room::as_select())
        .load(conn)?)
}

/// Moves a member's read cursor forward to `upto` (never back), in one statement.
pub fn mark_read(conn: &mut AnyConnection, room_id: i64, user_id: i64, upto: i64) -> Result<()> {
    diesel::update(
        memberships::table
            .find((room_id, user_id))
            .filter(memberships::last_read_id.lt(upto)),
    )
    .set(memberships::last_read_id.eq(upto))
    .execute(conn)?;
    Ok(())
}

/// Moves many read markers forward, as (room id, user id, newest read), a marker never back: a
/// batch update ([`super::update_from_values`]).
pub fn mark_read_many(conn: &mut AnyConnection, reads: &[(i64, i64, i64)]) -> Result<()> {
    let rows: Vec<String> = reads
        .iter()
        .map(|(room, user, upto)| format!("({room}, {user}, {upto})"))
        .collect();
    super::update_from_values(
        conn,
        &rows,
        "SELECT 1 FROM memberships JOIN (VALUES {values}) AS v \
         ON memberships.room_id = v.column1 AND memberships.user_id = v.column2 \
         ORDER BY memberships.room_id, memberships.user_id FOR NO KEY UPDATE OF memberships",
        "UPDATE memberships SET last_read_id = v.column3 FROM (VALUES {values}) AS v \
         WHERE memberships.room_id = v.column1 AND memberships.user_id = v.column2 \
         AND memberships.last_read_id < v.column3",
    )
}

/// The rooms `user_id` is in, with their memberships, by name.
pub fn memberships(conn: &mut AnyConnection, user_id: i64) -> Result<Vec<(Room, Membership)>> {
    Ok(rooms::table
        .inner_join(memberships::table)
        .filter(memberships::user_id.eq(user_id))
        .order(rooms::name)
        .select((Room::as_select(), Membership::as_select()))
        .load(conn)?)
}

/// The newest message id of a room (0 when it has none), by the `(room_id, id)` index (as `messages::page` explains:
/// `MAX(id)` with `room_id = $1` may walk the primary key back past other rooms' messages).
pub fn newest_message_id(conn: &mut AnyConnection, room_id: i64) -> Result<i64> {
    Ok(messages::table
        .filter(messages::room_id.eq_any(vec![room_id]))
        .order((messages::room_id.desc(), messages::id.desc()))
        .select(messages::id)
        .first::<i64>(conn)
        .optional()?
        .unwrap_or(0))
}

/// Every room's change cursor, as (room id, cursor).
pub fn cursors(conn: &mut AnyConnection) -> Result<Vec<(i64, i64)>> {
    Ok(rooms::table.select((rooms::id, rooms::cursor)).load(conn)?)
}

/// The slug of room `id` (any kind), to address it by.
pub fn slug_of(conn: &mut AnyConnection, id: i64) -> Result<String> {
    rooms::table
        .find(id)
        .select(rooms::slug)
        .first(conn)
        .optional()?
        .ok_or(Error::NotFound)
}
