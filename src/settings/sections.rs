//! The settings' sections. Each is read from the same flat keys operators already use (`poll_min`,
//! `CONFAB_POLL_MIN`, …) and checks its own values; checks across sections live in [`super::Settings`].

use std::path::PathBuf;

use serde::Deserialize;

use super::{invalid, SettingsError};

/// The live page's polling and presence.
#[derive(Debug, Clone, Deserialize)]
pub struct Poll {
    /// The first poll interval, in seconds (`poll_min`).
    #[serde(rename = "poll_min")]
    pub min: u64,
    /// Seconds added to the interval after each poll with nothing new (`poll_step`).
    #[serde(rename = "poll_step")]
    pub step: u64,
    /// The longest interval, and the interval of an idle page, in seconds (`poll_max`).
    #[serde(rename = "poll_max")]
    pub max: u64,
    /// Seconds without input after which a page counts as idle (`idle_after`).
    pub idle_after: u64,
    /// The longest a poll may be held open by the server, in seconds (`poll_wait_max`).
    #[serde(rename = "poll_wait_max")]
    pub wait_max: u64,
    /// Polls held open at once, server-wide; more are answered at once (`max_held_polls`).
    #[serde(rename = "max_held_polls")]
    pub max_held: usize,
}

impl Poll {
    fn validate(&self) -> Result<(), SettingsError> {
        if self.min == 0 || self.max < self.min {
            return Err(invalid(
                "poll_max",
                "must be at least poll_min, which must be at least 1",
            ));
        }
        Ok(())
    }
}

/// Alert mail and the outbox that delivers it.
#[derive(Debug, Clone, Deserialize)]
pub struct Alerts {
    /// Seconds without an active page after which a member is away (`away_after`).
    pub away_after: u64,
    /// How old the oldest unread message must be before an away member is alerted, in seconds
    /// (`alert_delay`).
    #[serde(rename = "alert_delay")]
    pub delay: u64,
    /// The same for a mention, in seconds (`mention_alert_delay`).
    #[serde(rename = "mention_alert_delay")]
    pub mention_delay: u64,
    /// How often alerts are planned and the outbox is sent, in seconds (`alert_tick`).
    #[serde(rename = "alert_tick")]
    pub tick: u64,
    /// Delivery attempts before a mail is marked failed (`outbox_max_attempts`).
    pub outbox_max_attempts: i32,
    /// The first retry delay, doubled after each failure, in seconds (`outbox_retry_secs`).
    pub outbox_retry_secs: i64,
}

impl Alerts {
    fn validate(&self) -> Result<(), SettingsError> {
        if self.tick == 0 {
            return Err(invalid("alert_tick", "must be at least 1"));
        }
        Ok(())
    }
}

/// How mail leaves Confab.
#[derive(Debug, Clone, Deserialize)]
pub struct Mail {
    /// When set, mail goes through this SMTP server (`smtp://`, `smtps://`, `?tls=required`);
    /// otherwise it is written as `.eml` files under `dir` (`smtp_url`).
    pub smtp_url: Option<String>,
    /// The sender of Confab's mail (`mail_from`).
    #[serde(rename = "mail_from")]
    pub from: String,
    /// Where mail is written when there is no SMTP server; `:memory:` keeps it in memory (tests)
    /// (`mail_dir`, default `<data_dir>/mail`).
    #[serde(rename = "mail_dir", default)]
    pub dir: PathBuf,
    /// How long one SMTP delivery may take, in seconds (`smtp_timeout_secs`).
    pub smtp_timeout_secs: u64,
    /// Days delivered mail is kept; the alert log in Settings shows it (`sent_mail_days`).
    pub sent_mail_days: i64,
}

impl Mail {
    fn validate(&self) -> Result<(), SettingsError> {
        if let Some(url) = &self.smtp_url {
            if !(url.starts_with("smtp://") || url.starts_with("smtps://")) {
                return Err(invalid("smtp_url", "must start with smtp:// or smtps://"));
            }
        }
        if self.from.parse::<lettre::message::Mailbox>().is_err() {
            return Err(invalid(
                "mail_from",
                "must be an address such as `Confab <confab@example.org>`",
            ));
        }
        if self.sent_mail_days < 1 {
            return Err(invalid("sent_mail_days", "must be at least 1"));
        }
        Ok(())
    }
}

/// Replies by email: where they are addressed, and the ways they come back in.
#[derive(Debug, Clone, Deserialize)]
pub struct Replies {
    /// The reply address of alert mail, with `{token}` where the signed token goes, e.g.
    /// `confab+{token}@chat.example.org` (`reply_address`).
    #[serde(rename = "reply_address")]
    pub address: Option<String>,
    /// Days a reply address stays valid (`reply_token_days`).
    #[serde(rename = "reply_token_days")]
    pub token_days: i64,
    /// Where Confab listens for replies over SMTP or LMTP, e.g. `127.0.0.1:2525`
    /// (`inbound_smtp_address`, off when unset).
    #[serde(rename = "inbound_smtp_address")]
    pub smtp_address: Option<std::net::SocketAddr>,
    /// The largest reply accepted, in bytes, attachments included (`inbound_max_bytes`).
    #[serde(rename = "inbound_max_bytes")]
    pub max_bytes: usize,
    /// A mailbox polled for replies, `imap://user:password@host:143` or `imaps://…:993`
    /// (`imap_url`, off when unset).
    pub imap_url: Option<String>,
    /// The folder of that mailbox that receives replies (`imap_folder`).
    pub imap_folder: String,
    /// How often the mailbox is polled, in seconds (`imap_poll_secs`).
    pub imap_poll_secs: u64,
}

