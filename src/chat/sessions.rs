//! Server-side login sessions: the cookie carries a random token, the database its hash.

use chrono::{Duration, NaiveDateTime};
use diesel::prelude::*;
use serde::Serialize;

use super::users::User;
use crate::db::schema::{sessions, users};
use crate::db::AnyConnection;
use crate::error::{Error, Result};
use crate::secrets::{hash_token, random_token};

/// One logged-in browser.
#[derive(Debug, Clone, Queryable, Selectable, Serialize)]
#[diesel(table_name = sessions)]
pub struct Session {
    /// Database id (shown on the settings page, used to revoke).
    pub id: i64,
    /// Whose session.
    pub user_id: i64,
    /// The browser that logged in, as it named itself.
    pub user_agent: String,
    /// When the person logged in.
    pub created_at: NaiveDateTime,
    /// When the session was last used (to within a few minutes).
    pub last_seen_at: NaiveDateTime,
}

/// How stale `last_seen_at` may get before a request refreshes it; keeps reads from writing.
const TOUCH_AFTER_MINUTES: i64 = 5;

/// Starts a session and returns the token for the cookie.
pub fn create(
    conn: &mut AnyConnection,
    user_id: i64,
    user_agent: &str,
    now: NaiveDateTime,
) -> Result<String> {
    let token = random_token();
    let user_agent: String = super::input::clean(user_agent).chars().take(200).collect();
    diesel::insert_into(sessions::table)
        .values((
            sessions::token_hash.eq(hash_token(&token)),
            sessions::user_id.eq(user_id),
            sessions::user_agent.eq(user_agent),
            sessions::created_at.eq(now),
            sessions::last_seen_at.eq(now),
        ))
        .execute(conn)?;
    Ok(token)
}

/// The session and active user a token belongs to, if the session was used within `max_idle`.
pub fn authenticate(
    conn: &mut AnyConnection,
    token: &str,
    now: NaiveDateTime,
    max_idle: Duration,
) -> Result<Option<(Session, User)>> {
    let found: Option<(Session, User)> = sessions::table
        .inner_join(users::table)
        .filter(sessions::token_hash.eq(hash_token(token)))
        .filter(users::is_active.eq(true))
        .filter(sessions::last_seen_at.gt(now - max_idle))
        .select((Session::as_select(), User::as_select()))
        .first(conn)
        .optional()?;
    if let Some((session, _)) = &found {
        if session.last_seen_at < now - Duration::minutes(TOUCH_AFTER_MINUTES) {
            diesel::update(sessions::table.find(session.id))
                .set(sessions::last_seen_at.eq(now))
                .execute(conn)?;
        }
    }
    Ok(found)
}

/// A user's sessions, most recently used first.
pub fn list(conn: &mut AnyConnection, user_id: i64) -> Result<Vec<Session>> {
    Ok(sessions::table
        .filter(sessions::user_id.eq(user_id))
        .order(sessions::last_seen_at.desc())
        .select(Session::as_select())
        .load(conn)?)
}

/// Ends one of a user's sessions; someone else's session id is "not found".
pub fn revoke(conn: &mut AnyConnection, user_id: i64, session_id: i64) -> Result<()> {
    let n = diesel::delete(
        sessions::table
            .find(session_id)
            .filter(sessions::user_id.eq(user_id)),
    )
    .execute(conn)?;
    if n == 0 {
        return Err(Error::NotFound);
    }
    Ok(())
}

/// Ends all of a user's sessions but `except`; returns how many ended.
pub fn revoke_all(conn: &mut AnyConnection, user_id: i64, except: Option<i64>) -> Result<usize> {
    let mut query = diesel::delete(sessions::table)
        .filter(sessions::user_id.eq(user_id))
        .into_boxed();
    if let Some(keep) = except {
        query = query.filter(sessions::id.ne(keep));
    }
    Ok(query.execute(conn)?)
}

/// Ends the session a token belongs to (logout); an unknown token is fine.
pub fn end(conn: &mut AnyConnection, token: &str) -> Result<()> {
    diesel::delete(sessions::table.filter(sessions::token_hash.eq(hash_token(token))))
        .execute(conn)?;
    Ok(())
}

/// Deletes sessions unused since `idle_since` (they no longer log anyone in); returns how many.
pub fn prune(conn: &mut AnyConnection, idle_since: NaiveDateTime) -> Result<usize> {
    Ok(
        diesel::delete(sessions::table.filter(sessions::last_seen_at.lt(idle_since)))
            .execute(conn)?,
    )
}
