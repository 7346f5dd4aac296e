//! Typed settings, extracted once from Rocket's figment (`Rocket.toml`, then `ROCKET_*` and `CONFAB_*`
//! environment variables) and validated before anything starts.

use std::path::{Path, PathBuf};

use rocket::figment::providers::{Env, Serialized};
use rocket::figment::Figment;
use serde::Deserialize;

use crate::db::DatabaseUrl;

mod sections;

pub use sections::{Alerts, Login, Mail, Poll, Replies, Uploads};

/// Everything Confab reads from its configuration, validated, in sections.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Where Confab keeps its own files (the default SQLite database, the generated secret key, mail).
    pub data_dir: PathBuf,
    /// The database: `postgres://…` or a SQLite file path.
    pub database_url: DatabaseUrl,
    /// A folder whose `templates/` and `static/` files replace the embedded ones of the same path.
    pub theme_dir: Option<PathBuf>,
    /// The address people use to reach Confab, for links that leave the browser (setup link, mail).
    pub public_url: String,
    /// Messages on one room page.
    pub page_size: i64,
    /// The longest message, in characters.
    pub max_message_chars: usize,
    /// The most people in one direct conversation, the starter included.
    pub direct_max_members: usize,
    /// The longest one search may run on PostgreSQL, in milliseconds.
    pub search_timeout_ms: u64,
    /// The most index matches one search walks on SQLite.
    pub search_scan_rows: i64,
    /// Seconds without a poll after which a member shows as away.
    pub presence_timeout: u64,
    /// How often presence is written to the database, in seconds.
    pub presence_flush_secs: u64,
    /// Whether the background jobs run (tests drive them by hand).
    pub jobs_enabled: bool,
    /// Database connections per instance.
    pub db_pool_size: u32,
    /// Messages and uploads one member may send in a burst before being slowed down.
    pub post_burst: u32,
    /// Messages and uploads one member may send per minute, sustained.
    pub post_per_minute: u32,
    /// The live page's polling.
    pub poll: Poll,
    /// Alert mail and the outbox.
    pub alerts: Alerts,
    /// How mail leaves Confab.
    pub mail: Mail,
    /// Replies by email.
    pub replies: Replies,
    /// Logging in and sessions.
    pub login: Login,
    /// Uploaded files.
    pub uploads: Uploads,
    /// The figment Rocket itself is configured from (address, port, secret key, limits).
    pub figment: Figment,
}

/// The raw settings as they appear in `Rocket.toml` and the environment: flat keys, the sections'
/// among them.
#[derive(Debug, Deserialize)]
struct Raw {
    data_dir: PathBuf,
    database_url: Option<String>,
    theme_dir: Option<PathBuf>,
    public_url: Option<String>,
    page_size: i64,
    max_message_chars: usize,
    direct_max_members: usize,
    search_timeout_ms: u64,
    search_scan_rows: i64,
    presence_timeout: u64,
    presence_flush_secs: u64,
    jobs_enabled: bool,
    db_pool_size: u32,
    proxy_ip_header: Option<String>,
    post_burst: u32,
    post_per_minute: u32,
    address: std::net::IpAddr,
    port: u16,
    #[serde(flatten)]
    poll: Poll,
    #[serde(flatten)]
    alerts: Alerts,
    #[serde(flatten)]
    mail: Mail,
    #[serde(flatten)]
    replies: Replies,
    #[serde(flatten)]
    login: Login,
    #[serde(flatten)]
    uploads: Uploads,
}

/// A setting that is missing, malformed or out of range; the message names the setting.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SettingsError(String);

fn invalid(key: &str, why: impl std::fmt::Display) -> SettingsError {
    SettingsError(format!("invalid setting `{key}`: {why}"))
}

impl Settings {
    /// The figment Confab reads in production: Rocket's own sources, then `CONFAB_*` variables.
    pub fn default_figment() -> Figment {
        rocket::Config::figment().merge(Env::prefixed("CONFAB_").global())
    }

