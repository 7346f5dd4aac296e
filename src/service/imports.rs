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
}

/// The people of the import: source key → (account id, username).
type People = HashMap<String, (i64, String)>;

/// Imports `history`; `done` counts the messages written so far (for a progress bar).
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
    let source = history.source.clone();
    let people = {
        let (source, persons, options) = (source.clone(), history.people.clone(), options.clone());
        let (mail, public_url) = (svc.mail.clone(), svc.settings.public_url.clone());
        let (people, created, mapped, invited) = svc
            .db
            .write(move |conn| {
                let mut writer = PeopleWriter {
                    conn,
                    source: &source,
                    options: &options,
                    mail: &mail,
                    public_url: &public_url,
                    now: chat::now(),
                    invited: Vec::new(),
                };
                writer.write_all(&persons)
            })
            .await?;
        summary.users_created = created;
        summary.users_mapped = mapped;
        summary.invited = invited;
        Arc::new(people)
    };
    for room in history.rooms {
        import_room(
            svc,
            &source,
            room,
            &people,
            history.mention_keys,
            &mut summary,
            &done,
        )
        .await?;
    }
    Ok(summary)
}

/// Writes the people of an import, in one transaction.
struct PeopleWriter<'a> {
    conn: &'a mut AnyConnection,
    source: &'a str,
    options: &'a Options,
    mail: &'a crate::mail::Mail,
    public_url: &'a str,
    now: NaiveDateTime,
    invited: Vec<(String, Option<String>)>,
}

