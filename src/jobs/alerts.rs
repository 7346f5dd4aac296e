//! The alert planner and the outbox sender, run on every `alert_tick` (both can also be driven by
//! hand, as the tests do).

use std::sync::Arc;

use chrono::{Duration, NaiveDateTime};
use rocket_dyn_templates::tera::Context;
use serde::Serialize;

use crate::chat::alerts::{self, Due, Rules};
use crate::chat::outbox::{self, NewMail};
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
        away_after: secs(settings.away_after),
        alert_delay: secs(settings.alert_delay),
        mention_delay: secs(settings.mention_alert_delay),
    }
}

#[derive(Serialize)]
struct MessageLine {
    author: String,
    time: String,
    excerpt: String,
    mention: bool,
}

#[derive(Serialize)]
struct RoomSection {
    name: String,
    count: usize,
    link: String,
    messages: Vec<MessageLine>,
    more: usize,
    mentions: usize,
}

/// "Design", "Design and Ops", "Design and 2 more rooms".
fn rooms_phrase(names: &[&str]) -> String {
    match names {
        [] => String::new(),
        [one] => one.to_string(),
        [a, b] => format!("{a} and {b}"),
        [first, rest @ ..] => format!("{first} and {} more rooms", rest.len()),
    }
}

fn render(mail: &Mail, due: &Due) -> Result<NewMail> {
    let tz = due.user.tz();
    let sections: Vec<RoomSection> = due
        .rooms
        .iter()
        .map(|room| {
            let first = room.first_id;
            let lines: Vec<MessageLine> = room
                .messages
                .iter()
                .map(|m| {
                    let text = crate::format::message_text(&m.body);
                    let excerpt: String = text.chars().take(200).collect();
                    let when = crate::format::when(m.created_at, tz);
                    MessageLine {
                        author: m.author.clone(),
                        time: format!("{} {}", when.day, when.time),
                        excerpt: if text.chars().count() > 200 {
                            format!("{excerpt}…")
                        } else {
                            excerpt
                        },
                        mention: m.mention,
                    }
                })
                .collect();
            RoomSection {
                name: room.name.clone(),
                count: room.count,
                link: format!(
                    "{}/rooms/{}?around={first}#m{first}",
                    mail.public_url, room.slug
                ),
                more: room.count.saturating_sub(lines.len()),
                messages: lines,
                mentions: room.mentions,
            }
        })
        .collect();
    let names: Vec<&str> = due.rooms.iter().map(|r| r.name.as_str()).collect();
    let unsubscribe = mail.unsubscribe_url(due.user.id);
    let mut context = Context::new();
    context.insert("username", &due.user.username);
    context.insert("count", &due.count());
    context.insert("rooms_phrase", &rooms_phrase(&names));
    context.insert("rooms", &sections);
    context.insert("settings_url", &format!("{}/settings", mail.public_url));
    context.insert("unsubscribe_url", &unsubscribe);
    context.insert("digest", &(due.user.alert_mode == "digest"));
    let rendered = mail
        .render("alert", &context)
        .map_err(|e| Error::internal("rendering an alert", e))?;
    Ok(NewMail {
        kind: "alert",
        user_id: Some(due.user.id),
        recipient: due.user.email.clone(),
        rendered,
        summary: names.join(", "),
        unsubscribe_url: Some(unsubscribe),
    })
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
    db.run(move |conn| alerts::plan(conn, now, &rules, PLAN_BATCH, |due| render(&mail, due)))
        .await
}

/// Delivers the due outbox rows; returns how many were delivered.
pub async fn send(db: &Db, mail: &Mail, settings: &Settings, now: NaiveDateTime) -> Result<usize> {
    let lease =
        Duration::seconds(i64::try_from(settings.smtp_timeout_secs * 3 + 30).unwrap_or(120));
    let claimed = db
        .write(move |conn| outbox::claim(conn, now, lease, SEND_BATCH))
        .await?;
    let mut delivered = 0;
    let (max_attempts, first_retry) = (
        settings.outbox_max_attempts,
        Duration::seconds(settings.outbox_retry_secs),
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
        let mut ticks = tokio::time::interval(std::time::Duration::from_secs(settings.alert_tick));
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
