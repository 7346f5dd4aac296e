//! The room export Confab itself writes (`/rooms/<slug>/export.json`): a room can move from one
//! installation to another with its history, threads and reactions.

use std::path::Path;

use serde::Deserialize;

use super::{FileRef, History, Person, Post, ReadError, RoomHistory};

/// Largest export read (it is read whole, to be checked before anything is written).
const MAX_EXPORT_BYTES: u64 = 1024 * 1024 * 1024;

#[derive(Debug, Deserialize)]
struct Export {
    room: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    description: String,
    #[serde(default)]
    private: bool,
    #[serde(default)]
    from: Option<String>,
    messages: Vec<Message>,
}

#[derive(Debug, Deserialize)]
struct Message {
    id: i64,
    author: String,
    created: chrono::DateTime<chrono::Utc>,
    #[serde(default)]
    edited: bool,
    #[serde(default)]
    deleted: bool,
    #[serde(default)]
    parent_id: Option<i64>,
    #[serde(default)]
    reactions: Vec<Reaction>,
    #[serde(default)]
    body: String,
    #[serde(default)]
    file: Option<SharedFile>,
}

#[derive(Debug, Deserialize)]
struct Reaction {
    emoji: String,
    #[serde(default)]
    by: Vec<String>,
}

#[derive(Debug, Deserialize)]
struct SharedFile {
    name: String,
    #[serde(default)]
    url: String,
}

/// Reads the export at `path`; its files are looked up under `files` as `<dir>/<file id>/<name>`,
/// `<dir>/<file id>-<name>` or `<dir>/<name>` (the id is the one in the file's address).
pub fn read(path: &Path, files: Option<&Path>) -> Result<History, ReadError> {
    let what = path.display().to_string();
    let size = std::fs::metadata(path)
        .map_err(|e| ReadError::new(&what, e))?
        .len();
    if size > MAX_EXPORT_BYTES {
        return Err(ReadError::new(&what, "too large to read"));
    }
    let text = std::fs::read(path).map_err(|e| ReadError::new(&what, e))?;
    let export: Export = serde_json::from_slice(&text)
        .map_err(|e| ReadError::new(&what, format!("is not a Confab room export ({e})")))?;
    let mut people: Vec<String> = export
        .messages
        .iter()
        .flat_map(|m| {
            std::iter::once(m.author.clone()).chain(m.reactions.iter().flat_map(|r| r.by.clone()))
        })
        .collect();
    people.sort();
    people.dedup();
    let mut skipped = super::Skipped::default();
    let posts: Vec<Post> = export
        .messages
        .iter()
        .filter(|m| {
            let ok = super::plausible(m.created.naive_utc());
            if !ok {
                skipped.add("messages with an impossible time");
            }
            ok
        })
        .map(|m| {
            let at = m.created.naive_utc();
            Post {
                key: m.id.to_string(),
                author: m.author.clone(),
                at,
                body: m.body.clone(),
                edited_at: m.edited.then_some(at),
                deleted: m.deleted,
                thread: m.parent_id.map(|p| p.to_string()),
                reactions: m
                    .reactions
                    .iter()
                    .map(|r| (r.emoji.clone(), r.by.clone()))
                    .collect(),
                file: m.file.as_ref().map(|f| FileRef {
                    name: f.name.clone(),
                    path: files.and_then(|dir| {
                        super::slack::find_file(dir, file_id(&f.url).unwrap_or_default(), &f.name)
                    }),
                }),
            }
        })
        .collect();
    // The installation's address and the room's first message name the source (two
    // installations may share an address, such as the default one).
    let first = export
        .messages
        .iter()
        .min_by_key(|m| m.id)
        .map(|m| format!("{}:{}:{}", m.id, m.author, m.created.to_rfc3339()))
        .unwrap_or_default();
    let mut history = History {
        skipped,
        source: format!(
            "confab:{}#{}",
            export.from.as_deref().unwrap_or("export"),
            super::fingerprint(&[&export.room, &first])
        ),
        ..History::default()
    };
    history.people = people
        .iter()
        .map(|name| Person {
            key: name.clone(),
            username: name.clone(),
            email: None,
        })
        .collect();
    history.rooms.push(RoomHistory {
        key: export.room.clone(),
        name: export.name.unwrap_or_else(|| export.room.clone()),
        slug: export.room,
        description: export.description,
        private: export.private,
        direct: false,
        archived_at: None,
        members: people,
        posts,
    });
    Ok(history)
}

/// The attachment id in a file address `…/files/<id>/<name>`.
fn file_id(url: &str) -> Option<&str> {
    let mut parts = url.rsplit('/');
    parts.next()?;
    parts.next()
}