    /// Extracts and validates the settings from a figment. Without a configured `secret_key`, one is
    /// generated once and kept in `data_dir`, so that sessions survive a restart.
    pub fn from_figment(figment: Figment) -> Result<Settings, SettingsError> {
        let figment = figment.join(Serialized::defaults(defaults()));
        let raw: Raw = figment.extract().map_err(|e| {
            let e = e
                .into_iter()
                .next()
                .map(|e| e.to_string())
                .unwrap_or_default();
            SettingsError(format!("invalid setting: {e}"))
        })?;
        let database_url = match &raw.database_url {
            Some(url) => DatabaseUrl::parse(url).map_err(|why| invalid("database_url", why))?,
            None => DatabaseUrl::Sqlite(raw.data_dir.join("confab.db")),
        };
        if !(2..=100).contains(&raw.direct_max_members) {
            return Err(invalid("direct_max_members", "must be between 2 and 100"));
        }
        if !(1..=1000).contains(&raw.page_size) {
            return Err(invalid("page_size", "must be between 1 and 1000"));
        }
        if !(1..=1_000_000).contains(&raw.max_message_chars) {
            return Err(invalid(
                "max_message_chars",
                "must be between 1 and 1000000",
            ));
        }
        sections::validate(
            &raw.poll,
            &raw.alerts,
            &raw.mail,
            &raw.replies,
            &raw.login,
            &raw.uploads,
        )?;
        if raw.alerts.away_after <= raw.poll.max {
            return Err(invalid(
                "away_after",
                format!(
                    "must be longer than poll_max ({} s), or an idle open page would be mailed as away",
                    raw.poll.max
                ),
            ));
        }
        if let Some(dir) = &raw.theme_dir {
            if !dir.is_dir() {
                return Err(invalid(
                    "theme_dir",
                    format!("{} is not a folder", dir.display()),
                ));
            }
        }
        if raw.search_scan_rows < 1 {
            return Err(invalid("search_scan_rows", "must be at least 1"));
        }
        if raw.search_timeout_ms == 0 {
            return Err(invalid("search_timeout_ms", "must be at least 1"));
        }
        if raw.presence_flush_secs == 0 {
            return Err(invalid("presence_flush_secs", "must be at least 1"));
        }
        if !(1..=1000).contains(&raw.db_pool_size) {
            return Err(invalid("db_pool_size", "must be between 1 and 1000"));
        }
        if raw.post_burst == 0 || raw.post_per_minute == 0 {
            return Err(invalid(
                "post_burst",
                "post_burst and post_per_minute must be at least 1",
            ));
        }
        let public_url = match raw.public_url {
            Some(url) => {
                let url = url.trim_end_matches('/').to_string();
                if !(url.starts_with("http://") || url.starts_with("https://"))
                    || url.contains(char::is_whitespace)
                {
                    return Err(invalid(
                        "public_url",
                        "must be an http:// or https:// address",
                    ));
                }
                url
            }
            None => match raw.address {
                std::net::IpAddr::V6(a) => format!("http://[{a}]:{}", raw.port),
                a => format!("http://{a}:{}", raw.port),
            },
        };
        // Rocket's own defaults carry an all-zero key, which it refuses outside debug builds.
        let key_missing = figment
            .extract_inner::<rocket::config::SecretKey>("secret_key")
            .map_or(true, |key| key.is_zero());
        let figment = if key_missing {
            let key = stored_secret_key(&raw.data_dir).map_err(|why| invalid("secret_key", why))?;
            figment.merge(("secret_key", key))
        } else {
            figment
        };
        let mut mail = raw.mail;
        if mail.dir.as_os_str().is_empty() {
            mail.dir = raw.data_dir.join("mail");
        }
        Ok(Settings {
            data_dir: raw.data_dir,
            database_url,
            theme_dir: raw.theme_dir,
            public_url,
            page_size: raw.page_size,
            direct_max_members: raw.direct_max_members,
            max_message_chars: raw.max_message_chars,
            search_timeout_ms: raw.search_timeout_ms,
            search_scan_rows: raw.search_scan_rows,
            presence_timeout: raw.presence_timeout,
            presence_flush_secs: raw.presence_flush_secs,
            jobs_enabled: raw.jobs_enabled,
            db_pool_size: raw.db_pool_size,
            post_burst: raw.post_burst,
            post_per_minute: raw.post_per_minute,
            poll: raw.poll,
            alerts: raw.alerts,
            mail,
            replies: raw.replies,
            login: raw.login,
            uploads: raw.uploads,
            // Rocket trusts `X-Real-IP` by default, which lets any client pick its own address.
            figment: match &raw.proxy_ip_header {
                Some(header) => figment.merge(("ip_header", header.clone())),
                None => figment.merge(("ip_header", false)),
            },
        })
    }

