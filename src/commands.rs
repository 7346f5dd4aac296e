//! The operator commands behind `confab migrate`, `confab user …` and `confab room …`: the same
//! services the web uses, on a small pool of their own. Each returns a line to print.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use crate::db::{self, Db};
use crate::error::Error;
use crate::service::accounts::{self, NewAccount};
use crate::service::{rooms, Services};
use crate::settings::Settings;

/// A command's failure, as one line for the operator.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct CommandError(String);

impl From<Error> for CommandError {
    fn from(e: Error) -> Self {
        CommandError(e.detail())
    }
}

impl From<db::MigrateError> for CommandError {
    fn from(e: db::MigrateError) -> Self {
        CommandError(e.to_string())
    }
}

/// The mail service and a runtime to use it on (lettre's pool, if any, must also be dropped
/// inside a runtime, as it needs one to close its connections).
fn mail_and_runtime(
    settings: &Settings,
) -> Result<(crate::mail::Mail, tokio::runtime::Runtime), CommandError> {
    let theme = crate::assets::Theme::new(settings.theme_dir.clone());
    let mail = crate::mail::Mail::from_settings(settings, &theme).map_err(CommandError)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CommandError(format!("cannot start: {e}")))?;
    Ok((mail, runtime))
}

/// Brings the database up to date, then runs `work` with the services on a runtime of its own.
fn with_services<T, F>(
    settings: &Settings,
    work: impl FnOnce(Services) -> F,
) -> Result<T, CommandError>
where
    F: Future<Output = Result<T, CommandError>>,
{
    db::migrate(&settings.database_url)?;
    let (mail, runtime) = mail_and_runtime(settings)?;
    runtime.block_on(async move {
        let live = crate::live::Live::new(0, Duration::from_secs(settings.presence_timeout));
        let store = crate::files::FileStore::new(settings.uploads.dir.clone());
        let db = Db::new(&settings.database_url, 2);
        work(Services::new(settings, db, live, store, Arc::new(mail))).await
    })
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
    with_services(settings, |svc| async move {
        let account = NewAccount {
            username,
            email,
            password: Some(password),
            admin,
        };
        let (user, _) = accounts::create(&svc, account).await?;
        Ok(format!(
            "Created {}user {}.",
            if admin { "admin " } else { "" },
            user.username
        ))
    })
}

/// `confab user password`: sets a new password and ends the user's sessions.
pub fn user_password(
    settings: &Settings,
    username: &str,
    password: &str,
) -> Result<String, CommandError> {
    with_services(settings, |svc| async move {
        let user = accounts::set_password(&svc, username, password).await?;
        Ok(format!(
            "Password of {} changed; their sessions were ended.",
            user.username
        ))
    })
}

/// `confab room add`: creates a room.
pub fn room_add(
    settings: &Settings,
    slug: &str,
    name: &str,
    private: bool,
) -> Result<String, CommandError> {
    with_services(settings, |svc| async move {
        let room = rooms::create(&svc, slug, name, "", private, None).await?;
        Ok(format!(
            "Created {} room {} at /rooms/{}.",
            if private { "private" } else { "open" },
            room.name,
            room.slug
        ))
    })
}

/// `confab room member add`: adds an active user to a room.
pub fn room_member_add(
    settings: &Settings,
    slug: &str,
    username: &str,
) -> Result<String, CommandError> {
    with_services(settings, |svc| async move {
        let (room, user) = rooms::add_member(&svc, slug.to_string(), username)
            .await
            .map_err(|e| match e {
                Error::NotFound => Error::Invalid(format!("There is no room `{slug}`.")),
                e => e,
            })?;
        Ok(format!("{} is a member of {}.", user.username, room.name))
    })
}

/// `confab mail test`: sends one mail through the configured transport and says how it went.
pub fn mail_test(settings: &Settings, to: &str) -> Result<String, CommandError> {
    let (mail, runtime) = mail_and_runtime(settings)?;
    runtime
        .block_on(async move { mail.send_test(to).await })
        .map_err(|e| CommandError(format!("the test mail was not sent: {e}")))
}
