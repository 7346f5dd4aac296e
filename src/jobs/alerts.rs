//! The alert planner and the outbox sender (the mail itself is composed by [`Mail::alert_mail`]), run on every `alert_tick` (both can also be driven by
//! hand, as the tests do).

use std::sync::Arc;

use chrono::{Duration, NaiveDateTime};

use crate::chat::alerts::{self, Rules};
use crate::chat::outbox;
use crate::db::Db;
use crate::error::{Error, Result};
use crate::mail::Mail;
use crate::settings::Settings;
/// Alerts written per planning round; more wait for the next tick.
const PLAN_BATCH: usize = 500;
/// Mails claimed per sender round.
const SEND_BATCH: i64 = 50;

/// The rules from settings.
pub fn rules(settings: &Settings) -> Rules {
    let secs = |s: u64| Duration::seconds(i64::try_from(s).unwrap_or(i64::MAX / 1000));
    Rules {
        away_after: secs(settings.alerts.away_after),
        alert_delay: secs(settings.alerts.delay),
        mention_delay: secs(settings.alerts.mention_delay),
    }
}

/// Plans the alerts due at `now` and writes them into the outbox (one round, see
/// [`alerts::plan`]); returns how many were written.
pub async fn plan(
    db: &Db,
    mail: &Arc<Mail>,
    settings: &Settings,
    now: NaiveDateTime,
) -> Result<usize> {
    let (rules, mail) = (rules(settings), mail.clone());
    db.run(move |conn| {
        alerts::plan(conn, now, &rules, PLAN_BATCH, |due| {
            mail.alert_mail(due, now)
                .map_err(|e| Error::internal("rendering an alert", e))
        })
    })
    .await
}

/// Delivers the due outbox rows; returns how many were delivered.
pub async fn send(db: &Db, mail: &Mail, settings: &Settings, now: NaiveDateTime) -> Result<usize> {
    let lease =
        Duration::seconds(i64::try_from(settings.mail.smtp_timeout_secs * 3 + 30).unwrap_or(120));
    let claimed = db
        .write(move |conn| outbox::claim(conn, now, lease, SEND_BATCH))
        .await?;
    let mut delivered = 0;
    let (max_attempts, first_retry) = (
        settings.alerts.outbox_max_attempts,
        Duration::seconds(settings.alerts.outbox_retry_secs),
    );
    let started = std::time::Instant::now();
    for row in claimed {
        // The lease is renewed for each mail, timed from the round's clock, so that a slow server
        // cannot let another sender claim (and send) a mail this one is about to send.
        let elapsed = Duration::from_std(started.elapsed()).unwrap_or_default();
        let (id, held, until) = (row.id, row.locked_until, now + elapsed + lease);
        if !db
            .write(move |conn| outbox::renew(conn, id, held, until))
            .await?
        {
            continue;
        }
        let outcome = mail.deliver(&row).await;
        // The tick's own clock, so that retries are timed from the round that made them.
        let when = now;
        match outcome {
            Ok(()) => {
                let id = row.id;
                db.write(move |conn| outbox::mark_sent(conn, id, when))
                    .await?;
                delivered += 1;
            }
            Err(error) => {
                log::warn!("delivering mail {} to {}: {error}", row.id, row.recipient);
                db.write(move |conn| {
                    outbox::mark_attempt_failed(conn, &row, &error, when, max_attempts, first_retry)
                })
                .await?;
            }
        }
    }
    Ok(delivered)
}

/// Starts the planner and sender loop (when `jobs_enabled`).
pub fn start(db: Db, mail: Arc<Mail>, settings: Settings, mut shutdown: rocket::Shutdown) {
    if !settings.jobs_enabled {
        return;
    }
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(std::time::Duration::from_secs(settings.alerts.tick));
        loop {
            tokio::select! {
                _ = ticks.tick() => {}
                _ = &mut shutdown => break,
            }
            let now = crate::chat::now();
            if let Err(e) = plan(&db, &mail, &settings, now).await {
                log::warn!("planning alerts: {e}");
            }
            if let Err(e) = send(&db, &mail, &settings, now).await {
                log::warn!("sending mail: {e}");
            }
        }
    });
}
