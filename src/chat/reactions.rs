//! Reactions: a member acknowledges a message with an emoji, one row per (message, member,
//! emoji). A toggle moves the room cursor and stamps the message, so it arrives live; reactions
//! never alert anyone.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::messages;
use crate::db::schema::{reactions, users};
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

/// The reactions to messages `ids`: (message, emoji, who), oldest first.
pub fn for_messages(conn: &mut AnyConnection, ids: &[i64]) -> Result<Vec<(i64, String, String)>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    Ok(reactions::table
        .inner_join(users::table)
        .filter(reactions::message_id.eq_any(ids))
        .order((reactions::created_at.asc(), users::username.asc()))
        .select((reactions::message_id, reactions::emoji, users::username))
        .load(conn)?)
}
