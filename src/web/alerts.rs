//! Email alert preferences and the one-click unsubscribe link.

use std::sync::Arc;

use crate::web::template::Template;
use rocket::form::FromForm;
use rocket::http::Status;
use rocket::response::{Flash, Redirect};
use rocket::{get, post, routes, Route, State};
use rocket_dyn_templates::context;

use super::error::{AppError, Error, Result};
use super::session::{CsrfForm, CsrfToken, CurrentUser};
use super::view::Layout;
use super::App;
use crate::mail::Mail;
use crate::service::accounts;

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
async fn unsubscribe(token: &str, app: App<'_>, csrf: CsrfToken) -> Result<(Status, Template)> {
    let user_id = signed(&app.svc.mail, token)?;
    accounts::unsubscribe(app.svc, user_id).await?;
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
    app: App<'_>,
) -> Result<Flash<Redirect>> {
    let AlertForm { mode, digest_hour } = form.0;
    match accounts::set_alert_mode(app.svc, user.user.id, mode, digest_hour).await {
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
    app: App<'_>,
) -> Result<Flash<Redirect>> {
    match accounts::set_room_alerts(app.svc, slug, user.user.id, form.0.level).await {
        Ok(name) => Ok(Flash::success(
            Redirect::to("/settings"),
            format!("Alerts for {name} saved."),
        )),
        Err(AppError::Invalid(why)) => Ok(Flash::error(Redirect::to("/settings"), why)),
        Err(e) => Err(e.into()),
    }
}
