//! The domain: users, sessions, one-time links, rooms, memberships and messages.
//!
//! Plain synchronous functions over `&mut AnyConnection` with explicit inputs (`now`, the acting
//! user); the caller chooses the transaction. Nothing in here knows about HTTP.

pub mod alert_log;
pub mod alerts;
pub mod attachments;
pub mod avatars;
pub mod direct;
pub mod imports;
pub mod input;
pub mod logins;
pub mod mentions;
pub mod messages;
pub mod outbox;
pub mod reactions;
pub mod rooms;
pub mod saved;
pub mod search;
pub mod sessions;
pub mod tokens;
pub mod users;

use chrono::{NaiveDateTime, SubsecRound, Utc};

use crate::db::AnyConnection;
use crate::error;

/// The current time in UTC, to the microsecond (what both databases keep).
pub fn now() -> NaiveDateTime {
    Utc::now().naive_utc().trunc_subsecs(6)
}

/// Rows written by one statement of a batch update (read markers, presence): few statements, and
/// each well within what either database parses cheaply.
pub(crate) const BATCH_ROWS: usize = 500;

/// Writes a batch update, [`BATCH_ROWS`] rows to a statement. `rows` are the rows' SQL (literals
/// Confab formats itself, never user text); `{values}` in `lock` and `update` stands for their
/// `VALUES` list. On PostgreSQL `lock` runs first and locks the target rows in one order, so that
/// the batch writers of several instances never deadlock.
pub(crate) fn update_from_values(
    conn: &mut AnyConnection,
    rows: &[String],
    lock: &str,
    update: &str,
) -> error::Result<()> {
    use diesel::RunQueryDsl;
    for chunk in rows.chunks(BATCH_ROWS) {
        let values = chunk.join(", ");
        if matches!(conn, AnyConnection::Postgresql(_)) {
            diesel::sql_query(lock.replace("{values}", &values)).execute(conn)?;
        }
        diesel::sql_query(update.replace("{values}", &values)).execute(conn)?;
    }
    Ok(())
}

/// Whether a unique index rejected a write.
pub(crate) fn is_unique_violation(e: &diesel::result::Error) -> bool {
    matches!(
        e,
        diesel::result::Error::DatabaseError(diesel::result::DatabaseErrorKind::UniqueViolation, _)
    )
}
