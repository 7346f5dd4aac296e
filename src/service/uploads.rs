//! Sharing files: a file that has streamed in becomes a message with its attachment, the file
//! moves into place once the row has committed, and images get a thumbnail off the request path.

use chrono::NaiveDateTime;

use super::{blocking, Services};
use crate::chat::attachments::{self, Attachment, NewFile};
use crate::chat::messages::{self, NotPosted, Stored};
use crate::chat::{self, input, rooms};
use crate::db::AnyConnection;
use crate::error::{Error, Result};
use crate::files::{self, FileStore, TempUpload};

/// A file that has streamed in completely, still under its temporary name.
pub struct Received {
    /// Removes the temporary file unless the upload is kept.
    pub temp: TempUpload,
    /// The name the sender gave it, cleaned.
    pub file_name: String,
    /// The random name it is stored under.
    pub stored_name: String,
    /// Its length in bytes.
    pub size: u64,
    /// SHA-256, hex.
    pub sha256: String,
    /// Its first bytes, to detect the content type.
    pub head: Vec<u8>,
}

/// Whether `uid` may send a file to room `slug` now: a member, within the posting limit. Checked
/// before anything is written to disk.
pub async fn may_upload(svc: &Services, slug: String, uid: i64) -> Result<()> {
    svc.db
        .run(move |conn| rooms::for_member(conn, &slug, uid))
        .await?;
    svc.post_limits.take(uid)
}

/// A file that arrived whole in memory (an attachment of a mail), written to a temporary file.
pub async fn received_bytes(svc: &Services, file_name: &str, bytes: &[u8]) -> Result<Received> {
    received_from(svc, file_name, bytes, "a mail's attachment").await
}

/// A file on this machine (an import's), copied into a temporary file in the store.
pub async fn received_file(
    svc: &Services,
    file_name: &str,
    path: &std::path::Path,
) -> Result<Received> {
    let what = path.display().to_string();
    let source = tokio::fs::File::open(path)
        .await
        .map_err(|e| Error::Invalid(format!("{what} cannot be read: {e}")))?;
    received_from(svc, file_name, source, &what).await
}

/// Copies `source` (called `what` in errors) into a new temporary file, hashing it on the way and
/// keeping its first bytes to detect its type.
async fn received_from(
    svc: &Services,
    file_name: &str,
    mut source: impl tokio::io::AsyncRead + Unpin,
    what: &str,
) -> Result<Received> {
    use sha2::Digest;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let stored_name = FileStore::new_stored_name();
    let (mut file, temp) = svc
        .store
        .create_temp(&stored_name)
        .await
        .map_err(|e| Error::internal("creating an upload file", e))?;
    let (mut hash, mut size, mut head) = (sha2::Sha256::new(), 0u64, Vec::new());
    let mut buffer = vec![0; 64 * 1024];
    loop {
        let n = source
            .read(&mut buffer)
            .await
            .map_err(|e| Error::Invalid(format!("{what} cannot be read: {e}")))?;
        if n == 0 {
            break;
        }
        hash.update(&buffer[..n]);
        if head.len() < 8192 {
            head.extend_from_slice(&buffer[..n.min(8192 - head.len())]);
        }
        size += n as u64;
        file.write_all(&buffer[..n])
            .await
            .map_err(|e| Error::internal("writing an upload", e))?;
    }
    file.sync_data()
        .await
        .map_err(|e| Error::internal("writing an upload", e))?;
    Ok(Received {
        temp,
        file_name: input::file_name(file_name),
        stored_name,
        size,
        sha256: hex::encode(hash.finalize()),
        head,
    })
}

/// What the attachment row of a received file says: its type (from its bytes), size and, for an
/// image, its dimensions.
pub async fn describe(svc: &Services, received: &Received) -> Result<NewFile> {
    let temp_path = svc.store.temp_path(&received.stored_name);
    let head = received.head.clone();
    let (content_type, dimensions) = blocking(move || {
        let content_type = files::detect_content_type(&head);
        let dimensions = content_type
            .starts_with("image/")
            .then(|| files::image_dimensions(&temp_path))
            .flatten();
        Ok((content_type, dimensions))
    })
    .await?;
    Ok(NewFile {
        file_name: received.file_name.clone(),
        stored_name: received.stored_name.clone(),
        content_type,
        size: i64::try_from(received.size)
            .map_err(|_| Error::Invalid("That file is too large.".into()))?,
        sha256: received.sha256.clone(),
        dimensions,
    })
}

