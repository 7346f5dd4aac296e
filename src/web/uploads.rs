//! Sharing files: the multipart upload form (streamed with multer straight to a temporary file,
//! never held in memory) and members-only downloads with ETags and byte ranges.

use std::io::SeekFrom;

use rocket::data::{Data, ToByteUnit};
use rocket::http::{ContentType, CookieJar, Header, Status};
use rocket::request::{FromRequest, Outcome};
use rocket::response::{self, Redirect, Responder};
use rocket::{get, post, routes, Request, Response, Route, State};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncSeekExt, AsyncWriteExt, BufWriter};
use tokio_util::io::ReaderStream;

use super::session::{verify_csrf, CsrfToken, CurrentUser};
use super::view::Layout;
use super::{pages, App, Reply};
use crate::chat::attachments::{self, NewFile};
use crate::chat::messages::{self, NotPosted, PageAt};
use crate::chat::{self, rooms, text};
use crate::db::Db;
use crate::error::{Error, Result};
use crate::files::{self, FileStore, TempUpload};
use crate::live::Live;

/// The routes of this module.
pub fn routes() -> Vec<Route> {
    routes![upload, download, thumbnail]
}

/// Room in the request for the small fields and the multipart framing around the file.
const FORM_OVERHEAD: u64 = 256 * 1024;
/// How many leading bytes are kept to detect the content type.
const SNIFF_BYTES: usize = 8192;

/// A file that has streamed in completely.
struct Received {
    temp: TempUpload,
    file_name: String,
    stored_name: String,
    size: u64,
    sha256: String,
    head: Vec<u8>,
}

/// What the form sent besides the file.
#[derive(Default)]
struct Fields {
    csrf_checked: bool,
    client_id: Option<String>,
    caption: String,
}

fn multipart_error(e: multer::Error) -> Error {
    match e {
        multer::Error::FieldSizeExceeded { .. } | multer::Error::StreamSizeExceeded { .. } => {
            Error::TooLarge
        }
        other => Error::BadRequest(format!(
            "The upload was incomplete or malformed ({other}). Please try again."
        )),
    }
}

/// Waits for the next piece of an upload, for at most `idle`: a client that stops sending is
/// answered 408 and its partial file removed, instead of holding a connection and a file forever.
async fn stalls_after<T>(
    idle: std::time::Duration,
    next: impl std::future::Future<Output = T>,
) -> Result<T> {
    tokio::time::timeout(idle, next)
        .await
        .map_err(|_| Error::Stalled)
}

async fn receive_file(
    field: &mut multer::Field<'_>,
    store: &FileStore,
    idle: std::time::Duration,
) -> Result<Received> {
    let file_name = text::file_name(field.file_name().unwrap_or(""));
    let stored_name = FileStore::new_stored_name();
    let (created, temp) = store
        .create_temp(&stored_name)
        .await
        .map_err(|e| Error::Internal(format!("creating an upload file: {e}")))?;
    let mut out = BufWriter::with_capacity(256 * 1024, created);
    let mut hasher = Sha256::new();
    let mut head = Vec::with_capacity(SNIFF_BYTES);
    let mut size: u64 = 0;
    while let Some(chunk) = stalls_after(idle, field.chunk())
        .await?
        .map_err(multipart_error)?
    {
        hasher.update(&chunk);
        size += chunk.len() as u64;
        if head.len() < SNIFF_BYTES {
            let take = (SNIFF_BYTES - head.len()).min(chunk.len());
            head.extend_from_slice(&chunk[..take]);
        }
        out.write_all(&chunk)
            .await
            .map_err(|e| Error::Internal(format!("writing an upload: {e}")))?;
    }
    out.flush()
        .await
        .map_err(|e| Error::Internal(format!("writing an upload: {e}")))?;
    out.into_inner()
        .sync_data()
        .await
        .map_err(|e| Error::Internal(format!("writing an upload: {e}")))?;
    if size == 0 && field.file_name().is_none_or(str::is_empty) {
        return Err(Error::Invalid("Choose a file to upload.".into()));
    }
    Ok(Received {
        temp,
        file_name,
        stored_name,
        size,
        sha256: hex::encode(hasher.finalize()),
        head,
    })
}

