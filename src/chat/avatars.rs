//! Members' own pictures: one square PNG per user, seen by the people who share a room with them.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::schema::{avatars, memberships, users};
use crate::db::AnyConnection;
use crate::error::{Error, Result};

/// Stores `image` as `user_id`'s picture, replacing any earlier one (call it in a transaction).
pub fn set(
    conn: &mut AnyConnection,
    user_id: i64,
    image: Vec<u8>,
    now: NaiveDateTime,
) -> Result<()> {
    diesel::delete(avatars::table.find(user_id)).execute(conn)?;
    diesel::insert_into(avatars::table)
        .values((
            avatars::user_id.eq(user_id),
            avatars::image.eq(image),
            avatars::updated_at.eq(now),
        ))
        .execute(conn)?;
    diesel::update(users::table.find(user_id))
        .set(users::avatar_at.eq(Some(now)))
        .execute(conn)?;
    Ok(())
}

/// Removes `user_id`'s picture (the generated one shows again); whether there was one.
pub fn remove(conn: &mut AnyConnection, user_id: i64) -> Result<bool> {
    let removed = diesel::delete(avatars::table.find(user_id)).execute(conn)?;
    diesel::update(users::table.find(user_id))
        .set(users::avatar_at.eq(None::<NaiveDateTime>))
        .execute(conn)?;
    Ok(removed > 0)
}

/// `user_id`'s picture as `viewer_id` may see it: their own, or someone they share a room with.
/// Anyone else's, or none, is "not found".
pub fn visible(
    conn: &mut AnyConnection,
    viewer_id: i64,
    user_id: i64,
) -> Result<(Vec<u8>, NaiveDateTime)> {
    if viewer_id != user_id {
        let (theirs, mine) = diesel::alias!(memberships as theirs, memberships as mine);
        let shared = diesel::select(diesel::dsl::exists(
            theirs
                .inner_join(
                    mine.on(mine
                        .field(memberships::room_id)
                        .eq(theirs.field(memberships::room_id))),
                )
                .filter(theirs.field(memberships::user_id).eq(user_id))
                .filter(mine.field(memberships::user_id).eq(viewer_id)),
        ))
        .get_result::<bool>(conn)?;
        if !shared {
            return Err(Error::NotFound);
        }
    }
    Ok(avatars::table
        .find(user_id)
        .select((avatars::image, avatars::updated_at))
        .first(conn)?)
}
