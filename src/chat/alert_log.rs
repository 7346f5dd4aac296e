//! The alert log: what the planner decided for each member and why ("not sent: you were active at
//! 14:02", "held until the daily digest at 18:00", "sent: 4 new in General"), shown in Settings →
//! Email. Each decision is logged once for the oldest unread message it was about, so a member
//! who stays active in a busy room gets one line, not one a round.

use chrono::{Duration, NaiveDateTime, Timelike};
use diesel::dsl::{count_star, min};
use diesel::prelude::*;
use serde::Serialize;

use super::alerts::{ids_per_read, Due, Rules};
use super::users::User;
use crate::db::schema::{alert_log, memberships, messages, users};
use crate::db::AnyConnection;
use crate::error::Result;

/// How long decisions are kept and shown.
pub const KEPT_DAYS: i64 = 7;

/// A decision to log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The member.
    pub user_id: i64,
    /// `sent`, `muted`, `active`, `digest` or `daily`.
    pub kind: &'static str,
    /// The oldest unread message it was about.
    pub message_id: i64,
    /// The sentence shown.
    pub decision: String,
}

/// Unread messages of a member at one alert level: member, level, count, oldest id, oldest time.
type Unread = (i64, String, i64, Option<i64>, Option<NaiveDateTime>);

/// A logged decision, as Settings shows it.
#[derive(Debug, Clone, Queryable, Serialize)]
pub struct Logged {
    /// When it was taken.
    pub at: NaiveDateTime,
    /// The sentence.
    pub decision: String,
}

fn local_time(user: &User, at: NaiveDateTime) -> String {
    crate::format::when(at, user.tz()).time
}

/// "sent: 4 new in General and Ops", for each alert written.
pub fn sent(due: &[Due]) -> Vec<Entry> {
    due.iter()
        .map(|d| {
            let rooms: Vec<&str> = d.rooms.iter().map(|r| r.name.as_str()).collect();
            Entry {
                user_id: d.user.id,
                kind: "sent",
                message_id: d.rooms.iter().map(|r| r.first_id).min().unwrap_or(0),
                decision: format!("sent: {} new in {}", d.count(), rooms.join(", ")),
            }
        })
        .collect()
}

/// Why the members with unread messages who were not alerted this round were not: active, muted,
/// waiting for their digest, or over the one-alert-a-day limit. Members still within the alert
/// delay get no line (nothing was decided yet). Two statements, whatever the number of members
/// (on SQLite, one more for every 20,000).
pub fn not_sent(
    conn: &mut AnyConnection,
    now: NaiveDateTime,
    rules: &Rules,
    due: &[Due],
) -> Result<Vec<Entry>> {
    let alerted: Vec<i64> = due.iter().map(|d| d.user.id).collect();
    let members: Vec<User> = users::table
        .filter(users::is_active.eq(true))
        .filter(users::alert_mode.eq_any(["on", "digest"]))
        .filter(users::id.ne_all(&alerted))
        .select(User::as_select())
        .load(conn)?;
    if members.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<i64> = members.iter().map(|u| u.id).collect();
    // Unread messages by others, not yet alerted, per member and level (`mentions` rooms are
    // left out: whether they mention the member is the planner's question, not this one's).
    let mut unread: Vec<Unread> = Vec::new();
    for ids in ids.chunks(ids_per_read(conn, ids.len())) {
        unread.extend(
            memberships::table
                .inner_join(messages::table.on(messages::room_id.eq(memberships::room_id)))
                .filter(memberships::user_id.eq_any(ids))
                .filter(memberships::alert_level.eq_any(["all", "muted"]))
                .filter(messages::id.gt(memberships::last_read_id))
                .filter(messages::id.gt(memberships::alerted_through_id))
                .filter(messages::author_id.ne(memberships::user_id))
                .filter(messages::deleted_at.is_null())
                .group_by((memberships::user_id, memberships::alert_level))
                .select((
                    memberships::user_id,
                    memberships::alert_level,
                    count_star(),
                    min(messages::id),
                    min(messages::created_at),
                ))
                .load::<Unread>(conn)?,
        );
    }
    let members: std::collections::HashMap<i64, User> =
        members.into_iter().map(|u| (u.id, u)).collect();
    let mut entries = Vec::new();
    let away_since = now - rules.away_after;
    for (user_id, level, count, first, oldest) in unread {
        let (Some(user), Some(first), Some(oldest)) = (members.get(&user_id), first, oldest) else {
            continue;
        };
        let unread = if count == 1 {
            "1 unread".to_string()
        } else {
            format!("{count} unread")
        };
        let (kind, decision) = if level == "muted" {
            (
                "muted",
                format!("not sent: muted ({unread} in muted rooms)"),
            )
        } else if user.alert_mode == "digest" {
            (
                "digest",
                format!(
                    "held until the daily digest at {:02}:00 ({unread})",
                    user.digest_hour
                ),
            )
        } else if oldest > now - rules.alert_delay {
            continue;
        } else if let Some(active) = user.last_active_at.filter(|at| *at >= away_since) {
            (
                "active",
                format!(
                    "not sent: you were active at {} ({unread})",
                    local_time(user, active)
                ),
            )
        } else if let Some(last) = user.last_alert_at {
            let next = last + Duration::hours(24);
            (
                "daily",
                format!(
                    "held: one alert a day until you are back; the next after {} ({unread})",
                    local_time(user, next.with_second(0).unwrap_or(next))
                ),
            )
        } else {
            continue;
        };
        entries.push(Entry {
            user_id,
            kind,
            message_id: first,
            decision,
        });
    }
    Ok(entries)
}