#[allow(clippy::too_many_arguments)]
#[post("/rooms/<slug>/files", data = "<data>")]
async fn upload(
    slug: String,
    content_type: Option<&ContentType>,
    data: Data<'_>,
    user: CurrentUser,
    csrf: CsrfToken,
    cookies: &CookieJar<'_>,
    app: App<'_>,
) -> Result<Reply> {
    let (db, store, settings) = (app.db, app.store, app.settings);
    let uid = user.user.id;
    let boundary = content_type
        .filter(|ct| ct.is_form_data())
        .and_then(|ct| {
            ct.params()
                .find(|(key, _)| key == "boundary")
                .map(|(_, value)| value.to_string())
        })
        .ok_or_else(|| {
            Error::BadRequest("An upload must be sent as multipart/form-data.".into())
        })?;
    // Only members may send a file at all: nothing is written for anyone else.
    let room_slug = slug.clone();
    db.run(move |conn| rooms::for_member(conn, &room_slug, uid))
        .await?;
    app.post_limits.take(uid)?;

    let max = settings.max_upload_bytes;
    let stream =
        ReaderStream::with_capacity(data.open((max + 2 * FORM_OVERHEAD).bytes()), 64 * 1024);
    let limits = multer::SizeLimit::new()
        .whole_stream(max + FORM_OVERHEAD)
        .per_field(16 * 1024)
        .for_field("file", max)
        .for_field("body", (settings.max_message_chars as u64) * 4 + 1024);
    let constraints = multer::Constraints::new()
        .allowed_fields(vec!["csrf", "client_id", "body", "file"])
        .size_limit(limits);
    let mut multipart = multer::Multipart::with_constraints(stream, boundary, constraints);

    let mut fields = Fields::default();
    let mut received = None;
    let idle = std::time::Duration::from_secs(settings.upload_idle_secs);
    while let Some(mut field) = stalls_after(idle, multipart.next_field())
        .await?
        .map_err(multipart_error)?
    {
        match field.name() {
            Some("csrf") => {
                let sent = stalls_after(idle, field.text())
                    .await?
                    .map_err(multipart_error)?;
                verify_csrf(cookies, &sent)?;
                fields.csrf_checked = true;
            }
            Some("client_id") => {
                fields.client_id = Some(
                    stalls_after(idle, field.text())
                        .await?
                        .map_err(multipart_error)?,
                )
            }
            Some("body") => {
                fields.caption = stalls_after(idle, field.text())
                    .await?
                    .map_err(multipart_error)?
            }
            Some("file") => {
                // The token must come first, so that a forged form never reaches the disk.
                if !fields.csrf_checked {
                    return Err(Error::CsrfExpired);
                }
                if received.is_some() {
                    return Err(Error::BadRequest("One file per upload, please.".into()));
                }
                received = Some(receive_file(&mut field, store, idle).await?);
            }
            _ => {}
        }
    }
    if !fields.csrf_checked {
        return Err(Error::CsrfExpired);
    }
    let stored = match received {
        Some(received) => Ok(received),
        None => Err(Error::Invalid("Choose a file to upload.".into())),
    };
    let posted = match stored
        .and_then(|r| text::caption(&fields.caption, settings.max_message_chars).map(|c| (r, c)))
    {
        Ok((received, caption)) => {
            store_upload(
                &app,
                &slug,
                uid,
                received,
                caption,
                pages::client_id(fields.client_id),
            )
            .await
        }
        Err(e) => Err(e),
    };
    match posted {
        Ok(id) => Ok(Reply::Redirect(Redirect::to(format!(
            "/rooms/{slug}#m{id}"
        )))),
        Err(Error::Invalid(error)) => {
            let layout = Layout::new(&user, &csrf, None);
            let draft = pages::Draft {
                body: String::new(),
                error: Some(error),
            };
            let page = pages::render_room(&app, &user, layout, slug, PageAt::Latest, draft).await?;
            Ok(Reply::Page((Status::UnprocessableEntity, page)))
        }
        Err(e) => Err(e),
    }
}

