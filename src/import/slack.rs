//! A Slack workspace export: a zip of `users.json`, `channels.json` (and, in exports that include
//! them, `groups.json` for private channels, `dms.json` and `mpims.json` for direct messages), and
//! one folder per conversation of daily files (`2024-05-01.json`), each an array of messages.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use chrono::NaiveDateTime;
use serde::Deserialize;

use super::{markup, FileRef, History, Person, Post, ReadError, RoomHistory, Skipped};

/// Largest JSON file of an export read into memory (a day of one channel is far smaller).
const MAX_JSON_BYTES: u64 = 256 * 1024 * 1024;

#[derive(Debug, Deserialize)]
struct User {
    id: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    team_id: Option<String>,
    #[serde(default)]
    profile: Profile,
}

#[derive(Debug, Default, Deserialize)]
struct Profile {
    #[serde(default)]
    email: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Conversation {
    id: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    is_archived: bool,
    #[serde(default)]
    members: Vec<String>,
    #[serde(default)]
    topic: Option<Text>,
    #[serde(default)]
    purpose: Option<Text>,
}

#[derive(Debug, Deserialize)]
struct Text {
    #[serde(default)]
    value: String,
}

#[derive(Debug, Deserialize)]
struct Message {
    #[serde(default)]
    subtype: Option<String>,
    #[serde(default)]
    user: Option<String>,
    #[serde(default)]
    text: String,
    ts: String,
    #[serde(default)]
    thread_ts: Option<String>,
    #[serde(default)]
    edited: Option<Edited>,
    #[serde(default)]
    reactions: Vec<Reaction>,
    #[serde(default)]
    files: Vec<SharedFile>,
}

#[derive(Debug, Deserialize)]
struct Edited {
    ts: String,
}

#[derive(Debug, Deserialize)]
struct Reaction {
    name: String,
    #[serde(default)]
    users: Vec<String>,
}

#[derive(Debug, Deserialize)]
struct SharedFile {
    #[serde(default)]
    id: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    title: Option<String>,
}

/// The four kinds of conversation an export may list: (file, private, direct).
const LISTS: [(&str, bool, bool); 4] = [
    ("channels.json", false, false),
    ("groups.json", true, false),
    ("mpims.json", true, true),
    ("dms.json", true, true),
];

/// Reads the export at `zip_path` whole (checking every file before anything is written); shared
/// files are looked up under `files` (see [`find_file`]).
pub fn read(zip_path: &Path, files: Option<&Path>) -> Result<History, ReadError> {
    let what = zip_path.display().to_string();
    let file = File::open(zip_path).map_err(|e| ReadError::new(&what, e))?;
    let mut zip = zip::ZipArchive::new(file)
        .map_err(|e| ReadError::new(&what, format!("not a readable zip archive ({e})")))?;
    let users: Vec<User> = json(&mut zip, "users.json")?.ok_or_else(|| {
        ReadError::new(
            &what,
            "it has no users.json: is it a Slack workspace export?",
        )
    })?;
    // The workspace's id names the source; an export without one is known by its people.
    let team = users
        .iter()
        .find_map(|u| u.team_id.clone())
        .unwrap_or_else(|| {
            let mut ids: Vec<&str> = users.iter().map(|u| u.id.as_str()).collect();
            ids.sort_unstable();
            super::fingerprint(&ids)
        });
    let mut history = History {
        source: format!("slack:{team}"),
        mention_keys: true,
        ..History::default()
    };
    let names: HashMap<String, String> = users
        .iter()
        .map(|u| (u.id.clone(), u.name.clone()))
        .collect();
    for user in &users {
        history.people.push(Person {
            key: user.id.clone(),
            username: if user.name.is_empty() {
                user.id.clone()
            } else {
                user.name.clone()
            },
            email: user.profile.email.clone().filter(|e| !e.is_empty()),
        });
    }
    let entries: Vec<String> = zip.file_names().map(str::to_string).collect();
    let mut listed_any = false;
    for (list, private, direct) in LISTS {
        let Some(conversations) = json::<Vec<Conversation>>(&mut zip, list)? else {
            continue;
        };
        listed_any = true;
        for conversation in conversations {
            let folder = match (&conversation.name, direct && list == "dms.json") {
                (Some(name), false) => name.clone(),
                _ => conversation.id.clone(),
            };
            let mut days: Vec<&String> = entries
                .iter()
                .filter(|e| {
                    e.strip_prefix(&format!("{folder}/"))
                        .is_some_and(|day| day.ends_with(".json") && !day.contains('/'))
                })
                .collect();
            days.sort();
            let mut messages = Vec::new();
            for day in days {
                let day_messages: Vec<Message> = json(&mut zip, day)?.unwrap_or_default();
                messages.extend(day_messages);
            }
            let name = if direct {
                let mut people: Vec<&str> = conversation
                    .members
                    .iter()
                    .map(|m| names.get(m).map_or(m.as_str(), String::as_str))
                    .collect();
                people.sort_unstable();
                people.join(", ")
            } else {
                conversation.name.clone().unwrap_or(conversation.id.clone())
            };
            let room = room(
                &conversation,
                RoomKind {
                    folder,
                    name,
                    private,
                    direct,
                },
                messages,
                files,
                &mut history.skipped,
            );
            history.rooms.push(room);
        }
    }
    if !listed_any {
        return Err(ReadError::new(
            &what,
            "it lists no conversations (no channels.json, groups.json, dms.json or mpims.json)",
        ));
    }
    // Authors the export's user list does not name still wrote their messages.
    let known: HashSet<String> = history.people.iter().map(|p| p.key.clone()).collect();
    let mut unknown: Vec<String> = history
        .rooms
        .iter()
        .flat_map(|r| r.posts.iter().map(|p| p.author.clone()))
        .filter(|a| !known.contains(a))
        .collect();
    unknown.sort();
    unknown.dedup();
    history.people.extend(unknown.into_iter().map(|key| Person {
        username: key.clone(),
        key,
        email: None,
    }));
    Ok(history)
}

/// What the conversation lists say of a room besides its own entry.
struct RoomKind {
    folder: String,
    name: String,
    private: bool,
    direct: bool,
}

fn room(
    conversation: &Conversation,
    kind: RoomKind,
    messages: Vec<Message>,
    files: Option<&Path>,
    skipped: &mut Skipped,
) -> RoomHistory {
    let key = |ts: &str| ts.to_string();
    let mut posts = Vec::new();
    for message in messages {
        match message.subtype.as_deref() {
            None | Some("thread_broadcast" | "file_share" | "me_message" | "tombstone") => {}
            Some(
                "channel_join" | "channel_leave" | "group_join" | "group_leave" | "channel_topic"
                | "channel_purpose" | "channel_name" | "group_topic" | "group_purpose"
                | "group_name" | "channel_archive" | "channel_unarchive" | "pinned_item",
            ) => {
                skipped.add("notices (joins, leaves, topic changes)");
                continue;
            }
            Some("bot_message") => {
                skipped.add("bot messages");
                continue;
            }
            Some(_) => {
                skipped.add("messages of other kinds");
                continue;
            }
        }
        let (Some(author), Some(at)) = (message.user.clone(), ts(&message.ts)) else {
            skipped.add("messages without an author or time");
            continue;
        };
        let deleted = message.subtype.as_deref() == Some("tombstone");
        let body = markup::to_markdown(&message.text);
        if body.trim().is_empty() && message.files.is_empty() && !deleted {
            skipped.add("empty messages");
            continue;
        }
        let thread = message
            .thread_ts
            .as_deref()
            .filter(|t| *t != message.ts)
            .map(key);
        let reactions = message
            .reactions
            .iter()
            .map(|r| {
                // A skin tone is written `thumbsup::skin-tone-2`: the emoji is the first part.
                let name = r.name.split("::").next().unwrap_or(&r.name).to_string();
                (name, r.users.clone())
            })
            .collect();
        let mut shared = message.files.iter().map(|f| FileRef {
            name: file_name(f),
            path: files.and_then(|dir| find_file(dir, &f.id, &file_name(f))),
        });
        let first = Post {
            key: key(&message.ts),
            author: author.clone(),
            at,
            body,
            edited_at: message.edited.as_ref().and_then(|e| ts(&e.ts)),
            deleted,
            thread: thread.clone(),
            reactions,
            file: shared.next(),
        };
        // Further files of the same message follow it, each a message of its own.
        let more: Vec<Post> = shared
            .enumerate()
            .map(|(i, file)| Post {
                key: format!("{}#{}", key(&message.ts), i + 1),
                author: author.clone(),
                at: at
                    .checked_add_signed(chrono::Duration::microseconds(i as i64 + 1))
                    .unwrap_or(at),
                body: String::new(),
                edited_at: None,
                deleted: false,
                thread: thread.clone(),
                reactions: Vec::new(),
                file: Some(file),
            })
            .collect();
        posts.push(first);
        posts.extend(more);
    }
    let description = conversation
        .topic
        .iter()
        .chain(conversation.purpose.iter())
        .map(|t| t.value.trim())
        .find(|v| !v.is_empty())
        .unwrap_or_default()
        .to_string();
    let archived_at = conversation
        .is_archived
        .then(|| posts.iter().map(|p| p.at).max())
        .map(|last| last.unwrap_or_else(crate::chat::now));
    RoomHistory {
        key: conversation.id.clone(),
        slug: if kind.direct {
            format!("dm-{}", conversation.id.to_lowercase())
        } else {
            kind.folder
        },
        name: kind.name,
        description,
        private: kind.private,
        direct: kind.direct,
        archived_at,
        members: conversation.members.clone(),
        posts,
    }
}

fn file_name(file: &SharedFile) -> String {
    file.name
        .clone()
        .or_else(|| file.title.clone())
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| format!("{}.bin", file.id))
}

