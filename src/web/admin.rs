//! The admin pages, all plain forms: rooms (create, rename, describe, archive, members) and users
//! (create with a password or a one-time link, deactivate, reset a password, end sessions).

use crate::web::template::Template;
use rocket::form::FromForm;
use rocket::http::RawStr;
use rocket::request::FlashMessage;
use rocket::response::{Flash, Redirect};
use rocket::{get, post, routes, Route, State};
use rocket_dyn_templates::context;

use super::session::{Csrf, CsrfForm, CsrfToken, SessionCache};
use super::view::Layout;
use super::{blocking, AdminUser};
use crate::chat::{self, rooms, sessions, text, tokens, users};
use crate::db::Db;
use crate::error::{Error, Result};
use crate::live::Live;
use crate::settings::Settings;

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
fn outcome(result: Result<String>, back: String) -> Result<Flash<Redirect>> {
    match result {
        Ok(done) => Ok(Flash::success(Redirect::to(back), done)),
        Err(Error::Invalid(why) | Error::Conflict(why)) => {
            Ok(Flash::error(Redirect::to(back), why))
        }
        Err(e) => Err(e),
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
    db: &State<Db>,
) -> Result<Template> {
    let rooms = db.run(rooms::list).await?;
    Ok(Template::render(
        "admin/rooms",
        context! { layout: Layout::new(&admin.0, &csrf, flash), rooms },
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
    _admin: AdminUser,
    form: CsrfForm<RoomForm>,
    db: &State<Db>,
) -> Result<Flash<Redirect>> {
    let form = form.0;
    let checked = (|| {
        Ok::<_, Error>((
            text::slug(&form.slug)?,
            text::line(&form.name, "room name", 1, 80)?,
            text::line(&form.description, "description", 0, 300)?,
        ))
    })();
    let (slug, name, description) = match checked {
        Ok(fields) => fields,
        Err(e) => return outcome(Err(e), "/admin/rooms".into()),
    };
    let fields_slug = slug.clone();
    let created = db
        .write(move |conn| {
            let fields = rooms::RoomFields {
                slug: &fields_slug,
                name: &name,
                description: &description,
                is_private: form.private,
            };
            rooms::create(conn, &fields, chat::now())
                .map(|room| format!("Room {} created.", room.name))
        })
        .await;
    let back = if created.is_ok() {
        format!("/admin/rooms/{slug}")
    } else {
        "/admin/rooms".into()
    };
    outcome(created, back)
}

#[get("/rooms/<slug>")]
async fn room_page(
    slug: String,
    admin: AdminUser,
    csrf: CsrfToken,
    flash: Option<FlashMessage<'_>>,
    db: &State<Db>,
) -> Result<Template> {
    let (room, members, users) = db
        .run(move |conn| {
            let room = rooms::find_by_slug(conn, &slug)?;
            let members = rooms::members(conn, room.id)?;
            let users = users::list(conn)?;
            Ok::<_, Error>((room, members, users))
        })
        .await?;
    let candidates: Vec<&str> = users
        .iter()
        .filter(|u| u.is_active && !members.iter().any(|m| m.id == u.id))
        .map(|u| u.username.as_str())
        .collect();
    Ok(Template::render(
        "admin/room",
        context! { layout: Layout::new(&admin.0, &csrf, flash), room, members, candidates },
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
    db: &State<Db>,
) -> Result<Flash<Redirect>> {
    let back = format!("/admin/rooms/{}", RawStr::new(&slug).percent_encode());
    let checked = (|| {
        Ok::<_, Error>((
            text::line(&form.0.name, "room name", 1, 80)?,
            text::line(&form.0.description, "description", 0, 300)?,
        ))
    })();
    let result = match checked {
        Ok((name, description)) => {
            db.write(move |conn| {
                let room = rooms::find_by_slug(conn, &slug)?;
                rooms::update(conn, room.id, &name, &description)?;
                Ok("Room updated.".to_string())
            })
            .await
        }
        Err(e) => Err(e),
    };
    outcome(result, back)
}

async fn set_archived(db: &Db, slug: String, archive: bool) -> Result<Flash<Redirect>> {
    let back = format!("/admin/rooms/{}", RawStr::new(&slug).percent_encode());
    let result = db
        .write(move |conn| {
            let room = rooms::find_by_slug(conn, &slug)?;
            rooms::set_archived(conn, room.id, archive.then(chat::now))?;
            Ok(if archive {
                "Room archived: its history stays, new messages are refused."
            } else {
                "Room restored."
            }
            .to_string())
        })
        .await;
    outcome(result, back)
}

#[post("/rooms/<slug>/archive", data = "<_form>")]
async fn archive_room(
    slug: String,
    _admin: AdminUser,
    _form: Csrf,
    db: &State<Db>,
) -> Result<Flash<Redirect>> {
    set_archived(db, slug, true).await
}

#[post("/rooms/<slug>/restore", data = "<_form>")]
async fn restore_room(
    slug: String,
    _admin: AdminUser,
    _form: Csrf,
    db: &State<Db>,
) -> Result<Flash<Redirect>> {
    set_archived(db, slug, false).await
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
    db: &State<Db>,
    live: &State<Live>,
) -> Result<Flash<Redirect>> {
    let changed_room = slug.clone();
    let back = format!("/admin/rooms/{}", RawStr::new(&slug).percent_encode());
    let username = form.0.username;
    let result = db
        .write(move |conn| {
            let room = rooms::find_by_slug(conn, &slug)?;
            let user = users::find_by_username(conn, &username)?
                .filter(|u| u.is_active)
                .ok_or_else(|| {
                    Error::Invalid(format!(
                        "There is no active user `{}`.",
                        text::clean(&username)
                    ))
                })?;
            rooms::add_member(conn, room.id, user.id, chat::now())?;
            Ok(format!("{} is now a member.", user.username))
        })
        .await;
    live.forget_slug(&changed_room);
    outcome(result, back)
}

#[post("/rooms/<slug>/members/<user_id>/remove", data = "<_form>")]
async fn remove_member(
    slug: String,
    user_id: i64,
    _admin: AdminUser,
    _form: Csrf,
    db: &State<Db>,
    live: &State<Live>,
) -> Result<Flash<Redirect>> {
    let changed_room = slug.clone();
    let back = format!("/admin/rooms/{}", RawStr::new(&slug).percent_encode());
    let result = db
        .write(move |conn| {
            let room = rooms::find_by_slug(conn, &slug)?;
            rooms::remove_member(conn, room.id, user_id)?;
            Ok("Member removed.".to_string())
        })
        .await;
    live.forget_slug(&changed_room);
    outcome(result, back)
}

#[get("/users")]
async fn users_page(
    admin: AdminUser,
    csrf: CsrfToken,
    flash: Option<FlashMessage<'_>>,
    db: &State<Db>,
) -> Result<Template> {
    let users = db.run(users::list).await?;
    Ok(Template::render(
        "admin/users",
        context! { layout: Layout::new(&admin.0, &csrf, flash), users },
    ))
}

#[get("/outbox")]
async fn outbox_page(admin: AdminUser, csrf: CsrfToken, db: &State<Db>) -> Result<Template> {
    let rows = db
        .run(|conn| crate::chat::outbox::undelivered(conn, 200))
        .await?;
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
        context! { layout: Layout::new(&admin.0, &csrf, None), mails },
    ))
}

#[derive(FromForm)]
struct NewUserForm {
    username: String,
    email: String,
    password: String,
    admin: bool,
}

/// The page that shows a one-time link to hand over.
fn link_page(
    admin: &AdminUser,
    csrf: &CsrfToken,
    settings: &Settings,
    username: &str,
    token: &str,
    what: &str,
) -> Template {
    let link = format!("{}/password/{token}", settings.public_url);
    Template::render(
        "admin/link",
        context! { layout: Layout::new(&admin.0, csrf, None), username, link, what },
    )
}

#[post("/users", data = "<form>")]
async fn create_user(
    admin: AdminUser,
    csrf: CsrfToken,
    form: CsrfForm<NewUserForm>,
    db: &State<Db>,
    settings: &State<Settings>,
    mail: &State<std::sync::Arc<crate::mail::Mail>>,
) -> Result<super::Reply> {
    let form = form.0;
    let checked = (|| {
        let username = text::username(&form.username)?;
        let email = text::email(&form.email)?;
        if !form.password.is_empty() {
            text::password(&form.password)?;
        }
        Ok::<_, Error>((username, email))
    })();
    let (username, email) = match checked {
        Ok(ok) => ok,
        Err(e) => return outcome(Err(e), "/admin/users".into()).map(super::Reply::Flash),
    };
    let password = form.password;
    let hash = if password.is_empty() {
        None
    } else {
        Some(blocking(move || users::hash_password(&password)).await?)
    };
    let with_link = hash.is_none();
    let name = username.clone();
    let mail = mail.inner().clone();
    let created = db
        .write(move |conn| {
            let now = chat::now();
            let id = users::create(conn, &name, &email, hash.as_deref(), form.admin, now)?;
            if with_link {
                // The link is shown to the admin and mailed to the person, through the outbox.
                let token = tokens::issue(conn, id, tokens::SET_PASSWORD, now)?;
                let invite = mail
                    .link_mail("invite", &users::find(conn, id)?, &token)
                    .map_err(Error::Internal)?;
                crate::chat::outbox::enqueue(conn, &invite, now)?;
                return Ok(Some(token));
            }
            Ok(None)
        })
        .await;
    match created {
        Ok(Some(token)) => Ok(super::Reply::Page((
            rocket::http::Status::Ok,
            link_page(&admin, &csrf, settings, &username, &token, "invitation"),
        ))),
        other => outcome(
            other.map(|_| format!("User {username} created.")),
            "/admin/users".into(),
        )
        .map(super::Reply::Flash),
    }
}

async fn set_active(
    sessions: &SessionCache,
    db: &Db,
    admin: &AdminUser,
    user_id: i64,
    active: bool,
) -> Result<Flash<Redirect>> {
    if user_id == admin.0.user.id && !active {
        return outcome(
            Err(Error::Invalid(
                "You cannot deactivate your own account.".into(),
            )),
            "/admin/users".into(),
        );
    }
    let result = db
        .write(move |conn| {
            users::set_active(conn, user_id, active)?;
            let user = users::find(conn, user_id)?;
            Ok(format!(
                "{} is {}.",
                user.username,
                if active {
                    "active again"
                } else {
                    "deactivated and logged out everywhere"
                }
            ))
        })
        .await;
    sessions.forget_user(user_id);
    outcome(result, "/admin/users".into())
}

#[post("/users/<user_id>/deactivate", data = "<_form>")]
async fn deactivate_user(
    user_id: i64,
    admin: AdminUser,
    _form: Csrf,
    db: &State<Db>,
    sessions: &State<SessionCache>,
) -> Result<Flash<Redirect>> {
    set_active(sessions, db, &admin, user_id, false).await
}

#[post("/users/<user_id>/activate", data = "<_form>")]
async fn activate_user(
    user_id: i64,
    admin: AdminUser,
    _form: Csrf,
    db: &State<Db>,
    sessions: &State<SessionCache>,
) -> Result<Flash<Redirect>> {
    set_active(sessions, db, &admin, user_id, true).await
}

#[post("/users/<user_id>/reset", data = "<_form>")]
async fn reset_password(
    user_id: i64,
    admin: AdminUser,
    csrf: CsrfToken,
    _form: Csrf,
    db: &State<Db>,
    settings: &State<Settings>,
) -> Result<Template> {
    let (user, token) = db
        .write(move |conn| {
            let user = users::find(conn, user_id)?;
            let token = tokens::issue(conn, user.id, tokens::SET_PASSWORD, chat::now())?;
            Ok::<_, Error>((user, token))
        })
        .await?;
    Ok(link_page(
        &admin,
        &csrf,
        settings,
        &user.username,
        &token,
        "password reset",
    ))
}

#[post("/users/<user_id>/sessions/revoke", data = "<_form>")]
async fn end_sessions(
    user_id: i64,
    admin: AdminUser,
    _form: Csrf,
    db: &State<Db>,
    sessions: &State<SessionCache>,
) -> Result<Flash<Redirect>> {
    let keep = (user_id == admin.0.user.id).then_some(admin.0.session_id);
    let result = db
        .write(move |conn| {
            let user = users::find(conn, user_id)?;
            let n = sessions::revoke_all(conn, user.id, keep)?;
            Ok(format!("Ended {n} session(s) of {}.", user.username))
        })
        .await;
    sessions.forget_user(user_id);
    outcome(result, "/admin/users".into())
}