/// Commits a received file as a message, then moves it into place and starts its thumbnail.
async fn store_upload(
    app: &App<'_>,
    slug: &str,
    uid: i64,
    received: Received,
    caption: String,
    client_id: Option<String>,
) -> Result<i64> {
    let (db, store) = (app.db, app.store);
    let temp_path = store.temp_path(&received.stored_name);
    let head = received.head;
    let (content_type, dimensions) = super::blocking(move || {
        let content_type = files::detect_content_type(&head);
        let dimensions = content_type
            .starts_with("image/")
            .then(|| files::image_dimensions(&temp_path))
            .flatten();
        Ok((content_type, dimensions))
    })
    .await?;
    let is_image = files::shown_inline(&content_type);
    let file = NewFile {
        file_name: received.file_name,
        stored_name: received.stored_name.clone(),
        content_type,
        size: i64::try_from(received.size).map_err(|_| Error::TooLarge)?,
        sha256: received.sha256,
        dimensions,
    };
    let now = chat::now();
    let (slug, stored) = (slug.to_string(), file.clone());
    let result = db
        .write(move |conn| {
            attachments::post(
                conn,
                &slug,
                uid,
                &caption,
                client_id.as_deref(),
                &stored,
                now,
            )
        })
        .await;
    let (
        messages::Stored {
            room_id,
            id,
            cursor,
            ..
        },
        created,
    ) = NotPosted::into_stored(result)?;
    if !created {
        // A resubmitted form: the first copy's file is the one kept; this one goes with `received.temp`.
        return Ok(id);
    }
    received.temp.keep();
    let finished = store.finish(&file.stored_name).await;
    app.live.advance(room_id, cursor);
    if let Err(e) = finished {
        // The row is committed; the sweep moves the file into place later.
        log::error!("moving upload {} into place: {e}", file.stored_name);
        return Ok(id);
    }
    if is_image {
        spawn_thumbnail(
            db.clone(),
            store.clone(),
            app.live.clone(),
            file.stored_name,
        );
    }
    Ok(id)
}

/// Makes a thumbnail off the request path, then records it.
fn spawn_thumbnail(db: Db, store: FileStore, live: Live, stored_name: String) {
    tokio::spawn(async move {
        let maker = store.clone();
        let name = stored_name.clone();
        let made = super::blocking(move || Ok(maker.make_thumbnail(&name)))
            .await
            .ok()
            .flatten();
        let Some(content_type) = made else { return };
        let name = stored_name.clone();
        match db
            .write(move |conn| attachments::set_thumbnail(conn, &name, content_type))
            .await
        {
            Ok(Some((room_id, cursor))) => live.advance(room_id, cursor),
            // The message was deleted meanwhile: its thumbnail goes too.
            Ok(None) => {
                let _ = store.remove(&stored_name).await;
            }
            Err(e) => log::warn!("recording the thumbnail of {stored_name}: {e}"),
        }
    });
}

/// The request headers a download answers to.
struct Conditions {
    range: Option<String>,
    if_none_match: Option<String>,
}

#[rocket::async_trait]
impl<'r> FromRequest<'r> for Conditions {
    type Error = std::convert::Infallible;

    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, Self::Error> {
        let header = |name| req.headers().get_one(name).map(str::to_string);
        Outcome::Success(Conditions {
            range: header("Range"),
            if_none_match: header("If-None-Match"),
        })
    }
}

/// What a download sends.
enum Sending {
    /// The client's copy is current (ETag matched).
    NotModified,
    /// The whole file.
    Whole(tokio::fs::File),
    /// One byte range of it.
    Part {
        body: tokio::io::Take<tokio::fs::File>,
        start: u64,
        end: u64,
    },
    /// A range outside the file.
    Unsatisfiable,
}

/// A stored file sent to a member, with the headers that keep browsers from running it.
struct FileReply {
    sending: Sending,
    size: u64,
    content_type: String,
    disposition: String,
    etag: String,
}

/// Parses a single `bytes=` range against a file size; `Some(Err)` means unsatisfiable, `None`
/// means "send the whole file" (no range, a malformed one, or several).
fn parse_range(header: &str, size: u64) -> Option<Result<(u64, u64), ()>> {
    let spec = header.trim().strip_prefix("bytes=")?;
    if spec.contains(',') {
        return None;
    }
    let (start, end) = spec.split_once('-')?;
    let last = size.checked_sub(1);
    let range = match (start.trim(), end.trim()) {
        ("", suffix) => {
            let n: u64 = suffix.parse().ok()?;
            last.filter(|_| n > 0)
                .map(|last| (size.saturating_sub(n), last))
        }
        (start, "") => {
            let start: u64 = start.parse().ok()?;
            last.filter(|last| start <= *last).map(|last| (start, last))
        }
        (start, end) => {
            let (start, end): (u64, u64) = (start.parse().ok()?, end.parse().ok()?);
            last.filter(|last| start <= end && start <= *last)
                .map(|last| (start, end.min(last)))
        }
    };
    Some(range.ok_or(()))
}

/// `attachment; filename="…"; filename*=UTF-8''…`, or `inline` for raster images.
fn disposition(file_name: &str, inline: bool) -> String {
    let fallback: String = file_name
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let kind = if inline { "inline" } else { "attachment" };
    format!(
        "{kind}; filename=\"{fallback}\"; filename*=UTF-8''{}",
        super::view::encode_uri_component(file_name)
    )
}

