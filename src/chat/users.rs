//! People: accounts, passwords, time zones, deactivation and the failed-login counter.

use argon2::password_hash::{
    rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString,
};
use argon2::Argon2;
use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde::Serialize;

use super::{input, is_unique_violation};
use crate::db::schema::{sessions, users};
use crate::db::AnyConnection;
use crate::error::{Error, Result};

/// An account.
#[derive(Debug, Clone, Queryable, Selectable, Serialize)]
#[diesel(table_name = users)]
pub struct User {
    /// Database id.
    pub id: i64,
    /// Unique, lower case.
    pub username: String,
    /// Where mail goes.
    pub email: String,
    /// argon2id PHC string; `None` until the person has set one through a one-time link.
    #[serde(skip)]
    pub password_hash: Option<String>,
    /// May use the admin pages.
    pub is_admin: bool,
    /// Deactivated accounts cannot log in.
    pub is_active: bool,
    /// IANA name, e.g. `Europe/Paris`; times are shown in it.
    pub time_zone: String,
    /// When the account was made.
    pub created_at: NaiveDateTime,
    /// When a page of theirs was last open (written in batches).
    pub last_seen_at: Option<NaiveDateTime>,
    /// When they last used a page (typed, scrolled, clicked).
    pub last_active_at: Option<NaiveDateTime>,
    /// Email alerts: `on`, `digest` or `off`.
    pub alert_mode: String,
    /// The hour of their local day a digest goes out.
    pub digest_hour: i32,
    /// When the last alert mail was planned for them.
    pub last_alert_at: Option<NaiveDateTime>,
    /// When their own picture last changed; `None` shows the generated one.
    pub avatar_at: Option<NaiveDateTime>,
    /// Raised to revoke every reply-by-email address given out to them so far.
    #[serde(skip)]
    pub reply_epoch: i32,
}

impl User {
    /// The user's time zone, UTC if the stored name is unknown.
    pub fn tz(&self) -> chrono_tz::Tz {
        self.time_zone.parse().unwrap_or(chrono_tz::UTC)
    }
}

/// Hashes a password with argon2id (CPU-heavy: call it off the async runtime).
pub fn hash_password(password: &str) -> Result<String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| Error::internal("hashing a password", e.to_string()))
}

/// Checks a password against a stored hash; `None` (no password set) never matches but costs the
/// same time, so that timing does not tell whether an account exists.
pub fn verify_password(hash: Option<&str>, password: &str) -> bool {
    const DUMMY: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$W9j0m3BUd8eQJ5qYxJpE0uD6mTgkPZxw9gkX3GGXrqs";
    let (hash, real) = match hash {
        Some(hash) => (hash, true),
        None => (DUMMY, false),
    };
    let Ok(parsed) = PasswordHash::new(hash) else {
        return false;
    };
    let ok = Argon2::default()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok();
    ok && real
}

/// Creates an account and returns its id. The username and email must already be validated.
pub fn create(
    conn: &mut AnyConnection,
    username: &str,
    email: &str,
    password_hash: Option<&str>,
    is_admin: bool,
    now: NaiveDateTime,
) -> Result<i64> {
    diesel::insert_into(users::table)
        .values((
            users::username.eq(username),
            users::email.eq(email),
            users::password_hash.eq(password_hash),
            users::is_admin.eq(is_admin),
            users::created_at.eq(now),
        ))
        .returning(users::id)
        .get_result(conn)
        .map_err(|e| {
            if is_unique_violation(&e) {
                Error::Conflict(format!("The username `{username}` is taken."))
            } else {
                e.into()
            }
        })
}

/// How many accounts exist.
pub fn count(conn: &mut AnyConnection) -> Result<i64> {
    Ok(users::table.count().get_result(conn)?)
}

/// One account by id.
pub fn find(conn: &mut AnyConnection, id: i64) -> Result<User> {
    Ok(users::table
        .find(id)
        .select(User::as_select())
        .first(conn)?)
}

/// One account by username (any case).
pub fn find_by_username(conn: &mut AnyConnection, username: &str) -> Result<Option<User>> {
    Ok(users::table
        .filter(users::username.eq(username.trim().to_lowercase()))
        .select(User::as_select())
        .first(conn)
        .optional()?)
}

