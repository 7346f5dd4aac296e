//! Writing in a room: post, edit and delete a message, each waking the room's pollers once the
//! change has committed.

use super::Services;
use crate::chat::attachments::{self, Attachment};
use crate::chat::messages::{self, NotPosted, Posted};
use crate::chat::rooms::{self, Room};
use crate::chat::users::User;
use crate::chat::{self, input, reactions, saved};
use crate::db::AnyConnection;
use crate::error::{Error, Result};

/// Posts `body` as `author` in room `slug` (form, live page and any later way in alike), within
/// the posting limit, as a reply in the thread of message `reply_to` when given. Posts to one room
/// that arrive together share a transaction ([`PostQueue`](super::posting::PostQueue)). `client_id`, the
/// form's one-time token, makes a resend answer with the message the first send stored instead of
/// posting twice.
pub async fn post(
    svc: &Services,
    slug: &str,
    author: &User,
    body: &str,
    client_id: Option<String>,
    reply_to: Option<i64>,
) -> Result<Posted> {
    let body = input::message_body(body, svc.settings.max_message_chars)?;
    svc.post_limits.take(author.id)?;
    let uid = author.id;
    let result = match reply_to {
        // A reply also changes its thread's first message: it is written on its own.
        Some(_) => {
            let (slug, now) = (slug.to_string(), chat::now());
            let written = svc
                .db
                .write(move |conn| {
                    messages::post(conn, &slug, uid, &body, client_id.as_deref(), reply_to, now)
                })
                .await;
            if let Ok(stored) = &written {
                svc.live.advance(stored.room_id, stored.cursor);
            }
            written
        }
        // The room's writer wakes its pollers as soon as a batch commits.
        None => svc.posting.post(svc, slug, uid, body, client_id).await,
    };
    let (stored, _) = NotPosted::into_stored(result)?;
    let mut posted = [Posted {
        message: stored.message,
        author: author.username.clone(),
        avatar_at: author.avatar_at,
        quote: None,
        reactions: Vec::new(),
        saved: false,
    }];
    if posted[0].message.parent_id.is_some() {
        let [reply] = svc
            .db
            .run(move |conn| messages::annotate(conn, uid, &mut posted).map(|()| posted))
            .await?;
        return Ok(reply);
    }
    let [posted] = posted;
    Ok(posted)
}

/// Message `id` of room `slug`, for its member `uid`; anything else is "not found".
fn member_message(
    conn: &mut AnyConnection,
    slug: &str,
    id: i64,
    uid: i64,
) -> Result<(Room, Posted)> {
    let (room, _) = rooms::for_member(conn, slug, uid)?;
    let message = messages::get(conn, room.id, id)?;
    Ok((room, message))
}

/// A message of room `slug` as its member `uid` sees it, with the room.
pub async fn find(svc: &Services, slug: String, id: i64, uid: i64) -> Result<(Room, Posted)> {
    svc.db
        .run(move |conn| member_message(conn, &slug, id, uid))
        .await
}

/// A message of room `slug` with its reactions, for its member `uid`.
pub async fn with_reactions(
    svc: &Services,
    slug: String,
    id: i64,
    uid: i64,
) -> Result<(Room, Posted)> {
    svc.db
        .run(move |conn| {
            let (room, mut message) = member_message(conn, &slug, id, uid)?;
            messages::annotate(conn, uid, std::slice::from_mut(&mut message))?;
            Ok((room, message))
        })
        .await
}

/// A message `uid` may edit: their own, not deleted.
pub async fn editable(svc: &Services, slug: String, id: i64, uid: i64) -> Result<(Room, Posted)> {
    let (room, message) = find(svc, slug, id, uid).await?;
    if message.message.author_id != uid || message.message.deleted_at.is_some() {
        return Err(Error::Forbidden);
    }
    Ok((room, message))
}

