//! The outbox: every mail is a row first, written in the same transaction as whatever caused it,
//! then delivered by the sender with a lease, retries and exponential backoff.

use chrono::{Duration, NaiveDateTime};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Timestamp};
use serde::Serialize;

use crate::db::schema::outbox;
use crate::db::AnyConnection;
use crate::error::Result;

/// A mail in the outbox.
#[derive(Debug, Clone, Queryable, Selectable, Serialize)]
#[diesel(table_name = outbox)]
pub struct OutboxRow {
    /// Database id (also in the Message-ID).
    pub id: i64,
    /// `alert`, `reset` or `invite`.
    pub kind: String,
    /// Whom it is about.
    pub user_id: Option<i64>,
    /// The address.
    pub recipient: String,
    /// Subject line.
    pub subject: String,
    /// Plain-text part.
    pub text_body: String,
    /// HTML part.
    pub html_body: String,
    /// What it covered, for the settings page ("Design, Ops").
    pub summary: String,
    /// Where a reply by email goes (alert mail, when a way in is configured).
    pub reply_to: Option<String>,
    /// `pending`, `sent` or `failed`.
    pub status: String,
    /// Delivery attempts so far.
    pub attempts: i32,
    /// When the next attempt may happen.
    pub next_attempt_at: NaiveDateTime,
    /// A sender holds it until then.
    pub locked_until: Option<NaiveDateTime>,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// When it was written.
    pub created_at: NaiveDateTime,
    /// When it was delivered.
    pub sent_at: Option<NaiveDateTime>,
}

/// A rendered mail: subject, plain text and HTML.
#[derive(Debug, Clone)]
pub struct Rendered {
    /// One line.
    pub subject: String,
    /// The text part.
    pub text: String,
    /// The HTML part.
    pub html: String,
}

/// A mail to write into the outbox.
#[derive(Debug, Clone)]
pub struct NewMail {
    /// `alert`, `reset` or `invite`.
    pub kind: &'static str,
    /// Whom it is about.
    pub user_id: Option<i64>,
    /// The address.
    pub recipient: String,
    /// The rendered mail.
    pub rendered: Rendered,
    /// What it covered.
    pub summary: String,
    /// The reply-by-email address.
    pub reply_to: Option<String>,
}

/// Writes a mail into the outbox; the caller's transaction decides whether it is ever sent.
pub fn enqueue(conn: &mut AnyConnection, mail: &NewMail, now: NaiveDateTime) -> Result<()> {
    enqueue_all(conn, std::slice::from_ref(mail), now).map(|_| ())
}

/// Writes several mails into the outbox in one statement; returns how many.
pub fn enqueue_all(
    conn: &mut AnyConnection,
    mails: &[NewMail],
    now: NaiveDateTime,
) -> Result<usize> {
    let rows: Vec<_> = mails
        .iter()
        .map(|mail| {
            (
                outbox::kind.eq(mail.kind),
                outbox::user_id.eq(mail.user_id),
                outbox::recipient.eq(&mail.recipient),
                outbox::subject.eq(&mail.rendered.subject),
                outbox::text_body.eq(&mail.rendered.text),
                outbox::html_body.eq(&mail.rendered.html),
                outbox::summary.eq(&mail.summary),
                outbox::reply_to.eq(&mail.reply_to),
                outbox::next_attempt_at.eq(now),
                outbox::created_at.eq(now),
            )
        })
        .collect();
    // Multi-row inserts are not part of the multi-backend dialect: each backend runs its own.
    let insert = diesel::insert_into(outbox::table).values(rows);
    Ok(match conn {
        AnyConnection::Postgresql(pg) => insert.execute(pg)?,
        AnyConnection::Sqlite(sqlite) => insert.execute(sqlite)?,
    })
}

#[derive(QueryableByName)]
struct Claimed {
    #[diesel(sql_type = BigInt)]
    id: i64,
}

