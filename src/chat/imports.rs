//! Imported history as rows: what an import already brought in (the `imported` keys), old messages
//! written with their original times, and a room put in order once its history is in.

use std::collections::HashMap;

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::users::User;
use crate::db::schema::{imported, memberships, messages, reactions, rooms, users};
use crate::db::AnyConnection;
use crate::error::Result;

/// What source `source` already brought in within `scope`: its keys and the rows they became.
pub fn known(conn: &mut AnyConnection, source: &str, scope: &str) -> Result<HashMap<String, i64>> {
    let rows: Vec<(String, i64)> = imported::table
        .filter(imported::source.eq(source))
        .filter(imported::scope.eq(scope))
        .select((imported::key, imported::local_id))
        .load(conn)?;
    Ok(rows.into_iter().collect())
}

/// Records that `key` of `source` (within `scope`) became row `local_id`.
pub fn remember(
    conn: &mut AnyConnection,
    source: &str,
    scope: &str,
    key: &str,
    local_id: i64,
) -> Result<()> {
    diesel::insert_into(imported::table)
        .values((
            imported::source.eq(source),
            imported::scope.eq(scope),
            imported::key.eq(key),
            imported::local_id.eq(local_id),
        ))
        .execute(conn)?;
    Ok(())
}

/// Every account whose address is `email`, compared without regard to case.
pub fn by_email(conn: &mut AnyConnection, email: &str) -> Result<Vec<User>> {
    let email = email.trim().to_lowercase();
    if email.is_empty() {
        return Ok(Vec::new());
    }
    let found: Vec<User> = users::table
        .filter(super::mentions::lower(users::email).eq(email))
        .select(User::as_select())
        .load(conn)?;
    Ok(found)
}

/// A message of the past, as an import writes it.
#[derive(Debug, Clone)]
pub struct OldMessage<'a> {
    /// Who wrote it.
    pub author_id: i64,
    /// Its text (Markdown).
    pub body: &'a str,
    /// When it was posted.
    pub created_at: NaiveDateTime,
    /// When it was last edited.
    pub edited_at: Option<NaiveDateTime>,
    /// When it was deleted (its body is then empty).
    pub deleted_at: Option<NaiveDateTime>,
    /// The first message of the thread it replies in.
    pub parent_id: Option<i64>,
}

/// Takes the room's row lock for the rest of the transaction (posts queue behind the import) and
/// returns its cursor.
pub fn lock_room(conn: &mut AnyConnection, room_id: i64) -> Result<i64> {
    Ok(diesel::update(rooms::table.find(room_id))
        .set(rooms::cursor.eq(rooms::cursor))
        .returning(rooms::cursor)
        .get_result(conn)?)
}

/// Writes one old message into room `room_id` with change number `revision` (above the room's
/// cursor: [`settle`] moves the cursor over it). Returns its id.
pub fn insert(
    conn: &mut AnyConnection,
    room_id: i64,
    revision: i64,
    message: &OldMessage<'_>,
) -> Result<i64> {
    Ok(diesel::insert_into(messages::table)
        .values((
            messages::room_id.eq(room_id),
            messages::author_id.eq(message.author_id),
            messages::body.eq(message.body),
            messages::revision.eq(revision),
            messages::created_at.eq(message.created_at),
            messages::edited_at.eq(message.edited_at),
            messages::deleted_at.eq(message.deleted_at),
            messages::parent_id.eq(message.parent_id),
        ))
        .returning(messages::id)
        .get_result(conn)?)
}

/// Gives `user_id`'s reaction `emoji` to message `message_id` (once; a repeat is no change).
pub fn react(
    conn: &mut AnyConnection,
    message_id: i64,
    user_id: i64,
    emoji: &str,
    at: NaiveDateTime,
) -> Result<()> {
    let there: bool = diesel::select(diesel::dsl::exists(
        reactions::table.find((message_id, user_id, emoji)),
    ))
    .get_result(conn)?;
    if !there {
        diesel::insert_into(reactions::table)
            .values((
                reactions::message_id.eq(message_id),
                reactions::user_id.eq(user_id),
                reactions::emoji.eq(emoji),
                reactions::created_at.eq(at),
            ))
            .execute(conn)?;
    }
    Ok(())
}

/// Puts room `room_id` in order after an import wrote messages up to change number `revision`:
/// each thread of `threads` counts its replies again (and reaches open pages, one change each),
/// the cursor moves over everything, and the history counts as read and alerted for every member
/// who had read (or been alerted about) the room before: nobody gets mail or an unread count about
/// the past. Returns the room's new cursor.
pub fn settle(
    conn: &mut AnyConnection,
    room_id: i64,
    mut revision: i64,
    threads: &[i64],
    read_before: i64,
) -> Result<i64> {
    for &root in threads {
        let replies = messages::table
            .filter(messages::parent_id.eq(root))
            .filter(messages::deleted_at.is_null());
        let count: i64 = replies.count().get_result(conn)?;
        let last: Option<NaiveDateTime> = replies
            .select(diesel::dsl::max(messages::created_at))
            .first(conn)?;
        revision += 1;
        diesel::update(messages::table.find(root))
            .set((
                messages::reply_count.eq(i32::try_from(count).unwrap_or(i32::MAX)),
                messages::last_reply_at.eq(last),
                messages::revision.eq(revision),
            ))
            .execute(conn)?;
    }
    let newest = super::rooms::newest_message_id(conn, room_id)?;
    let last_at: Option<NaiveDateTime> = messages::table
        .filter(messages::room_id.eq(room_id))
        .select(diesel::dsl::max(messages::created_at))
        .first(conn)?;
    diesel::update(rooms::table.find(room_id))
        .set((
            rooms::cursor.eq(revision),
            rooms::last_message_at.eq(last_at),
        ))
        .execute(conn)?;
    let members = memberships::table.filter(memberships::room_id.eq(room_id));
    diesel::update(members.filter(memberships::last_read_id.ge(read_before)))
        .set(memberships::last_read_id.eq(newest))
        .execute(conn)?;
    // A member with alerts still due about messages posted here keeps them due.
    diesel::update(
        members
            .filter(memberships::alerted_through_id.lt(newest))
            .filter(
                memberships::alerted_through_id
                    .ge(read_before)
                    .or(memberships::last_read_id.eq(newest)),
            ),
    )
    .set(memberships::alerted_through_id.eq(newest))
    .execute(conn)?;
    Ok(revision)
}

/// Sets when room `room_id` was archived (an archived room of the source stays archived).
pub fn archive(conn: &mut AnyConnection, room_id: i64, at: NaiveDateTime) -> Result<()> {
    diesel::update(
        rooms::table
            .find(room_id)
            .filter(rooms::archived_at.is_null()),
    )
    .set(rooms::archived_at.eq(at))
    .execute(conn)?;
    Ok(())
}