impl Replies {
    /// Whether alert mail invites replies: an address is set and a way in is configured.
    pub fn enabled(&self) -> bool {
        self.address.is_some() && (self.smtp_address.is_some() || self.imap_url.is_some())
    }

    /// The address around the token: what comes before `{token}` and what comes after.
    pub fn address_parts(&self) -> Option<(&str, &str)> {
        self.address.as_deref()?.split_once("{token}")
    }

    fn validate(&self) -> Result<(), SettingsError> {
        let way_in = self.smtp_address.is_some() || self.imap_url.is_some();
        match (&self.address, self.address_parts()) {
            (Some(_), None) => {
                return Err(invalid(
                    "reply_address",
                    "must contain {token}, e.g. confab+{token}@chat.example.org",
                ))
            }
            (Some(address), Some(_)) => {
                if address
                    .replacen("{token}", "t", 1)
                    .parse::<lettre::Address>()
                    .is_err()
                    || address.matches("{token}").count() != 1
                {
                    return Err(invalid(
                        "reply_address",
                        "must be one address with one {token}, e.g. confab+{token}@chat.example.org",
                    ));
                }
                if !way_in {
                    return Err(invalid(
                        "reply_address",
                        "needs inbound_smtp_address or imap_url, or mail would invite replies that never arrive",
                    ));
                }
            }
            (None, _) if way_in => {
                return Err(invalid(
                    "reply_address",
                    "must be set when inbound_smtp_address or imap_url is: it is where replies are sent",
                ))
            }
            (None, _) => {}
        }
        if let Some(url) = &self.imap_url {
            crate::inbound::imap::Mailbox::parse(url).map_err(|why| invalid("imap_url", why))?;
        }
        if self.token_days < 1 {
            return Err(invalid("reply_token_days", "must be at least 1"));
        }
        if self.imap_poll_secs == 0 {
            return Err(invalid("imap_poll_secs", "must be at least 1"));
        }
        if self.max_bytes < 1024 {
            return Err(invalid("inbound_max_bytes", "must be at least 1024"));
        }
        Ok(())
    }
}

/// Logging in and staying logged in.
#[derive(Debug, Clone, Deserialize)]
pub struct Login {
    /// Failed logins for one account before further attempts are refused for `lockout_secs`
    /// (`login_max_failures`).
    #[serde(rename = "login_max_failures")]
    pub max_failures: i32,
    /// Failed logins from one client address (any names) before it is refused for `lockout_secs`
    /// (`login_max_failures_per_address`).
    #[serde(rename = "login_max_failures_per_address")]
    pub max_failures_per_address: i32,
    /// How long an account stays locked after too many failed logins, in seconds
    /// (`login_lockout_secs`).
    #[serde(rename = "login_lockout_secs")]
    pub lockout_secs: i64,
    /// Extra delay per failed login beyond the second, in milliseconds (`login_slowdown_ms`).
    #[serde(rename = "login_slowdown_ms")]
    pub slowdown_ms: u64,
    /// Days a session stays valid without being used (`session_days`).
    pub session_days: i64,
    /// How long a session check is served from memory, in seconds (`session_cache_secs`).
    pub session_cache_secs: u64,
}

impl Login {
    fn validate(&self) -> Result<(), SettingsError> {
        if self.session_days < 1 {
            return Err(invalid("session_days", "must be at least 1"));
        }
        if self.max_failures < 1 {
            return Err(invalid("login_max_failures", "must be at least 1"));
        }
        if self.max_failures_per_address < 1 {
            return Err(invalid(
                "login_max_failures_per_address",
                "must be at least 1",
            ));
        }
        if self.lockout_secs < 0 {
            return Err(invalid("login_lockout_secs", "must not be negative"));
        }
        Ok(())
    }
}

/// Uploaded files.
#[derive(Debug, Clone, Deserialize)]
pub struct Uploads {
    /// Where uploaded files are stored (`uploads_dir`).
    #[serde(rename = "uploads_dir")]
    pub dir: PathBuf,
    /// The largest upload, in bytes (`max_upload_bytes`).
    #[serde(rename = "max_upload_bytes")]
    pub max_bytes: u64,
    /// Temporary upload files untouched for this long are left-overs, in seconds
    /// (`upload_stale_secs`).
    #[serde(rename = "upload_stale_secs")]
    pub stale_secs: u64,
    /// How often left-over temporary files are swept, in seconds (`sweep_interval_secs`).
    pub sweep_interval_secs: u64,
    /// How long an upload may send nothing before it is refused (408), in seconds
    /// (`upload_idle_secs`).
    #[serde(rename = "upload_idle_secs")]
    pub idle_secs: u64,
}

impl Uploads {
    fn validate(&self) -> Result<(), SettingsError> {
        if self.max_bytes == 0 {
            return Err(invalid("max_upload_bytes", "must be at least 1"));
        }
        if self.idle_secs == 0 {
            return Err(invalid("upload_idle_secs", "must be at least 1"));
        }
        if self.sweep_interval_secs == 0 {
            return Err(invalid("sweep_interval_secs", "must be at least 1"));
        }
        Ok(())
    }
}

/// Checks every section.
pub(super) fn validate(
    poll: &Poll,
    alerts: &Alerts,
    mail: &Mail,
    replies: &Replies,
    login: &Login,
    uploads: &Uploads,
) -> Result<(), SettingsError> {
    poll.validate()?;
    alerts.validate()?;
    mail.validate()?;
    replies.validate()?;
    login.validate()?;
    uploads.validate()
}
