//! Saved messages: each member's private list of messages to come back to ("later").

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::messages::{self, Message, Posted};
use crate::db::schema::{memberships, messages as messages_table, saved_messages, users};
use crate::db::AnyConnection;
use crate::error::Result;

/// Saves message `id` of room `room_id` for `user_id`, or takes it off the list; returns whether it
/// is saved now.
pub fn toggle(
    conn: &mut AnyConnection,
    room_id: i64,
    id: i64,
    user_id: i64,
    now: NaiveDateTime,
) -> Result<bool> {
    messages::get(conn, room_id, id)?;
    let removed = diesel::delete(saved_messages::table.find((user_id, id))).execute(conn)?;
    if removed == 0 {
        diesel::insert_into(saved_messages::table)
            .values((
                saved_messages::user_id.eq(user_id),
                saved_messages::message_id.eq(id),
                saved_messages::saved_at.eq(now),
            ))
            .execute(conn)?;
    }
    Ok(removed == 0)
}

/// Saved messages, and beside them each one's room (slug, name).
pub type SavedList = (Vec<Posted>, Vec<(String, String)>);

/// `user_id`'s saved messages in the rooms they are still in, most recently saved first, at most
/// `limit`, and beside them each one's room (slug, name).
pub fn list(conn: &mut AnyConnection, user_id: i64, limit: i64) -> Result<SavedList> {
    use crate::db::schema::rooms;
    type Row = (Message, (String, Option<NaiveDateTime>), String, String);
    let rows: Vec<Row> = saved_messages::table
        .inner_join(messages_table::table.inner_join(users::table))
        .inner_join(
            memberships::table.on(memberships::room_id
                .eq(messages_table::room_id)
                .and(memberships::user_id.eq(saved_messages::user_id))),
        )
        .inner_join(rooms::table.on(rooms::id.eq(messages_table::room_id)))
        .filter(saved_messages::user_id.eq(user_id))
        .order(saved_messages::saved_at.desc())
        .limit(limit)
        .select((
            Message::as_select(),
            (users::username, users::avatar_at),
            rooms::slug,
            rooms::name,
        ))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|(message, author, slug, name)| (Posted::from((message, author)), (slug, name)))
        .unzip())
}