    /// Whether Confab is reached over https, so that cookies must be `Secure`.
    pub fn is_https(&self) -> bool {
        self.public_url.starts_with("https://")
    }
}

fn defaults() -> serde_json::Value {
    serde_json::json!({
        "data_dir": "data",
        "uploads_dir": "uploads",
        "page_size": 100,
        "direct_max_members": 8,
        "max_message_chars": 10_000,
        "max_upload_bytes": 25 * 1024 * 1024,
        "upload_stale_secs": 3600,
        "sweep_interval_secs": 3600,
        "upload_idle_secs": 60,
        "poll_min": 2,
        "poll_step": 2,
        "poll_max": 60,
        "idle_after": 60,
        "poll_wait_max": 25,
        "max_held_polls": 10_000,
        "search_timeout_ms": 5_000,
        "search_scan_rows": 20_000,
        "presence_timeout": 90,
        "presence_flush_secs": 30,
        "session_cache_secs": 60,
        "mail_from": "Confab <confab@localhost>",
        "smtp_timeout_secs": 10,
        "away_after": 300,
        "alert_delay": 600,
        "mention_alert_delay": 120,
        "alert_tick": 30,
        "jobs_enabled": true,
        "outbox_max_attempts": 8,
        "outbox_retry_secs": 30,
        "db_pool_size": 10,
        "session_days": 30,
        "sent_mail_days": 90,
        "reply_token_days": 30,
        "inbound_max_bytes": 40 * 1024 * 1024,
        "imap_folder": "INBOX",
        "imap_poll_secs": 60,
        "login_max_failures": 5,
        "login_lockout_secs": 900,
        "login_slowdown_ms": 500,
        "login_max_failures_per_address": 50,
        "post_burst": 30,
        "post_per_minute": 120,
    })
}

/// Reads the secret key kept in `data_dir`, creating it (readable by its owner only) on first use.
fn stored_secret_key(data_dir: &Path) -> Result<String, String> {
    let path = data_dir.join("secret_key");
    if let Ok(key) = std::fs::read_to_string(&path) {
        return Ok(key.trim().to_string());
    }
    std::fs::create_dir_all(data_dir)
        .map_err(|e| format!("cannot create {}: {e}", data_dir.display()))?;
    let key = crate::secrets::random_token();
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let written = options
        .open(&path)
        .and_then(|mut file| std::io::Write::write_all(&mut file, key.as_bytes()));
    match written {
        Ok(()) => Ok(key),
        // Another process created it first: use theirs.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => std::fs::read_to_string(&path)
            .map(|k| k.trim().to_string())
            .map_err(|e| e.to_string()),
        Err(e) => Err(format!("cannot write {}: {e}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(pairs: &[(&str, i64)]) -> Result<Settings, SettingsError> {
        let dir = std::env::temp_dir().join(format!("confab-settings-{}", std::process::id()));
        let figment = Figment::new()
            .merge(Serialized::defaults(rocket::Config::default()))
            .merge(("data_dir", dir))
            .merge(("secret_key", "a".repeat(64)));
        let figment = pairs
            .iter()
            .fold(figment, |f, (key, value)| f.merge((*key, *value)));
        Settings::from_figment(figment)
    }

    #[test]
    fn flat_keys_fill_the_sections_and_each_section_checks_its_own() {
        let settings = with(&[
            ("poll_min", 5),
            ("poll_max", 90),
            ("login_lockout_secs", 60),
        ])
        .expect("valid settings");
        assert_eq!((settings.poll.min, settings.poll.max), (5, 90));
        assert_eq!(settings.login.lockout_secs, 60);
        assert_eq!(settings.uploads.dir, PathBuf::from("uploads"));
        assert!(
            settings.mail.dir.ends_with("mail"),
            "defaults under data_dir"
        );

        let refused = |pairs: &[(&str, i64)]| with(pairs).err().map(|e| e.to_string());
        assert!(refused(&[("login_max_failures", 0)])
            .is_some_and(|e| e.contains("`login_max_failures`")));
        assert!(
            refused(&[("upload_idle_secs", 0)]).is_some_and(|e| e.contains("`upload_idle_secs`"))
        );
        assert!(
            refused(&[("away_after", 30)]).is_some_and(|e| e.contains("`away_after`")),
            "checked across the poll and alert sections"
        );
    }
}
