//! Exports of a room's whole history, as text or JSON, streamed in batches.

use rocket::http::{ContentType, Header};
use rocket::response::stream::TextStream;
use rocket::response::{self, Responder};
use rocket::{get, routes, Request, Route};

use super::error::Result;
use super::session::CurrentUser;
use super::view;
use super::App;
use crate::chat;
use crate::format;
use crate::service::{reading, Services};

/// The routes of this module.
pub fn routes() -> Vec<Route> {
    routes![export_text, export_json]
}

/// Messages read from the database per export batch.
const EXPORT_BATCH: i64 = 500;

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
    /// The words without the Markdown (JSON `text`).
    text: String,
    /// The message as written, Markdown and all: link targets, lists, quotes (the text export,
    /// JSON `body`, what an import needs).
    body: String,
    file: Option<(String, String)>,
    /// For a reply: the first message of its thread.
    parent_id: Option<i64>,
    /// Its reactions: each emoji with who gave it.
    reactions: Vec<serde_json::Value>,
}

/// Streams a room's messages in batches, so memory does not grow with the room.
fn export(
    app: &App<'_>,
    user: &CurrentUser,
    room: chat::rooms::Room,
    render: fn(&Line, bool) -> String,
    head: String,
    tail: &'static str,
) -> Box<dyn rocket::futures::Stream<Item = String> + Send> {
    let svc: Services = app.svc.clone();
    let public_url = app.settings.public_url.clone();
    let tz = user.user.tz();
    let reader_id = user.user.id;
    Box::new(rocket::async_stream::stream! {
        yield head;
        let mut after = 0;
        let mut first = true;
        loop {
            let room_id = room.id;
            let batch = reading::batch_after(&svc, room_id, reader_id, after, EXPORT_BATCH).await;
            let (posted, files) = match batch {
                Ok(batch) => batch,
                Err(e) => {
                    log::error!("exporting room {}: {}", room.slug, e.detail());
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
                    // To the microsecond, so that an import elsewhere keeps the order of a burst.
                    iso: m.created_at.and_utc().to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
                    edited: m.edited_at.is_some(),
                    deleted: m.deleted_at.is_some(),
                    text: format::message_text(&m.body),
                    body: m.body.clone(),
                    file,
                    parent_id: m.parent_id,
                    reactions: view::reaction_views(&p.reactions, "")
                        .into_iter()
                        .map(|r| serde_json::json!({ "emoji": r.emoji, "by": r.people }))
                        .collect(),
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
        out.push_str(&line.body.replace('\n', "\n    "));
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
        "parent_id": line.parent_id,
        "reactions": line.reactions,
        "text": if line.deleted { "" } else { line.text.as_str() },
        "body": if line.deleted { "" } else { line.body.as_str() },
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
    let room = reading::member_room_details(app.svc, slug, user.user.id).await?;
    let date = view::when(chat::now(), user.user.tz()).full;
    let (extension, content_type, stream) = if json {
        // What `confab import confab` needs to bring the room back, besides its messages.
        let head = format!(
            "{{\n\"room\": {},\n\"name\": {},\n\"description\": {},\n\"private\": {},\n\"from\": {},\n\"exported\": {},\n\"messages\": [",
            serde_json::json!(room.slug),
            serde_json::json!(room.name),
            serde_json::json!(room.description),
            room.is_private,
            serde_json::json!(app.settings.public_url),
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
