//! Receiving an upload: the multipart form streamed with multer straight to a temporary file
//! (never held in memory), the CSRF token checked before the file reaches the disk, and a client
//! that stops sending answered 408 with its partial file removed.

use std::pin::Pin;
use std::task::{Context, Poll};

use futures_util::Stream;
use rocket::data::{Data, ToByteUnit};
use rocket::http::CookieJar;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncWriteExt, BufWriter};
use tokio_util::io::ReaderStream;

use super::super::error::{AppError, Error, Result};
use super::super::session::verify_csrf;
use crate::chat::input;
use crate::files::FileStore;
use crate::service::uploads::Received;
use crate::settings::Settings;

/// Room in the request for the small fields and the multipart framing around the file.
const FORM_OVERHEAD: u64 = 256 * 1024;
/// How many leading bytes are kept to detect the content type.
const SNIFF_BYTES: usize = 8192;

/// The size of the pieces the request body is read in.
const CHUNK_BYTES: usize = 64 * 1024;

/// Hands multer one chunk per wake-up. multer reads its stream until the stream would block, so
/// with a fast client it would buffer whatever the socket holds (megabytes, more as TCP's window
/// grows) in one growing buffer; a pause after each chunk keeps its buffer to about one chunk.
struct OneChunkAtATime<S> {
    inner: S,
    paused: bool,
}

impl<S: Stream + Unpin> Stream for OneChunkAtATime<S> {
    type Item = S::Item;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<S::Item>> {
        if self.paused {
            self.paused = false;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        let next = Pin::new(&mut self.inner).poll_next(cx);
        self.paused = matches!(next, Poll::Ready(Some(_)));
        next
    }
}

/// What the form sent besides the file.
#[derive(Default)]
pub struct Fields {
    /// The form's one-time token, as sent.
    pub client_id: Option<String>,
    /// The text sent with the file.
    pub caption: String,
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
    let file_name = input::file_name(field.file_name().unwrap_or(""));
    let stored_name = FileStore::new_stored_name();
    let (created, temp) = store
        .create_temp(&stored_name)
        .await
        .map_err(|e| AppError::internal("creating an upload file", e))?;
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
            .map_err(|e| AppError::internal("writing an upload", e))?;
    }
    out.flush()
        .await
        .map_err(|e| AppError::internal("writing an upload", e))?;
    out.into_inner()
        .sync_data()
        .await
        .map_err(|e| AppError::internal("writing an upload", e))?;
    if size == 0 && field.file_name().is_none_or(str::is_empty) {
        return Err(Error::invalid("Choose a file to upload."));
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

/// Reads the upload form of `boundary` from `data`: the small fields, and the file streamed to a
/// temporary file under `store`. A form without this session's CSRF token, before the file, is refused.
pub async fn receive(
    data: Data<'_>,
    boundary: String,
    cookies: &CookieJar<'_>,
    settings: &Settings,
    store: &FileStore,
) -> Result<(Fields, Option<Received>)> {
    let max = settings.uploads.max_bytes;
    let stream = OneChunkAtATime {
        inner: ReaderStream::with_capacity(
            data.open((max + 2 * FORM_OVERHEAD).bytes()),
            CHUNK_BYTES,
        ),
        paused: false,
    };
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
    let mut csrf_checked = false;
    let mut received = None;
    let idle = std::time::Duration::from_secs(settings.uploads.idle_secs);
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
                csrf_checked = true;
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
                if !csrf_checked {
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
    if !csrf_checked {
        return Err(Error::CsrfExpired);
    }
    Ok((fields, received))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::task::{Wake, Waker};

    /// Counts its wake-ups.
    #[derive(Default)]
    struct Wakes(AtomicUsize);

    impl Wake for Wakes {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn one_chunk_per_wake_up() {
        let ready = futures_util::stream::iter([1, 2]);
        let mut stream = OneChunkAtATime {
            inner: ready,
            paused: false,
        };
        let wakes = Arc::new(Wakes::default());
        let waker = Waker::from(Arc::clone(&wakes));
        let mut cx = Context::from_waker(&waker);
        let mut polls = Vec::new();
        for _ in 0..5 {
            polls.push(Pin::new(&mut stream).poll_next(&mut cx));
        }
        assert_eq!(
            polls,
            [
                Poll::Ready(Some(1)),
                Poll::Pending,
                Poll::Ready(Some(2)),
                Poll::Pending,
                Poll::Ready(None)
            ]
        );
        // Each pause wakes the task at once, or the upload would wait for more bytes forever.
        assert_eq!(wakes.0.load(Ordering::SeqCst), 2);
    }
}
