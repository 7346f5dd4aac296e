//! What templates see: the page layout, messages rendered to safe HTML, times in the reader's zone.

use rocket::request::FlashMessage;
use serde::Serialize;
use std::sync::Arc;

use super::error::{AppError, Result};
use super::session::{CsrfToken, CurrentUser};
use super::template::Pages;
use super::App;
use crate::chat::attachments::Attachment;
use crate::chat::messages::Posted;
use crate::chat::rooms::RoomSummary;
use crate::files;
use crate::service::reading;

/// The parts of every page: who is logged in, the form token, a one-time notice.
#[derive(Debug, Serialize)]
pub struct Layout {
    /// The logged-in user's name, if any.
    pub username: Option<String>,
    /// Whether to show the admin link.
    pub is_admin: bool,
    /// The form token for every form on the page.
    pub csrf: String,
    /// A notice from the previous request: (kind, message).
    pub flash: Option<(String, String)>,
    /// The room list beside the page, for a logged-in user.
    pub sidebar: Option<Sidebar>,
}

impl Layout {
    /// The layout of a logged-in user's page, with the room list beside it (marking room
    /// `current` when the page is about one).
    pub async fn load(
        app: &App<'_>,
        user: &CurrentUser,
        csrf: &CsrfToken,
        flash: Option<FlashMessage<'_>>,
        current: Option<&str>,
    ) -> Result<Layout> {
        let sidebar = Sidebar::load(app, user, current).await?;
        Ok(Layout::new(user, csrf, flash).with_sidebar(sidebar))
    }

    /// This layout with the room list beside the page.
    pub fn with_sidebar(self, sidebar: Sidebar) -> Layout {
        Layout {
            sidebar: Some(sidebar),
            ..self
        }
    }

    /// The layout for a logged-in user, without the room list (error pages).
    pub fn new(user: &CurrentUser, csrf: &CsrfToken, flash: Option<FlashMessage<'_>>) -> Layout {
        Layout {
            username: Some(user.user.username.clone()),
            is_admin: user.user.is_admin,
            csrf: csrf.0.clone(),
            flash: flash.map(|f| (f.kind().to_string(), f.message().to_string())),
            sidebar: None,
        }
    }

    /// The layout for a page seen before logging in.
    pub fn anonymous(csrf: &CsrfToken, flash: Option<FlashMessage<'_>>) -> Layout {
        Layout {
            username: None,
            is_admin: false,
            csrf: csrf.0.clone(),
            flash: flash.map(|f| (f.kind().to_string(), f.message().to_string())),
            sidebar: None,
        }
    }
}

/// The sidebar lists at most this many open rooms; the home page lists them all.
pub const SIDEBAR_OPEN_ROOMS: usize = 20;

/// The open rooms a sidebar reads: one more than it lists, to know whether there are more.
pub const SIDEBAR_JOINABLE: i64 = SIDEBAR_OPEN_ROOMS as i64 + 1;

/// The room list beside every logged-in page (wide screens; phones get the home page's list).
#[derive(Debug, Serialize)]
pub struct Sidebar {
    /// My rooms: active ones by last activity, then archived ones, each its `<li>`
    /// (`sidebar_room.html.tera`).
    pub rooms: Vec<Html>,
    /// My direct conversations, by last activity, each its `<li>`.
    pub direct: Vec<Html>,
    /// Open rooms I may join, the first [`SIDEBAR_OPEN_ROOMS`] by name.
    pub joinable: Vec<SidebarRoom>,
    /// There are more open rooms, listed on the home page.
    pub joinable_more: bool,
    /// Unread messages in all my rooms.
    pub unread_total: i64,
    /// There are more than that (some room counted only up to its limit).
    pub unread_more: bool,
}

/// One room in the sidebar.
#[derive(Debug, Hash, Serialize)]
pub struct SidebarRoom {
    /// Its address.
    pub slug: String,
    /// Its name.
    pub name: String,
    /// Unread messages by others (counted up to a limit).
    pub unread: i64,
    /// There are more than that.
    pub more: bool,
    /// Whether one of them mentions me.
    pub mentioned: bool,
    /// Whether it is archived.
    pub archived: bool,
}

/// What `sidebar_room.html.tera` sees: one entry, whether it is a direct conversation, and
/// whether the page is about it.
#[derive(Hash, Serialize)]
struct SidebarEntry<'a> {
    r: &'a SidebarRoom,
    direct: bool,
    current: bool,
}

