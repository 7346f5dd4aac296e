//! Reactions: a member acknowledges a message with an emoji, one row per (message, member,
//! emoji). A toggle moves the room cursor and stamps the message, so it arrives live; reactions
//! never alert anyone.

use std::collections::BTreeSet;

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::sql_types::{Bool, Text};
use diesel::IntoSql;

use super::messages;
use crate::db::schema::{reactions, saved_messages, users};
use crate::db::AnyConnection;
use crate::error::{Error, Result};

/// The reactions offered with one click (any other emoji can be given as `:shortcode:`).
pub const QUICK: [&str; 6] = ["👍", "❤️", "😄", "🎉", "👀", "🙏"];

/// The emoji `input` names: one of the glyphs themselves, or a GitHub shortcode such as `:tada:`
/// (with or without the colons).
pub fn parse(input: &str) -> Result<&'static str> {
    let input = input.trim();
    let shortcode = input.trim_matches(':');
    emojis::get(input)
        .or_else(|| emojis::get_by_shortcode(shortcode))
        .map(|emoji| emoji.as_str())
        .ok_or_else(|| {
            Error::Invalid(format!(
                "“{}” is no emoji Confab knows: pick one, or write a shortcode such as :tada:.",
                input.chars().take(40).collect::<String>()
            ))
        })
}

/// Adds `user_id`'s `emoji` to message `message_id` of room `room_id`, or takes it back if it was
/// there; returns whether it is there now, and the room's new cursor. A deleted message takes no
/// reactions.
pub fn toggle(
    conn: &mut AnyConnection,
    room_id: i64,
    message_id: i64,
    user_id: i64,
    emoji: &str,
    now: NaiveDateTime,
) -> Result<(bool, i64)> {
    let message = messages::get(conn, room_id, message_id)?;
    if message.message.deleted_at.is_some() {
        return Err(Error::Invalid("This message was deleted.".into()));
    }
    let removed =
        diesel::delete(reactions::table.find((message_id, user_id, emoji))).execute(conn)?;
    if removed == 0 {
        diesel::insert_into(reactions::table)
            .values((
                reactions::message_id.eq(message_id),
                reactions::user_id.eq(user_id),
                reactions::emoji.eq(emoji),
                reactions::created_at.eq(now),
            ))
            .execute(conn)?;
    }
    let cursor = messages::touch(conn, room_id, message_id)?;
    Ok((removed == 0, cursor))
}

/// A reaction as pages show it: (message, emoji, who).
pub type Reaction = (i64, String, String);

/// Who saved which message: (message id, username).
pub type SavedBy = BTreeSet<(i64, String)>;

/// The marks beside messages `ids`, in one query: their reactions (oldest first) and who saved
/// which of them, as (message id, username): only `reader` when given, else everyone (a poll
/// answer shared by the members it wakes).
pub fn marks(
    conn: &mut AnyConnection,
    reader: Option<i64>,
    ids: &[i64],
) -> Result<(Vec<Reaction>, SavedBy)> {
    if ids.is_empty() {
        return Ok((Vec::new(), BTreeSet::new()));
    }
    let reacted = reactions::table
        .inner_join(users::table)
        .filter(reactions::message_id.eq_any(ids))
        .select((
            reactions::message_id,
            reactions::emoji,
            users::username,
            reactions::created_at,
        ));
    // A saved message is a row with no emoji (a reaction always has one).
    let (only, anyone) = (reader.unwrap_or(0), reader.is_none());
    let saved = saved_messages::table
        .inner_join(users::table.on(users::id.eq(saved_messages::user_id)))
        .filter(
            saved_messages::user_id
                .eq(only)
                .or(anyone.into_sql::<Bool>()),
        )
        .filter(saved_messages::message_id.eq_any(ids))
        .select((
            saved_messages::message_id,
            "".into_sql::<Text>(),
            users::username,
            saved_messages::saved_at,
        ));
    // `UNION ALL` is not in the multi-backend dialect: the query goes to the backend's connection.
    let both = reacted.union_all(saved);
    let mut rows: Vec<(i64, String, String, NaiveDateTime)> = match conn {
        AnyConnection::Postgresql(pg) => both.load(pg)?,
        AnyConnection::Sqlite(sqlite) => both.load(sqlite)?,
    };
    rows.sort_by(|a, b| (a.3, &a.2).cmp(&(b.3, &b.2)));
    let mut found = Vec::new();
    let mut saved = BTreeSet::new();
    for (id, emoji, who, _) in rows {
        if emoji.is_empty() {
            saved.insert((id, who));
        } else {
            found.push((id, emoji, who));
        }
    }
    Ok((found, saved))
}
