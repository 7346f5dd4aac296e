//! Writing an imported [`History`] into Confab: the people first (one transaction), then each room
//! in one transaction of its own, its files copied in beforehand and moved into place once it has
//! committed. Everything written is recorded under the history's source in `imported`, so a second
//! run writes nothing twice, and nothing that was not imported is ever touched: a room whose
//! address is taken gets another one.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use chrono::NaiveDateTime;

use super::uploads::{self, Received};
use super::Services;
use crate::chat::attachments::{self, NewFile};
use crate::chat::imports::{self, OldMessage};
use crate::chat::rooms::{self, RoomFields};
use crate::chat::{self, direct, input, outbox, reactions, tokens, users};
use crate::db::AnyConnection;
use crate::error::{Error, Result};
use crate::import::{History, Person, Post, RoomHistory, Skipped};

/// Whether people the import creates are invited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Invite {
    /// They are created inactive, without a password (an admin can invite them later).
    No,
    /// They are active, and their one-time "set your password" links are in the summary.
    Print,
    /// They are active, and each is mailed an invitation.
    Mail,
}

/// How to import.
#[derive(Debug, Clone)]
pub struct Options {
    /// Source people (their key or username there) to map to existing accounts (a username or
    /// an address here).
    pub map_users: HashMap<String, String>,
    /// Whether new people are invited.
    pub invite: Invite,
}

/// What an import did.
#[derive(Debug, Default)]
pub struct Summary {
    /// Accounts created.
    pub users_created: usize,
    /// People found here already (by address or by `--map-users`).
    pub users_mapped: usize,
    /// The invitation links made: (username, link) when printed, else (username, None).
    pub invited: Vec<(String, Option<String>)>,
    /// Rooms created.
    pub rooms_created: usize,
    /// Rooms an earlier run created that got more messages now.
    pub rooms_extended: usize,
    /// Messages written.
    pub messages: usize,
    /// Messages an earlier run wrote.
    pub already: usize,
    /// Files copied in.
    pub files: usize,
    /// Reactions given.
    pub reactions: usize,
    /// What was left out, and why.
    pub skipped: Skipped,
    /// What the operator should know: map lines that named nobody or came too late.
    pub warnings: Vec<String>,
}

/// One person of the import as they are here.
#[derive(Debug, Clone)]
struct Here {
    id: i64,
    username: String,
    /// Their username in the source, when it differs (mentions of it are rewritten).
    was: Option<String>,
}

/// The people of the import: source key → who they are here.
type People = HashMap<String, Here>;

/// Imports `history`; `done` counts the messages handled so far (for a progress bar). A failure
/// part way says what had been imported by then (that part stays: run the import again to go on).
pub async fn run(
    svc: &Services,
    history: History,
    options: &Options,
    done: Arc<AtomicUsize>,
) -> Result<Summary> {
    let mut summary = Summary {
        skipped: history.skipped.clone(),
        ..Summary::default()
    };
    for named in options.map_users.keys() {
        if !history
            .people
            .iter()
            .any(|p| &p.key == named || &p.username == named)
        {
            summary.warnings.push(format!(
                "the user map names `{named}`, who is not in the export"
            ));
        }
    }
    let source = history.source.clone();
    let people = {
        let (source, persons, options) = (source.clone(), history.people.clone(), options.clone());
        let (mail, public_url) = (svc.mail.clone(), svc.settings.public_url.clone());
        let written = svc
            .db
            .write(move |conn| {
                let mut writer = PeopleWriter {
                    conn,
                    source: &source,
                    options: &options,
                    mail: &mail,
                    public_url: &public_url,
                    now: chat::now(),
                    written: PeopleWritten::default(),
                };
                writer.write_all(&persons)?;
                Ok::<_, Error>(writer.written)
            })
            .await?;
        summary.users_created = written.created;
        summary.users_mapped = written.mapped;
        summary.invited = written.invited;
        summary.warnings.extend(written.warnings);
        Arc::new(written.people)
    };
    let mut seen = HashSet::new();
    for room in history.rooms {
        if !seen.insert(room.key.clone()) {
            summary.skipped.add("rooms listed twice (the first kept)");
            continue;
        }
        let imported = import_room(
            svc,
            &source,
            room,
            &people,
            history.mention_keys,
            &mut summary,
            &done,
        )
        .await;
        if let Err(e) = imported {
            return Err(partly(e, &summary));
        }
    }
    Ok(summary)
}