impl Sidebar {
    /// Reads `user`'s sidebar, marking room `current`.
    pub async fn load(app: &App<'_>, user: &CurrentUser, current: Option<&str>) -> Result<Sidebar> {
        let lists = reading::home(app.svc, &user.user, Some(SIDEBAR_JOINABLE)).await?;
        Sidebar::new(app.pages, &user.user.username, &lists, current)
    }

    /// The sidebar of `me`: my rooms, my direct conversations and the first rooms I may join, with
    /// room `current` marked. Each entry of mine is rendered once per distinct entry by `pages`.
    pub fn new(
        pages: &Pages,
        me: &str,
        lists: &reading::RoomLists,
        current: Option<&str>,
    ) -> Result<Sidebar> {
        let (mine, joinable) = (&lists.mine, &lists.joinable);
        let entry = |s: &RoomSummary| -> Result<Html> {
            let r = SidebarRoom {
                slug: s.room.slug.clone(),
                name: s.room.title_for(me),
                unread: s.unread,
                more: s.unread_more,
                mentioned: s.mentioned,
                archived: s.room.archived_at.is_some(),
            };
            let entry = SidebarEntry {
                current: current == Some(r.slug.as_str()),
                direct: s.room.is_direct(),
                r: &r,
            };
            pages
                .fragment("sidebar_room", &entry)
                .map(Html)
                .map_err(|e| AppError::internal("rendering the sidebar", e).into())
        };
        let rooms = mine
            .iter()
            .filter(|s| !s.room.is_direct())
            .map(entry)
            .collect::<Result<_>>()?;
        let direct = mine
            .iter()
            .filter(|s| s.room.is_direct())
            .map(entry)
            .collect::<Result<_>>()?;
        let joinable_more = joinable.len() > SIDEBAR_OPEN_ROOMS;
        let joinable = joinable
            .iter()
            .take(SIDEBAR_OPEN_ROOMS)
            .map(|room| SidebarRoom {
                slug: room.slug.clone(),
                name: room.name.clone(),
                unread: 0,
                more: false,
                mentioned: false,
                archived: false,
            })
            .collect();
        Ok(Sidebar {
            rooms,
            direct,
            joinable,
            joinable_more,
            unread_total: mine.iter().map(|s| s.unread).sum(),
            unread_more: mine.iter().any(|s| s.unread_more),
        })
    }
}

/// Percent-encodes text for a URL path segment or a `filename*` parameter.
pub fn encode_uri_component(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(byte as char)
            }
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

pub use crate::format::size;

