//! Email alert preferences and the one-click unsubscribe link.

use std::sync::Arc;

use crate::web::template::Template;
use rocket::form::FromForm;
use rocket::http::Status;
use rocket::response::{Flash, Redirect};
use rocket::{get, post, routes, Route, State};
use rocket_dyn_templates::context;

use super::error::{AppError, Error, Result};
use super::session::{CsrfForm, CsrfToken, CurrentUser, SessionCache};
use super::view::Layout;
use crate::chat::{alerts, rooms};
use crate::db::Db;
use crate::mail::Mail;

/// The routes of this module.
pub fn routes() -> Vec<Route> {
    routes![unsubscribe_page, unsubscribe, set_alerts, set_room_alerts]
}

fn signed(mail: &Mail, token: &str) -> Result<i64> {
    mail.verify_unsubscribe(token).ok_or_else(|| Error::BadRequest("This unsubscribe link is not valid. Open Settings in Confab to change your email alerts.".into()))
}

/// Shows one button: mail scanners that open links must not unsubscribe anyone.
#[get("/unsubscribe/<token>")]
fn unsubscribe_page(token: &str, mail: &State<Arc<Mail>>, csrf: CsrfToken) -> Result<Template> {
    signed(mail, token)?;
    Ok(Template::render(
        "unsubscribe",
        context! { layout: Layout::anonymous(&csrf, None), token, done: false },
    ))
}

/// Turns alerts off: from the page's button, or a mail client's RFC 8058 one-click POST (which
/// carries no cookies, so the signed link is the only proof needed).
#[post("/unsubscribe/<token>")]
async fn unsubscribe(
    token: &str,
    mail: &State<Arc<Mail>>,
    db: &State<Db>,
    sessions: &State<SessionCache>,
    csrf: CsrfToken,
) -> Result<(Status, Template)> {
    let user_id = signed(mail, token)?;
    db.write(move |conn| {
        alerts::set_mode(conn, user_id, "off", 8).map_err(|e| match e {
            AppError::Invalid(_) => AppError::NotFound,
            other => other,
        })
    })
    .await?;
    sessions.forget_user(user_id);
    Ok((
        Status::Ok,
        Template::render(
            "unsubscribe",
            context! { layout: Layout::anonymous(&csrf, None), token, done: true },
        ),
    ))
}

#[derive(FromForm)]
struct AlertForm {
    mode: String,
    digest_hour: i32,
}

#[post("/settings/alerts", data = "<form>")]
async fn set_alerts(
    user: CurrentUser,
    form: CsrfForm<AlertForm>,
    db: &State<Db>,
    sessions: &State<SessionCache>,
) -> Result<Flash<Redirect>> {
    let uid = user.user.id;
    let AlertForm { mode, digest_hour } = form.0;
    let result = db
        .write(move |conn| alerts::set_mode(conn, uid, &mode, digest_hour))
        .await;
    sessions.forget_user(uid);
    match result {
        Ok(()) => Ok(Flash::success(
            Redirect::to("/settings"),
            "Email alerts saved.",
        )),
        Err(AppError::Invalid(why)) => Ok(Flash::error(Redirect::to("/settings"), why)),
        Err(e) => Err(e.into()),
    }
}

#[derive(FromForm)]
struct RoomAlertForm {
    level: String,
}

#[post("/settings/rooms/<slug>/alerts", data = "<form>")]
async fn set_room_alerts(
    slug: String,
    user: CurrentUser,
    form: CsrfForm<RoomAlertForm>,
    db: &State<Db>,
) -> Result<Flash<Redirect>> {
    let uid = user.user.id;
    let level = form.0.level;
    let result = db
        .write(move |conn| {
            let (room, _) = rooms::for_member(conn, &slug, uid)?;
            alerts::set_room_level(conn, room.id, uid, &level)?;
            Ok::<_, AppError>(room.name)
        })
        .await;
    match result {
        Ok(name) => Ok(Flash::success(
            Redirect::to("/settings"),
            format!("Alerts for {name} saved."),
        )),
        Err(AppError::Invalid(why)) => Ok(Flash::error(Redirect::to("/settings"), why)),
        Err(e) => Err(e.into()),
    }
}
