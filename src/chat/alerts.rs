//! Who gets an alert mail, and about what. A member with alerts on who is away gets one summary
//! once their oldest unread message (by others, in rooms not muted, not in an earlier alert) is
//! `alert_delay` old, or a mention is `mention_alert_delay` old; after that at most one more a day
//! until they come back. Digest members get one summary a day at their chosen local hour.
//!
//! A planning round costs the same few statements whatever the number of members: one transaction of
//! two reads and three writes that records every alert and writes every mail into the outbox. The
//! round keeps other planners out (an advisory lock on PostgreSQL, the write lock on SQLite), so that
//! of several instances one plans at a time.

use std::collections::BTreeMap;

use chrono::{Duration, NaiveDateTime, TimeZone, Timelike};
use diesel::prelude::*;

use super::outbox::{self, NewMail};
use super::users::User;
use crate::db::schema::{memberships, messages, rooms, users};
use crate::db::AnyConnection;
use crate::error::{Error, Result};

/// The timings of the alert rules.
#[derive(Debug, Clone, Copy)]
pub struct Rules {
    /// Without an active page this long, a member is away.
    pub away_after: Duration,
    /// How old the oldest unread message must be.
    pub alert_delay: Duration,
    /// How old a mention must be.
    pub mention_delay: Duration,
}

/// An unread message an alert may cover.
#[derive(Debug, Clone)]
pub struct Pending {
    /// Message id.
    pub id: i64,
    /// Author's username.
    pub author: String,
    /// The text.
    pub body: String,
    /// When it was posted.
    pub created_at: NaiveDateTime,
    /// Whether it mentions the member.
    pub mention: bool,
}

/// One room of an alert.
#[derive(Debug, Clone)]
pub struct RoomDue {
    /// Room id.
    pub room_id: i64,
    /// Its slug.
    pub slug: String,
    /// Its name.
    pub name: String,
    /// The messages covered, oldest first.
    pub messages: Vec<Pending>,
}

/// An alert that is due.
#[derive(Debug, Clone)]
pub struct Due {
    /// The member.
    pub user: User,
    /// Rooms with something to tell, mentions first.
    pub rooms: Vec<RoomDue>,
}

impl Due {
    /// All messages covered.
    pub fn count(&self) -> usize {
        self.rooms.iter().map(|r| r.messages.len()).sum()
    }
}

/// Whether `body` mentions `@username` (case-insensitive, as a whole name).
pub fn mentions(body: &str, username: &str) -> bool {
    let needle = format!("@{}", username.to_lowercase());
    let lower = body.to_lowercase();
    let is_name = |c: char| c.is_ascii_alphanumeric() || "_.-".contains(c);
    lower.match_indices(&needle).any(|(at, _)| {
        let before_ok = !lower[..at]
            .chars()
            .next_back()
            .is_some_and(|c| c.is_alphanumeric());
        let rest = &lower[at + needle.len()..];
        let mut following = rest.chars();
        let after_ok = match following.next() {
            None => true,
            // A full stop ends the name unless the name goes on after it (`@ann.bob`).
            Some('.') => !following.next().is_some_and(is_name),
            Some(c) => !is_name(c),
        };
        before_ok && after_ok
    })
}

type Row = (
    i64,
    String,
    i64,
    String,
    String,
    i64,
    String,
    String,
    NaiveDateTime,
);