/// A browser as people name it, from its `User-Agent`: "Firefox on Linux", "Safari on iPhone".
/// Anything not recognised keeps its raw text (shortened), so nothing is hidden.
pub fn browser_name(user_agent: &str) -> String {
    // Order matters: Edge and Opera also say "Chrome", Chrome also says "Safari".
    const BROWSERS: [(&str, &str); 7] = [
        ("Edg/", "Edge"),
        ("OPR/", "Opera"),
        ("Firefox/", "Firefox"),
        ("Chromium/", "Chromium"),
        ("Chrome/", "Chrome"),
        ("Safari/", "Safari"),
        ("curl/", "curl"),
    ];
    const SYSTEMS: [(&str, &str); 7] = [
        ("iPhone", "iPhone"),
        ("iPad", "iPad"),
        ("Android", "Android"),
        ("Windows", "Windows"),
        ("Mac OS X", "macOS"),
        ("CrOS", "ChromeOS"),
        ("Linux", "Linux"),
    ];
    let find = |table: &[(&str, &'static str)]| {
        table
            .iter()
            .find(|(needle, _)| user_agent.contains(needle))
            .map(|(_, name)| *name)
    };
    match (find(&BROWSERS), find(&SYSTEMS)) {
        (Some(browser), Some(system)) => format!("{browser} on {system}"),
        (Some(browser), None) => browser.to_string(),
        (None, Some(system)) => format!("a browser on {system}"),
        (None, None) if user_agent.trim().is_empty() => "unknown".to_string(),
        (None, None) => user_agent.chars().take(60).collect(),
    }
}

/// A file as the room page shows it.
#[derive(Debug, Hash, Serialize)]
pub struct AttachmentView {
    /// The download link.
    pub url: String,
    /// The thumbnail, once made.
    pub thumbnail_url: Option<String>,
    /// Display name.
    pub name: String,
    /// Human size.
    pub size: String,
    /// Detected content type.
    pub content_type: String,
    /// Pixels, for images.
    pub width: Option<i32>,
    /// Pixels, for images.
    pub height: Option<i32>,
    /// The size the list shows the thumbnail at (at most [`THUMB_WIDTH`] wide, the image's
    /// proportions), so that the page does not jump as it loads.
    pub shown_size: Option<(i32, i32)>,
}

/// The widest a thumbnail is shown in the message list, in CSS pixels.
pub const THUMB_WIDTH: i32 = 360;

impl From<&Attachment> for AttachmentView {
    fn from(a: &Attachment) -> Self {
        let shown = a.thumbnail_type.is_some() && files::shown_inline(&a.content_type);
        AttachmentView {
            url: format!("/files/{}/{}", a.id, encode_uri_component(&a.file_name)),
            thumbnail_url: shown.then(|| format!("/thumbs/{}", a.id)),
            name: a.file_name.clone(),
            size: size(a.size),
            content_type: a.content_type.clone(),
            width: a.width,
            height: a.height,
            shown_size: match (a.width, a.height) {
                (Some(w), Some(h)) if w > 0 && h > 0 => {
                    let shown = w.min(THUMB_WIDTH);
                    let scaled = i64::from(h) * i64::from(shown) / i64::from(w);
                    Some((shown, i32::try_from(scaled.max(1)).unwrap_or(i32::MAX)))
                }
                _ => None,
            },
        }
    }
}

pub use crate::format::{when, When};

/// Consecutive messages by one author this close together are shown as one group.
pub const GROUP_MINUTES: i64 = 5;

/// Colours the generated avatars come in (classes `avatar-0` … in the stylesheet).
const AVATAR_COLOURS: u64 = 12;

/// An avatar: the member's own picture when they uploaded one, else initials on a colour derived
/// from the username.
#[derive(Debug, Clone, Hash, Serialize)]
pub struct Avatar {
    /// One or two letters.
    pub initials: String,
    /// Which colour, `0..AVATAR_COLOURS`.
    pub colour: u64,
    /// The member's own picture (`/avatars/<id>?v=<when it changed>`), if any.
    pub url: Option<String>,
}

impl Avatar {
    /// The avatar of user `id`: their picture if `picture_at` says they have one.
    pub fn of_user(id: i64, username: &str, picture_at: Option<chrono::NaiveDateTime>) -> Avatar {
        Avatar {
            url: picture_at
                .map(|at| format!("/avatars/{id}?v={}", at.and_utc().timestamp_micros())),
            ..Avatar::of(username)
        }
    }

    /// The generated avatar of `username`: the same name always gets the same one.
    pub fn of(username: &str) -> Avatar {
        let initials: String = username
            .split(|c: char| !c.is_alphanumeric())
            .filter_map(|part| part.chars().next())
            .take(2)
            .flat_map(char::to_uppercase)
            .collect();
        let initials = if initials.is_empty() {
            "?".to_string()
        } else if initials.chars().count() == 1 {
            username
                .chars()
                .take(2)
                .flat_map(char::to_uppercase)
                .collect()
        } else {
            initials
        };
        // FNV-1a, then a finaliser that mixes every bit into the low ones: stable across builds
        // and platforms, unlike the std hasher.
        let mut hash = username.bytes().fold(0xcbf29ce484222325u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x100000001b3)
        });
        hash ^= hash >> 33;
        hash = hash.wrapping_mul(0xff51afd7ed558ccd);
        hash ^= hash >> 33;
        Avatar {
            initials,
            colour: hash % AVATAR_COLOURS,
            url: None,
        }
    }
}