impl PeopleWriter<'_> {
    #[allow(clippy::type_complexity)]
    fn write_all(
        &mut self,
        persons: &[Person],
    ) -> Result<(People, usize, usize, Vec<(String, Option<String>)>)> {
        let known = imports::known(self.conn, self.source, "user:")?;
        let (mut people, mut created, mut mapped) = (People::new(), 0, 0);
        for person in persons {
            let key = format!("user:{}", person.key);
            let user = match known.get(&key) {
                Some(&id) => users::find(self.conn, id)?,
                None => {
                    let user = match self.existing(person)? {
                        Some(user) => {
                            mapped += 1;
                            user
                        }
                        None => {
                            created += 1;
                            self.create(person)?
                        }
                    };
                    imports::remember(self.conn, self.source, &key, user.id)?;
                    user
                }
            };
            people.insert(person.key.clone(), (user.id, user.username));
        }
        Ok((people, created, mapped, std::mem::take(&mut self.invited)))
    }

    /// The account here a source person is: the one `--map-users` names, else the one account
    /// with their address.
    fn existing(&mut self, person: &Person) -> Result<Option<users::User>> {
        let named = self
            .options
            .map_users
            .get(&person.key)
            .or_else(|| self.options.map_users.get(&person.username));
        if let Some(who) = named {
            let found = match users::find_by_username(self.conn, who)? {
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
            self.invited.push((username, None));
        } else {
            let link = format!("{}/password/{token}", self.public_url);
            self.invited.push((username, Some(link)));
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
    for n in 1..1000 {
        let name = if n == 1 {
            base.clone()
        } else {
            format!("{base}-{n}")
        };
        let name = input::username(&name)?;
        if users::find_by_username(conn, &name)?.is_none() {
            return Ok(name);
        }
    }
    Err(Error::Conflict(format!(
        "No free username is left for {wanted}."
    )))
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
    for n in 1..1000 {
        let slug = if n == 1 {
            base.clone()
        } else {
            format!("{base}-{n}")
        };
        let slug = input::slug(&slug)?;
        let taken: bool = diesel::RunQueryDsl::get_result(
            diesel::select(diesel::dsl::exists(diesel::QueryDsl::filter(
                crate::db::schema::rooms::table,
                diesel::ExpressionMethods::eq(crate::db::schema::rooms::slug, &slug),
            ))),
            conn,
        )?;
        if !taken {
            return Ok(slug);
        }
    }
    Err(Error::Conflict(format!(
        "No free room address is left for {wanted}."
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
    skipped: Skipped,
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
    let prefix = format!("message:{}:", room.key);
    let known = {
        let (source, prefix) = (source.to_string(), prefix.clone());
        svc.db
            .run(move |conn| imports::known(conn, &source, &prefix))
            .await?
    };
    let mut posts: Vec<Post> = room
        .posts
        .iter()
        .filter(|p| !known.contains_key(&format!("{prefix}{}", p.key)))
        .cloned()
        .collect();
    summary.already += room.posts.len() - posts.len();
    posts.sort_by(|a, b| (a.at, &a.key).cmp(&(b.at, &b.key)));
    // Files are copied in before the transaction; a failed room removes its copies.
    let mut received: Vec<(Received, bool)> = Vec::new();
    let mut ready = Vec::with_capacity(posts.len());
    for post in posts {
        let mut item = Ready {
            file: None,
            missing: None,
            post,
        };
        if let Some(file) = item.post.file.clone() {
            match file.path {
                None => {
                    summary
                        .skipped
                        .add("files not in the export (named in their message)");
                    item.missing = Some(format!("(file not imported: {})", file.name));
                }
                Some(path) => {
                    let copy = uploads::received_file(svc, &file.name, &path).await?;
                    if copy.size > svc.settings.uploads.max_bytes {
                        summary
                            .skipped
                            .add("files over the upload limit (named in their message)");
                        item.missing = Some(format!(
                            "(file not imported: {}, {}, over the upload limit)",
                            file.name,
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
    let writer = RoomWriter {
        source: source.to_string(),
        room,
        people: people.clone(),
        mention_keys,
        known,
        done: done.clone(),
    };
    let result = svc.db.write(move |conn| writer.write(conn, ready)).await?;
    let mut images = Vec::new();
    for (copy, image) in received {
        let name = copy.stored_name.clone();
        copy.temp.keep();
        if let Err(e) = svc.store.finish(&name).await {
            // The row is committed; the sweep moves the file into place later.
            log::error!("moving imported file {name} into place: {e}");
        } else if image {
            images.push(name);
        }
    }
    svc.live.advance(result.room_id, result.cursor);
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

/// Writes one room's new messages, in one transaction.
struct RoomWriter {
    source: String,
    room: RoomHistory,
    people: Arc<People>,
    mention_keys: bool,
    known: HashMap<String, i64>,
    done: Arc<AtomicUsize>,
}

impl RoomWriter {
    fn write(mut self, conn: &mut AnyConnection, ready: Vec<Ready>) -> Result<RoomDone> {
        let now = chat::now();
        let mut result = RoomDone::default();
        let room_key = format!("room:{}", self.room.key);
        let room_id = match imports::known(conn, &self.source, &room_key)?.get(&room_key) {
            Some(&id) => id,
            None => {
                result.created = true;
                let id = self.create_room(conn, now)?;
                imports::remember(conn, &self.source, &room_key, id)?;
                id
            }
        };
        result.room_id = room_id;
        let mut cursor = imports::lock_room(conn, room_id)?;
        let read_before = rooms::newest_message_id(conn, room_id)?;
        for member in &self.room.members {
            if let Some(&(id, _)) = self.people.get(member) {
                rooms::add_member(conn, room_id, id, now)?;
            }
        }
        let prefix = format!("message:{}:", self.room.key);
        let mut threads: HashSet<i64> = HashSet::new();
        for item in ready {
            let post = &item.post;
            let Some(&(author_id, _)) = self.people.get(&post.author) else {
                result
                    .skipped
                    .add("messages by people the export does not list");
                continue;
            };
            let parent_id = post
                .thread
                .as_ref()
                .and_then(|t| self.known.get(&format!("{prefix}{t}")).copied());
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
            let key = format!("{prefix}{}", post.key);
            imports::remember(conn, &self.source, &key, id)?;
            self.known.insert(key, id);
            threads.extend(parent_id);
            if let (Some(file), false) = (&item.file, post.deleted) {
                attachments::attach(conn, id, room_id, file, post.at)?;
                result.files += 1;
            }
            if !post.deleted {
                for (emoji, who) in &post.reactions {
                    let Ok(emoji) = reactions::parse(emoji) else {
                        result
                            .skipped
                            .add("reactions with an emoji Confab does not know");
                        continue;
                    };
                    for person in who {
                        if let Some(&(user_id, _)) = self.people.get(person) {
                            imports::react(conn, id, user_id, emoji, post.at)?;
                            result.reactions += 1;
                        }
                    }
                }
            }
            result.messages += 1;
            self.done.fetch_add(1, Ordering::Relaxed);
        }
        let mut threads: Vec<i64> = threads.into_iter().collect();
        threads.sort_unstable();
        result.cursor = imports::settle(conn, room_id, cursor, &threads, read_before)?;
        if let Some(at) = self.room.archived_at {
            imports::archive(conn, room_id, at)?;
        }
        Ok(result)
    }

    /// Creates the room: a direct conversation if the source had one of exactly these people
    /// (a private room if they already have one here), else a room at a free address.
    fn create_room(&self, conn: &mut AnyConnection, now: NaiveDateTime) -> Result<i64> {
        let members: Vec<(i64, String)> = self
            .room
            .members
            .iter()
            .filter_map(|m| self.people.get(m).cloned())
            .collect();
        if self.room.direct && !members.is_empty() {
            let ids: Vec<i64> = members.iter().map(|(id, _)| *id).collect();
            if direct::find(conn, &ids)?.is_none() {
                let names: Vec<&str> = members.iter().map(|(_, n)| n.as_str()).collect();
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
                is_private: self.room.private,
            },
            now,
        )?;
        Ok(room.id)
    }

    /// `body` with Slack's `<@key>` written as `@username` (when the history names people so).
    fn mentions(&self, body: &str) -> String {
        if !self.mention_keys || !body.contains("<@") {
            return body.to_string();
        }
        let mut out = String::with_capacity(body.len());
        let mut rest = body;
        while let Some(start) = rest.find("<@") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            match after.find('>') {
                Some(end) if self.people.contains_key(&after[..end]) => {
                    out.push('@');
                    out.push_str(&self.people[&after[..end]].1);
                    rest = &after[end + 1..];
                }
                _ => {
                    out.push_str("<@");
                    rest = after;
                }
            }
        }
        out.push_str(rest);
        out
    }
}