/// The alerts due at `now`.
pub fn due(conn: &mut AnyConnection, now: NaiveDateTime, rules: &Rules) -> Result<Vec<Due>> {
    let away_since = now - rules.away_after;
    let candidates: Vec<User> = users::table
        .filter(users::is_active.eq(true))
        .filter(
            users::alert_mode
                .eq("digest")
                .or(users::alert_mode.eq("on").and(
                    users::last_active_at
                        .is_null()
                        .or(users::last_active_at.lt(away_since)),
                )),
        )
        .select(User::as_select())
        .load(conn)?;
    if candidates.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<i64> = candidates.iter().map(|u| u.id).collect();
    let authors = diesel::alias!(users as authors);
    let rows: Vec<Row> = memberships::table
        .inner_join(messages::table.on(messages::room_id.eq(memberships::room_id)))
        .inner_join(rooms::table.on(rooms::id.eq(memberships::room_id)))
        .inner_join(authors.on(authors.field(users::id).eq(messages::author_id)))
        .filter(memberships::user_id.eq_any(&ids))
        .filter(memberships::alert_level.ne("muted"))
        .filter(messages::id.gt(memberships::last_read_id))
        .filter(messages::id.gt(memberships::alerted_through_id))
        .filter(messages::author_id.ne(memberships::user_id))
        .filter(messages::deleted_at.is_null())
        .order((memberships::user_id, messages::id))
        .select((
            memberships::user_id,
            memberships::alert_level,
            rooms::id,
            rooms::slug,
            rooms::name,
            messages::id,
            authors.field(users::username),
            messages::body,
            messages::created_at,
        ))
        .load(conn)?;
    let mut by_user: BTreeMap<i64, BTreeMap<i64, RoomDue>> = BTreeMap::new();
    let names: BTreeMap<i64, &str> = candidates
        .iter()
        .map(|u| (u.id, u.username.as_str()))
        .collect();
    for (user_id, level, room_id, slug, name, id, author, body, created_at) in rows {
        let mention = mentions(&body, names.get(&user_id).copied().unwrap_or(""));
        if level == "mentions" && !mention {
            continue;
        }
        let room = by_user
            .entry(user_id)
            .or_default()
            .entry(room_id)
            .or_insert_with(|| RoomDue {
                room_id,
                slug,
                name,
                messages: Vec::new(),
            });
        room.messages.push(Pending {
            id,
            author,
            body,
            created_at,
            mention,
        });
    }
    let mut due = Vec::new();
    for user in candidates {
        let Some(rooms) = by_user.remove(&user.id) else {
            continue;
        };
        let mut rooms: Vec<RoomDue> = rooms.into_values().collect();
        if !is_due(&user, &rooms, now, rules) {
            continue;
        }
        rooms.sort_by_key(|r| {
            (
                !r.messages.iter().any(|m| m.mention),
                std::cmp::Reverse(r.messages.len()),
            )
        });
        due.push(Due { user, rooms });
    }
    Ok(due)
}

fn is_due(user: &User, rooms: &[RoomDue], now: NaiveDateTime, rules: &Rules) -> bool {
    let tz = user.tz();
    if user.alert_mode == "digest" {
        let local = tz.from_utc_datetime(&now);
        let today = local
            .date_naive()
            .and_hms_opt(u32::try_from(user.digest_hour).unwrap_or(8).min(23), 0, 0)
            .unwrap_or_default();
        let slot = tz
            .from_local_datetime(&today)
            .earliest()
            .map_or(today, |t| t.naive_utc());
        return local.hour() as i32 == user.digest_hour
            && user.last_alert_at.is_none_or(|last| last < slot);
    }
    let messages = rooms.iter().flat_map(|r| &r.messages);
    let ripe = messages
        .clone()
        .any(|m| m.created_at <= now - rules.alert_delay)
        || messages
            .clone()
            .any(|m| m.mention && m.created_at <= now - rules.mention_delay);
    // After an alert, while they have not come back, at most one more a day.
    let back_since_last = match (user.last_alert_at, user.last_active_at) {
        (None, _) => true,
        (Some(alerted), Some(active)) => active > alerted,
        (Some(_), None) => false,
    };
    let daily_ok = back_since_last
        || user
            .last_alert_at
            .is_some_and(|last| now - last >= Duration::hours(24));
    ripe && daily_ok
}

/// A fixed key for the PostgreSQL advisory lock held by a planning round ("alerts" in ASCII).
const PLANNER_LOCK: i64 = 0x616c_6572_7473;

diesel::define_sql_function! {
    /// PostgreSQL: takes a lock until the end of the transaction, if no one else holds it.
    fn pg_try_advisory_xact_lock(key: diesel::sql_types::BigInt) -> diesel::sql_types::Bool;
}

/// Plans one round at `now`: finds who is due (at most `limit` of them; the rest are due again next
/// round), renders each mail with `render`, and records them all, in one transaction that keeps other
/// planners out (an advisory lock on PostgreSQL, the write lock on SQLite). Returns how many were
/// written; none while another instance is planning. Run it outside a transaction.
pub fn plan(
    conn: &mut AnyConnection,
    now: NaiveDateTime,
    rules: &Rules,
    limit: usize,
    render: impl Fn(&Due) -> Result<NewMail>,
) -> Result<usize> {
    let round = |conn: &mut AnyConnection| -> Result<usize> {
        let mut due = due(conn, now, rules)?;
        due.truncate(limit);
        // A mail that does not render is left out (and tried again next round); the rest go.
        let (due, mails): (Vec<Due>, Vec<NewMail>) = due
            .into_iter()
            .filter_map(|d| match render(&d) {
                Ok(mail) => Some((d, mail)),
                Err(e) => {
                    log::error!("rendering the alert for user {}: {e}", d.user.id);
                    None
                }
            })
            .unzip();
        if due.is_empty() {
            return Ok(0);
        }
        record(conn, &due, &mails, now)
    };
    match conn {
        AnyConnection::Postgresql(_) => conn.transaction(|conn| {
            let AnyConnection::Postgresql(pg) = conn else {
                return Ok(0);
            };
            if diesel::select(pg_try_advisory_xact_lock(PLANNER_LOCK)).get_result(pg)? {
                round(conn)
            } else {
                Ok(0)
            }
        }),
        // SQLite's immediate transaction already keeps any other planner out.
        AnyConnection::Sqlite(_) => crate::db::write_transaction(conn, round),
    }
}

