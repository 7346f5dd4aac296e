//! JSON for the live room page, mounted at `/api`: "what changed after this cursor?" (answered from memory when
//! nothing did, optionally held open until something does) and posting without a reload.

use std::time::Duration;

use rocket::http::{CookieJar, Status};
use rocket::response::{self, Responder};
use rocket::serde::json::Json;
use rocket::{get, post, routes, Request, Route, State};
use serde::{Deserialize, Serialize};

use super::error::{AppError, Error, Result};
use super::session::{CsrfHeader, CurrentUser};
use super::template::Pages;
use super::{pages, view, App};
use crate::chat::messages::Posted;
use crate::chat::{self, attachments};
use crate::live::{Activity, Presence, Token};
use crate::service::{messages, reading};

/// The routes of this module.
pub fn routes() -> Vec<Route> {
    routes![events, post_message]
}

/// The most changes one poll answer carries; the page asks again for the rest.
const CHANGES_PER_ANSWER: i64 = 200;

/// A message as the live page receives it.
#[derive(Debug, Serialize)]
pub struct MessageJson {
    /// Id, in page order.
    pub id: i64,
    /// The room cursor at its last change.
    pub revision: i64,
    /// Author's username.
    pub author: String,
    /// When it was posted, RFC 3339 UTC.
    pub created: String,
    /// Whether it was edited.
    pub edited: bool,
    /// Whether it was deleted.
    pub deleted: bool,
    /// For a reply: the first message of its thread.
    pub parent_id: Option<i64>,
    /// For a thread's first message: how many replies it has.
    pub reply_count: i32,
    /// Its reactions: each emoji with how many gave it.
    pub reactions: Vec<ReactionCount>,
    /// Whether it is pinned to the room.
    pub pinned: bool,
    /// The `<li>` the room page shows for it, from the same template.
    pub html: String,
}

/// One emoji's reactions to a message, in the events feed.
#[derive(Debug, Serialize)]
pub struct ReactionCount {
    /// The emoji.
    pub emoji: String,
    /// How many gave it.
    pub count: usize,
}

/// What changed in a room.
#[derive(Debug, Serialize)]
pub struct Events {
    /// The cursor to send next time.
    pub cursor: String,
    /// Changed messages, in the order they changed.
    pub messages: Vec<MessageJson>,
    /// Who is around.
    pub presence: Vec<Presence>,
    /// More changes are waiting: ask again at once.
    pub more: bool,
}

/// 200 with the changes, or 204 when nothing changed.
pub enum EventsReply {
    /// Something changed.
    Changed(Json<Events>),
    /// Nothing changed.
    Nothing,
}

impl<'r> Responder<'r, 'static> for EventsReply {
    fn respond_to(self, req: &'r Request<'_>) -> response::Result<'static> {
        match self {
            EventsReply::Changed(json) => json.respond_to(req),
            EventsReply::Nothing => Status::NoContent.respond_to(req),
        }
    }
}

/// Renders messages with the room page's own message template.
async fn render(
    templates: &Pages,
    cookies: &CookieJar<'_>,
    changed: Vec<Posted>,
    files: Vec<attachments::Attachment>,
    reader: &CurrentUser,
    slug: &str,
) -> Result<Vec<MessageJson>> {
    let (changed, views) = view::messages(changed, files, reader, None, None).await?;
    let csrf = super::session::existing_csrf(cookies);
    changed
        .iter()
        .zip(views)
        .map(|(posted, m)| {
            let mut html = String::new();
            templates
                .write_message(&mut html, &m, slug, &csrf)
                .map_err(|e| AppError::internal("rendering a message", e))?;
            Ok(MessageJson {
                id: posted.message.id,
                revision: posted.message.revision,
                author: posted.author.clone(),
                created: m.posted.iso.clone(),
                edited: posted.message.edited_at.is_some(),
                deleted: posted.message.deleted_at.is_some(),
                parent_id: posted.message.parent_id,
                reply_count: posted.message.reply_count,
                pinned: posted.message.pinned_at.is_some(),
                reactions: m
                    .reactions
                    .iter()
                    .map(|r| ReactionCount {
                        emoji: r.emoji.clone(),
                        count: r.people.len(),
                    })
                    .collect(),
                html,
            })
        })
        .collect()
}

