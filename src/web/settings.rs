//! My settings: time zone, password, and the browsers I am logged in on.

use crate::web::template::Template;
use rocket::form::FromForm;
use rocket::http::CookieJar;
use rocket::request::FlashMessage;
use rocket::response::{Flash, Redirect};
use rocket::{get, post, routes, Route};
use rocket_dyn_templates::context;

use super::error::{AppError, Result};
use super::session::{self, Csrf, CsrfForm, CsrfToken, CurrentUser};
use super::view::{self, Layout};
use super::{auth, App, UserAgent};
use crate::service::{accounts, replies, sessions};

/// The routes of this module.
pub fn routes() -> Vec<Route> {
    routes![
        page,
        set_time_zone,
        change_password,
        revoke_session,
        revoke_others,
        revoke_reply_addresses
    ]
}

#[get("/settings")]
async fn page(
    user: CurrentUser,
    csrf: CsrfToken,
    flash: Option<FlashMessage<'_>>,
    app: App<'_>,
) -> Result<Template> {
    let accounts::Overview {
        sessions: list,
        memberships,
        sent,
        decisions,
    } = accounts::overview(app.svc, user.user.id).await?;
    let tz = user.user.tz();
    let sessions: Vec<_> = list
        .into_iter()
        .map(|s| {
            context! {
                id: s.id,
                browser: view::browser_name(&s.user_agent),
                user_agent: s.user_agent,
                created: view::when(s.created_at, tz),
                last_seen: view::when(s.last_seen_at, tz),
                current: s.id == user.session_id,
            }
        })
        .collect();
    let rooms: Vec<_> = memberships
        .into_iter()
        .map(|(room, membership)| context! { slug: room.slug, name: room.name, level: membership.alert_level })
        .collect();
    let alerts: Vec<_> = sent
        .into_iter()
        .map(|mail| context! { when: view::when(mail.created_at, tz), subject: mail.subject, rooms: mail.summary, status: mail.status })
        .collect();
    let decisions: Vec<_> = decisions
        .into_iter()
        .map(|d| context! { when: view::when(d.at, tz), decision: d.decision })
        .collect();
    let zones: Vec<&str> = chrono_tz::TZ_VARIANTS.iter().map(|tz| tz.name()).collect();
    let u = &user.user;
    Ok(Template::render(
        "settings",
        context! {
            layout: Layout::load(&app, &user, &csrf, flash, None).await?,
            avatar: view::Avatar::of_user(u.id, &u.username, u.avatar_at),
            time_zone: &u.time_zone,
            zones,
            sessions,
            email: &u.email,
            alert_mode: &u.alert_mode,
            digest_hour: u.digest_hour,
            hours: (0..24).collect::<Vec<i32>>(),
            rooms,
            alerts,
            decisions,
            replies: app.svc.mail.replies_enabled(),
        },
    ))
}

/// Goes back to the settings page with a notice, or with a correctable error.
fn back(result: Result<&'static str, AppError>) -> Result<Flash<Redirect>> {
    match result {
        Ok(done) => Ok(Flash::success(Redirect::to("/settings"), done)),
        Err(AppError::Invalid(why)) => Ok(Flash::error(Redirect::to("/settings"), why)),
        Err(e) => Err(e.into()),
    }
}

#[derive(FromForm)]
struct TimeZoneForm {
    time_zone: String,
}

#[post("/settings/time-zone", data = "<form>")]
async fn set_time_zone(
    user: CurrentUser,
    form: CsrfForm<TimeZoneForm>,
    app: App<'_>,
) -> Result<Flash<Redirect>> {
    let saved = accounts::set_time_zone(app.svc, user.user.id, form.0.time_zone).await;
    back(saved.map(|()| "Time zone saved."))
}

#[derive(FromForm)]
struct PasswordForm {
    current: String,
    password: String,
    confirm: String,
}

#[post("/settings/password", data = "<form>")]
async fn change_password(
    user: CurrentUser,
    form: CsrfForm<PasswordForm>,
    app: App<'_>,
    cookies: &CookieJar<'_>,
    agent: UserAgent,
) -> Result<Flash<Redirect>> {
    let form = form.0;
    if let Err(e) = auth::new_password(&form.password, &form.confirm) {
        return back(Err(e));
    }
    let changed =
        accounts::change_password(app.svc, &user.user, &form.current, &form.password, &agent.0)
            .await;
    back(changed.map(|token| {
        // This session continues under its new token.
        session::start(cookies, app.settings, token);
        "Password changed. Your other sessions were logged out."
    }))
}

#[post("/settings/replies/revoke", data = "<_form>")]
async fn revoke_reply_addresses(
    user: CurrentUser,
    _form: Csrf,
    app: App<'_>,
) -> Result<Flash<Redirect>> {
    replies::revoke(app.svc, user.user.id).await?;
    back(Ok(
        "Replies to the mails sent so far will be refused. New mails carry new reply addresses.",
    ))
}

#[post("/settings/sessions/<id>/revoke", data = "<_form>")]
async fn revoke_session(
    id: i64,
    user: CurrentUser,
    _form: Csrf,
    app: App<'_>,
) -> Result<Flash<Redirect>> {
    sessions::revoke(app.svc, user.user.id, id).await?;
    back(Ok("Session ended."))
}

#[post("/settings/sessions/revoke-others", data = "<_form>")]
async fn revoke_others(user: CurrentUser, _form: Csrf, app: App<'_>) -> Result<Flash<Redirect>> {
    sessions::end_all(app.svc, user.user.id, Some(user.session_id)).await?;
    back(Ok("All your other sessions were logged out."))
}
