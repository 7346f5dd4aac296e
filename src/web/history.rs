//! Reading history later: search, "what you missed" with mark-as-read, and exports of a room.

use crate::web::template::Template;
use rocket::form::FromForm;
use rocket::http::{ContentType, Header};
use rocket::request::FlashMessage;
use rocket::response::stream::TextStream;
use rocket::response::{self, Flash, Redirect, Responder};
use rocket::{get, post, routes, Request, Route};
use rocket_dyn_templates::context;

use super::session::{Csrf, CsrfToken, CurrentUser};
use super::view::{self, Layout};
use super::App;
use crate::chat::{self, attachments, messages, rooms, search};
use crate::db::Db;
use crate::error::{Error, Result};
use crate::format;

/// The routes of this module.
pub fn routes() -> Vec<Route> {
    routes![
        search_page,
        missed,
        mark_room_read,
        mark_all_read,
        export_text,
        export_json
    ]
}

/// Results per search page.
const RESULTS_PER_PAGE: i64 = 25;
/// Unread messages shown per room on "what you missed"; the room itself has the rest.
const MISSED_PER_ROOM: i64 = 50;
/// Messages read from the database per export batch.
const EXPORT_BATCH: i64 = 500;

#[derive(Debug, FromForm)]
struct SearchForm {
    q: Option<String>,
    before: Option<i64>,
}

#[get("/search?<form..>")]
async fn search_page(
    form: SearchForm,
    user: CurrentUser,
    csrf: CsrfToken,
    app: App<'_>,
) -> Result<Template> {
    let layout = Layout::new(&user, &csrf, None);
    let raw = form.q.unwrap_or_default();
    let query = search::parse(&raw);
    let mut problems = query.problems.clone();
    if raw.trim().is_empty() {
        return Ok(Template::render(
            "search",
            context! { layout, q: raw, problems, searched: false },
        ));
    }
    if query.terms.is_empty() {
        problems.push(
            "Add a word or a \"quoted phrase\" to search for. Operators such as from:, in:, has:file, before: and after: only narrow a search down.".into(),
        );
        return Ok(Template::render(
            "search",
            context! { layout, q: raw, problems, searched: false },
        ));
    }
    let (uid, tz) = (user.user.id, user.user.tz());
    let run = query.clone();
    let before = form.before;
    let budget = search::Budget {
        timeout_ms: app.settings.search_timeout_ms,
        scan_rows: app.settings.search_scan_rows,
    };
    let hits = app
        .db
        .run(move |conn| search::search(conn, uid, &run, tz, before, RESULTS_PER_PAGE + 1, budget))
        .await?;
    let more = hits.len() as i64 > RESULTS_PER_PAGE;
    let words = query.highlight_words();
    let results: Vec<_> = hits
        .iter()
        .take(RESULTS_PER_PAGE as usize)
        .map(|hit| {
            let mut text = format::message_text(&hit.body);
            if let Some(name) = &hit.file_name {
                text = format!("{text} 📎 {name}").trim().to_string();
            }
            context! {
                id: hit.id,
                room_slug: &hit.room_slug,
                room_name: &hit.room_name,
                author: &hit.author,
                when: view::when(hit.created_at, tz),
                excerpt: format::excerpt(&text, &words, 240),
            }
        })
        .collect();
    let older = more
        .then(|| hits.get(RESULTS_PER_PAGE as usize - 1).map(|h| h.id))
        .flatten();
    Ok(Template::render(
        "search",
        context! { layout, q: &raw, q_encoded: view::encode_uri_component(&raw), problems, searched: true, results, older },
    ))
}

#[get("/missed")]
async fn missed(
    user: CurrentUser,
    csrf: CsrfToken,
    flash: Option<FlashMessage<'_>>,
    app: App<'_>,
) -> Result<Template> {
    let uid = user.user.id;
    let summaries = app.db.run(move |conn| rooms::for_user(conn, uid)).await?;
    let mut groups = Vec::new();
    for summary in summaries.into_iter().filter(|s| s.unread > 0) {
        let room = summary.room.clone();
        let (posted, files, last_read) = app
            .db
            .run(move |conn| {
                let (_, membership) = rooms::for_member(conn, &room.slug, uid)?;
                let posted =
                    messages::unread(conn, room.id, uid, membership.last_read_id, MISSED_PER_ROOM)?;
                let ids: Vec<i64> = posted.iter().map(|p| p.message.id).collect();
                Ok::<_, Error>((
                    posted,
                    attachments::for_messages(conn, &ids)?,
                    membership.last_read_id,
                ))
            })
            .await?;
        let shown = posted.len() as i64;
        let (_, views) = view::messages(posted, files, &user, Some(last_read), None).await?;
        groups.push(context! {
            room: summary.room,
            unread: summary.unread,
            more: summary.unread - shown,
            messages: views,
        });
    }
    Ok(Template::render(
        "missed",
        context! { layout: Layout::new(&user, &csrf, flash), groups },
    ))
}

#[post("/rooms/<slug>/read", data = "<_form>")]
async fn mark_room_read(
    slug: String,
    _form: Csrf,
    user: CurrentUser,
    app: App<'_>,
) -> Result<Flash<Redirect>> {
    let uid = user.user.id;
    let name = app
        .db
        .write(move |conn| {
            let (room, _) = rooms::for_member(conn, &slug, uid)?;
            let newest = messages::newest_id(conn, room.id)?;
            rooms::mark_read(conn, room.id, uid, newest)?;
            Ok::<_, Error>(room.name)
        })
        .await?;
    Ok(Flash::success(
        Redirect::to("/missed"),
        format!("{name} is marked read."),
    ))
}

