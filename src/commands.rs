//! The operator commands behind `confab migrate`, `confab user …` and `confab room …`: the same
//! domain functions the web uses, on one direct connection. Each returns a line to print.

use crate::chat::{self, rooms, text, users};
use crate::db::{self, AnyConnection};
use crate::error::Error;
use crate::settings::Settings;

/// A command's failure, as one line for the operator.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct CommandError(String);

impl From<Error> for CommandError {
    fn from(e: Error) -> Self {
        CommandError(match e {
            Error::Internal(detail) | Error::Unavailable(detail) => detail,
            other => other.to_string(),
        })
    }
}

impl From<db::MigrateError> for CommandError {
    fn from(e: db::MigrateError) -> Self {
        CommandError(e.to_string())
    }
}

/// Brings the database up to date and opens a connection to it.
fn open(settings: &Settings) -> Result<AnyConnection, CommandError> {
    db::migrate(&settings.database_url)?;
    db::connect(&settings.database_url)
        .map_err(|e| CommandError(format!("cannot connect to the database: {e}")))
}

/// `confab migrate`: applies pending migrations.
pub fn migrate(settings: &Settings) -> Result<String, CommandError> {
    let applied = db::migrate(&settings.database_url)?;
    Ok(match applied.len() {
        0 => format!("{} is up to date.", settings.database_url.display()),
        n => format!(
            "Applied {n} migration(s) to {}.",
            settings.database_url.display()
        ),
    })
}

/// `confab user add`: creates an account with a password.
pub fn user_add(
    settings: &Settings,
    username: &str,
    email: &str,
    admin: bool,
    password: &str,
) -> Result<String, CommandError> {
    let username = text::username(username)?;
    let email = text::email(email)?;
    text::password(password)?;
    let hash = users::hash_password(password)?;
    let mut conn = open(settings)?;
    db::write_transaction(&mut conn, |conn| {
        users::create(conn, &username, &email, Some(&hash), admin, chat::now())
    })?;
    Ok(format!(
        "Created {}user {username}.",
        if admin { "admin " } else { "" }
    ))
}

/// `confab user password`: sets a new password and ends the user's sessions.
pub fn user_password(
    settings: &Settings,
    username: &str,
    password: &str,
) -> Result<String, CommandError> {
    text::password(password)?;
    let hash = users::hash_password(password)?;
    let mut conn = open(settings)?;
    db::write_transaction(&mut conn, |conn| {
        let user =
            users::find_by_username(conn, username)?.ok_or_else(|| unknown_user(username))?;
        users::set_password(conn, user.id, &hash)?;
        chat::sessions::revoke_all(conn, user.id, None)?;
        Ok::<_, Error>(())
    })?;
    Ok(format!(
        "Password of {} changed; their sessions were ended.",
        username.trim().to_lowercase()
    ))
}

/// `confab room add`: creates a room.
pub fn room_add(
    settings: &Settings,
    slug: &str,
    name: &str,
    private: bool,
) -> Result<String, CommandError> {
    let slug = text::slug(slug)?;
    let name = text::line(name, "room name", 1, 80)?;
    let mut conn = open(settings)?;
    let fields = rooms::RoomFields {
        slug: &slug,
        name: &name,
        description: "",
        is_private: private,
    };
    let room = db::write_transaction(&mut conn, |conn| rooms::create(conn, &fields, chat::now()))?;
    Ok(format!(
        "Created {} room {} at /rooms/{}.",
        if private { "private" } else { "open" },
        room.name,
        room.slug
    ))
}

/// `confab room member add`: adds a user to a room.
pub fn room_member_add(
    settings: &Settings,
    slug: &str,
    username: &str,
) -> Result<String, CommandError> {
    let mut conn = open(settings)?;
    db::write_transaction(&mut conn, |conn| {
        let room = rooms::find_by_slug(conn, slug).map_err(|e| match e {
            Error::NotFound => Error::Invalid(format!("There is no room `{slug}`.")),
            e => e,
        })?;
        let user =
            users::find_by_username(conn, username)?.ok_or_else(|| unknown_user(username))?;
        rooms::add_member(conn, room.id, user.id, chat::now())?;
        Ok::<_, Error>(format!("{} is a member of {}.", user.username, room.name))
    })
    .map_err(Into::into)
}

fn unknown_user(username: &str) -> Error {
    Error::Invalid(format!("There is no user `{}`.", text::clean(username)))
}

/// `confab mail test`: sends one mail through the configured transport and says how it went.
pub fn mail_test(settings: &Settings, to: &str) -> Result<String, CommandError> {
    let theme = crate::assets::Theme::new(settings.theme_dir.clone());
    let mail = crate::mail::Mail::from_settings(settings, &theme).map_err(CommandError)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CommandError(format!("cannot start: {e}")))?;
    // lettre's pool is dropped inside the runtime, as it needs one to close its connections.
    runtime
        .block_on(async move { mail.send_test(to).await })
        .map_err(|e| CommandError(format!("the test mail was not sent: {e}")))
}