async fn send(
    path: std::path::PathBuf,
    size: u64,
    etag: String,
    conditions: Conditions,
) -> Result<Sending> {
    let matches = conditions
        .if_none_match
        .as_deref()
        .is_some_and(|tags| tags.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    if matches {
        return Ok(Sending::NotModified);
    }
    let mut file = tokio::fs::File::open(&path).await.map_err(|e| {
        log::error!("opening {}: {e}", path.display());
        Error::NotFound
    })?;
    Ok(
        match conditions
            .range
            .as_deref()
            .and_then(|h| parse_range(h, size))
        {
            Some(Ok((start, end))) => {
                file.seek(SeekFrom::Start(start))
                    .await
                    .map_err(|e| Error::Internal(e.to_string()))?;
                Sending::Part {
                    body: tokio::io::AsyncReadExt::take(file, end - start + 1),
                    start,
                    end,
                }
            }
            Some(Err(())) => Sending::Unsatisfiable,
            None => Sending::Whole(file),
        },
    )
}

impl<'r> Responder<'r, 'static> for FileReply {
    fn respond_to(self, _req: &'r Request<'_>) -> response::Result<'static> {
        let mut response = Response::build();
        response
            .header(ContentType::parse_flexible(&self.content_type).unwrap_or(ContentType::Binary))
            .header(Header::new("Content-Disposition", self.disposition))
            .header(Header::new("X-Content-Type-Options", "nosniff"))
            .header(Header::new("Content-Security-Policy", "sandbox"))
            .header(Header::new("Cache-Control", "private, max-age=86400"))
            .header(Header::new("Accept-Ranges", "bytes"))
            .header(Header::new("ETag", self.etag));
        match self.sending {
            Sending::NotModified => response.status(Status::NotModified),
            Sending::Whole(file) => response.sized_body(usize::try_from(self.size).ok(), file),
            Sending::Part { body, start, end } => response
                .status(Status::PartialContent)
                .header(Header::new(
                    "Content-Range",
                    format!("bytes {start}-{end}/{}", self.size),
                ))
                .header(Header::new("Content-Length", (end - start + 1).to_string()))
                .streamed_body(body),
            Sending::Unsatisfiable => {
                response
                    .status(Status::RangeNotSatisfiable)
                    .header(Header::new(
                        "Content-Range",
                        format!("bytes */{}", self.size),
                    ))
            }
        };
        response.ok()
    }
}

/// An attachment the requester may download; logged out or not a member reads as "not found".
async fn member_attachment(
    db: &Db,
    id: i64,
    user: Option<CurrentUser>,
) -> Result<attachments::Attachment> {
    let user = user.ok_or(Error::NotFound)?;
    let uid = user.user.id;
    db.run(move |conn| attachments::for_member(conn, id, uid))
        .await
}

#[get("/files/<id>/<_name>")]
async fn download(
    id: i64,
    _name: &str,
    user: Option<CurrentUser>,
    conditions: Conditions,
    db: &State<Db>,
    store: &State<FileStore>,
) -> Result<FileReply> {
    let attachment = member_attachment(db, id, user).await?;
    let etag = format!("\"{}\"", attachment.sha256);
    let size = u64::try_from(attachment.size).unwrap_or(0);
    let sending = send(
        store.path(&attachment.stored_name),
        size,
        etag.clone(),
        conditions,
    )
    .await?;
    Ok(FileReply {
        sending,
        size,
        disposition: disposition(
            &attachment.file_name,
            files::shown_inline(&attachment.content_type),
        ),
        content_type: attachment.content_type,
        etag,
    })
}

#[get("/thumbs/<id>")]
async fn thumbnail(
    id: i64,
    user: Option<CurrentUser>,
    conditions: Conditions,
    db: &State<Db>,
    store: &State<FileStore>,
) -> Result<FileReply> {
    let attachment = member_attachment(db, id, user).await?;
    let content_type = attachment.thumbnail_type.ok_or(Error::NotFound)?;
    let path = store.thumbnail_path(&attachment.stored_name);
    let size = tokio::fs::metadata(&path)
        .await
        .map_err(|_| Error::NotFound)?
        .len();
    let etag = format!("\"thumb-{}\"", attachment.sha256);
    let sending = send(path, size, etag.clone(), conditions).await?;
    Ok(FileReply {
        sending,
        size,
        disposition: disposition(&format!("thumbnail-{}", attachment.file_name), true),
        content_type,
        etag,
    })
}