#[post("/missed/read", data = "<_form>")]
async fn mark_all_read(_form: Csrf, user: CurrentUser, app: App<'_>) -> Result<Flash<Redirect>> {
    let uid = user.user.id;
    app.db
        .write(move |conn| {
            for (room, _) in rooms::memberships(conn, uid)? {
                let newest = messages::newest_id(conn, room.id)?;
                rooms::mark_read(conn, room.id, uid, newest)?;
            }
            Ok::<_, Error>(())
        })
        .await?;
    Ok(Flash::success(
        Redirect::to("/"),
        "Everything is marked read.",
    ))
}

/// A streamed download of a room's whole history.
struct Export {
    body: TextStream<std::pin::Pin<Box<dyn rocket::futures::Stream<Item = String> + Send>>>,
    content_type: ContentType,
    disposition: Header<'static>,
}

impl<'r> Responder<'r, 'r> for Export {
    fn respond_to(self, req: &'r Request<'_>) -> response::Result<'r> {
        let mut response = self.body.respond_to(req)?;
        response.set_header(self.content_type);
        response.set_header(self.disposition);
        Ok(response)
    }
}

/// One exported message, in the reader's time zone.
struct Line {
    id: i64,
    author: String,
    when: String,
    iso: String,
    edited: bool,
    deleted: bool,
    text: String,
    file: Option<(String, String)>,
}

/// Streams a room's messages in batches, so memory does not grow with the room.
fn export(
    app: &App<'_>,
    user: &CurrentUser,
    room: rooms::Room,
    render: fn(&Line, bool) -> String,
    head: String,
    tail: &'static str,
) -> Box<dyn rocket::futures::Stream<Item = String> + Send> {
    let db: Db = app.db.clone();
    let public_url = app.settings.public_url.clone();
    let tz = user.user.tz();
    Box::new(rocket::async_stream::stream! {
        yield head;
        let mut after = 0;
        let mut first = true;
        loop {
            let room_id = room.id;
            let batch = db
                .run(move |conn| {
                    let posted = messages::batch_after(conn, room_id, after, EXPORT_BATCH)?;
                    let ids: Vec<i64> = posted.iter().map(|p| p.message.id).collect();
                    Ok::<_, Error>((posted, attachments::for_messages(conn, &ids)?))
                })
                .await;
            let (posted, files) = match batch {
                Ok(batch) => batch,
                Err(e) => {
                    log::error!("exporting room {}: {e}", room.slug);
                    yield "\n[the export stopped early: the database did not answer]\n".to_string();
                    break;
                }
            };
            let Some(last) = posted.last() else { break };
            after = last.message.id;
            for p in &posted {
                let m = &p.message;
                let when = view::when(m.created_at, tz);
                let file = files.iter().find(|a| a.message_id == m.id).map(|a| {
                    (a.file_name.clone(), format!("{public_url}/files/{}/{}", a.id, view::encode_uri_component(&a.file_name)))
                });
                let line = Line {
                    id: m.id,
                    author: p.author.clone(),
                    when: when.full,
                    iso: when.iso,
                    edited: m.edited_at.is_some(),
                    deleted: m.deleted_at.is_some(),
                    text: format::message_text(&m.body),
                    file,
                };
                yield render(&line, first);
                first = false;
            }
        }
        yield tail.to_string();
    })
}

fn text_line(line: &Line, _first: bool) -> String {
    let mut out = format!("[{}] {}: ", line.when, line.author);
    if line.deleted {
        out.push_str("(message deleted)");
    } else {
        out.push_str(&line.text.replace('\n', "\n    "));
        if line.edited {
            out.push_str(" (edited)");
        }
    }
    if let Some((name, url)) = &line.file {
        out.push_str(&format!("\n    file: {name} <{url}>"));
    }
    out.push('\n');
    out
}

fn json_line(line: &Line, first: bool) -> String {
    let value = serde_json::json!({
        "id": line.id,
        "author": line.author,
        "created": line.iso,
        "edited": line.edited,
        "deleted": line.deleted,
        "text": if line.deleted { "" } else { line.text.as_str() },
        "file": line.file.as_ref().map(|(name, url)| serde_json::json!({ "name": name, "url": url })),
    });
    format!("{}\n  {value}", if first { "" } else { "," })
}

async fn export_room(
    slug: String,
    user: &CurrentUser,
    app: &App<'_>,
    json: bool,
) -> Result<Export> {
    let uid = user.user.id;
    let (room, _) = app
        .db
        .run(move |conn| rooms::for_member(conn, &slug, uid))
        .await?;
    let date = view::when(chat::now(), user.user.tz()).full;
    let (extension, content_type, stream) = if json {
        let head = format!(
            "{{\n\"room\": {},\n\"exported\": {},\n\"messages\": [",
            serde_json::json!(room.slug),
            serde_json::json!(date)
        );
        (
            "json",
            ContentType::JSON,
            export(app, user, room.clone(), json_line, head, "\n]\n}\n"),
        )
    } else {
        let head = format!("{} (/rooms/{}), exported {date}\n\n", room.name, room.slug);
        (
            "txt",
            ContentType::Plain,
            export(app, user, room.clone(), text_line, head, ""),
        )
    };
    Ok(Export {
        body: TextStream::from(Box::into_pin(stream)),
        content_type,
        disposition: Header::new(
            "Content-Disposition",
            format!("attachment; filename=\"{}.{extension}\"", room.slug),
        ),
    })
}

#[get("/rooms/<slug>/export.txt")]
async fn export_text(slug: String, user: CurrentUser, app: App<'_>) -> Result<Export> {
    export_room(slug, &user, &app, false).await
}

#[get("/rooms/<slug>/export.json")]
async fn export_json(slug: String, user: CurrentUser, app: App<'_>) -> Result<Export> {
    export_room(slug, &user, &app, true).await
}