/// Where a shared file's bytes are in the folder given with `--files`: `<dir>/<file id>/<name>`
/// (as Slack's own download tools lay them out), `<dir>/<file id>-<name>`, or `<dir>/<name>`.
pub fn find_file(dir: &Path, id: &str, name: &str) -> Option<PathBuf> {
    let safe = |part: &str| !part.is_empty() && !part.contains(['/', '\\']) && part != "..";
    if !safe(name) {
        return None;
    }
    let mut candidates = Vec::new();
    if safe(id) {
        candidates.push(dir.join(id).join(name));
        candidates.push(dir.join(format!("{id}-{name}")));
    }
    candidates.push(dir.join(name));
    candidates.into_iter().find(|p| p.is_file())
}

/// Slack's `ts` (`"1700000000.000100"`: seconds and microseconds) as a time in UTC, if plausible.
pub fn ts(text: &str) -> Option<NaiveDateTime> {
    let (seconds, fraction) = text.split_once('.').unwrap_or((text, "0"));
    if fraction.is_empty() || !fraction.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let seconds: i64 = seconds.parse().ok()?;
    let digits: String = fraction
        .chars()
        .chain(std::iter::repeat('0'))
        .take(6)
        .collect();
    let micros: u32 = digits.parse().ok()?;
    let at = chrono::DateTime::from_timestamp(seconds, micros * 1000)?.naive_utc();
    super::plausible(at).then_some(at)
}