/// Writes the entries not logged before (same member, kind and message), in the caller's
/// transaction; returns how many. One statement however many entries: they travel as arrays
/// (PostgreSQL) or one JSON text (SQLite), not as a bound value each, which both backends limit
/// (a round with thousands of members would otherwise fail, and with it every alert).
pub fn record(conn: &mut AnyConnection, entries: &[Entry], now: NaiveDateTime) -> Result<usize> {
    use diesel::sql_types::{Array, BigInt, Text, Timestamp};
    if entries.is_empty() {
        return Ok(0);
    }
    let since = now - Duration::days(KEPT_DAYS);
    let insert = |source: &str, at: &str, since: &str| {
        format!(
            "INSERT INTO alert_log (user_id, at, kind, message_id, decision) \
             SELECT e.user_id, {at}, e.kind, e.message_id, e.decision FROM {source} \
             WHERE NOT EXISTS (SELECT 1 FROM alert_log l WHERE l.user_id = e.user_id \
             AND l.kind = e.kind AND l.message_id = e.message_id AND l.at >= {since})"
        )
    };
    Ok(match conn {
        AnyConnection::Postgresql(pg) => diesel::sql_query(insert(
            "unnest($2::bigint[], $3::text[], $4::bigint[], $5::text[]) \
             AS e (user_id, kind, message_id, decision)",
            "$1",
            "$6",
        ))
        .bind::<Timestamp, _>(now)
        .bind::<Array<BigInt>, _>(entries.iter().map(|e| e.user_id).collect::<Vec<_>>())
        .bind::<Array<Text>, _>(entries.iter().map(|e| e.kind).collect::<Vec<_>>())
        .bind::<Array<BigInt>, _>(entries.iter().map(|e| e.message_id).collect::<Vec<_>>())
        .bind::<Array<Text>, _>(
            entries
                .iter()
                .map(|e| e.decision.as_str())
                .collect::<Vec<_>>(),
        )
        .bind::<Timestamp, _>(since)
        .execute(pg)?,
        AnyConnection::Sqlite(sqlite) => {
            let rows: Vec<_> = entries
                .iter()
                .map(|e| (e.user_id, e.kind, e.message_id, &e.decision))
                .collect();
            let rows = serde_json::to_string(&rows)
                .map_err(|e| crate::error::Error::internal("logging alert decisions", e))?;
            diesel::sql_query(insert(
                "(SELECT value ->> 0 AS user_id, value ->> 1 AS kind, value ->> 2 AS message_id, \
                 value ->> 3 AS decision FROM json_each(?)) AS e",
                "?",
                "?",
            ))
            .bind::<Timestamp, _>(now)
            .bind::<Text, _>(rows)
            .bind::<Timestamp, _>(since)
            .execute(sqlite)?
        }
    })
}

/// A member's decisions of the last [`KEPT_DAYS`] days, newest first.
pub fn recent(
    conn: &mut AnyConnection,
    user_id: i64,
    now: NaiveDateTime,
    limit: i64,
) -> Result<Vec<Logged>> {
    Ok(alert_log::table
        .filter(alert_log::user_id.eq(user_id))
        .filter(alert_log::at.ge(now - Duration::days(KEPT_DAYS)))
        .order(alert_log::id.desc())
        .limit(limit)
        .select((alert_log::at, alert_log::decision))
        .load(conn)?)
}

/// Removes decisions older than [`KEPT_DAYS`] days; returns how many.
pub fn prune(conn: &mut AnyConnection, now: NaiveDateTime) -> Result<usize> {
    Ok(
        diesel::delete(alert_log::table.filter(alert_log::at.lt(now - Duration::days(KEPT_DAYS))))
            .execute(conn)?,
    )
}
