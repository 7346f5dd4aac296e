//! Files shared in rooms. An upload is a message (its caption may be empty) with one attachment row;
//! the bytes live in the file store under `stored_name`.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde::Serialize;

use crate::db::schema::{attachments, memberships, messages as messages_table, rooms};
use crate::db::AnyConnection;
use crate::error::{Error, Result};

/// A stored file.
#[derive(Debug, Clone, Queryable, Selectable, Serialize)]
#[diesel(table_name = attachments)]
pub struct Attachment {
    /// Database id, in download links.
    pub id: i64,
    /// The message it belongs to.
    pub message_id: i64,
    /// The room it was shared in.
    pub room_id: i64,
    /// The name it had on the uploader's machine, made safe.
    pub file_name: String,
    /// Where the bytes are in the file store (random, sharded).
    #[serde(skip)]
    pub stored_name: String,
    /// Detected from the bytes, never the client's claim.
    pub content_type: String,
    /// Bytes.
    pub size: i64,
    /// SHA-256 of the bytes, hex.
    pub sha256: String,
    /// Image width in pixels.
    pub width: Option<i32>,
    /// Image height in pixels.
    pub height: Option<i32>,
    /// Content type of the thumbnail, once one was made.
    pub thumbnail_type: Option<String>,
    /// When it was uploaded.
    pub created_at: NaiveDateTime,
}

/// What the upload handler learned about a file while it streamed in.
#[derive(Debug, Clone)]
pub struct NewFile {
    /// Safe display name.
    pub file_name: String,
    /// Where it will live in the file store.
    pub stored_name: String,
    /// Detected content type.
    pub content_type: String,
    /// Bytes.
    pub size: i64,
    /// SHA-256, hex.
    pub sha256: String,
    /// Image dimensions, when the header could be read.
    pub dimensions: Option<(u32, u32)>,
}

/// Records the file of a message just stored (the uploads service posts the
/// message and its file in one transaction).
pub fn attach(
    conn: &mut AnyConnection,
    message_id: i64,
    room_id: i64,
    file: &NewFile,
    now: NaiveDateTime,
) -> Result<()> {
    let (width, height) = match file.dimensions {
        Some((w, h)) => (i32::try_from(w).ok(), i32::try_from(h).ok()),
        None => (None, None),
    };
    diesel::insert_into(attachments::table)
        .values((
            attachments::message_id.eq(message_id),
            attachments::room_id.eq(room_id),
            attachments::file_name.eq(&file.file_name),
            attachments::stored_name.eq(&file.stored_name),
            attachments::content_type.eq(&file.content_type),
            attachments::size.eq(file.size),
            attachments::sha256.eq(&file.sha256),
            attachments::width.eq(width),
            attachments::height.eq(height),
            attachments::created_at.eq(now),
        ))
        .execute(conn)?;
    Ok(())
}

/// The attachments of these messages.
pub fn for_messages(conn: &mut AnyConnection, message_ids: &[i64]) -> Result<Vec<Attachment>> {
    Ok(attachments::table
        .filter(attachments::message_id.eq_any(message_ids))
        .select(Attachment::as_select())
        .load(conn)?)
}

/// An attachment `user_id` may download (they are a member of its room); anything else is "not found".
pub fn for_member(conn: &mut AnyConnection, id: i64, user_id: i64) -> Result<Attachment> {
    attachments::table
        .inner_join(memberships::table.on(memberships::room_id.eq(attachments::room_id)))
        .filter(attachments::id.eq(id))
        .filter(memberships::user_id.eq(user_id))
        .select(Attachment::as_select())
        .first(conn)
        .optional()?
        .ok_or(Error::NotFound)
}

/// Removes a message's attachment row and returns it, so its files can go once this commits.
pub fn remove_for_message(conn: &mut AnyConnection, message_id: i64) -> Result<Option<Attachment>> {
    let found = attachments::table
        .filter(attachments::message_id.eq(message_id))
        .select(Attachment::as_select())
        .first(conn)
        .optional()?;
    if let Some(attachment) = &found {
        diesel::delete(attachments::table.find(attachment.id)).execute(conn)?;
    }
    Ok(found)
}

/// Records a finished thumbnail and moves the room's cursor, so open pages pick it up. Returns the
/// room and its new cursor, or `None` when the attachment is gone (its message was deleted meanwhile).
pub fn set_thumbnail(
    conn: &mut AnyConnection,
    stored_name: &str,
    content_type: &str,
) -> Result<Option<(i64, i64)>> {
    let Some((id, message_id, room_id)) = attachments::table
        .filter(attachments::stored_name.eq(stored_name))
        .select((
            attachments::id,
            attachments::message_id,
            attachments::room_id,
        ))
        .first::<(i64, i64, i64)>(conn)
        .optional()?
    else {
        return Ok(None);
    };
    diesel::update(attachments::table.find(id))
        .set(attachments::thumbnail_type.eq(content_type))
        .execute(conn)?;
    let revision: i64 = diesel::update(rooms::table.find(room_id))
        .set(rooms::cursor.eq(rooms::cursor + 1))
        .returning(rooms::cursor)
        .get_result(conn)?;
    diesel::update(messages_table::table.find(message_id))
        .set(messages_table::revision.eq(revision))
        .execute(conn)?;
    Ok(Some((room_id, revision)))
}

/// Whether a stored name belongs to an attachment (for the sweep of left-over temporary files).
pub fn is_stored(conn: &mut AnyConnection, stored_name: &str) -> Result<bool> {
    Ok(diesel::select(diesel::dsl::exists(
        attachments::table.filter(attachments::stored_name.eq(stored_name)),
    ))
    .get_result(conn)?)
}