/// Parses the archive's file `name` as JSON, if it is there.
fn json<T: serde::de::DeserializeOwned>(
    zip: &mut zip::ZipArchive<File>,
    name: &str,
) -> Result<Option<T>, ReadError> {
    let mut entry = match zip.by_name(name) {
        Ok(entry) => entry,
        Err(zip::result::ZipError::FileNotFound) => return Ok(None),
        Err(e) => return Err(ReadError::new(name, e)),
    };
    if entry.size() > MAX_JSON_BYTES {
        return Err(ReadError::new(name, "too large to be a Slack export file"));
    }
    let mut text = Vec::with_capacity(entry.size() as usize);
    entry
        .by_ref()
        .take(MAX_JSON_BYTES)
        .read_to_end(&mut text)
        .map_err(|e| ReadError::new(name, format!("cannot be read ({e})")))?;
    serde_json::from_slice(&text)
        .map(Some)
        .map_err(|e| ReadError::new(name, format!("is not valid export JSON ({e})")))
}

#[cfg(test)]
mod tests {
    use super::ts;

    #[test]
    fn slack_times_keep_their_microseconds() {
        let at = ts("1700000000.000100").expect("a time");
        assert_eq!(at.to_string(), "2023-11-14 22:13:20.000100");
        assert_eq!(
            ts("1700000000").map(|t| t.to_string()).as_deref(),
            Some("2023-11-14 22:13:20")
        );
        assert!(ts("yesterday").is_none());
        assert!(
            ts("8210266876799.999999").is_none(),
            "beyond what databases keep"
        );
        assert!(ts("1700000000.-5").is_none());
    }
}
