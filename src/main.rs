//! The `confab` command: serves the chat, or runs an operator command.

use std::io::{BufRead, IsTerminal};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use confab::commands::ImportSource;
use confab::service::imports::Invite;
use confab::{commands, Settings};

/// jemalloc, unless built with `--no-default-features` (see Cargo.toml).
#[cfg(all(feature = "jemalloc", not(target_env = "msvc")))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's settings (its `malloc_conf`): a thread of its own returns freed memory to the system
/// after the decay time, so that an idle server gives back what a burst took.
#[cfg(all(feature = "jemalloc", not(target_env = "msvc")))]
#[export_name = "_rjem_malloc_conf"]
static JEMALLOC_SETTINGS: &[u8; 23] = b"background_thread:true\0";

/// Confab: a self-hosted, persistent, asynchronous team chat.
#[derive(Parser)]
#[command(name = "confab", version)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run pending migrations and serve Confab (the default).
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Manage accounts.
    #[command(subcommand)]
    User(UserCommand),
    /// Manage rooms.
    #[command(subcommand)]
    Room(RoomCommand),
    /// Check mail delivery.
    #[command(subcommand)]
    Mail(MailCommand),
    /// Bring history from Slack, django-conversate or another Confab (running it twice imports
    /// nothing twice).
    Import {
        #[command(subcommand)]
        from: ImportCommand,
        /// A CSV file of `person in the export,account here` lines (id or username there;
        /// username or address here); others are matched by address, else created.
        #[arg(long, global = true, value_name = "FILE")]
        map_users: Option<PathBuf>,
        /// Invite the people the import creates: `print` their links, or `mail` them (else they
        /// are created inactive, without a password).
        #[arg(long, global = true, value_name = "HOW")]
        invite: Option<InviteHow>,
    },
}

#[derive(Subcommand)]
enum ImportCommand {
    /// A Slack workspace export (zip).
    Slack {
        export: PathBuf,
        /// The folder holding the export's shared files (`<file id>/<name>`, `<file id>-<name>`
        /// or `<name>`); without it a file becomes a line naming it.
        #[arg(long, value_name = "DIR")]
        files: Option<PathBuf>,
    },
    /// A django-conversate database (postgres://… or a SQLite file), read without changing it.
    Conversate {
        database_url: String,
        /// Its store root (CONVERSATE_STORE_ROOT, else MEDIA_ROOT), for uploaded files.
        #[arg(long, value_name = "DIR")]
        store: Option<PathBuf>,
    },
    /// A room exported from Confab (`export.json`).
    Confab {
        export: PathBuf,
        /// The folder holding the room's files (`<file id>/<name>`, `<file id>-<name>` or `<name>`).
        #[arg(long, value_name = "DIR")]
        files: Option<PathBuf>,
    },
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum InviteHow {
    Print,
    Mail,
}

#[derive(Subcommand)]
enum MailCommand {
    /// Send one test mail through the configured transport (`smtp_url`, else `mail_dir`).
    Test { address: String },
}

#[derive(Subcommand)]
enum UserCommand {
    /// Create an account; the password is read from standard input (prompted on a terminal).
    Add {
        username: String,
        email: String,
        /// Make the account an admin.
        #[arg(long)]
        admin: bool,
    },
    /// Set a user's password; it is read from standard input (prompted on a terminal).
    Password { username: String },
}

#[derive(Subcommand)]
enum RoomCommand {
    /// Create a room.
    Add {
        slug: String,
        name: String,
        /// Only members an admin adds may see it.
        #[arg(long)]
        private: bool,
    },
    /// Manage a room's members.
    #[command(subcommand)]
    Member(MemberCommand),
}

#[derive(Subcommand)]
enum MemberCommand {
    /// Add a user to a room.
    Add { slug: String, username: String },
}

/// Reads a password: prompted twice without echo on a terminal, else the first line of standard input.
fn read_password() -> Result<String, String> {
    if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password("Password: ").map_err(|e| e.to_string())?;
        let second = rpassword::prompt_password("Again: ").map_err(|e| e.to_string())?;
        if first != second {
            return Err("the two passwords do not match".into());
        }
        return Ok(first);
    }
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| e.to_string())?;
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}

fn run(command: Command, settings: Settings) -> Result<String, String> {
    let done = match command {
        Command::Serve => {
            // The stopped app (and the SMTP pool in it) is dropped inside the runtime.
            return rocket::execute(async move {
                confab::app(settings)
                    .launch()
                    .await
                    .map(|_| String::new())
                    .map_err(|e| format!("could not start: {e}"))
            });
        }
        Command::Migrate => commands::migrate(&settings),
        Command::User(UserCommand::Add {
            username,
            email,
            admin,
        }) => commands::user_add(&settings, &username, &email, admin, &read_password()?),
        Command::User(UserCommand::Password { username }) => {
            commands::user_password(&settings, &username, &read_password()?)
        }
        Command::Room(RoomCommand::Add {
            slug,
            name,
            private,
        }) => commands::room_add(&settings, &slug, &name, private),
        Command::Room(RoomCommand::Member(MemberCommand::Add { slug, username })) => {
            commands::room_member_add(&settings, &slug, &username)
        }
        Command::Mail(MailCommand::Test { address }) => commands::mail_test(&settings, &address),
        Command::Import {
            from,
            map_users,
            invite,
        } => {
            let source = match from {
                ImportCommand::Slack { export, files } => {
                    ImportSource::Slack { zip: export, files }
                }
                ImportCommand::Conversate {
                    database_url,
                    store,
                } => ImportSource::Conversate {
                    url: database_url,
                    store,
                },
                ImportCommand::Confab { export, files } => ImportSource::Confab {
                    json: export,
                    files,
                },
            };
            let invite = match invite {
                None => Invite::No,
                Some(InviteHow::Print) => Invite::Print,
                Some(InviteHow::Mail) => Invite::Mail,
            };
            commands::import(&settings, &source, map_users.as_deref(), invite)
        }
    };
    done.map_err(|e| e.to_string())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let settings = match Settings::from_figment(Settings::default_figment()) {
        Ok(settings) => settings,
        Err(e) => {
            eprintln!("confab: {e}");
            return ExitCode::FAILURE;
        }
    };
    match run(cli.command.unwrap_or(Command::Serve), settings) {
        Ok(line) => {
            if !line.is_empty() {
                println!("{line}");
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("confab: {e}");
            ExitCode::FAILURE
        }
    }
}
