//! My settings: time zone, password, and the browsers I am logged in on.

use crate::web::template::Template;
use rocket::form::FromForm;
use rocket::http::CookieJar;
use rocket::request::FlashMessage;
use rocket::response::{Flash, Redirect};
use rocket::{get, post, routes, Route, State};
use rocket_dyn_templates::context;

use super::error::{AppError, Result};
use super::session::{self, Csrf, CsrfForm, CsrfToken, CurrentUser, SessionCache};
use super::view::{self, Layout};
use super::{auth, UserAgent};
use crate::chat::{self, sessions, tokens, users};
use crate::db::Db;
use crate::service::blocking;
use crate::settings::Settings;

/// The routes of this module.
pub fn routes() -> Vec<Route> {
    routes![
        page,
        set_time_zone,
        change_password,
        revoke_session,
        revoke_others
    ]
}

#[get("/settings")]
async fn page(
    user: CurrentUser,
    csrf: CsrfToken,
    flash: Option<FlashMessage<'_>>,
    db: &State<Db>,
) -> Result<Template> {
    let uid = user.user.id;
    let (list, memberships, sent) = db
        .run(move |conn| {
            Ok::<_, AppError>((
                sessions::list(conn, uid)?,
                crate::chat::rooms::memberships(conn, uid)?,
                crate::chat::outbox::recent_alerts(conn, uid, 20)?,
            ))
        })
        .await?;
    let tz = user.user.tz();
    let sessions: Vec<_> = list
        .into_iter()
        .map(|s| {
            context! {
                id: s.id,
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
    let zones: Vec<&str> = chrono_tz::TZ_VARIANTS.iter().map(|tz| tz.name()).collect();
    let u = &user.user;
    Ok(Template::render(
        "settings",
        context! {
            layout: Layout::new(&user, &csrf, flash),
            time_zone: &u.time_zone,
            zones,
            sessions,
            email: &u.email,
            alert_mode: &u.alert_mode,
            digest_hour: u.digest_hour,
            hours: (0..24).collect::<Vec<i32>>(),
            rooms,
            alerts,
        },
    ))
}

/// Goes back to the settings page with a notice. Every change here touches the user's account or
/// sessions, so their cached session checks are forgotten.
fn back(
    sessions: &SessionCache,
    user_id: i64,
    result: Result<&'static str, AppError>,
) -> Result<Flash<Redirect>> {
    sessions.forget_user(user_id);
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
    db: &State<Db>,
    sessions: &State<SessionCache>,
) -> Result<Flash<Redirect>> {
    let uid = user.user.id;
    let tz = form.0.time_zone;
    back(
        sessions,
        user.user.id,
        db.write(move |conn| users::set_time_zone(conn, uid, &tz))
            .await
            .map(|()| "Time zone saved."),
    )
}

#[derive(FromForm)]
struct PasswordForm {
    current: String,
    password: String,
    confirm: String,
}

#[post("/settings/password", data = "<form>")]
#[allow(clippy::too_many_arguments)]
async fn change_password(
    user: CurrentUser,
    form: CsrfForm<PasswordForm>,
    db: &State<Db>,
    sessions: &State<SessionCache>,
    settings: &State<Settings>,
    cookies: &CookieJar<'_>,
    agent: UserAgent,
) -> Result<Flash<Redirect>> {
    let form = form.0;
    if let Err(e) = auth::new_password(&form.password, &form.confirm) {
        return back(sessions, user.user.id, Err(e));
    }
    let current = user.user.password_hash.clone();
    let (given, password) = (form.current, form.password);
    let hash = blocking(move || {
        if !users::verify_password(current.as_deref(), &given) {
            return Err(AppError::Invalid(
                "Your current password is not right.".into(),
            ));
        }
        users::hash_password(&password)
    })
    .await;
    let hash = match hash {
        Ok(hash) => hash,
        Err(e) => return back(sessions, user.user.id, Err(e)),
    };
    // Every session ends (this one too: it continues under a new id) and every outstanding reset
    // or invitation link stops working, so whoever knew the old password or holds an old link is out.
    let (uid, agent, now) = (user.user.id, agent.0, chat::now());
    let token = db
        .write(move |conn| {
            users::set_password(conn, uid, &hash)?;
            sessions::revoke_all(conn, uid, None)?;
            tokens::revoke_unused(conn, uid)?;
            sessions::create(conn, uid, &agent, now)
        })
        .await?;
    session::start(cookies, settings, token);
    back(
        sessions,
        user.user.id,
        Ok("Password changed. Your other sessions were logged out."),
    )
}

#[post("/settings/sessions/<id>/revoke", data = "<_form>")]
async fn revoke_session(
    id: i64,
    user: CurrentUser,
    _form: Csrf,
    db: &State<Db>,
    sessions: &State<SessionCache>,
) -> Result<Flash<Redirect>> {
    let uid = user.user.id;
    db.write(move |conn| sessions::revoke(conn, uid, id))
        .await?;
    back(sessions, user.user.id, Ok("Session ended."))
}

#[post("/settings/sessions/revoke-others", data = "<_form>")]
async fn revoke_others(
    user: CurrentUser,
    _form: Csrf,
    db: &State<Db>,
    sessions: &State<SessionCache>,
) -> Result<Flash<Redirect>> {
    let (uid, sid) = (user.user.id, user.session_id);
    db.write(move |conn| sessions::revoke_all(conn, uid, Some(sid)))
        .await?;
    back(
        sessions,
        user.user.id,
        Ok("All your other sessions were logged out."),
    )
}