/// `e`, saying what was imported before it.
fn partly(e: Error, summary: &Summary) -> Error {
    if summary.messages == 0 && summary.rooms_created == 0 {
        return e;
    }
    let done = format!(
        "after importing {} messages into {} new and {} existing rooms (run the same import again to go on)",
        summary.messages, summary.rooms_created, summary.rooms_extended
    );
    match e {
        Error::Invalid(text) => Error::Invalid(format!("{text} ({done})")),
        Error::Conflict(text) => Error::Conflict(format!("{text} ({done})")),
        other => Error::Invalid(format!("{} ({done})", other.detail())),
    }
}

/// What writing the people did.
#[derive(Default)]
struct PeopleWritten {
    people: People,
    created: usize,
    mapped: usize,
    invited: Vec<(String, Option<String>)>,
    warnings: Vec<String>,
}

/// Writes the people of an import, in one transaction.
struct PeopleWriter<'a> {
    conn: &'a mut AnyConnection,
    source: &'a str,
    options: &'a Options,
    mail: &'a crate::mail::Mail,
    public_url: &'a str,
    now: NaiveDateTime,
    written: PeopleWritten,
}

impl PeopleWriter<'_> {
    fn write_all(&mut self, persons: &[Person]) -> Result<()> {
        let known = imports::known(self.conn, self.source, "user")?;
        for person in persons {
            if self.written.people.contains_key(&person.key) {
                continue;
            }
            let user = match known.get(&person.key) {
                Some(&id) => {
                    if self.mapped(person).is_some() {
                        self.written.warnings.push(format!(
                            "the user map line for `{}` came after an earlier import had placed them; it was not applied",
                            person.username
                        ));
                    }
                    users::find(self.conn, id)?
                }
                None => {
                    let user = match self.existing(person)? {
                        Some(user) => {
                            self.written.mapped += 1;
                            user
                        }
                        None => {
                            self.written.created += 1;
                            self.create(person)?
                        }
                    };
                    imports::remember(self.conn, self.source, "user", &person.key, user.id)?;
                    user
                }
            };
            let was = (person.username.to_lowercase() != user.username)
                .then(|| person.username.to_lowercase());
            self.written.people.insert(
                person.key.clone(),
                Here {
                    id: user.id,
                    username: user.username,
                    was,
                },
            );
        }
        Ok(())
    }

    /// The account `--map-users` names for a person, if any.
    fn mapped(&self, person: &Person) -> Option<&String> {
        self.options
            .map_users
            .get(&person.key)
            .or_else(|| self.options.map_users.get(&person.username))
    }

    /// The account here a source person is: the one `--map-users` names, else the one account
    /// with their address.
    fn existing(&mut self, person: &Person) -> Result<Option<users::User>> {
        if let Some(who) = self.mapped(person).cloned() {
            let who = who.as_str();
            let found = match users::find_by_username(self.conn, &who.to_lowercase())? {
                Some(user) => Some(user),
                None => single(imports::by_email(self.conn, who)?),
            };
            return found.map(Some).ok_or_else(|| {
                Error::Invalid(format!(
                    "The user map names `{who}` for {}, but there is no such account here.",
                    person.username
                ))
            });
        }
        match &person.email {
            Some(email) => Ok(single(imports::by_email(self.conn, email)?)),
            None => Ok(None),
        }
    }

    /// A new account for a source person: inactive without a password, or invited.
    fn create(&mut self, person: &Person) -> Result<users::User> {
        let username = free_username(self.conn, &person.username)?;
        let email = person.email.as_deref().and_then(|e| input::email(e).ok());
        let id = users::create(
            self.conn,
            &username,
            email.as_deref().unwrap_or(""),
            None,
            false,
            self.now,
        )?;
        let invite = email.is_some() && self.options.invite != Invite::No;
        if !invite {
            users::set_active(self.conn, id, false)?;
            return users::find(self.conn, id);
        }
        let user = users::find(self.conn, id)?;
        let token = tokens::issue(self.conn, id, tokens::SET_PASSWORD, self.now)?;
        if self.options.invite == Invite::Mail {
            let invitation = self
                .mail
                .link_mail("invite", &user, &token)
                .map_err(|e| Error::internal("rendering an invitation", e))?;
            outbox::enqueue(self.conn, &invitation, self.now)?;
            self.written.invited.push((username, None));
        } else {
            let link = format!("{}/password/{token}", self.public_url);
            self.written.invited.push((username, Some(link)));
        }
        Ok(user)
    }
}