/// Claims up to `limit` due mails for `lease` (call it in a write transaction). On PostgreSQL the
/// claim skips rows another sender holds (`FOR UPDATE SKIP LOCKED`); on SQLite the immediate
/// transaction already serialises senders.
pub fn claim(
    conn: &mut AnyConnection,
    now: NaiveDateTime,
    lease: Duration,
    limit: i64,
) -> Result<Vec<OutboxRow>> {
    let until = now + lease;
    let ids: Vec<i64> = match conn {
        AnyConnection::Postgresql(pg) => diesel::sql_query(
            "UPDATE outbox SET locked_until = $1 WHERE id IN (
                SELECT id FROM outbox
                WHERE status = 'pending' AND next_attempt_at <= $2 AND (locked_until IS NULL OR locked_until < $2)
                ORDER BY id LIMIT $3 FOR UPDATE SKIP LOCKED)
             RETURNING id",
        )
        .bind::<Timestamp, _>(until)
        .bind::<Timestamp, _>(now)
        .bind::<BigInt, _>(limit)
        .load::<Claimed>(pg)?
        .into_iter()
        .map(|c| c.id)
        .collect(),
        AnyConnection::Sqlite(_) => {
            let ids: Vec<i64> = outbox::table
                .filter(outbox::status.eq("pending"))
                .filter(outbox::next_attempt_at.le(now))
                .filter(outbox::locked_until.is_null().or(outbox::locked_until.lt(now)))
                .order(outbox::id)
                .limit(limit)
                .select(outbox::id)
                .load(conn)?;
            diesel::update(outbox::table.filter(outbox::id.eq_any(&ids))).set(outbox::locked_until.eq(until)).execute(conn)?;
            ids
        }
    };
    Ok(outbox::table
        .filter(outbox::id.eq_any(&ids))
        .order(outbox::id)
        .select(OutboxRow::as_select())
        .load(conn)?)
}

/// Extends a claimed mail's lease to `until` just before it is sent, if this sender still holds it
/// (its lease is still `held_until`). A batch can take longer than the first lease with a slow SMTP
/// server; a mail whose lease ran out and was claimed by another sender is left to that sender.
pub fn renew(
    conn: &mut AnyConnection,
    id: i64,
    held_until: Option<NaiveDateTime>,
    until: NaiveDateTime,
) -> Result<bool> {
    let Some(held_until) = held_until else {
        return Ok(false);
    };
    let renewed = diesel::update(
        outbox::table
            .find(id)
            .filter(outbox::status.eq("pending"))
            .filter(outbox::locked_until.eq(held_until)),
    )
    .set(outbox::locked_until.eq(until))
    .execute(conn)?;
    Ok(renewed == 1)
}

/// Deletes mail delivered before `before`; returns how many. (Undelivered and failed mail stays
/// for the admin's outbox page.)
pub fn prune_sent(conn: &mut AnyConnection, before: NaiveDateTime) -> Result<usize> {
    Ok(diesel::delete(
        outbox::table
            .filter(outbox::status.eq("sent"))
            .filter(outbox::sent_at.lt(before)),
    )
    .execute(conn)?)
}

/// Records a delivery.
pub fn mark_sent(conn: &mut AnyConnection, id: i64, now: NaiveDateTime) -> Result<()> {
    diesel::update(outbox::table.find(id))
        .set((
            outbox::status.eq("sent"),
            outbox::sent_at.eq(now),
            outbox::locked_until.eq(None::<NaiveDateTime>),
            outbox::attempts.eq(outbox::attempts + 1),
        ))
        .execute(conn)?;
    Ok(())
}

/// Records a failed attempt: retried after `first_retry` doubled per attempt, or marked failed
/// after `max_attempts`.
pub fn mark_attempt_failed(
    conn: &mut AnyConnection,
    row: &OutboxRow,
    error: &str,
    now: NaiveDateTime,
    max_attempts: i32,
    first_retry: Duration,
) -> Result<()> {
    let attempts = row.attempts + 1;
    let status = if attempts >= max_attempts {
        "failed"
    } else {
        "pending"
    };
    let backoff =
        first_retry * 2i32.saturating_pow(u32::try_from(attempts - 1).unwrap_or(0).min(16));
    let error: String = error.chars().take(500).collect();
    diesel::update(outbox::table.find(row.id))
        .set((
            outbox::status.eq(status),
            outbox::attempts.eq(attempts),
            outbox::last_error.eq(error),
            outbox::next_attempt_at.eq(now + backoff),
            outbox::locked_until.eq(None::<NaiveDateTime>),
        ))
        .execute(conn)?;
    Ok(())
}

/// A user's latest alert mails, newest first.
pub fn recent_alerts(conn: &mut AnyConnection, user_id: i64, limit: i64) -> Result<Vec<OutboxRow>> {
    Ok(outbox::table
        .filter(outbox::user_id.eq(user_id))
        .filter(outbox::kind.eq("alert"))
        .order(outbox::id.desc())
        .limit(limit)
        .select(OutboxRow::as_select())
        .load(conn)?)
}

/// Mail that is not delivered yet or gave up, for the admin page.
pub fn undelivered(conn: &mut AnyConnection, limit: i64) -> Result<Vec<OutboxRow>> {
    Ok(outbox::table
        .filter(outbox::status.ne("sent"))
        .order(outbox::id.desc())
        .limit(limit)
        .select(OutboxRow::as_select())
        .load(conn)?)
}