#[allow(clippy::too_many_arguments)]
#[get("/rooms/<slug>/events?<after>&<wait>&<state>&<latest>")]
async fn events(
    slug: &str,
    after: Option<&str>,
    wait: Option<u64>,
    state: Option<&str>,
    latest: Option<bool>,
    user: CurrentUser,
    app: App<'_>,
    templates: &State<Pages>,
    cookies: &CookieJar<'_>,
) -> Result<EventsReply> {
    let after = after.and_then(Token::parse).ok_or_else(|| {
        Error::BadRequest("`after` must be a cursor from this room, such as `42.3`.".into())
    })?;
    let uid = user.user.id;
    let room_id = reading::member_room(app.svc, slug, uid).await?;
    let activity = Activity::parse(state);
    app.live.seen(room_id, uid, activity, chat::now());
    // An active reader of the latest page has read what this poll delivers.
    let reads = latest == Some(true) && activity == Activity::Active;
    let mut token = app.live.token(room_id).ok_or(AppError::NotFound)?;
    let wait = Duration::from_secs(wait.unwrap_or(0).min(app.settings.poll.wait_max));
    if token == after && !wait.is_zero() {
        // Past the server-wide cap, the poll is answered at once instead of held.
        if let Some(_hold) = app.live.hold() {
            token = app.live.wait(room_id, after, wait).await.unwrap_or(token);
        }
    }
    if token == after {
        return Ok(EventsReply::Nothing);
    }
    // The reader may have been removed while the poll was held: nothing of the room (not even its
    // presence or cursor) goes to a non-member. In memory unless the membership changed.
    reading::member_room(app.svc, slug, uid).await?;
    let (changed, files) = if token.cursor > after.cursor {
        reading::changes(
            app.svc,
            room_id,
            (uid, &user.user.username),
            (after.cursor, token.cursor),
            CHANGES_PER_ANSWER + 1,
            reads,
        )
        .await?
    } else {
        (Vec::new(), Vec::new())
    };
    let more = changed.len() as i64 > CHANGES_PER_ANSWER;
    let mut changed = changed;
    changed.truncate(CHANGES_PER_ANSWER as usize);
    // With more to come, the cursor stops at the last change sent.
    let cursor = match (more, changed.last()) {
        (true, Some(last)) => Token {
            cursor: last.message.revision,
            presence: token.presence,
        },
        _ => token,
    };
    let messages = render(templates, cookies, changed, files, &user, slug).await?;
    Ok(EventsReply::Changed(Json(Events {
        cursor: cursor.to_string(),
        messages,
        presence: app.live.presence(room_id, chat::now()),
        more,
    })))
}

/// A message from the live page.
#[derive(Debug, Deserialize)]
struct NewMessage {
    body: String,
    client_id: Option<String>,
    /// Reply in the thread of this message.
    reply_to: Option<i64>,
}

#[allow(clippy::too_many_arguments)]
#[post("/rooms/<slug>/messages", data = "<message>")]
async fn post_message(
    slug: &str,
    message: Json<NewMessage>,
    _csrf_header: CsrfHeader,
    user: CurrentUser,
    app: App<'_>,
    templates: &State<Pages>,
    cookies: &CookieJar<'_>,
) -> Result<(Status, Json<MessageJson>)> {
    let message = message.into_inner();
    let posted = messages::post(
        app.svc,
        slug,
        &user.user,
        &message.body,
        pages::client_id(message.client_id),
        message.reply_to,
    )
    .await?;
    let mut rendered = render(templates, cookies, vec![posted], Vec::new(), &user, slug).await?;
    let json = rendered
        .pop()
        .ok_or_else(|| AppError::internal("answering a post", "nothing was rendered"))?;
    Ok((Status::Created, Json(json)))
}