/// Records the alerts and writes their mails into the outbox, in the caller's transaction, in three
/// statements. In each room a round covered, its due members are marked alerted through the newest
/// message the round covered there. Within a room, ids commit in order (posts take the room's row
/// lock), so every message up to it that could alert them was read by the same query; none is
/// skipped. (Across rooms that does not hold on PostgreSQL, so the mark is per room.)
fn record(
    conn: &mut AnyConnection,
    due: &[Due],
    mails: &[NewMail],
    now: NaiveDateTime,
) -> Result<usize> {
    let members: Vec<i64> = due.iter().map(|d| d.user.id).collect();
    let mut through: BTreeMap<i64, i64> = BTreeMap::new();
    for room in due.iter().flat_map(|d| &d.rooms) {
        let newest = room.messages.iter().map(|m| m.id).max().unwrap_or(0);
        let entry = through.entry(room.room_id).or_insert(0);
        *entry = (*entry).max(newest);
    }
    // One statement whatever the number of rooms: `CASE room_id WHEN … THEN … END`. Every value is
    // an id from the database (an i64), so the text is built here rather than bound.
    let cases: String = through
        .iter()
        .map(|(room, id)| format!(" WHEN {room} THEN {id}"))
        .collect();
    if through.is_empty() {
        return Ok(0);
    }
    let list = |ids: &mut dyn Iterator<Item = i64>| {
        ids.map(|id| id.to_string()).collect::<Vec<_>>().join(", ")
    };
    diesel::sql_query(format!(
        "UPDATE memberships SET alerted_through_id = CASE room_id{cases} END \
         WHERE user_id IN ({}) AND room_id IN ({}) AND alert_level <> 'muted' \
         AND alerted_through_id < CASE room_id{cases} END",
        list(&mut members.iter().copied()),
        list(&mut through.keys().copied()),
    ))
    .execute(conn)?;
    diesel::update(users::table.filter(users::id.eq_any(&members)))
        .set(users::last_alert_at.eq(now))
        .execute(conn)?;
    outbox::enqueue_all(conn, mails, now)
}

/// Sets a member's alert mode (`on`, `digest` or `off`) and digest hour.
pub fn set_mode(
    conn: &mut AnyConnection,
    user_id: i64,
    mode: &str,
    digest_hour: i32,
) -> Result<()> {
    if !["on", "digest", "off"].contains(&mode) || !(0..24).contains(&digest_hour) {
        return Err(Error::Invalid(
            "Choose alerts on, a daily digest at an hour from 0 to 23, or off.".into(),
        ));
    }
    diesel::update(users::table.find(user_id))
        .set((
            users::alert_mode.eq(mode),
            users::digest_hour.eq(digest_hour),
        ))
        .execute(conn)?;
    Ok(())
}

/// Sets how a member hears about one room: `all`, `mentions` or `muted`.
pub fn set_room_level(
    conn: &mut AnyConnection,
    room_id: i64,
    user_id: i64,
    level: &str,
) -> Result<()> {
    if !["all", "mentions", "muted"].contains(&level) {
        return Err(Error::Invalid(
            "Choose all messages, mentions only, or muted.".into(),
        ));
    }
    let n = diesel::update(memberships::table.find((room_id, user_id)))
        .set(memberships::alert_level.eq(level))
        .execute(conn)?;
    if n == 0 {
        return Err(Error::NotFound);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::mentions;

    #[test]
    fn mentions_are_whole_names() {
        assert!(mentions("hi @ann!", "ann"));
        assert!(mentions("@ANN, look", "ann"));
        assert!(mentions("thanks @ann.", "ann"));
        assert!(!mentions("hi @anna", "ann"));
        assert!(!mentions("mail ann@example.org", "ann"));
        assert!(!mentions("hi ann", "ann"));
        assert!(mentions("cc @ann.b", "ann.b"));
        assert!(!mentions("hi @ann.bob", "ann"));
        assert!(!mentions("x@ann.", "ann"));
    }
}
