//! The HTML pages people chat in: the room list, a room's history, posting, editing, deleting,
//! joining and leaving. Everything here works with plain forms and no JavaScript.

use crate::web::template::Template;
use rocket::form::FromForm;
use rocket::http::Status;
use rocket::request::FlashMessage;
use rocket::response::{Flash, Redirect};
use rocket::{get, post, routes, Route};
use rocket_dyn_templates::context;

use super::error::{AppError, Error, Result};
use super::session::{Csrf, CsrfForm, CsrfToken, CurrentUser};
use super::view::{self, Layout, Sidebar};
use super::{App, Reply};
use crate::chat;
use crate::chat::messages::PageAt;
use crate::service::reading::{self, RoomView};
use crate::service::{messages, rooms};

/// The routes of this module.
pub fn routes() -> Vec<Route> {
    routes![
        home,
        room,
        post_message,
        edit_page,
        edit_message,
        delete_page,
        delete_message,
        join,
        leave,
        help,
        thread,
        reactions_page,
        react,
        pin,
        save,
        pinned_page,
        saved_page,
        new_direct,
        open_direct
    ]
}

#[get("/")]
async fn home(
    user: CurrentUser,
    csrf: CsrfToken,
    flash: Option<FlashMessage<'_>>,
    app: App<'_>,
) -> Result<Template> {
    let lists = reading::home(app.svc, &user.user, None).await?;
    let layout = Layout::new(&user, &csrf, flash).with_sidebar(Sidebar::new(
        app.pages,
        &user.user.username,
        &lists,
        None,
    )?);
    let reading::RoomLists { mine, joinable } = lists;
    let tz = user.user.tz();
    let unread_total: i64 = mine.iter().map(|r| r.unread).sum();
    let unread_more = mine.iter().any(|r| r.unread_more);
    let mine: Vec<_> = mine
        .into_iter()
        .map(|s| {
            let last = s.room.last_message_at.map(|at| view::when(at, tz));
            let title = s.room.title_for(&user.user.username);
            context! { room: s.room, title, unread: s.unread, more: s.unread_more, last }
        })
        .collect();
    Ok(Template::render(
        "home",
        context! { layout, rooms: mine, joinable, unread_total, unread_more },
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

/// Renders a room page: one page of history, the forms, who is around, and the sidebar (read after
/// the page marked its messages read).
pub(super) async fn render_room(
    app: &App<'_>,
    user: &CurrentUser,
    layout: Layout,
    slug: String,
    at: PageAt,
    draft: Draft,
) -> Result<Template> {
    let sizes = (app.settings.page_size, view::SIDEBAR_JOINABLE);
    let (view, lists) = reading::room_page(app.svc, slug.clone(), &user.user, at, sizes).await?;
    let layout = layout.with_sidebar(Sidebar::new(
        app.pages,
        &user.user.username,
        &lists,
        Some(&slug),
    )?);
    let page = match view {
        RoomView::NotMember(room) => {
            return Ok(Template::render("room_join", context! { layout, room }));
        }
        RoomView::Member(page) => *page,
    };
    let reading::RoomPage {
        room,
        last_read_id,
        page,
        files,
        shown,
        pinned,
    } = page;
    let pinned: Vec<_> = pinned
        .iter()
        .map(|p| context! { id: p.message.id, author: &p.author, text: view::one_line(&p.message.body, 120) })
        .collect();
    let now = chat::now();
    // The page's own cursor, read with its messages: never ahead of what the page shows.
    let presence_version = app.live.token(room.id).map_or(0, |t| t.presence);
    let token = crate::live::Token {
        cursor: room.cursor,
        presence: presence_version,
    }
    .to_string();
    let tz = user.user.tz();
    let today = crate::format::today(tz, now);
    let presence: Vec<_> = app
        .live
        .presence(room.id, now)
        .into_iter()
        .map(|p| view::PresenceView {
            me: p.username == user.user.username,
            // Only the away show when they were last seen.
            last_seen: p
                .last_seen
                .filter(|_| p.state == "away")
                .map(|at| crate::format::when_on(at, tz, today).relative),
            username: p.username,
            state: p.state,
        })
        .collect();
    let members = presence.len();
    let presence = app
        .pages
        .fragment(
            "presence",
            &view::PresenceList {
                presence: &presence,
            },
        )
        .map_err(|e| AppError::internal("rendering the member list", e))?;
    let notice = (matches!(at, PageAt::From(_)) && shown == PageAt::Latest)
        .then_some("There are no messages on or after that day; here are the latest.");
    let marked = match at {
        PageAt::Around(id) => Some(id),
        _ => None,
    };
    let has_older = page.has_older;
    let has_newer = page.has_newer;
    let (shown_messages, views) =
        view::messages(page.messages, files, user, Some(last_read_id), marked).await?;
    let older = has_older
        .then(|| shown_messages.first().map(|m| m.message.id))
        .flatten();
    let newer = has_newer
        .then(|| shown_messages.last().map(|m| m.message.id))
        .flatten();
    // Each message's `<li>` comes from the memo of rendered messages; the page places the list
    // whole, so the template's work does not grow with the messages.
    let mut messages = String::new();
    for m in &views {
        view::list_headings(&mut messages, m);
        app.pages
            .write_message(&mut messages, m, &room.slug, &layout.csrf)
            .map_err(|e| AppError::internal("rendering a message", e))?;
        messages.push('\n');
    }
    let s = app.settings;
    Ok(Template::render(
        "room",
        context! {
            layout,
            title: room.title_for(&user.user.username),
            direct: room.is_direct(),
            room,
            older,
            newer,
            latest: shown == PageAt::Latest,
            notice,
            members,
            presence: view::Html::from(presence),
            pinned,
            token,
            poll: context! {
                min: s.poll.min, step: s.poll.step, max: s.poll.max, idle_after: s.poll.idle_after, wait_max: s.poll.wait_max,
            },
            client_id: crate::secrets::random_token(),
            upload_client_id: crate::secrets::random_token(),
            draft: draft.body,
            error: draft.error,
            max_chars: s.max_message_chars,
            max_upload: view::size(i64::try_from(s.uploads.max_bytes).unwrap_or(i64::MAX)),
        },
    )
    .with_html("messages", messages))
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
                .map_err(|_| Error::invalid("A date looks like 2026-11-23."))?;
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
    /// Reply in the thread of this message (the thread page's form).
    reply_to: Option<i64>,
}

/// The room page around message `id` of room `slug`, scrolled to it.
fn permalink(slug: &str, id: i64) -> String {
    format!("/rooms/{slug}?around={id}#m{id}")
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

#[post("/rooms/<slug>/messages", data = "<form>")]
async fn post_message(
    slug: String,
    form: CsrfForm<MessageForm>,
    user: CurrentUser,
    csrf: CsrfToken,
    app: App<'_>,
) -> Result<Reply> {
    let form = form.0;
    match messages::post(
        app.svc,
        &slug,
        &user.user,
        &form.body,
        client_id(form.client_id),
        form.reply_to,
    )
    .await
    {
        Ok(posted) => Ok(Reply::Redirect(Redirect::to(
            match posted.message.parent_id {
                Some(thread) => format!(
                    "/rooms/{slug}/messages/{thread}/thread#m{}",
                    posted.message.id
                ),
                None => format!("/rooms/{slug}#m{}", posted.message.id),
            },
        ))),
        // The page again, with the error and the draft kept.
        Err(e @ (AppError::Invalid(_) | AppError::RateLimited { .. })) => {
            let error = Some(e.to_string());
            let status = Error::from(e).status();
            let draft = Draft {
                body: form.body,
                error,
            };
            let layout = Layout::new(&user, &csrf, None);
            let page = match form.reply_to {
                Some(id) => render_thread(&app, &user, layout, slug, id, None, draft).await?,
                None => render_room(&app, &user, layout, slug, PageAt::Latest, draft).await?,
            };
            Ok(Reply::Page((status, page)))
        }
        Err(e) => Err(e.into()),
    }
}

#[get("/rooms/<slug>/messages/<id>/edit")]
async fn edit_page(
    slug: String,
    id: i64,
    user: CurrentUser,
    csrf: CsrfToken,
    app: App<'_>,
) -> Result<Template> {
    let (room, message) = messages::editable(app.svc, slug, id, user.user.id).await?;
    let body = message.message.body;
    Ok(Template::render(
        "edit",
        context! { layout: Layout::load(&app, &user, &csrf, None, Some(&room.slug)).await?, room, id, body },
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
    match messages::edit(app.svc, slug.clone(), id, uid, &form.0.body).await {
        Ok(()) => Ok(Reply::Redirect(Redirect::to(permalink(&slug, id)))),
        Err(AppError::Invalid(error)) => {
            let (room, _) = messages::find(app.svc, slug, id, uid).await?;
            let page = Template::render(
                "edit",
                context! { layout: Layout::load(&app, &user, &csrf, None, Some(&room.slug)).await?, room, id, body: form.0.body, error },
            );
            Ok(Reply::Page((Status::UnprocessableEntity, page)))
        }
        Err(e) => Err(e.into()),
    }
}

/// Asks before deleting (the no-JavaScript path; the live page asks in a dialog).
#[get("/rooms/<slug>/messages/<id>/delete")]
async fn delete_page(
    slug: String,
    id: i64,
    user: CurrentUser,
    csrf: CsrfToken,
    app: App<'_>,
) -> Result<Template> {
    let (room, message, file) = messages::deletable(app.svc, slug, id, &user.user).await?;
    let text: String = crate::format::message_text(&message.message.body)
        .chars()
        .take(500)
        .collect();
    Ok(Template::render(
        "delete",
        context! {
            layout: Layout::load(&app, &user, &csrf, None, Some(&room.slug)).await?,
            room,
            id,
            author: message.author,
            posted: view::when(message.message.created_at, user.user.tz()),
            text,
            file: file.map(|f| f.file_name),
        },
    ))
}

#[post("/rooms/<slug>/messages/<id>/delete", data = "<_form>")]
async fn delete_message(
    slug: String,
    id: i64,
    _form: Csrf,
    user: CurrentUser,
    app: App<'_>,
) -> Result<Flash<Redirect>> {
    messages::delete(app.svc, slug.clone(), id, &user.user).await?;
    Ok(Flash::success(
        Redirect::to(permalink(&slug, id)),
        "Message deleted.",
    ))
}

#[post("/rooms/<slug>/join", data = "<_form>")]
async fn join(slug: String, _form: Csrf, user: CurrentUser, app: App<'_>) -> Result<Redirect> {
    let room = rooms::join(app.svc, slug, user.user.id).await?;
    Ok(Redirect::to(format!("/rooms/{}", room.slug)))
}

#[post("/rooms/<slug>/leave", data = "<_form>")]
async fn leave(
    slug: String,
    _form: Csrf,
    user: CurrentUser,
    app: App<'_>,
) -> Result<Flash<Redirect>> {
    let room = rooms::leave(app.svc, slug, user.user.id).await?;
    Ok(Flash::success(
        Redirect::to("/"),
        format!("You left {}.", room.name),
    ))
}

/// Keyboard shortcuts, writing and searching, on one page.
#[get("/help")]
async fn help(user: CurrentUser, csrf: CsrfToken, app: App<'_>) -> Result<Template> {
    let layout = Layout::load(&app, &user, &csrf, None, None).await?;
    Ok(Template::render("help", context! { layout }))
}

/// Renders a thread: its first message, a page of replies, and a composer that replies.
pub(super) async fn render_thread(
    app: &App<'_>,
    user: &CurrentUser,
    layout: Layout,
    slug: String,
    id: i64,
    before: Option<i64>,
    draft: Draft,
) -> Result<Template> {
    let size = app.settings.page_size;
    let thread = reading::thread(app.svc, slug, user.user.id, id, before, size).await?;
    let layout = layout.with_sidebar(Sidebar::load(app, user, Some(&thread.room.slug)).await?);
    let reading::Thread {
        room,
        root,
        replies,
        has_older,
        files,
    } = thread;
    let (_, root_view) = view::messages(vec![root], files.clone(), user, None, None).await?;
    let (shown, reply_views) = view::messages(replies, files, user, None, None).await?;
    let older = has_older
        .then(|| shown.first().map(|m| m.message.id))
        .flatten();
    let s = app.settings;
    Ok(Template::render(
        "thread",
        context! {
            layout,
            room,
            root: root_view.into_iter().next(),
            messages: reply_views,
            older,
            client_id: crate::secrets::random_token(),
            draft: draft.body,
            error: draft.error,
            max_chars: s.max_message_chars,
        },
    ))
}

/// A thread: `/rooms/<slug>/messages/<id>/thread` (a reply's id shows the thread it is in), paged
/// back with `?before=<reply id>`.
#[get("/rooms/<slug>/messages/<id>/thread?<before>")]
async fn thread(
    slug: String,
    id: i64,
    before: Option<i64>,
    user: CurrentUser,
    csrf: CsrfToken,
    flash: Option<FlashMessage<'_>>,
    app: App<'_>,
) -> Result<Template> {
    let layout = Layout::new(&user, &csrf, flash);
    render_thread(&app, &user, layout, slug, id, before, Draft::default()).await
}

/// Who reacted to a message, and forms to react (the no-JavaScript path).
#[get("/rooms/<slug>/messages/<id>/reactions")]
async fn reactions_page(
    slug: String,
    id: i64,
    user: CurrentUser,
    csrf: CsrfToken,
    app: App<'_>,
) -> Result<Template> {
    let (room, message) = messages::with_reactions(app.svc, slug, id, user.user.id).await?;
    let text: String = crate::format::message_text(&message.message.body)
        .chars()
        .take(300)
        .collect();
    Ok(Template::render(
        "reactions",
        context! {
            layout: Layout::load(&app, &user, &csrf, None, Some(&room.slug)).await?,
            room,
            id,
            author: &message.author,
            text,
            deleted: message.message.deleted_at.is_some(),
            reactions: view::reaction_views(&message.reactions, &user.user.username),
            quick: chat::reactions::QUICK,
        },
    ))
}

#[derive(FromForm)]
struct ReactionForm {
    emoji: String,
}

/// Adds or takes back a reaction, then shows the message again.
#[post("/rooms/<slug>/messages/<id>/reactions", data = "<form>")]
async fn react(
    slug: String,
    id: i64,
    form: CsrfForm<ReactionForm>,
    user: CurrentUser,
    app: App<'_>,
) -> Result<Redirect> {
    messages::react(app.svc, slug.clone(), id, &user.user, &form.0.emoji).await?;
    Ok(Redirect::to(permalink(&slug, id)))
}

/// Pins a message to its room for everyone, or unpins it.
#[post("/rooms/<slug>/messages/<id>/pin", data = "<_form>")]
async fn pin(
    slug: String,
    id: i64,
    _form: Csrf,
    user: CurrentUser,
    app: App<'_>,
) -> Result<Flash<Redirect>> {
    let pinned = messages::pin(app.svc, slug.clone(), id, user.user.id).await?;
    let back = Redirect::to(permalink(&slug, id));
    Ok(Flash::success(
        back,
        if pinned {
            "Pinned to the room."
        } else {
            "Unpinned."
        },
    ))
}

/// Saves a message on my own list, or takes it off.
#[post("/rooms/<slug>/messages/<id>/save", data = "<_form>")]
async fn save(
    slug: String,
    id: i64,
    _form: Csrf,
    user: CurrentUser,
    app: App<'_>,
) -> Result<Flash<Redirect>> {
    let saved = messages::save(app.svc, slug.clone(), id, user.user.id).await?;
    let back = Redirect::to(permalink(&slug, id));
    Ok(Flash::success(
        back,
        if saved {
            "Saved: find it under Saved."
        } else {
            "Removed from your saved messages."
        },
    ))
}

/// A room's pinned messages, most recently pinned first.
#[get("/rooms/<slug>/pinned")]
async fn pinned_page(
    slug: String,
    user: CurrentUser,
    csrf: CsrfToken,
    app: App<'_>,
) -> Result<Template> {
    let (room, pinned, files) = reading::pinned(app.svc, slug, user.user.id).await?;
    let (_, messages) = view::messages(pinned, files, &user, None, None).await?;
    Ok(Template::render(
        "pinned",
        context! { layout: Layout::load(&app, &user, &csrf, None, Some(&room.slug)).await?, room, messages },
    ))
}

/// How many saved messages the Saved page lists.
const SAVED_SHOWN: i64 = 200;

/// My saved messages, most recently saved first, with their rooms.
#[get("/saved")]
async fn saved_page(
    user: CurrentUser,
    csrf: CsrfToken,
    flash: Option<FlashMessage<'_>>,
    app: App<'_>,
) -> Result<Template> {
    let (posted, rooms) = reading::saved(app.svc, user.user.id, SAVED_SHOWN).await?;
    let (_, views) = view::messages(posted, Vec::new(), &user, None, None).await?;
    let items: Vec<_> = views
        .into_iter()
        .zip(rooms)
        .map(|(mut m, (slug, name))| {
            // Each stands alone under its room's name: no grouping across rooms.
            m.continued = false;
            context! { m, room: context! { slug, name } }
        })
        .collect();
    Ok(Template::render(
        "saved",
        context! { layout: Layout::load(&app, &user, &csrf, flash, None).await?, items },
    ))
}

/// The form that starts a direct conversation (`?with=<username>` fills it in).
#[get("/direct/new?<with>")]
async fn new_direct(
    with: Option<String>,
    user: CurrentUser,
    csrf: CsrfToken,
    app: App<'_>,
) -> Result<Template> {
    let layout = Layout::load(&app, &user, &csrf, None, None).await?;
    let usernames = with.unwrap_or_default();
    let max_others = app.settings.direct_max_members - 1;
    Ok(Template::render(
        "direct_new",
        context! { layout, usernames, max_others, error: None::<String> },
    ))
}

#[derive(FromForm)]
struct DirectForm {
    usernames: String,
}

/// Opens the direct conversation with the people named: the existing one, or a new one.
#[post("/direct", data = "<form>")]
async fn open_direct(
    form: CsrfForm<DirectForm>,
    user: CurrentUser,
    csrf: CsrfToken,
    app: App<'_>,
) -> Result<Reply> {
    match rooms::direct(app.svc, &user.user, &form.0.usernames).await {
        Ok(room) => Ok(Reply::Redirect(Redirect::to(format!(
            "/rooms/{}#compose",
            room.slug
        )))),
        Err(AppError::Invalid(error)) => {
            let layout = Layout::load(&app, &user, &csrf, None, None).await?;
            let max_others = app.settings.direct_max_members - 1;
            let page = Template::render(
                "direct_new",
                context! { layout, usernames: form.0.usernames, max_others, error },
            );
            Ok(Reply::Page((Status::UnprocessableEntity, page)))
        }
        Err(e) => Err(e.into()),
    }
}
