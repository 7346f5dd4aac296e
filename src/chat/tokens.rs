//! One-time links: an invitation to set a first password, or a password reset.

use chrono::{Duration, NaiveDateTime};
use diesel::prelude::*;

use super::users::User;
use crate::db::schema::{user_tokens, users};
use crate::db::AnyConnection;
use crate::error::{Error, Result};
use crate::secrets::{hash_token, random_token};

/// A link an admin made (an invitation or a reset): set the password of the account it names.
pub const SET_PASSWORD: &str = "set_password";

/// A link the person asked for with "forgot password": the same power, kept apart so that asking
/// for one never cancels an admin's invitation.
pub const RESET: &str = "reset";

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

/// The active account an unused, unexpired password link belongs to (either kind).
pub fn find(conn: &mut AnyConnection, token: &str, now: NaiveDateTime) -> Result<(i64, User)> {
    user_tokens::table
        .inner_join(users::table)
        .filter(user_tokens::token_hash.eq(hash_token(token)))
        .filter(user_tokens::purpose.eq_any([SET_PASSWORD, RESET]))
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

/// Whether a link of `purpose` was made for the account since `since` and is still unused
/// (so that "forgot password" cannot flood an inbox).
pub fn recently_issued(
    conn: &mut AnyConnection,
    user_id: i64,
    purpose: &str,
    since: NaiveDateTime,
) -> Result<bool> {
    Ok(diesel::select(diesel::dsl::exists(
        user_tokens::table
            .filter(user_tokens::user_id.eq(user_id))
            .filter(user_tokens::purpose.eq(purpose))
            .filter(user_tokens::used_at.is_null())
            .filter(user_tokens::created_at.gt(since)),
    ))
    .get_result(conn)?)
}

/// Makes every unused link of the account worthless (after a password change).
pub fn revoke_unused(conn: &mut AnyConnection, user_id: i64) -> Result<usize> {
    Ok(diesel::delete(
        user_tokens::table
            .filter(user_tokens::user_id.eq(user_id))
            .filter(user_tokens::used_at.is_null()),
    )
    .execute(conn)?)
}

/// Deletes links that were used or expired before `before`; returns how many.
pub fn prune(conn: &mut AnyConnection, before: NaiveDateTime) -> Result<usize> {
    Ok(diesel::delete(
        user_tokens::table.filter(
            user_tokens::expires_at
                .lt(before)
                .or(user_tokens::used_at.lt(before)),
        ),
    )
    .execute(conn)?)
}
