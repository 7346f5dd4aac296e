//! Members' own pictures: set and removed in Settings (a plain upload form), served to the people
//! who share a room with the member.

use rocket::data::Data;
use rocket::http::{ContentType, CookieJar, Header};
use rocket::response::{Flash, Redirect};
use rocket::{get, post, routes, Responder, Route};

use super::error::{Error, Result};
use super::session::{Csrf, CurrentUser};
use super::{uploads, App};
use crate::service::avatars;

/// The routes of this module.
pub fn routes() -> Vec<Route> {
    routes![set, remove, picture]
}

#[post("/settings/avatar", data = "<data>")]
async fn set(
    content_type: Option<&ContentType>,
    data: Data<'_>,
    user: CurrentUser,
    cookies: &CookieJar<'_>,
    app: App<'_>,
) -> Result<Flash<Redirect>> {
    let (_, received) = uploads::receive_form(content_type, data, cookies, &app).await?;
    let Some(received) = received else {
        return Err(Error::invalid("Choose a picture to upload."));
    };
    avatars::set(app.svc, user.user.id, received).await?;
    Ok(Flash::success(
        Redirect::to("/settings#picture"),
        "Picture saved.",
    ))
}

#[post("/settings/avatar/remove", data = "<_form>")]
async fn remove(user: CurrentUser, _form: Csrf, app: App<'_>) -> Result<Flash<Redirect>> {
    avatars::remove(app.svc, user.user.id).await?;
    Ok(Flash::success(
        Redirect::to("/settings#picture"),
        "Picture removed: your initials show again.",
    ))
}

/// A member's picture, as PNG. Its address carries the time it changed (`?v=`), so it is cached.
#[derive(Responder)]
#[response(content_type = "image/png")]
struct Picture {
    png: Vec<u8>,
    cache: Header<'static>,
}

#[get("/avatars/<id>?<v>")]
async fn picture(id: i64, v: Option<&str>, user: CurrentUser, app: App<'_>) -> Result<Picture> {
    let (png, updated_at) = avatars::visible(app.svc, user.user.id, id).await?;
    let current = v == Some(updated_at.and_utc().timestamp_micros().to_string().as_str());
    let cache = if current {
        "private, max-age=31536000, immutable"
    } else {
        "private, no-cache"
    };
    Ok(Picture {
        png,
        cache: Header::new("Cache-Control", cache),
    })
}
