//! The HTML pages people chat in: the room list, a room's history, posting, editing, deleting,
//! joining and leaving. Everything here works with plain forms and no JavaScript.

use crate::web::template::Template;
use rocket::form::FromForm;
use rocket::http::Status;
use rocket::request::FlashMessage;
use rocket::response::{Flash, Redirect};
use rocket::{get, post, routes, Route};
use rocket_dyn_templates::context;

use super::session::{Csrf, CsrfForm, CsrfToken, CurrentUser};
use super::view::{self, Layout};
use super::{App, Reply};
use crate::chat::messages::{self, NotPosted, PageAt};
use crate::chat::{self, attachments, rooms, text};
use crate::error::{Error, Result};
use crate::live::Activity;

/// The routes of this module.
pub fn routes() -> Vec<Route> {
    routes![
        home,
        room,
        post_message,
        edit_page,
        edit_message,
        delete_message,
        join,
        leave
    ]
}

#[get("/")]
async fn home(
    user: CurrentUser,
    csrf: CsrfToken,
    flash: Option<FlashMessage<'_>>,
    app: App<'_>,
) -> Result<Template> {
    let uid = user.user.id;
    let (mine, joinable) = app
        .db
        .run(move |conn| Ok::<_, Error>((rooms::for_user(conn, uid)?, rooms::joinable(conn, uid)?)))
        .await?;
    let tz = user.user.tz();
    let unread_total: i64 = mine.iter().map(|r| r.unread).sum();
    let mine: Vec<_> = mine
        .into_iter()
        .map(|s| {
            let last = s.room.last_message_at.map(|at| view::when(at, tz));
            context! { room: s.room, unread: s.unread, last }
        })
        .collect();
    Ok(Template::render(
        "home",
        context! { layout: Layout::new(&user, &csrf, flash), rooms: mine, joinable, unread_total },
    ))
}

/// What a room page shows besides the history: a rejected post's text and error.
#[derive(Default)]
pub(super) struct Draft {
    /// The text that was refused.
    pub body: String,
    /// Why.
    pub error: Option<String>,
}

/// Renders a room page: one page of history, the forms, who is around.
pub(super) async fn render_room(
    app: &App<'_>,
    user: &CurrentUser,
    layout: Layout,
    slug: String,
    at: PageAt,
    draft: Draft,
) -> Result<Template> {
    let uid = user.user.id;
    let size = app.settings.page_size;
    let loaded = app
        .db
        .run(move |conn| {
            let (room, membership) = rooms::visible(conn, &slug, uid)?;
            let Some(membership) = membership else {
                return Ok::<_, Error>((room, None));
            };
            let mut page = messages::page(conn, room.id, at, size)?;
            let mut at = at;
            if matches!(at, PageAt::From(_)) && page.messages.is_empty() {
                at = PageAt::Latest;
                page = messages::page(conn, room.id, at, size)?;
            }
            if at == PageAt::Latest {
                if let Some(newest) = page.messages.last() {
                    rooms::mark_read(conn, room.id, uid, newest.message.id)?;
                }
            }
            let members = rooms::members(conn, room.id)?;
            let ids: Vec<i64> = page.messages.iter().map(|m| m.message.id).collect();
            let files = attachments::for_messages(conn, &ids)?;
            Ok((room, Some((membership, page, members, files, at))))
        })
        .await?;
    let (room, Some((membership, page, members, files, shown))) = loaded else {
        return Ok(Template::render(
            "room_join",
            context! { layout, room: loaded.0 },
        ));
    };
    let now = chat::now();
    app.live.load(&room.slug, room.id, room.cursor, members);
    app.live.seen(room.id, uid, Activity::Active, now);
    // The page's own cursor, read with its messages: never ahead of what the page shows.
    let presence_version = app.live.token(room.id).map_or(0, |t| t.presence);
    let token = crate::live::Token {
        cursor: room.cursor,
        presence: presence_version,
    }
    .to_string();
    let tz = user.user.tz();
    let presence: Vec<_> = app
        .live
        .presence(room.id, now)
        .into_iter()
        .map(|p| context! { username: p.username, state: p.state, last_seen: p.last_seen.map(|at| view::when(at, tz)) })
        .collect();
    let notice = (matches!(at, PageAt::From(_)) && shown == PageAt::Latest)
        .then_some("There are no messages on or after that day; here are the latest.");
    let marked = match at {
        PageAt::Around(id) => Some(id),
        _ => None,
    };
    let has_older = page.has_older;
    let has_newer = page.has_newer;
    let (shown_messages, views) = view::messages(
        page.messages,
        files,
        user,
        Some(membership.last_read_id),
        marked,
    )
    .await?;
    let older = has_older
        .then(|| shown_messages.first().map(|m| m.message.id))
        .flatten();
    let newer = has_newer
        .then(|| shown_messages.last().map(|m| m.message.id))
        .flatten();
    let s = app.settings;
    Ok(Template::render(
        "room",
        context! {
            layout,
            room,
            messages: views,
            older,
            newer,
            latest: shown == PageAt::Latest,
            notice,
            presence,
            token,
            poll: context! {
                min: s.poll_min, step: s.poll_step, max: s.poll_max, idle_after: s.idle_after, wait_max: s.poll_wait_max,
            },
            client_id: crate::secrets::random_token(),
            upload_client_id: crate::secrets::random_token(),
            draft: draft.body,
            error: draft.error,
            max_chars: s.max_message_chars,
            max_upload: view::size(i64::try_from(s.max_upload_bytes).unwrap_or(i64::MAX)),
        },
    ))
}

