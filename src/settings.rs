//! Typed settings, extracted once from Rocket's figment (`Rocket.toml`, then `ROCKET_*` and `CONFAB_*`
//! environment variables) and validated before anything starts.

use std::path::{Path, PathBuf};

use rocket::figment::providers::{Env, Serialized};
use rocket::figment::Figment;
use serde::Deserialize;

use crate::db::DatabaseUrl;

/// Everything Confab reads from its configuration, validated.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Where Confab keeps its own files (the default SQLite database, the generated secret key, mail).
    pub data_dir: PathBuf,
    /// The database: `postgres://…` or a SQLite file path.
    pub database_url: DatabaseUrl,
    /// Where uploaded files are stored.
    pub uploads_dir: PathBuf,
    /// A folder whose `templates/` and `static/` files replace the embedded ones of the same path.
    pub theme_dir: Option<PathBuf>,
    /// The address people use to reach Confab, for links that leave the browser (setup link, mail).
    pub public_url: String,
    /// Messages on one room page.
    pub page_size: i64,
    /// The longest message, in characters.
    pub max_message_chars: usize,
    /// The largest upload, in bytes.
    pub max_upload_bytes: u64,
    /// Temporary upload files untouched for this long are left-overs, in seconds.
    pub upload_stale_secs: u64,
    /// How often left-over temporary files are swept, in seconds.
    pub sweep_interval_secs: u64,
    /// How long an upload may send nothing before it is refused (408), in seconds.
    pub upload_idle_secs: u64,
    /// The live page's first poll interval, in seconds.
    pub poll_min: u64,
    /// Seconds added to the interval after each poll with nothing new.
    pub poll_step: u64,
    /// The longest interval, and the interval of an idle page, in seconds.
    pub poll_max: u64,
    /// Seconds without input after which a page counts as idle.
    pub idle_after: u64,
    /// The longest a poll may be held open by the server, in seconds.
    pub poll_wait_max: u64,
    /// Polls held open at once, server-wide; more are answered at once.
    pub max_held_polls: usize,
    /// The longest one search may run on PostgreSQL, in milliseconds.
    pub search_timeout_ms: u64,
    /// The most index matches one search walks on SQLite.
    pub search_scan_rows: i64,
    /// Seconds without a poll after which a member shows as away.
    pub presence_timeout: u64,
    /// How often presence is written to the database, in seconds.
    pub presence_flush_secs: u64,
    /// How long a session check is served from memory, in seconds.
    pub session_cache_secs: u64,
    /// When set, mail goes through this SMTP server (`smtp://`, `smtps://`, `?tls=required`); otherwise it is written as `.eml` files under `mail_dir`.
    pub smtp_url: Option<String>,
    /// The sender of Confab's mail.
    pub mail_from: String,
    /// Where mail is written when there is no SMTP server (default `<data_dir>/mail`).
    pub mail_dir: PathBuf,
    /// How long one SMTP delivery may take, in seconds.
    pub smtp_timeout_secs: u64,
    /// Seconds without an active page after which a member is away.
    pub away_after: u64,
    /// How old the oldest unread message must be before an away member is alerted, in seconds.
    pub alert_delay: u64,
    /// The same for a mention, in seconds.
    pub mention_alert_delay: u64,
    /// How often alerts are planned and the outbox is sent, in seconds.
    pub alert_tick: u64,
    /// Whether the alert planner and the outbox sender run (tests drive them by hand).
    pub jobs_enabled: bool,
    /// Delivery attempts before a mail is marked failed.
    pub outbox_max_attempts: i32,
    /// The first retry delay, doubled after each failure, in seconds.
    pub outbox_retry_secs: i64,
    /// Database connections per instance.
    pub db_pool_size: u32,
    /// Days a session stays valid without being used.
    pub session_days: i64,
    /// Days delivered mail is kept (the alert log in Settings shows it).
    pub sent_mail_days: i64,
    /// Failed logins for one account before further attempts are refused for `login_lockout_secs`.
    pub login_max_failures: i32,
    /// Failed logins from one client address (any names) before it is refused for `login_lockout_secs`.
    pub login_max_failures_per_address: i32,
    /// Messages and uploads one member may send in a burst before being slowed down.
    pub post_burst: u32,
    /// Messages and uploads one member may send per minute, sustained.
    pub post_per_minute: u32,
    /// How long an account stays locked after too many failed logins, in seconds.
    pub login_lockout_secs: i64,
    /// Extra delay per failed login beyond the second, in milliseconds.
    pub login_slowdown_ms: u64,
    /// The figment Rocket itself is configured from (address, port, secret key, limits).
    pub figment: Figment,
}

