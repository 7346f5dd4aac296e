//! Rooms and their members: create, describe, archive, join, leave, add and remove members. A
//! change of members makes this instance forget what it knew of the room's members.

use super::Services;
use crate::chat::rooms::{self, Member, Room, RoomFields};
use crate::chat::users::{self, User};
use crate::chat::{self, input};
use crate::error::{Error, Result};

/// What an admin types for a room, checked: a slug, a name, a description.
fn checked_details(name: &str, description: &str) -> Result<(String, String)> {
    Ok((
        input::line(name, "room name", 1, 80)?,
        input::line(description, "description", 0, 300)?,
    ))
}

/// Creates a room (a taken slug is a conflict). The `creator`, an admin on the admin page, is
/// its first member, in the same transaction.
pub async fn create(
    svc: &Services,
    slug: &str,
    name: &str,
    description: &str,
    private: bool,
    creator: Option<i64>,
) -> Result<Room> {
    let slug = input::slug(slug)?;
    let (name, description) = checked_details(name, description)?;
    svc.db
        .write(move |conn| {
            let fields = RoomFields {
                slug: &slug,
                name: &name,
                description: &description,
                is_private: private,
            };
            let now = chat::now();
            let room = rooms::create(conn, &fields, now)?;
            if let Some(creator) = creator {
                rooms::add_member(conn, room.id, creator, now)?;
            }
            Ok(room)
        })
        .await
}

/// Room `slug` for the admin pages, with its members and every user.
pub async fn details(svc: &Services, slug: String) -> Result<(Room, Vec<Member>, Vec<User>)> {
    svc.db
        .run(move |conn| {
            let room = rooms::find_by_slug(conn, &slug)?;
            Ok((
                room.clone(),
                rooms::members(conn, room.id)?,
                users::list(conn)?,
            ))
        })
        .await
}

/// Every room (admin).
pub async fn list(svc: &Services) -> Result<Vec<Room>> {
    svc.db.run(rooms::list).await
}

/// Renames and describes room `slug`.
pub async fn update(svc: &Services, slug: String, name: &str, description: &str) -> Result<()> {
    let (name, description) = checked_details(name, description)?;
    svc.db
        .write(move |conn| {
            let room = rooms::find_by_slug(conn, &slug)?;
            rooms::update(conn, room.id, &name, &description)
        })
        .await
}

/// Archives room `slug` (it keeps its history and takes no new messages), or restores it.
pub async fn set_archived(svc: &Services, slug: String, archive: bool) -> Result<()> {
    svc.db
        .write(move |conn| {
            let room = rooms::find_by_slug(conn, &slug)?;
            rooms::set_archived(conn, room.id, archive.then(chat::now))
        })
        .await
}

/// `uid` joins the open room `slug`.
pub async fn join(svc: &Services, slug: String, uid: i64) -> Result<Room> {
    let room = svc
        .db
        .write(move |conn| rooms::join(conn, &slug, uid, chat::now()))
        .await?;
    svc.live.forget(room.id);
    Ok(room)
}

/// `uid` leaves room `slug`.
pub async fn leave(svc: &Services, slug: String, uid: i64) -> Result<Room> {
    let room = svc
        .db
        .write(move |conn| {
            let (room, _) = rooms::for_member(conn, &slug, uid)?;
            if room.is_direct() {
                return Err(Error::Invalid(
                    "A direct conversation keeps its people: mute it in Settings instead.".into(),
                ));
            }
            rooms::remove_member(conn, room.id, uid)?;
            Ok::<_, Error>(room)
        })
        .await?;
    svc.live.forget(room.id);
    Ok(room)
}

/// Adds the active user `username` to room `slug` (admin page and `confab room member add`).
pub async fn add_member(svc: &Services, slug: String, username: &str) -> Result<(Room, User)> {
    let username = username.to_string();
    let added = svc
        .db
        .write(move |conn| {
            let room = rooms::find_by_slug(conn, &slug)?;
            let user = users::find_by_username(conn, &username)?
                .filter(|u| u.is_active)
                .ok_or_else(|| {
                    Error::Invalid(format!(
                        "There is no active user `{}`.",
                        input::clean(&username)
                    ))
                })?;
            rooms::add_member(conn, room.id, user.id, chat::now())?;
            Ok::<_, Error>((room, user))
        })
        .await?;
    svc.live.forget(added.0.id);
    Ok(added)
}

/// Removes user `user_id` from room `slug` (admin).
pub async fn remove_member(svc: &Services, slug: String, user_id: i64) -> Result<()> {
    let room_id = svc
        .db
        .write(move |conn| {
            let room = rooms::find_by_slug(conn, &slug)?;
            rooms::remove_member(conn, room.id, user_id)?;
            Ok::<_, Error>(room.id)
        })
        .await?;
    svc.live.forget(room_id);
    Ok(())
}

/// Opens the direct conversation between `starter` and the people `names` (usernames separated by
/// commas or spaces): the existing one for exactly these people, or a new one.
pub async fn direct(svc: &Services, starter: &User, names: &str) -> Result<Room> {
    let (starter, names) = (starter.clone(), names.to_string());
    let max = svc.settings.direct_max_members;
    let now = chat::now();
    svc.db
        .write(move |conn| chat::direct::open(conn, &starter, &names, max, now))
        .await
}
