//! Members-only downloads of files and thumbnails, with ETags and byte ranges, and the headers
//! that keep browsers from running what was uploaded.

use std::io::SeekFrom;

use rocket::http::{ContentType, Header, Status};
use rocket::request::{FromRequest, Outcome};
use rocket::response::{self, Responder};
use rocket::{get, routes, Request, Response, Route};
use tokio::io::AsyncSeekExt;

use super::super::error::{AppError, Result};
use super::super::session::CurrentUser;
use super::super::App;
use crate::chat::attachments;
use crate::files;
use crate::service::uploads;

/// The routes of this module.
pub(super) fn routes() -> Vec<Route> {
    routes![download, thumbnail]
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
        super::super::view::encode_uri_component(file_name)
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
        AppError::NotFound
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
                    .map_err(|e| AppError::internal("seeking in a download", e))?;
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
    app: &App<'_>,
    id: i64,
    user: Option<CurrentUser>,
) -> Result<attachments::Attachment> {
    let user = user.ok_or(AppError::NotFound)?;
    Ok(uploads::for_download(app.svc, id, user.user.id).await?)
}

#[get("/files/<id>/<_name>")]
async fn download(
    id: i64,
    _name: &str,
    user: Option<CurrentUser>,
    conditions: Conditions,
    app: App<'_>,
) -> Result<FileReply> {
    let attachment = member_attachment(&app, id, user).await?;
    let etag = format!("\"{}\"", attachment.sha256);
    let size = u64::try_from(attachment.size).unwrap_or(0);
    let sending = send(
        app.svc.store.path(&attachment.stored_name),
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
    app: App<'_>,
) -> Result<FileReply> {
    let attachment = member_attachment(&app, id, user).await?;
    let content_type = attachment.thumbnail_type.ok_or(AppError::NotFound)?;
    let path = app.svc.store.thumbnail_path(&attachment.stored_name);
    let size = tokio::fs::metadata(&path)
        .await
        .map_err(|_| AppError::NotFound)?
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
