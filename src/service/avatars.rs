//! Members' own pictures: set from an uploaded image (cropped square and scaled off the async
//! runtime), removed, and read by the people who share a room with the member.

use chrono::NaiveDateTime;

use super::uploads::Received;
use super::{blocking, Services};
use crate::chat::{self, avatars};
use crate::error::{Error, Result};
use crate::files;

/// Makes `received` (an upload's temporary file, removed afterwards either way) `uid`'s picture.
pub async fn set(svc: &Services, uid: i64, received: Received) -> Result<()> {
    let source = svc.store.temp_path(&received.stored_name);
    let png = blocking(move || Ok(files::avatar_png(&source))).await?;
    drop(received);
    let png = png.ok_or_else(|| {
        Error::Invalid(
            "That file is not an image Confab can read: use a PNG, JPEG, GIF or WebP picture."
                .into(),
        )
    })?;
    let now = chat::now();
    svc.db
        .write(move |conn| avatars::set(conn, uid, png, now))
        .await?;
    svc.sessions.forget_user(uid);
    svc.forget_reads(None);
    Ok(())
}

/// Removes `uid`'s picture; the generated one shows again.
pub async fn remove(svc: &Services, uid: i64) -> Result<bool> {
    let removed = svc.db.write(move |conn| avatars::remove(conn, uid)).await?;
    svc.sessions.forget_user(uid);
    svc.forget_reads(None);
    Ok(removed)
}

/// `user_id`'s picture as `viewer_id` may see it, with when it changed.
pub async fn visible(
    svc: &Services,
    viewer_id: i64,
    user_id: i64,
) -> Result<(Vec<u8>, NaiveDateTime)> {
    svc.db
        .run(move |conn| avatars::visible(conn, viewer_id, user_id))
        .await
}
