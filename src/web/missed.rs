//! "What you missed": the unread messages of every room, and marking a room or everything read.

use rocket::request::FlashMessage;
use rocket::response::{Flash, Redirect};
use rocket::{get, post, routes, Route};
use rocket_dyn_templates::context;

use super::error::Result;
use super::session::{Csrf, CsrfToken, CurrentUser};
use super::template::Template;
use super::view::{self, Layout};
use super::App;
use crate::service::reading;

/// The routes of this module.
pub fn routes() -> Vec<Route> {
    routes![missed, mark_room_read, mark_all_read]
}

/// Unread messages shown per room on "what you missed"; the room itself has the rest.
const MISSED_PER_ROOM: i64 = 50;

#[get("/missed")]
async fn missed(
    user: CurrentUser,
    csrf: CsrfToken,
    flash: Option<FlashMessage<'_>>,
    app: App<'_>,
) -> Result<Template> {
    let mut groups = Vec::new();
    for room in reading::missed(app.svc, &user.user, MISSED_PER_ROOM).await? {
        let shown = room.messages.len() as i64;
        let last_read = Some(room.last_read_id);
        let (_, views) = view::messages(room.messages, room.files, &user, last_read, None).await?;
        groups.push(context! {
            room: room.summary.room,
            unread: room.summary.unread,
            unread_more: room.summary.unread_more,
            more: room.summary.unread - shown,
            messages: views,
        });
    }
    Ok(Template::render(
        "missed",
        context! { layout: Layout::load(&app, &user, &csrf, flash, None).await?, groups },
    ))
}

#[post("/rooms/<slug>/read", data = "<_form>")]
async fn mark_room_read(
    slug: String,
    _form: Csrf,
    user: CurrentUser,
    app: App<'_>,
) -> Result<Flash<Redirect>> {
    let name = reading::mark_room_read(app.svc, slug, user.user.id)
        .await?
        .name;
    Ok(Flash::success(
        Redirect::to("/missed"),
        format!("{name} is marked read."),
    ))
}

#[post("/missed/read", data = "<_form>")]
async fn mark_all_read(_form: Csrf, user: CurrentUser, app: App<'_>) -> Result<Flash<Redirect>> {
    reading::mark_all_read(app.svc, user.user.id).await?;
    Ok(Flash::success(
        Redirect::to("/"),
        "Everything is marked read.",
    ))
}
