//! The operator commands behind `confab migrate`, `confab user …`, `confab room …` and
//! `confab import …`: the same
//! services the web uses, on a small pool of their own. Each returns a line to print.

use std::collections::HashMap;
use std::future::Future;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::db::{self, Db};
use crate::error::Error;
use crate::import;
use crate::service::accounts::{self, NewAccount};
use crate::service::imports::{self, Invite};
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

/// Where `confab import` reads from.
#[derive(Debug, Clone)]
pub enum ImportSource {
    /// A Slack workspace export (zip), with shared files looked up in a folder.
    Slack {
        /// The export.
        zip: PathBuf,
        /// Where its shared files are.
        files: Option<PathBuf>,
    },
    /// A django-conversate database, with its store root for uploaded files.
    Conversate {
        /// Its database address.
        url: String,
        /// Its `CONVERSATE_STORE_ROOT` (or `MEDIA_ROOT`).
        store: Option<PathBuf>,
    },
    /// A Confab room export (JSON), with its files looked up in a folder.
    Confab {
        /// The export.
        json: PathBuf,
        /// Where its files are.
        files: Option<PathBuf>,
    },
}

/// `confab import`: reads the whole export (a bad one is refused before anything is written), then
/// writes it room by room, with a progress bar on a terminal; returns the summary.
pub fn import(
    settings: &Settings,
    source: &ImportSource,
    map_users: Option<&Path>,
    invite: Invite,
) -> Result<String, CommandError> {
    let map_users = match map_users {
        Some(path) => read_user_map(path)?,
        None => HashMap::new(),
    };
    let history = match source {
        ImportSource::Slack { zip, files } => import::slack::read(zip, files.as_deref()),
        ImportSource::Conversate { url, store } => import::conversate::read(url, store.as_deref()),
        ImportSource::Confab { json, files } => import::confab::read(json, files.as_deref()),
    }
    .map_err(|e| CommandError(e.to_string()))?;
    let total: usize = history.rooms.iter().map(|r| r.posts.len()).sum();
    let options = imports::Options { map_users, invite };
    with_services(settings, |svc| async move {
        let done = Arc::new(AtomicUsize::new(0));
        let bar = std::io::stderr()
            .is_terminal()
            .then(|| tokio::spawn(progress_bar(done.clone(), total)));
        let source = history.source.clone();
        let summary = imports::run(&svc, history, &options, done).await;
        if let Some(bar) = bar {
            bar.abort();
            eprint!("\r{:60}\r", "");
        }
        let summary = summary?;
        // Invitations go out now, not at the next start of the server.
        if options.invite == Invite::Mail {
            crate::jobs::alerts::send(&svc.db, &svc.mail, &svc.settings, crate::chat::now())
                .await?;
        }
        Ok(describe_import(&source, &summary))
    })
}

/// Redraws "Importing: 1,200 of 5,000 messages" with a bar on standard error until aborted.
async fn progress_bar(done: Arc<AtomicUsize>, total: usize) {
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    loop {
        tick.tick().await;
        let done = done.load(Ordering::Relaxed);
        let width = 30;
        let filled = (done * width)
            .checked_div(total)
            .unwrap_or(width)
            .min(width);
        eprint!(
            "\rImporting [{}{}] {done} of {total} messages",
            "#".repeat(filled),
            ".".repeat(width - filled)
        );
    }
}

/// The lines `--map-users FILE` holds: `source person,account here` (the person by their id or
/// username in the export, the account by username or address); `#` starts a comment.
fn read_user_map(path: &Path) -> Result<HashMap<String, String>, CommandError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| CommandError(format!("{}: {e}", path.display())))?;
    let mut map = HashMap::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((from, to)) = line.split_once(',') else {
            return Err(CommandError(format!(
                "{} line {}: expected `person in the export,account here`",
                path.display(),
                n + 1
            )));
        };
        map.insert(from.trim().to_string(), to.trim().to_string());
    }
    Ok(map)
}

fn describe_import(source: &str, s: &imports::Summary) -> String {
    let mut out = format!("Imported from {source}:\n");
    out.push_str(&format!(
        "  people:    {} created, {} found here already\n",
        s.users_created, s.users_mapped
    ));
    out.push_str(&format!(
        "  rooms:     {} created, {} given new messages\n",
        s.rooms_created, s.rooms_extended
    ));
    out.push_str(&format!(
        "  messages:  {} imported, {} already here\n",
        s.messages, s.already
    ));
    out.push_str(&format!("  files:     {}\n", s.files));
    out.push_str(&format!("  reactions: {}\n", s.reactions));
    if s.skipped.0.is_empty() {
        out.push_str("  skipped:   nothing\n");
    } else {
        out.push_str("  skipped:\n");
        for (reason, n) in &s.skipped.0 {
            out.push_str(&format!("    {n} {reason}\n"));
        }
    }
    for warning in &s.warnings {
        out.push_str(&format!("  note: {warning}\n"));
    }
    if s.users_created > 0 && s.invited.is_empty() {
        out.push_str(
            "New people are inactive and have no password: activate and invite them on the admin page, \
             or import again with --invite print or --invite mail.\n",
        );
    }
    for (username, link) in &s.invited {
        match link {
            Some(link) => out.push_str(&format!("  invitation for {username}: {link}\n")),
            None => out.push_str(&format!("  invitation mailed to {username}\n")),
        }
    }
    out.trim_end().to_string()
}