fn single(mut found: Vec<users::User>) -> Option<users::User> {
    (found.len() == 1).then(|| found.remove(0))
}

/// A Confab username for `wanted` that nobody has: cleaned up (`Ann Lee` → `ann-lee`), then
/// numbered if taken (`ann-2`).
fn free_username(conn: &mut AnyConnection, wanted: &str) -> Result<String> {
    let cleaned: String = wanted
        .to_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "_.-".contains(c) {
                c
            } else {
                '-'
            }
        })
        .collect();
    let mut base: String = cleaned
        .trim_start_matches(|c: char| !c.is_ascii_alphanumeric())
        .chars()
        .take(28)
        .collect();
    if base.chars().count() < 2 {
        base = format!("user-{base}");
    }
    first_free(&base, wanted, input::username, |name| {
        Ok(users::find_by_username(conn, name)?.is_some())
    })
}

/// A room address for `wanted` that no room has: cleaned up, then numbered if taken.
fn free_slug(conn: &mut AnyConnection, wanted: &str) -> Result<String> {
    let cleaned: String = wanted
        .to_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let mut base: String = cleaned.trim_matches('-').chars().take(34).collect();
    if base.is_empty() {
        base = "imported".to_string();
    }
    first_free(&base, wanted, input::slug, |slug| {
        rooms::slug_taken(conn, slug)
    })
}

/// The first of `base`, `base-2`, `base-3`… that `check` accepts and `taken` says is free.
fn first_free(
    base: &str,
    wanted: &str,
    check: fn(&str) -> Result<String>,
    mut taken: impl FnMut(&str) -> Result<bool>,
) -> Result<String> {
    for n in 1..1000 {
        let candidate = match n {
            1 => check(base)?,
            n => check(&format!("{base}-{n}"))?,
        };
        if !taken(&candidate)? {
            return Ok(candidate);
        }
    }
    Err(Error::Conflict(format!(
        "Nothing free is left for {wanted}."
    )))
}

/// A message ready to be written: the post, and its file copied into the store (if any).
struct Ready {
    post: Post,
    file: Option<NewFile>,
    /// The line naming a file the import could not bring.
    missing: Option<String>,
}

/// What one room's transaction did.
#[derive(Default)]
struct RoomDone {
    room_id: i64,
    cursor: i64,
    created: bool,
    messages: usize,
    files: usize,
    reactions: usize,
    /// The stored names of the files it attached (other copies are dropped).
    attached: HashSet<String>,
    skipped: Skipped,
}

/// The scope of a room's messages (and of its members) in `imported`.
fn scope(what: &str, room_key: &str) -> String {
    format!("{what}:{room_key}")
}

