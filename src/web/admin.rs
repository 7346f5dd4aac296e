//! The admin pages, all plain forms: rooms (create, rename, describe, archive, members) and users
//! (create with a password or a one-time link, deactivate, reset a password, end sessions).

use crate::web::template::Template;
use rocket::form::FromForm;
use rocket::http::RawStr;
use rocket::request::FlashMessage;
use rocket::response::{Flash, Redirect};
use rocket::{get, post, routes, Route};
use rocket_dyn_templates::context;

use super::error::{AppError, Result};
use super::session::{Csrf, CsrfForm, CsrfToken};
use super::view::Layout;
use super::{AdminUser, App};
use crate::service::accounts::{self, NewAccount};
use crate::service::{rooms, sessions};

/// The routes of this module, under `/admin`.
pub fn routes() -> Vec<Route> {
    routes![
        index,
        rooms_page,
        create_room,
        room_page,
        update_room,
        archive_room,
        restore_room,
        add_member,
        remove_member,
        users_page,
        outbox_page,
        create_user,
        deactivate_user,
        activate_user,
        reset_password,
        end_sessions
    ]
}

/// Runs an admin action and turns a correctable error into a notice on the page it came from.
fn outcome(result: Result<String, AppError>, back: String) -> Result<Flash<Redirect>> {
    match result {
        Ok(done) => Ok(Flash::success(Redirect::to(back), done)),
        Err(AppError::Invalid(why) | AppError::Conflict(why)) => {
            Ok(Flash::error(Redirect::to(back), why))
        }
        Err(e) => Err(e.into()),
    }
}

#[get("/")]
fn index(_admin: AdminUser) -> Redirect {
    Redirect::to("/admin/rooms")
}

#[get("/rooms")]
async fn rooms_page(
    admin: AdminUser,
    csrf: CsrfToken,
    flash: Option<FlashMessage<'_>>,
    app: App<'_>,
) -> Result<Template> {
    let rooms = rooms::list(app.svc).await?;
    Ok(Template::render(
        "admin/rooms",
        context! { layout: Layout::load(&app, &admin.0, &csrf, flash, None).await?, rooms },
    ))
}

#[derive(FromForm)]
struct RoomForm {
    slug: String,
    name: String,
    description: String,
    private: bool,
}

#[post("/rooms", data = "<form>")]
async fn create_room(
    admin: AdminUser,
    form: CsrfForm<RoomForm>,
    app: App<'_>,
) -> Result<Flash<Redirect>> {
    let form = form.0;
    let created = rooms::create(
        app.svc,
        &form.slug,
        &form.name,
        &form.description,
        form.private,
        Some(admin.0.user.id),
    )
    .await;
    let back = match &created {
        Ok(room) => format!("/admin/rooms/{}", room.slug),
        Err(_) => "/admin/rooms".into(),
    };
    outcome(
        created.map(|room| format!("Room {} created; you are its first member.", room.name)),
        back,
    )
}

#[get("/rooms/<slug>")]
async fn room_page(
    slug: String,
    admin: AdminUser,
    csrf: CsrfToken,
    flash: Option<FlashMessage<'_>>,
    app: App<'_>,
) -> Result<Template> {
    let (room, members, users) = rooms::details(app.svc, slug).await?;
    let candidates: Vec<&str> = users
        .iter()
        .filter(|u| u.is_active && !members.iter().any(|m| m.id == u.id))
        .map(|u| u.username.as_str())
        .collect();
    Ok(Template::render(
        "admin/room",
        context! { layout: Layout::load(&app, &admin.0, &csrf, flash, Some(&room.slug)).await?, room, members, candidates },
    ))
}

#[derive(FromForm)]
struct RoomDetails {
    name: String,
    description: String,
}

#[post("/rooms/<slug>", data = "<form>")]
async fn update_room(
    slug: String,
    _admin: AdminUser,
    form: CsrfForm<RoomDetails>,
    app: App<'_>,
) -> Result<Flash<Redirect>> {
    let back = format!("/admin/rooms/{}", RawStr::new(&slug).percent_encode());
    let result = rooms::update(app.svc, slug, &form.0.name, &form.0.description).await;
    outcome(result.map(|()| "Room updated.".to_string()), back)
}

async fn set_archived(app: &App<'_>, slug: String, archive: bool) -> Result<Flash<Redirect>> {
    let back = format!("/admin/rooms/{}", RawStr::new(&slug).percent_encode());
    let result = rooms::set_archived(app.svc, slug, archive).await.map(|()| {
        if archive {
            "Room archived: its history stays, new messages are refused."
        } else {
            "Room restored."
        }
        .to_string()
    });
    outcome(result, back)
}

#[post("/rooms/<slug>/archive", data = "<_form>")]
async fn archive_room(
    slug: String,
    _admin: AdminUser,
    _form: Csrf,
    app: App<'_>,
) -> Result<Flash<Redirect>> {
    set_archived(&app, slug, true).await
}

#[post("/rooms/<slug>/restore", data = "<_form>")]
async fn restore_room(
    slug: String,
    _admin: AdminUser,
    _form: Csrf,
    app: App<'_>,
) -> Result<Flash<Redirect>> {
    set_archived(&app, slug, false).await
}

#[derive(FromForm)]
struct MemberForm {
    username: String,
}

#[post("/rooms/<slug>/members", data = "<form>")]
async fn add_member(
    slug: String,
    _admin: AdminUser,
    form: CsrfForm<MemberForm>,
    app: App<'_>,
) -> Result<Flash<Redirect>> {
    let back = format!("/admin/rooms/{}", RawStr::new(&slug).percent_encode());
    let result = rooms::add_member(app.svc, slug, &form.0.username).await;
    outcome(
        result.map(|(_, user)| format!("{} is now a member.", user.username)),
        back,
    )
}