/// Which page of history the room page shows: `?before=<id>`, `?after=<id>`, `?around=<id>` or
/// `?date=YYYY-MM-DD` (a day in the reader's time zone).
#[derive(Debug, FromForm)]
struct Position {
    before: Option<i64>,
    after: Option<i64>,
    around: Option<i64>,
    date: Option<String>,
}

#[get("/rooms/<slug>?<position..>")]
async fn room(
    slug: String,
    position: Position,
    user: CurrentUser,
    csrf: CsrfToken,
    flash: Option<FlashMessage<'_>>,
    app: App<'_>,
) -> Result<Template> {
    let at = match position {
        Position {
            date: Some(date), ..
        } => {
            let day = chrono::NaiveDate::parse_from_str(date.trim(), "%Y-%m-%d")
                .map_err(|_| Error::Invalid("A date looks like 2026-11-23.".into()))?;
            PageAt::From(chat::search::day_start(day, user.user.tz()))
        }
        Position {
            around: Some(id), ..
        } => PageAt::Around(id),
        Position {
            before: Some(id), ..
        } => PageAt::Before(id),
        Position {
            after: Some(id), ..
        } => PageAt::After(id),
        _ => PageAt::Latest,
    };
    render_room(
        &app,
        &user,
        Layout::new(&user, &csrf, flash),
        slug,
        at,
        Draft::default(),
    )
    .await
}

#[derive(FromForm)]
struct MessageForm {
    body: String,
    client_id: Option<String>,
}

/// A form's one-time token is kept only if it looks like one we made.
pub(super) fn client_id(raw: Option<String>) -> Option<String> {
    raw.filter(|id| {
        (8..=64).contains(&id.len())
            && id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    })
}

/// Posts a message as `user` (form or live page alike) and wakes the room's pollers. Returns the
/// message as stored, without reading it back.
pub(super) async fn post_to_room(
    app: &App<'_>,
    slug: &str,
    user: &CurrentUser,
    body: &str,
    client_id: Option<String>,
) -> Result<messages::Posted> {
    let body = text::message_body(body, app.settings.max_message_chars)?;
    app.post_limits.take(user.user.id)?;
    let now = chat::now();
    let uid = user.user.id;
    let slug = slug.to_string();
    let result = app
        .db
        .write(move |conn| messages::post(conn, &slug, uid, &body, client_id.as_deref(), now))
        .await;
    let (stored, created) = NotPosted::into_stored(result)?;
    // A resend (a double click, a reload) is answered with the message as it was stored.
    if created {
        app.live.advance(stored.room_id, stored.cursor);
    }
    Ok(messages::Posted {
        message: stored.message,
        author: user.user.username.clone(),
    })
}

#[post("/rooms/<slug>/messages", data = "<form>")]
async fn post_message(
    slug: String,
    form: CsrfForm<MessageForm>,
    user: CurrentUser,
    csrf: CsrfToken,
    app: App<'_>,
) -> Result<Reply> {
    let form = form.0;
    match post_to_room(&app, &slug, &user, &form.body, client_id(form.client_id)).await {
        Ok(posted) => Ok(Reply::Redirect(Redirect::to(format!(
            "/rooms/{slug}#m{}",
            posted.message.id
        )))),
        // The page again, with the error and the draft kept.
        Err(e @ (Error::Invalid(_) | Error::RateLimited { .. })) => {
            let status = e.status();
            let draft = Draft {
                body: form.body,
                error: Some(e.to_string()),
            };
            let layout = Layout::new(&user, &csrf, None);
            let page = render_room(&app, &user, layout, slug, PageAt::Latest, draft).await?;
            Ok(Reply::Page((status, page)))
        }
        Err(e) => Err(e),
    }
}

