//! Housekeeping: left-over temporary uploads (an upload interrupted by a crash or a lost connection
//! leaves a file in `tmp/`: one whose row committed is moved into place, any other is removed), and
//! rows that no longer do anything (dead sessions, used or expired links, delivered mail past its
//! keeping time, ended login-failure windows).

use std::time::Duration;

use chrono::NaiveDateTime;

use crate::chat::{alert_log, attachments, logins, outbox, sessions, tokens};
use crate::db::Db;
use crate::error::{Error, Result};
use crate::files::FileStore;
use crate::settings::Settings;

/// Rows pruned in one round, by kind.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Pruned {
    /// Sessions unused for longer than `session_days`.
    pub sessions: usize,
    /// One-time links used or expired a day ago or more.
    pub links: usize,
    /// Mail delivered more than `sent_mail_days` ago.
    pub sent_mail: usize,
    /// Login-failure windows that have ended.
    pub login_failures: usize,
    /// Alert-log decisions older than a week.
    pub alert_log: usize,
}

/// Deletes what no longer does anything, as of `now`, in one write transaction.
pub async fn prune(db: &Db, settings: &Settings, now: NaiveDateTime) -> Result<Pruned> {
    let sessions_idle = now - chrono::Duration::days(settings.login.session_days);
    let links_before = now - chrono::Duration::days(1);
    let mail_before = now - chrono::Duration::days(settings.mail.sent_mail_days);
    let windows_before = now - chrono::Duration::seconds(settings.login.lockout_secs);
    db.write(move |conn| {
        Ok(Pruned {
            sessions: sessions::prune(conn, sessions_idle)?,
            links: tokens::prune(conn, links_before)?,
            sent_mail: outbox::prune_sent(conn, mail_before)?,
            login_failures: logins::prune(conn, windows_before)?,
            alert_log: alert_log::prune(conn, now)?,
        })
    })
    .await
}

/// Sweeps temporary files untouched for `stale_after`; returns how many it handled.
pub async fn left_over_uploads(db: &Db, store: &FileStore, stale_after: Duration) -> Result<usize> {
    let scan = store.clone();
    let stale = tokio::task::spawn_blocking(move || scan.stale_temp_files(stale_after))
        .await
        .map_err(|e| Error::internal("listing the uploads folder", e))?
        .map_err(|e| Error::internal("reading the uploads folder", e))?;
    let count = stale.len();
    for (path, stored_name) in stale {
        let committed = match stored_name.clone() {
            Some(name) => {
                db.run(move |conn| attachments::is_stored(conn, &name))
                    .await?
            }
            None => false,
        };
        let done = match (committed, stored_name) {
            (true, Some(name)) => store.finish(&name).await,
            _ => tokio::fs::remove_file(&path).await,
        };
        if let Err(e) = done {
            log::warn!("sweeping {}: {e}", path.display());
        }
    }
    Ok(count)
}