async fn import_room(
    svc: &Services,
    source: &str,
    room: RoomHistory,
    people: &Arc<People>,
    mention_keys: bool,
    summary: &mut Summary,
    done: &Arc<AtomicUsize>,
) -> Result<()> {
    let messages_scope = scope("message", &room.key);
    let (known, room_id) = {
        let (source, messages_scope, key) =
            (source.to_string(), messages_scope.clone(), room.key.clone());
        svc.db
            .run(move |conn| {
                let known = imports::known(conn, &source, &messages_scope)?;
                let room = imports::known(conn, &source, "room")?.get(&key).copied();
                Ok::<_, Error>((known, room))
            })
            .await?
    };
    // Each message once, in the source's order among messages of the same time.
    let mut keys = HashSet::new();
    let mut posts: Vec<Post> = Vec::with_capacity(room.posts.len());
    for post in &room.posts {
        if !keys.insert(post.key.as_str()) {
            summary
                .skipped
                .add("messages listed twice (the first kept)");
        } else if known.contains_key(&post.key) {
            summary.already += 1;
        } else {
            posts.push(post.clone());
        }
    }
    done.fetch_add(room.posts.len() - posts.len(), Ordering::Relaxed);
    if posts.is_empty() && room_id.is_some() {
        return Ok(());
    }
    posts.sort_by_key(|p| p.at);
    // Files are copied in before the transaction; the copies it does not attach are dropped.
    let mut received: Vec<(Received, bool)> = Vec::new();
    let mut ready = Vec::with_capacity(posts.len());
    for post in posts {
        let mut item = Ready {
            file: None,
            missing: None,
            post,
        };
        if let Some(file) = item.post.file.clone() {
            let name = input::file_name(&file.name);
            match file.path {
                None => {
                    summary
                        .skipped
                        .add("files not in the export (named in their message)");
                    item.missing =
                        Some(format!("(file not imported: {})", markdown_literal(&name)));
                }
                Some(path) => {
                    let copy = uploads::received_file(svc, &name, &path).await?;
                    if copy.size > svc.settings.uploads.max_bytes {
                        summary
                            .skipped
                            .add("files over the upload limit (named in their message)");
                        item.missing = Some(format!(
                            "(file not imported: {}, {}, over the upload limit)",
                            markdown_literal(&name),
                            crate::format::size(i64::try_from(copy.size).unwrap_or(i64::MAX))
                        ));
                    } else {
                        let described = uploads::describe(svc, &copy).await?;
                        let image = crate::files::shown_inline(&described.content_type);
                        item.file = Some(described);
                        received.push((copy, image));
                    }
                }
            }
        }
        ready.push(item);
    }
    for (copy, _) in &received {
        svc.store
            .touch_temp(&copy.stored_name)
            .await
            .map_err(|e| Error::internal("marking an imported file", e))?;
    }
    let writer = RoomWriter {
        source: source.to_string(),
        room,
        room_id,
        people: people.clone(),
        mention_keys,
        known,
        done: done.clone(),
    };
    let result = svc.db.write(move |conn| writer.write(conn, ready)).await?;
    let mut images = Vec::new();
    for (copy, image) in received {
        if !result.attached.contains(&copy.stored_name) {
            continue;
        }
        let name = copy.stored_name.clone();
        copy.temp.keep();
        if let Err(e) = svc.store.finish(&name).await {
            // The row is committed; the sweep moves the file into place later.
            log::error!("moving imported file {name} into place: {e}");
        } else if image {
            images.push(name);
        }
    }
    if result.room_id != 0 {
        svc.live.advance(result.room_id, result.cursor);
    }
    for name in images {
        uploads::thumbnail(svc, name).await;
    }
    if result.created {
        summary.rooms_created += 1;
    } else if result.messages > 0 {
        summary.rooms_extended += 1;
    }
    summary.messages += result.messages;
    summary.files += result.files;
    summary.reactions += result.reactions;
    summary.skipped.merge(result.skipped);
    Ok(())
}