/// Posts a message with its file in one transaction, by a member of room `slug` (see
/// [`messages::post`]), in the thread of `reply_to` when given; a resent form is
/// [`NotPosted::Duplicate`], and its first file is the one kept.
#[allow(clippy::too_many_arguments)]
pub fn post_with_file(
    conn: &mut AnyConnection,
    slug: &str,
    author_id: i64,
    caption: &str,
    client_id: Option<&str>,
    reply_to: Option<i64>,
    file: &NewFile,
    now: NaiveDateTime,
) -> std::result::Result<Stored, NotPosted> {
    let stored = messages::post(conn, slug, author_id, caption, client_id, reply_to, now)?;
    attachments::attach(conn, stored.id, stored.room_id, file, now)?;
    Ok(stored)
}

/// Commits a received file as a message by `uid` in room `slug` with its caption, then moves the
/// file into place, wakes the room and starts the thumbnail. Returns the message id (for a resent
/// form, the first send's; this copy of the file is removed with `received.temp`).
pub async fn upload(
    svc: &Services,
    slug: &str,
    uid: i64,
    received: Received,
    caption: &str,
    client_id: Option<String>,
    reply_to: Option<i64>,
) -> Result<i64> {
    let caption = input::caption(caption, svc.settings.max_message_chars)?;
    let file = describe(svc, &received).await?;
    let is_image = files::shown_inline(&file.content_type);
    let now = chat::now();
    let (slug, stored) = (slug.to_string(), file.clone());
    let result = svc
        .db
        .write(move |conn| {
            post_with_file(
                conn,
                &slug,
                uid,
                &caption,
                client_id.as_deref(),
                reply_to,
                &stored,
                now,
            )
        })
        .await;
    let (
        Stored {
            room_id,
            id,
            cursor,
            ..
        },
        created,
    ) = NotPosted::into_stored(result)?;
    if !created {
        return Ok(id);
    }
    received.temp.keep();
    let finished = svc.store.finish(&file.stored_name).await;
    svc.live.advance(room_id, cursor);
    if let Err(e) = finished {
        // The row is committed; the sweep moves the file into place later.
        log::error!("moving upload {} into place: {e}", file.stored_name);
        return Ok(id);
    }
    if is_image {
        spawn_thumbnail(svc.clone(), file.stored_name);
    }
    Ok(id)
}

/// Makes a thumbnail off the request path, then records it and wakes the room.
fn spawn_thumbnail(svc: Services, stored_name: String) {
    tokio::spawn(async move { thumbnail(&svc, stored_name).await });
}

/// Makes the thumbnail of a stored image, records it and wakes its room.
pub async fn thumbnail(svc: &Services, stored_name: String) {
    let maker = svc.store.clone();
    let name = stored_name.clone();
    let made = blocking(move || Ok(maker.make_thumbnail(&name)))
        .await
        .ok()
        .flatten();
    let Some(content_type) = made else { return };
    let name = stored_name.clone();
    match svc
        .db
        .write(move |conn| attachments::set_thumbnail(conn, &name, content_type))
        .await
    {
        Ok(Some((room_id, cursor))) => svc.live.advance(room_id, cursor),
        // The message was deleted meanwhile: its thumbnail goes too.
        Ok(None) => {
            let _ = svc.store.remove(&stored_name).await;
        }
        Err(e) => log::warn!("recording the thumbnail of {stored_name}: {}", e.detail()),
    }
}

/// An attachment `uid` may download (they are a member of its room); anything else is "not found".
pub async fn for_download(svc: &Services, id: i64, uid: i64) -> Result<Attachment> {
    svc.db
        .run(move |conn| attachments::for_member(conn, id, uid))
        .await
}
