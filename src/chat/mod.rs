//! The domain: users, sessions, one-time links, rooms, memberships and messages.
//!
//! Plain synchronous functions over `&mut AnyConnection` with explicit inputs (`now`, the acting
//! user); the caller chooses the transaction. Nothing in here knows about HTTP.

pub mod alerts;
pub mod attachments;
pub mod logins;
pub mod messages;
pub mod outbox;
pub mod rooms;
pub mod search;
pub mod sessions;
pub mod text;
pub mod tokens;
pub mod users;

use chrono::{NaiveDateTime, SubsecRound, Utc};
use rand::RngCore;
use sha2::{Digest, Sha256};

/// The current time in UTC, to the microsecond (what both databases keep).
pub fn now() -> NaiveDateTime {
    Utc::now().naive_utc().trunc_subsecs(6)
}

/// 32 random bytes as 64 hex characters: session tokens, one-time links, form tokens.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// How a secret token is stored: its SHA-256, so that a copy of the database opens no sessions.
pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Whether a unique index rejected a write.
pub(crate) fn is_unique_violation(e: &diesel::result::Error) -> bool {
    matches!(
        e,
        diesel::result::Error::DatabaseError(diesel::result::DatabaseErrorKind::UniqueViolation, _)
    )
}