/// `text` shown as it is by Markdown: its markup characters escaped, on one line.
fn markdown_literal(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if c.is_control() {
            out.push(' ');
            continue;
        }
        if "\\`*_{}[]()<>#+-.!|~".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Writes one room's new messages, in one transaction.
struct RoomWriter {
    source: String,
    room: RoomHistory,
    /// The room an earlier run created.
    room_id: Option<i64>,
    people: Arc<People>,
    mention_keys: bool,
    known: HashMap<String, i64>,
    done: Arc<AtomicUsize>,
}

impl RoomWriter {
    fn write(mut self, conn: &mut AnyConnection, ready: Vec<Ready>) -> Result<RoomDone> {
        let now = chat::now();
        let mut result = RoomDone::default();
        let room_id = match self.room_id {
            Some(id) => {
                // History arrives in id order: after messages posted here since, it would read as
                // newer than they are. Such a room is left as it is.
                let newest = rooms::newest_message_id(conn, id)?;
                let newest_imported = self.known.values().copied().max().unwrap_or(0);
                if newest > newest_imported {
                    for _ in &ready {
                        result.skipped.add(
                            "messages for rooms that have had messages posted here since the last import (left as they are)",
                        );
                    }
                    self.done.fetch_add(ready.len(), Ordering::Relaxed);
                    return Ok(result);
                }
                id
            }
            None => {
                result.created = true;
                let id = self.create_room(conn, now)?;
                imports::remember(conn, &self.source, "room", &self.room.key, id)?;
                id
            }
        };
        result.room_id = room_id;
        let mut cursor = imports::lock_room(conn, room_id)?;
        let read_before = rooms::newest_message_id(conn, room_id)?;
        // Members once: someone who left an imported room is not put back by the next run.
        let members_scope = scope("member", &self.room.key);
        let placed = imports::known(conn, &self.source, &members_scope)?;
        for member in &self.room.members {
            if placed.contains_key(member) {
                continue;
            }
            if let Some(here) = self.people.get(member) {
                rooms::add_member(conn, room_id, here.id, now)?;
                imports::remember(conn, &self.source, &members_scope, member, here.id)?;
            }
        }
        let messages_scope = scope("message", &self.room.key);
        let mut threads: HashSet<i64> = HashSet::new();
        for item in ready {
            self.done.fetch_add(1, Ordering::Relaxed);
            let post = &item.post;
            let Some(author_id) = self.people.get(&post.author).map(|h| h.id) else {
                result
                    .skipped
                    .add("messages by people the export does not list");
                continue;
            };
            let parent_id = post
                .thread
                .as_ref()
                .and_then(|t| self.known.get(t).copied());
            if post.thread.is_some() && parent_id.is_none() {
                result
                    .skipped
                    .add("replies whose thread is not in the export (kept as messages)");
            }
            let mut body = input::clean(&self.mentions(&post.body));
            if let Some(line) = &item.missing {
                if !body.is_empty() {
                    body.push_str("\n\n");
                }
                body.push_str(line);
            }
            cursor += 1;
            let id = imports::insert(
                conn,
                room_id,
                cursor,
                &OldMessage {
                    author_id,
                    body: if post.deleted { "" } else { &body },
                    created_at: post.at,
                    edited_at: post.edited_at,
                    deleted_at: post.deleted.then_some(post.at),
                    parent_id,
                },
            )?;
            imports::remember(conn, &self.source, &messages_scope, &post.key, id)?;
            self.known.insert(post.key.clone(), id);
            threads.extend(parent_id);
            result.messages += 1;
            if post.deleted {
                continue;
            }
            if let Some(file) = &item.file {
                attachments::attach(conn, id, room_id, file, post.at)?;
                result.attached.insert(file.stored_name.clone());
                result.files += 1;
            }
            for (emoji, who) in &post.reactions {
                let Ok(emoji) = reactions::parse(emoji) else {
                    result
                        .skipped
                        .add("reactions with an emoji Confab does not know");
                    continue;
                };
                for person in who {
                    if let Some(here) = self.people.get(person) {
                        imports::react(conn, id, here.id, emoji, post.at)?;
                        result.reactions += 1;
                    }
                }
            }
        }
        let mut threads: Vec<i64> = threads.into_iter().collect();
        threads.sort_unstable();
        result.cursor = imports::settle(conn, room_id, cursor, &threads, read_before)?;
        if let (Some(at), true) = (self.room.archived_at, result.created) {
            imports::archive(conn, room_id, at)?;
        }
        Ok(result)
    }

    /// Creates the room: a direct conversation if the source had one of exactly these people
    /// (a private room if they already have one here), else a room at a free address.
    fn create_room(&self, conn: &mut AnyConnection, now: NaiveDateTime) -> Result<i64> {
        let members: Vec<&Here> = self
            .room
            .members
            .iter()
            .filter_map(|m| self.people.get(m))
            .collect();
        if self.room.direct && !members.is_empty() {
            let ids: Vec<i64> = members.iter().map(|h| h.id).collect();
            if direct::find(conn, &ids)?.is_none() {
                let names: Vec<&str> = members.iter().map(|h| h.username.as_str()).collect();
                return Ok(direct::create(conn, &ids, &names, now)?.id);
            }
        }
        let slug = free_slug(conn, &self.room.slug)?;
        let name: String = input::clean(&self.room.name).chars().take(80).collect();
        let description: String = input::clean(&self.room.description)
            .chars()
            .take(200)
            .collect();
        let room = rooms::create(
            conn,
            &RoomFields {
                slug: &slug,
                name: if name.trim().is_empty() { &slug } else { &name },
                description: &description,
                is_private: self.room.private || self.room.direct,
            },
            now,
        )?;
        Ok(room.id)
    }

    /// `body` with the people it names written as they are here: Slack's `<@key>` as
    /// `@username`, and (for other sources) `@oldname` of someone whose username changed as
    /// `@newname`.
    fn mentions(&self, body: &str) -> String {
        if self.mention_keys {
            return self.mention_keys(body);
        }
        if !body.contains('@') {
            return body.to_string();
        }
        let renamed: HashMap<&str, &str> = self
            .people
            .values()
            .filter_map(|h| h.was.as_deref().map(|was| (was, h.username.as_str())))
            .collect();
        if renamed.is_empty() {
            return body.to_string();
        }
        let is_name = |c: char| c.is_ascii_alphanumeric() || "_.-".contains(c);
        let mut out = String::with_capacity(body.len());
        let mut rest = body;
        while let Some(at) = rest.find('@') {
            out.push_str(&rest[..at]);
            let after = &rest[at + 1..];
            let end = after.find(|c: char| !is_name(c)).unwrap_or(after.len());
            let name = after[..end].trim_end_matches('.').to_lowercase();
            let boundary = out.chars().last().is_none_or(|c| !is_name(c));
            match renamed.get(name.as_str()) {
                Some(new) if boundary => {
                    out.push('@');
                    out.push_str(new);
                    rest = &after[name.len()..];
                }
                _ => {
                    out.push('@');
                    rest = after;
                }
            }
        }
        out.push_str(rest);
        out
    }

    /// Slack's `<@key>` as `@username`.
    fn mention_keys(&self, body: &str) -> String {
        let mut out = String::with_capacity(body.len());
        let mut rest = body;
        while let Some(start) = rest.find("<@") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            match after
                .find('>')
                .and_then(|end| Some((end, self.people.get(&after[..end])?)))
            {
                Some((end, here)) => {
                    out.push('@');
                    out.push_str(&here.username);
                    rest = &after[end + 1..];
                }
                None => {
                    out.push_str("<@");
                    rest = after;
                }
            }
        }
        out.push_str(rest);
        out
    }
}
