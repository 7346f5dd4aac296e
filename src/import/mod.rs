//! Reading other chats' history: a Slack workspace export ([`slack`]), a django-conversate
//! database ([`conversate`]) and Confab's own room export ([`confab`]). Each reader turns its
//! source into one [`History`], read and checked whole before anything is written;
//! `service::imports` then writes it.

pub mod confab;
pub mod conversate;
pub mod markup;
pub mod slack;

use std::collections::BTreeMap;
use std::path::PathBuf;

use chrono::NaiveDateTime;

/// Everything one import brings: people, and rooms with their messages.
#[derive(Debug, Default)]
pub struct History {
    /// Names the export (`slack:T0123`, `conversate:chat.sqlite3`, `confab:https://chat.example.org`):
    /// what was imported from it is recorded under this name, so a second run finds it.
    pub source: String,
    /// The people who appear in it.
    pub people: Vec<Person>,
    /// Its rooms, each with its whole history.
    pub rooms: Vec<RoomHistory>,
    /// Whether message bodies name people as `<@key>` (Slack's form), to be written as `@username`.
    pub mention_keys: bool,
    /// What the reader left out, and why.
    pub skipped: Skipped,
}

/// A person of the source.
#[derive(Debug, Clone)]
pub struct Person {
    /// Their id in the source.
    pub key: String,
    /// The username they had there (cleaned up into a Confab username when they are created).
    pub username: String,
    /// Their address, if the source knows it.
    pub email: Option<String>,
}

/// A room of the source with its history.
#[derive(Debug, Clone)]
pub struct RoomHistory {
    /// Its id in the source.
    pub key: String,
    /// The address it had there (cleaned up into a slug).
    pub slug: String,
    /// Its name.
    pub name: String,
    /// Its topic or purpose.
    pub description: String,
    /// Only its members may see it.
    pub private: bool,
    /// A direct conversation (its members are the people in it).
    pub direct: bool,
    /// When the source archived it.
    pub archived_at: Option<NaiveDateTime>,
    /// Its members (person keys).
    pub members: Vec<String>,
    /// Its messages, in any order (they are written oldest first).
    pub posts: Vec<Post>,
}

/// One message of the source.
#[derive(Debug, Clone)]
pub struct Post {
    /// Its id in the source, unique within its room.
    pub key: String,
    /// Its author (a person key).
    pub author: String,
    /// When it was posted.
    pub at: NaiveDateTime,
    /// Its text, as Markdown.
    pub body: String,
    /// When it was last edited.
    pub edited_at: Option<NaiveDateTime>,
    /// Whether it was deleted (kept as a "message deleted" line).
    pub deleted: bool,
    /// For a reply: the key of its thread's first message.
    pub thread: Option<String>,
    /// Its reactions: an emoji (glyph or shortcode) and who gave it (person keys).
    pub reactions: Vec<(String, Vec<String>)>,
    /// Its file.
    pub file: Option<FileRef>,
}

/// A file a message shared.
#[derive(Debug, Clone)]
pub struct FileRef {
    /// Its name.
    pub name: String,
    /// Where its bytes are on this machine; `None` when the export does not hold them.
    pub path: Option<PathBuf>,
}

/// What was left out, counted by reason.
#[derive(Debug, Default, Clone)]
pub struct Skipped(pub BTreeMap<String, usize>);

impl Skipped {
    /// Counts one more thing left out for `reason`.
    pub fn add(&mut self, reason: impl Into<String>) {
        *self.0.entry(reason.into()).or_default() += 1;
    }

    /// Adds everything `other` counted.
    pub fn merge(&mut self, other: Skipped) {
        for (reason, n) in other.0 {
            *self.0.entry(reason).or_default() += n;
        }
    }
}

/// Why an export cannot be read: one line for the operator.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ReadError(pub String);

impl ReadError {
    /// An error about `what`, with its cause.
    pub fn new(what: impl std::fmt::Display, cause: impl std::fmt::Display) -> ReadError {
        ReadError(format!("{what}: {cause}"))
    }
}

/// Whether a time read from an export is one both databases keep (years 1970 to 9999).
pub fn plausible(at: NaiveDateTime) -> bool {
    use chrono::Datelike;
    (1970..=9999).contains(&at.year())
}

/// A short, stable name for an export that carries no name of its own: a hash of `parts` (ids and
/// times that differ between installations and stay when a file is moved or renamed).
pub fn fingerprint(parts: &[&str]) -> String {
    use sha2::Digest;
    let mut hash = sha2::Sha256::new();
    for part in parts {
        hash.update(part.as_bytes());
        hash.update([0]);
    }
    hex::encode(&hash.finalize()[..8])
}