async fn own_message(
    app: &App<'_>,
    slug: String,
    id: i64,
    uid: i64,
) -> Result<(rooms::Room, messages::Posted)> {
    app.db
        .run(move |conn| {
            let (room, _) = rooms::for_member(conn, &slug, uid)?;
            let message = messages::get(conn, room.id, id)?;
            Ok((room, message))
        })
        .await
}

#[get("/rooms/<slug>/messages/<id>/edit")]
async fn edit_page(
    slug: String,
    id: i64,
    user: CurrentUser,
    csrf: CsrfToken,
    app: App<'_>,
) -> Result<Template> {
    let (room, message) = own_message(&app, slug, id, user.user.id).await?;
    if message.message.author_id != user.user.id || message.message.deleted_at.is_some() {
        return Err(Error::Forbidden);
    }
    let body = message.message.body;
    Ok(Template::render(
        "edit",
        context! { layout: Layout::new(&user, &csrf, None), room, id, body },
    ))
}

#[derive(FromForm)]
struct EditForm {
    body: String,
}

#[post("/rooms/<slug>/messages/<id>/edit", data = "<form>")]
async fn edit_message(
    slug: String,
    id: i64,
    form: CsrfForm<EditForm>,
    user: CurrentUser,
    csrf: CsrfToken,
    app: App<'_>,
) -> Result<Reply> {
    let uid = user.user.id;
    let edited = match text::message_body(&form.0.body, app.settings.max_message_chars) {
        Ok(body) => {
            let slug = slug.clone();
            app.db
                .write(move |conn| {
                    let (room, _) = rooms::for_member(conn, &slug, uid)?;
                    messages::edit(conn, room.id, id, uid, &body, chat::now())?;
                    Ok((room.id, rooms::cursor(conn, room.id)?))
                })
                .await
        }
        Err(e) => Err(e),
    };
    match edited {
        Ok((room_id, cursor)) => {
            app.live.advance(room_id, cursor);
            Ok(Reply::Redirect(Redirect::to(format!(
                "/rooms/{slug}?around={id}#m{id}"
            ))))
        }
        Err(Error::Invalid(error)) => {
            let (room, _) = own_message(&app, slug, id, uid).await?;
            let page = Template::render(
                "edit",
                context! { layout: Layout::new(&user, &csrf, None), room, id, body: form.0.body, error },
            );
            Ok(Reply::Page((Status::UnprocessableEntity, page)))
        }
        Err(e) => Err(e),
    }
}

#[post("/rooms/<slug>/messages/<id>/delete", data = "<_form>")]
async fn delete_message(
    slug: String,
    id: i64,
    _form: Csrf,
    user: CurrentUser,
    app: App<'_>,
) -> Result<Flash<Redirect>> {
    let (uid, is_admin) = (user.user.id, user.user.is_admin);
    let room_slug = slug.clone();
    let (removed, room_id, cursor) = app
        .db
        .write(move |conn| {
            let (room, _) = rooms::for_member(conn, &room_slug, uid)?;
            let removed = messages::delete(conn, room.id, id, uid, is_admin, chat::now())?;
            Ok::<_, Error>((removed, room.id, rooms::cursor(conn, room.id)?))
        })
        .await?;
    app.live.advance(room_id, cursor);
    if let Some(attachment) = removed {
        if let Err(e) = app.store.remove(&attachment.stored_name).await {
            log::error!("removing the file of deleted message {id}: {e}");
        }
    }
    Ok(Flash::success(
        Redirect::to(format!("/rooms/{slug}?around={id}#m{id}")),
        "Message deleted.",
    ))
}

#[post("/rooms/<slug>/join", data = "<_form>")]
async fn join(slug: String, _form: Csrf, user: CurrentUser, app: App<'_>) -> Result<Redirect> {
    let uid = user.user.id;
    let room = app
        .db
        .write(move |conn| rooms::join(conn, &slug, uid, chat::now()))
        .await?;
    app.live.forget(room.id);
    Ok(Redirect::to(format!("/rooms/{}", room.slug)))
}

#[post("/rooms/<slug>/leave", data = "<_form>")]
async fn leave(
    slug: String,
    _form: Csrf,
    user: CurrentUser,
    app: App<'_>,
) -> Result<Flash<Redirect>> {
    let uid = user.user.id;
    let room = app
        .db
        .write(move |conn| {
            let (room, _) = rooms::for_member(conn, &slug, uid)?;
            rooms::remove_member(conn, room.id, uid)?;
            Ok::<_, Error>(room)
        })
        .await?;
    app.live.forget(room.id);
    Ok(Flash::success(
        Redirect::to("/"),
        format!("You left {}.", room.name),
    ))
}