/// The active account with this username or email address, if exactly one has it.
pub fn find_by_name_or_email(conn: &mut AnyConnection, who: &str) -> Result<Option<User>> {
    let who = who.trim();
    let found: Vec<User> = users::table
        .filter(users::is_active.eq(true))
        .filter(
            users::username
                .eq(who.to_lowercase())
                .or(users::email.eq(who)),
        )
        .select(User::as_select())
        .limit(2)
        .load(conn)?;
    Ok(if found.len() == 1 {
        found.into_iter().next()
    } else {
        None
    })
}

/// Every account, by name.
pub fn list(conn: &mut AnyConnection) -> Result<Vec<User>> {
    Ok(users::table
        .order(users::username)
        .select(User::as_select())
        .load(conn)?)
}

/// Sets a new password hash.
pub fn set_password(conn: &mut AnyConnection, id: i64, hash: &str) -> Result<()> {
    let n = diesel::update(users::table.find(id))
        .set(users::password_hash.eq(hash))
        .execute(conn)?;
    if n == 0 {
        return Err(Error::NotFound);
    }
    Ok(())
}

/// Activates or deactivates an account; deactivating ends all its sessions.
pub fn set_active(conn: &mut AnyConnection, id: i64, active: bool) -> Result<()> {
    let n = diesel::update(users::table.find(id))
        .set(users::is_active.eq(active))
        .execute(conn)?;
    if n == 0 {
        return Err(Error::NotFound);
    }
    if !active {
        diesel::delete(sessions::table.filter(sessions::user_id.eq(id))).execute(conn)?;
    }
    Ok(())
}

/// Sets the time zone times are shown in; it must be an IANA name such as `Europe/Paris`.
pub fn set_time_zone(conn: &mut AnyConnection, id: i64, time_zone: &str) -> Result<()> {
    let tz: chrono_tz::Tz = time_zone.trim().parse().map_err(|_| {
        Error::Invalid(format!(
            "`{}` is not a time zone Confab knows.",
            input::clean(time_zone)
        ))
    })?;
    diesel::update(users::table.find(id))
        .set(users::time_zone.eq(tz.name()))
        .execute(conn)?;
    Ok(())
}

/// Records when people were last seen and last active (a batch from the presence tracker), as
/// (user id, last seen, last active), times only forward: a batch update
/// ([`super::update_from_values`]).
pub fn record_presence(
    conn: &mut AnyConnection,
    seen: &[(i64, NaiveDateTime, Option<NaiveDateTime>)],
) -> Result<()> {
    let postgres = matches!(conn, AnyConnection::Postgresql(_));
    // Our own timestamps as literals, in the text form Diesel stores them in on SQLite.
    let time = |t: &NaiveDateTime| {
        let text = t.format("%F %T%.f");
        if postgres {
            format!("TIMESTAMP '{text}'")
        } else {
            format!("'{text}'")
        }
    };
    let rows: Vec<String> = seen
        .iter()
        .map(|(id, seen_at, active_at)| {
            let active = active_at
                .as_ref()
                .map_or_else(|| "CAST(NULL AS TIMESTAMP)".to_string(), time);
            format!("({id}, {}, {active})", time(seen_at))
        })
        .collect();
    super::update_from_values(
        conn,
        &rows,
        "SELECT 1 FROM users JOIN (VALUES {values}) AS v ON users.id = v.column1 \
         ORDER BY users.id FOR NO KEY UPDATE OF users",
        "UPDATE users SET \
         last_seen_at = CASE WHEN last_seen_at IS NULL OR last_seen_at < v.column2 \
         THEN v.column2 ELSE last_seen_at END, \
         last_active_at = CASE WHEN v.column3 IS NOT NULL \
         AND (last_active_at IS NULL OR last_active_at < v.column3) \
         THEN v.column3 ELSE last_active_at END \
         FROM (VALUES {values}) AS v WHERE users.id = v.column1",
    )
}

/// Revokes every reply-by-email address given out to a member so far; mail sent from now on
/// carries new ones.
pub fn revoke_reply_addresses(conn: &mut AnyConnection, id: i64) -> Result<()> {
    diesel::update(users::table.find(id))
        .set(users::reply_epoch.eq(users::reply_epoch + 1))
        .execute(conn)?;
    Ok(())
}
