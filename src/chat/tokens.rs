//! One-time links: an invitation to set a first password, or a password reset.

use chrono::{Duration, NaiveDateTime};
use diesel::prelude::*;

use super::users::User;
use super::{hash_token, random_token};
use crate::db::schema::{user_tokens, users};
use crate::db::AnyConnection;
use crate::error::{Error, Result};

/// What a one-time link lets its holder do: set the password of the account it names.
pub const SET_PASSWORD: &str = "set_password";

/// How long a one-time link stays valid.
pub const VALID_FOR_DAYS: i64 = 7;

/// Makes a one-time link token for `user_id`, replacing earlier unused ones of the same purpose.
pub fn issue(
    conn: &mut AnyConnection,
    user_id: i64,
    purpose: &str,
    now: NaiveDateTime,
) -> Result<String> {
    diesel::delete(
        user_tokens::table
            .filter(user_tokens::user_id.eq(user_id))
            .filter(user_tokens::purpose.eq(purpose))
            .filter(user_tokens::used_at.is_null()),
    )
    .execute(conn)?;
    let token = random_token();
    diesel::insert_into(user_tokens::table)
        .values((
            user_tokens::token_hash.eq(hash_token(&token)),
            user_tokens::user_id.eq(user_id),
            user_tokens::purpose.eq(purpose),
            user_tokens::created_at.eq(now),
            user_tokens::expires_at.eq(now + Duration::days(VALID_FOR_DAYS)),
        ))
        .execute(conn)?;
    Ok(token)
}

/// The active account an unused, unexpired token of `purpose` belongs to.
pub fn find(
    conn: &mut AnyConnection,
    token: &str,
    purpose: &str,
    now: NaiveDateTime,
) -> Result<(i64, User)> {
    user_tokens::table
        .inner_join(users::table)
        .filter(user_tokens::token_hash.eq(hash_token(token)))
        .filter(user_tokens::purpose.eq(purpose))
        .filter(user_tokens::used_at.is_null())
        .filter(user_tokens::expires_at.gt(now))
        .filter(users::is_active.eq(true))
        .select((user_tokens::id, User::as_select()))
        .first(conn)
        .optional()?
        .ok_or(Error::NotFound)
}

/// Marks a token used; fails if it was used in the meantime (a double submit).
pub fn consume(conn: &mut AnyConnection, token_id: i64, now: NaiveDateTime) -> Result<()> {
    let n = diesel::update(
        user_tokens::table
            .find(token_id)
            .filter(user_tokens::used_at.is_null()),
    )
    .set(user_tokens::used_at.eq(now))
    .execute(conn)?;
    if n == 0 {
        return Err(Error::NotFound);
    }
    Ok(())
}