/// The raw settings as they appear in `Rocket.toml` and the environment.
#[derive(Debug, Deserialize)]
struct Raw {
    data_dir: PathBuf,
    database_url: Option<String>,
    uploads_dir: PathBuf,
    theme_dir: Option<PathBuf>,
    public_url: Option<String>,
    page_size: i64,
    max_message_chars: usize,
    max_upload_bytes: u64,
    upload_stale_secs: u64,
    sweep_interval_secs: u64,
    upload_idle_secs: u64,
    poll_min: u64,
    poll_step: u64,
    poll_max: u64,
    idle_after: u64,
    poll_wait_max: u64,
    max_held_polls: usize,
    search_timeout_ms: u64,
    search_scan_rows: i64,
    presence_timeout: u64,
    presence_flush_secs: u64,
    session_cache_secs: u64,
    smtp_url: Option<String>,
    mail_from: String,
    mail_dir: Option<PathBuf>,
    smtp_timeout_secs: u64,
    away_after: u64,
    alert_delay: u64,
    mention_alert_delay: u64,
    alert_tick: u64,
    jobs_enabled: bool,
    outbox_max_attempts: i32,
    outbox_retry_secs: i64,
    db_pool_size: u32,
    session_days: i64,
    sent_mail_days: i64,
    login_max_failures: i32,
    login_lockout_secs: i64,
    login_slowdown_ms: u64,
    login_max_failures_per_address: i32,
    proxy_ip_header: Option<String>,
    post_burst: u32,
    post_per_minute: u32,
    address: std::net::IpAddr,
    port: u16,
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
        if !(1..=1000).contains(&raw.page_size) {
            return Err(invalid("page_size", "must be between 1 and 1000"));
        }
        if !(1..=1_000_000).contains(&raw.max_message_chars) {
            return Err(invalid(
                "max_message_chars",
                "must be between 1 and 1000000",
            ));
        }
        if raw.max_upload_bytes == 0 {
            return Err(invalid("max_upload_bytes", "must be at least 1"));
        }
        if raw.upload_idle_secs == 0 {
            return Err(invalid("upload_idle_secs", "must be at least 1"));
        }
        if raw.sweep_interval_secs == 0 {
            return Err(invalid("sweep_interval_secs", "must be at least 1"));
        }
        if raw.poll_min == 0 || raw.poll_max < raw.poll_min {
            return Err(invalid(
                "poll_max",
                "must be at least poll_min, which must be at least 1",
            ));
        }
        if raw.away_after <= raw.poll_max {
            return Err(invalid(
                "away_after",
                format!(
                    "must be longer than poll_max ({} s), or an idle open page would be mailed as away",
                    raw.poll_max
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
        if raw.alert_tick == 0 {
            return Err(invalid("alert_tick", "must be at least 1"));
        }
        if let Some(url) = &raw.smtp_url {
            if !(url.starts_with("smtp://") || url.starts_with("smtps://")) {
                return Err(invalid("smtp_url", "must start with smtp:// or smtps://"));
            }
        }
        if raw.mail_from.parse::<lettre::message::Mailbox>().is_err() {
            return Err(invalid(
                "mail_from",
                "must be an address such as `Confab <confab@example.org>`",
            ));
        }
        if raw.presence_flush_secs == 0 {
            return Err(invalid("presence_flush_secs", "must be at least 1"));
        }
        if !(1..=1000).contains(&raw.db_pool_size) {
            return Err(invalid("db_pool_size", "must be between 1 and 1000"));
        }
        if raw.sent_mail_days < 1 {
            return Err(invalid("sent_mail_days", "must be at least 1"));
        }
        if raw.session_days < 1 {
            return Err(invalid("session_days", "must be at least 1"));
        }
        if raw.login_max_failures < 1 {
            return Err(invalid("login_max_failures", "must be at least 1"));
        }
        if raw.login_max_failures_per_address < 1 {
            return Err(invalid(
                "login_max_failures_per_address",
                "must be at least 1",
            ));
        }
        if raw.post_burst == 0 || raw.post_per_minute == 0 {
            return Err(invalid(
                "post_burst",
                "post_burst and post_per_minute must be at least 1",
            ));
        }
        if raw.login_lockout_secs < 0 {
            return Err(invalid("login_lockout_secs", "must not be negative"));
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
        let mail_dir = raw
            .mail_dir
            .clone()
            .unwrap_or_else(|| raw.data_dir.join("mail"));
        Ok(Settings {
            data_dir: raw.data_dir,
            database_url,
            uploads_dir: raw.uploads_dir,
            theme_dir: raw.theme_dir,
            public_url,
            page_size: raw.page_size,
            max_message_chars: raw.max_message_chars,
            max_upload_bytes: raw.max_upload_bytes,
            upload_stale_secs: raw.upload_stale_secs,
            sweep_interval_secs: raw.sweep_interval_secs,
            upload_idle_secs: raw.upload_idle_secs,
            poll_min: raw.poll_min,
            poll_step: raw.poll_step,
            poll_max: raw.poll_max,
            idle_after: raw.idle_after,
            poll_wait_max: raw.poll_wait_max,
            max_held_polls: raw.max_held_polls,
            search_timeout_ms: raw.search_timeout_ms,
            search_scan_rows: raw.search_scan_rows,
            presence_timeout: raw.presence_timeout,
            presence_flush_secs: raw.presence_flush_secs,
            session_cache_secs: raw.session_cache_secs,
            smtp_url: raw.smtp_url,
            mail_from: raw.mail_from,
            smtp_timeout_secs: raw.smtp_timeout_secs,
            away_after: raw.away_after,
            alert_delay: raw.alert_delay,
            mention_alert_delay: raw.mention_alert_delay,
            alert_tick: raw.alert_tick,
            jobs_enabled: raw.jobs_enabled,
            outbox_max_attempts: raw.outbox_max_attempts,
            outbox_retry_secs: raw.outbox_retry_secs,
            mail_dir,
            db_pool_size: raw.db_pool_size,
            session_days: raw.session_days,
            sent_mail_days: raw.sent_mail_days,
            login_max_failures: raw.login_max_failures,
            login_lockout_secs: raw.login_lockout_secs,
            login_slowdown_ms: raw.login_slowdown_ms,
            login_max_failures_per_address: raw.login_max_failures_per_address,
            post_burst: raw.post_burst,
            post_per_minute: raw.post_per_minute,
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
