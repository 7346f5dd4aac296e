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

/// The current time in UTC, to the microsecond (what both databases keep).
pub fn now() -> NaiveDateTime {
    Utc::now().naive_utc().trunc_subsecs(6)
}

/// Rows written by one statement of a batch update (read markers, presence): few statements, and
/// each well within what either database parses cheaply.
pub(crate) const BATCH_ROWS: usize = 500;

/// Whether a unique index rejected a write.
pub(crate) fn is_unique_violation(e: &diesel::result::Error) -> bool {
    matches!(
        e,
        diesel::result::Error::DatabaseError(diesel::result::DatabaseErrorKind::UniqueViolation, _)
    )
}
