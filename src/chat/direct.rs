//! Direct conversations: a private room of kind `direct` with exactly the people who started it.
//! Nobody joins or leaves, no admin lists it, and the same people always find the same room.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::rooms::{self, Room};
use super::users::{self, User};
use super::{input, is_unique_violation};
use crate::db::schema::{memberships, rooms as rooms_table, users as users_table};
use crate::db::AnyConnection;
use crate::error::{Error, Result};

/// The room kind of a direct conversation.
pub const KIND: &str = "direct";

/// The key of a conversation among `ids`: sorted, without repeats.
fn key(ids: &[i64]) -> String {
    let mut ids = ids.to_vec();
    ids.sort_unstable();
    ids.dedup();
    ids.iter().map(i64::to_string).collect::<Vec<_>>().join("-")
}

/// The people `names` (usernames, separated by commas or spaces; `@` allowed) besides `starter`,
/// checked: each an active account, at least one, at most `max_members - 1`.
fn others(
    conn: &mut AnyConnection,
    starter: &User,
    names: &str,
    max_members: usize,
) -> Result<Vec<User>> {
    let mut found: Vec<User> = Vec::new();
    for name in names
        .split(|c: char| c == ',' || c.is_whitespace())
        .map(|n| n.trim().trim_start_matches('@'))
        .filter(|n| !n.is_empty())
    {
        let unknown = || {
            Error::Invalid(format!(
                "There is no one called “{}” here.",
                name.chars().take(40).collect::<String>()
            ))
        };
        let name = input::username(name).map_err(|_| unknown())?;
        let user = users::find_by_username(conn, &name)?
            .filter(|u| u.is_active)
            .ok_or_else(unknown)?;
        if user.id != starter.id && !found.iter().any(|u| u.id == user.id) {
            found.push(user);
        }
    }
    if found.is_empty() {
        return Err(Error::Invalid("Name at least one other person.".into()));
    }
    if found.len() + 1 > max_members {
        return Err(Error::Invalid(format!(
            "A direct conversation holds at most {max_members} people, you included."
        )));
    }
    Ok(found)
}

/// The direct conversation between `starter` and the people `names`: the existing one for exactly
/// these people, or a new one (call it in a transaction).
pub fn open(
    conn: &mut AnyConnection,
    starter: &User,
    names: &str,
    max_members: usize,
    now: NaiveDateTime,
) -> Result<Room> {
    let others = others(conn, starter, names, max_members)?;
    let mut ids: Vec<i64> = others.iter().map(|u| u.id).collect();
    ids.push(starter.id);
    if let Some(room) = by_key(conn, &key(&ids))? {
        return Ok(room);
    }
    let mut names: Vec<&str> = others.iter().map(|u| u.username.as_str()).collect();
    names.push(&starter.username);
    create(conn, &ids, &names, now)
}

/// The direct conversation of exactly the people `ids`, if there is one.
pub fn find(conn: &mut AnyConnection, ids: &[i64]) -> Result<Option<Room>> {
    by_key(conn, &key(ids))
}

/// Starts the direct conversation of the people `ids` (usernames `names`), all of them members;
/// one that exists already is a conflict.
pub fn create(
    conn: &mut AnyConnection,
    ids: &[i64],
    names: &[&str],
    now: NaiveDateTime,
) -> Result<Room> {
    let mut names = names.to_vec();
    names.sort_unstable();
    names.dedup();
    let slug = format!(
        "dm-{}",
        crate::secrets::random_token()
            .to_lowercase()
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .take(12)
            .collect::<String>()
    );
    let id: i64 = diesel::insert_into(rooms_table::table)
        .values((
            rooms_table::slug.eq(&slug),
            rooms_table::name.eq(names.join(", ")),
            rooms_table::description.eq(""),
            rooms_table::is_private.eq(true),
            rooms_table::created_at.eq(now),
            rooms_table::kind.eq(KIND),
            rooms_table::direct_key.eq(key(ids)),
        ))
        .returning(rooms_table::id)
        .get_result(conn)
        .map_err(|e| {
            if is_unique_violation(&e) {
                Error::Conflict("That conversation was just started: open it again.".into())
            } else {
                e.into()
            }
        })?;
    for &user_id in ids {
        rooms::add_member(conn, id, user_id, now)?;
    }
    Ok(rooms_table::table
        .find(id)
        .select(Room::as_select())
        .first(conn)?)
}

fn by_key(conn: &mut AnyConnection, key: &str) -> Result<Option<Room>> {
    Ok(rooms_table::table
        .filter(rooms_table::direct_key.eq(key))
        .select(Room::as_select())
        .first(conn)
        .optional()?)
}

/// The slug of the direct conversation of exactly `me` and the user `username` (for `in:@name`).
pub fn between(conn: &mut AnyConnection, me: i64, username: &str) -> Result<Option<String>> {
    let Some(them) = users_table::table
        .filter(users_table::username.eq(username.to_lowercase()))
        .select(users_table::id)
        .first::<i64>(conn)
        .optional()?
    else {
        return Ok(None);
    };
    let room = by_key(conn, &key(&[me, them]))?;
    // Still a member (nobody leaves, but an account may have been removed from it by hand).
    Ok(match room {
        Some(room) => {
            let member: bool =
                diesel::select(diesel::dsl::exists(memberships::table.find((room.id, me))))
                    .get_result(conn)?;
            member.then_some(room.slug)
        }
        None => None,
    })
}