/// A message `actor` may delete: their own (or anyone's, for an admin), not deleted yet; with its file.
pub async fn deletable(
    svc: &Services,
    slug: String,
    id: i64,
    actor: &User,
) -> Result<(Room, Posted, Option<Attachment>)> {
    let (uid, is_admin) = (actor.id, actor.is_admin);
    let (room, message, files) = svc
        .db
        .run(move |conn| {
            let (room, message) = member_message(conn, &slug, id, uid)?;
            let files = attachments::for_messages(conn, &[id])?;
            Ok::<_, Error>((room, message, files))
        })
        .await?;
    let own = message.message.author_id == uid;
    if !(own || is_admin) || message.message.deleted_at.is_some() {
        return Err(Error::Forbidden);
    }
    Ok((room, message, files.into_iter().next()))
}

/// Replaces the text of `editor`'s own message `id` in room `slug`.
pub async fn edit(svc: &Services, slug: String, id: i64, editor: i64, body: &str) -> Result<()> {
    let body = input::message_body(body, svc.settings.max_message_chars)?;
    let (room_id, cursor) = svc
        .db
        .write(move |conn| {
            let (room, _) = rooms::for_member(conn, &slug, editor)?;
            messages::edit(conn, room.id, id, editor, &body, chat::now())?;
            Ok::<_, Error>((room.id, rooms::cursor(conn, room.id)?))
        })
        .await?;
    svc.live.advance(room_id, cursor);
    Ok(())
}

/// Deletes message `id` of room `slug` (the author's own, or anyone's for an admin), then its
/// file and thumbnail.
pub async fn delete(svc: &Services, slug: String, id: i64, actor: &User) -> Result<()> {
    let (uid, is_admin) = (actor.id, actor.is_admin);
    let (removed, room_id, cursor) = svc
        .db
        .write(move |conn| {
            let (room, _) = rooms::for_member(conn, &slug, uid)?;
            let removed = messages::delete(conn, room.id, id, uid, is_admin, chat::now())?;
            Ok::<_, Error>((removed, room.id, rooms::cursor(conn, room.id)?))
        })
        .await?;
    svc.live.advance(room_id, cursor);
    if let Some(attachment) = removed {
        if let Err(e) = svc.store.remove(&attachment.stored_name).await {
            log::error!("removing the file of deleted message {id}: {e}");
        }
    }
    Ok(())
}

/// Adds `user`'s reaction `emoji` (a glyph or a `:shortcode:`) to message `id` of room `slug`, or
/// takes it back; returns whether it is there now. Within the posting limit; it wakes the room's
/// pollers like an edit, and alerts no one.
pub async fn react(
    svc: &Services,
    slug: String,
    id: i64,
    user: &User,
    emoji: &str,
) -> Result<bool> {
    let emoji = reactions::parse(emoji)?;
    svc.post_limits.take(user.id)?;
    let (uid, now) = (user.id, chat::now());
    let (room_id, (there, cursor)) = svc
        .db
        .write(move |conn| {
            let (room, _) = rooms::for_member(conn, &slug, uid)?;
            Ok::<_, Error>((
                room.id,
                reactions::toggle(conn, room.id, id, uid, emoji, now)?,
            ))
        })
        .await?;
    svc.live.advance(room_id, cursor);
    Ok(there)
}

/// Pins message `id` of room `slug` for everyone in it, or unpins it; returns whether it is pinned
/// now. Any member may; open pages see it at once.
pub async fn pin(svc: &Services, slug: String, id: i64, uid: i64) -> Result<bool> {
    let now = chat::now();
    let (room_id, (pinned, cursor)) = svc
        .db
        .write(move |conn| {
            let (room, _) = rooms::for_member(conn, &slug, uid)?;
            Ok::<_, Error>((room.id, messages::toggle_pin(conn, room.id, id, uid, now)?))
        })
        .await?;
    svc.live.advance(room_id, cursor);
    Ok(pinned)
}

/// Saves message `id` of room `slug` on `uid`'s own list, or takes it off; returns whether it is
/// saved now. Nobody else sees it.
pub async fn save(svc: &Services, slug: String, id: i64, uid: i64) -> Result<bool> {
    let now = chat::now();
    let (room_id, saved) = svc
        .db
        .write(move |conn| {
            let (room, _) = rooms::for_member(conn, &slug, uid)?;
            Ok::<_, Error>((room.id, saved::toggle(conn, room.id, id, uid, now)?))
        })
        .await?;
    svc.forget_reads(Some(room_id));
    Ok(saved)
}