/// What a room page's list of messages shows before message `m`: the day heading and the "new
/// since your last visit" divider, where they go.
pub fn list_headings(list: &mut String, m: &MessageView) {
    if let Some(day) = &m.day_heading {
        list.push_str(r#"<li class="day"><span>"#);
        list.push_str(&crate::format::escape(day));
        list.push_str("</span></li>\n");
    }
    if m.first_unread {
        list.push_str(
            "<li class=\"divider\" id=\"new\"><span>New since your last visit</span></li>\n",
        );
    }
}

/// Safe HTML rendered once and shared (a message's body, a sidebar entry, a member list), placed
/// in a template as it is.
#[derive(Debug, Clone)]
pub struct Html(Arc<str>);

/// A message's safe HTML in its view. It is a function of the message's body, which the view holds
/// as well, so it adds nothing to the view's hash (the key of the message's rendered `<li>`) and is
/// not hashed.
#[derive(Debug, Clone, Serialize)]
#[serde(transparent)]
pub struct BodyHtml(Html);

impl std::hash::Hash for BodyHtml {
    fn hash<H: std::hash::Hasher>(&self, _: &mut H) {}
}

impl From<Arc<str>> for Html {
    fn from(html: Arc<str>) -> Html {
        Html(html)
    }
}

impl Serialize for Html {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

/// One member in a room page's member list.
#[derive(Debug, Hash, Serialize)]
pub struct PresenceView {
    /// Their name.
    pub username: String,
    /// `active`, `idle` or `away`.
    pub state: &'static str,
    /// Whether it is the reader.
    pub me: bool,
    /// When the away were last seen, relative to today ("yesterday 14:05").
    pub last_seen: Option<String>,
}

/// What `presence.html.tera` sees: a room's members, as one reader sees them.
#[derive(Hash, Serialize)]
pub struct PresenceList<'a> {
    /// The members.
    pub presence: &'a [PresenceView],
}

/// One message as the room page shows it.
#[derive(Debug, Hash, Serialize)]
pub struct MessageView {
    /// Id, for anchors and permalinks.
    pub id: i64,
    /// Author's username.
    pub author: String,
    /// The author's avatar.
    pub avatar: Avatar,
    /// It follows a message by the same author within [`GROUP_MINUTES`]: the name and avatar
    /// are shown once for the group.
    pub continued: bool,
    /// Safe HTML of the body (empty when deleted).
    pub html: BodyHtml,
    /// Raw text, for the edit form.
    pub body: String,
    /// When it was posted.
    pub posted: When,
    /// The day heading to show before it, when the day changes.
    pub day_heading: Option<String>,
    /// When it was last edited.
    pub edited: Option<When>,
    /// Whether it was deleted.
    pub deleted: bool,
    /// The reader may edit it.
    pub can_edit: bool,
    /// The reader may delete it.
    pub can_delete: bool,
    /// The "new since your last visit" divider goes before it.
    pub first_unread: bool,
    /// It is the message a permalink points at.
    pub marked: bool,
    /// The file shared with it.
    pub attachment: Option<AttachmentView>,
    /// The thread it belongs to: its own id, or the first message's for a reply (replies go there).
    pub thread_id: i64,
    /// For a reply: the line it shows of the thread's first message.
    pub quote: Option<QuoteView>,
    /// For a thread's first message: how many replies, and when the last came.
    pub replies: Option<RepliesView>,
    /// Its reactions, each emoji once, in the order they were first given.
    pub reactions: Vec<ReactionView>,
    /// Whether it is pinned to the room.
    pub pinned: bool,
    /// Whether the reader saved it.
    pub saved: bool,
}

/// One emoji's reactions to a message.
#[derive(Debug, Hash, Serialize)]
pub struct ReactionView {
    /// The emoji.
    pub emoji: String,
    /// Who gave it, in the order they reacted.
    pub people: Vec<String>,
    /// Whether the reader is one of them.
    pub mine: bool,
}

/// The start of a message's text on one line, plain, at most `chars` characters.
pub fn one_line(body: &str, chars: usize) -> String {
    let text = crate::format::message_text(body);
    let words: Vec<&str> = text.split_whitespace().collect();
    let line = words.join(" ");
    if line.chars().count() > chars {
        format!("{}…", line.chars().take(chars).collect::<String>())
    } else {
        line
    }
}

/// Groups a message's reactions (emoji, who) by emoji, in the order each was first given.
pub fn reaction_views(reactions: &[(String, String)], reader: &str) -> Vec<ReactionView> {
    let mut views: Vec<ReactionView> = Vec::new();
    for (emoji, who) in reactions {
        let view = match views.iter_mut().position(|v| &v.emoji == emoji) {
            Some(at) => &mut views[at],
            None => {
                views.push(ReactionView {
                    emoji: emoji.clone(),
                    people: Vec::new(),
                    mine: false,
                });
                let last = views.len() - 1;
                &mut views[last]
            }
        };
        view.mine |= who == reader;
        view.people.push(who.clone());
    }
    views
}

/// The line a reply shows of the message that started its thread.
#[derive(Debug, Hash, Serialize)]
pub struct QuoteView {
    /// That message, for its permalink.
    pub id: i64,
    /// Its author.
    pub author: String,
    /// The start of its text, plain (one line).
    pub text: String,
}

/// "3 replies · last 2 h ago" under a thread's first message.
#[derive(Debug, Hash, Serialize)]
pub struct RepliesView {
    /// How many.
    pub count: i32,
    /// When the last one came.
    pub last: Option<When>,
}

/// Turns a page of messages into what the template shows, on the blocking pool: Markdown and
/// sanitising are CPU work that must not hold up the async workers (nor `/healthz`).
pub async fn messages(
    page: Vec<Posted>,
    attachments: Vec<Attachment>,
    reader: &CurrentUser,
    last_read_id: Option<i64>,
    marked: Option<i64>,
) -> crate::error::Result<(Vec<Posted>, Vec<MessageView>)> {
    let reader = reader.user.clone();
    // Tokio's blocking pool, not `web::blocking`: pages must not queue behind password checks.
    tokio::task::spawn_blocking(move || {
        let views = message_views(&page, &attachments, &reader, last_read_id, marked);
        (page, views)
    })
    .await
    .map_err(|e| crate::error::Error::internal("rendering messages", e))
}

fn message_views(
    page: &[Posted],
    attachments: &[Attachment],
    reader: &crate::chat::users::User,
    last_read_id: Option<i64>,
    marked: Option<i64>,
) -> Vec<MessageView> {
    let tz = reader.tz();
    let today = crate::format::today(tz, crate::chat::now());
    let when = |at| crate::format::when_on(at, tz, today);
    let mut previous_day: Option<String> = None;
    let mut previous: Option<(i64, chrono::NaiveDateTime)> = None;
    let mut divider_placed = false;
    page.iter()
        .map(|p| {
            let m = &p.message;
            let posted = when(m.created_at);
            let day_heading =
                (previous_day.as_deref() != Some(posted.day.as_str())).then(|| posted.day.clone());
            previous_day = Some(posted.day.clone());
            let first_unread = !divider_placed
                && last_read_id.is_some_and(|last| m.id > last && m.author_id != reader.id);
            divider_placed |= first_unread;
            let continued = day_heading.is_none()
                && !first_unread
                && previous.is_some_and(|(author, at)| {
                    author == m.author_id
                        && m.created_at - at <= chrono::Duration::minutes(GROUP_MINUTES)
                });
            previous = Some((m.author_id, m.created_at));
            let deleted = m.deleted_at.is_some();
            let mine = m.author_id == reader.id;
            MessageView {
                id: m.id,
                author: p.author.clone(),
                avatar: Avatar::of_user(m.author_id, &p.author, p.avatar_at),
                continued,
                html: BodyHtml(Html(crate::format::message_html(&m.body))),
                body: m.body.clone(),
                posted,
                day_heading,
                edited: m.edited_at.map(when),
                deleted,
                can_edit: mine && !deleted,
                can_delete: (mine || reader.is_admin) && !deleted,
                first_unread,
                marked: marked == Some(m.id),
                attachment: attachments
                    .iter()
                    .find(|a| a.message_id == m.id)
                    .map(AttachmentView::from),
                thread_id: m.parent_id.unwrap_or(m.id),
                quote: p.quote.as_ref().map(|q| QuoteView {
                    id: q.id,
                    author: q.author.clone(),
                    text: one_line(&q.text, 120),
                }),
                replies: (m.reply_count > 0).then(|| RepliesView {
                    count: m.reply_count,
                    last: m.last_reply_at.map(when),
                }),
                reactions: if deleted {
                    Vec::new()
                } else {
                    reaction_views(&p.reactions, &reader.username)
                },
                pinned: m.pinned_at.is_some(),
                saved: p.saved,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn browsers_are_named_as_people_name_them() {
        let cases = [
            ("Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0", "Firefox on Linux"),
            ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0", "Edge on Windows"),
            ("Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1", "Safari on iPhone"),
            ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36", "Chrome on macOS"),
            ("Mozilla/5.0 (Linux; Android 14) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Mobile Safari/537.36", "Chrome on Android"),
            ("Lynx/2.9.0 libwww-FM/2.14", "Lynx/2.9.0 libwww-FM/2.14"),
            ("", "unknown"),
        ];
        for (agent, name) in cases {
            assert_eq!(browser_name(agent), name, "{agent}");
        }
    }
}