#[post("/rooms/<slug>/members/<user_id>/remove", data = "<_form>")]
async fn remove_member(
    slug: String,
    user_id: i64,
    _admin: AdminUser,
    _form: Csrf,
    app: App<'_>,
) -> Result<Flash<Redirect>> {
    let back = format!("/admin/rooms/{}", RawStr::new(&slug).percent_encode());
    let result = rooms::remove_member(app.svc, slug, user_id).await;
    outcome(result.map(|()| "Member removed.".to_string()), back)
}

#[get("/users")]
async fn users_page(
    admin: AdminUser,
    csrf: CsrfToken,
    flash: Option<FlashMessage<'_>>,
    app: App<'_>,
) -> Result<Template> {
    let users = accounts::list(app.svc).await?;
    Ok(Template::render(
        "admin/users",
        context! { layout: Layout::load(&app, &admin.0, &csrf, flash, None).await?, users },
    ))
}

#[get("/outbox")]
async fn outbox_page(admin: AdminUser, csrf: CsrfToken, app: App<'_>) -> Result<Template> {
    let rows = accounts::undelivered_mail(app.svc, 200).await?;
    let tz = admin.0.user.tz();
    let mails: Vec<_> = rows
        .into_iter()
        .map(|m| {
            context! {
                id: m.id, kind: m.kind, recipient: m.recipient, subject: m.subject, status: m.status,
                attempts: m.attempts, last_error: m.last_error, created: crate::web::view::when(m.created_at, tz),
            }
        })
        .collect();
    Ok(Template::render(
        "admin/outbox",
        context! { layout: Layout::load(&app, &admin.0, &csrf, None, None).await?, mails },
    ))
}

#[derive(FromForm)]
struct NewUserForm {
    username: String,
    email: String,
    password: String,
    admin: bool,
}

/// Which one-time link an admin hands over.
#[derive(Clone, Copy)]
enum Link {
    /// For a new account; also mailed to the person.
    Invitation,
    /// A new password for an existing account; shown only here.
    Reset,
}

/// The page that shows a one-time link to hand over.
async fn link_page(
    app: &App<'_>,
    admin: &AdminUser,
    csrf: &CsrfToken,
    username: &str,
    token: &str,
    kind: Link,
) -> Result<Template> {
    let link = format!("{}/password/{token}", app.settings.public_url);
    let (what, mailed) = match kind {
        Link::Invitation => ("invitation", true),
        Link::Reset => ("password reset", false),
    };
    let layout = Layout::load(app, &admin.0, csrf, None, None).await?;
    Ok(Template::render(
        "admin/link",
        context! { layout, username, link, what, mailed },
    ))
}

#[post("/users", data = "<form>")]
async fn create_user(
    admin: AdminUser,
    csrf: CsrfToken,
    form: CsrfForm<NewUserForm>,
    app: App<'_>,
) -> Result<super::Reply> {
    let form = form.0;
    let account = NewAccount {
        username: &form.username,
        email: &form.email,
        password: Some(form.password.as_str()).filter(|p| !p.is_empty()),
        admin: form.admin,
    };
    match accounts::create(app.svc, account).await {
        Ok((user, Some(token))) => Ok(super::Reply::Page((
            rocket::http::Status::Ok,
            link_page(
                &app,
                &admin,
                &csrf,
                &user.username,
                &token,
                Link::Invitation,
            )
            .await?,
        ))),
        other => outcome(
            other.map(|(user, _)| format!("User {} created.", user.username)),
            "/admin/users".into(),
        )
        .map(super::Reply::Flash),
    }
}

async fn set_active(
    app: &App<'_>,
    admin: &AdminUser,
    user_id: i64,
    active: bool,
) -> Result<Flash<Redirect>> {
    let result = accounts::set_active(app.svc, admin.0.user.id, user_id, active).await;
    let done = result.map(|user| {
        let now = if active {
            "active again"
        } else {
            "deactivated and logged out everywhere"
        };
        format!("{} is {now}.", user.username)
    });
    outcome(done, "/admin/users".into())
}

#[post("/users/<user_id>/deactivate", data = "<_form>")]
async fn deactivate_user(
    user_id: i64,
    admin: AdminUser,
    _form: Csrf,
    app: App<'_>,
) -> Result<Flash<Redirect>> {
    set_active(&app, &admin, user_id, false).await
}

#[post("/users/<user_id>/activate", data = "<_form>")]
async fn activate_user(
    user_id: i64,
    admin: AdminUser,
    _form: Csrf,
    app: App<'_>,
) -> Result<Flash<Redirect>> {
    set_active(&app, &admin, user_id, true).await
}

#[post("/users/<user_id>/reset", data = "<_form>")]
async fn reset_password(
    user_id: i64,
    admin: AdminUser,
    csrf: CsrfToken,
    _form: Csrf,
    app: App<'_>,
) -> Result<Template> {
    let (user, token) = accounts::password_link(app.svc, user_id).await?;
    link_page(&app, &admin, &csrf, &user.username, &token, Link::Reset).await
}

#[post("/users/<user_id>/sessions/revoke", data = "<_form>")]
async fn end_sessions(
    user_id: i64,
    admin: AdminUser,
    _form: Csrf,
    app: App<'_>,
) -> Result<Flash<Redirect>> {
    let keep = (user_id == admin.0.user.id).then_some(admin.0.session_id);
    let result = sessions::end_all(app.svc, user_id, keep).await;
    outcome(
        result.map(|(user, n)| format!("Ended {n} session(s) of {}.", user.username)),
        "/admin/users".into(),
    )
}
