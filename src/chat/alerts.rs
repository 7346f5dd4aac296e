//! Who gets an alert mail, and about what. A member with alerts on who is away gets one summary
//! once their oldest unread message (by others, in rooms not muted, not in an earlier alert) is
//! `alert_delay` old, or a mention is `mention_alert_delay` old; after that at most one more a day
//! until they come back. Digest members get one summary a day at their chosen local hour.
//!
//! A planning round costs the same few statements whatever the number of members and rooms and the
//! number and size of unread messages: a read of the members who may be due, one of counts per
//! member and room (no message texts), one of possible mentions (a bounded number, texts cut
//! short), one of room names and one of the latest few lines of every room concerned, then three
//! writes that record every alert and write every mail into the outbox. On PostgreSQL the round
//! holds an advisory lock, so that of several instances one plans at a time; on SQLite (one
//! instance) a lock in the process does, and the reads run before the write lock is taken.

use std::collections::BTreeMap;

use chrono::{Duration, NaiveDateTime, TimeZone, Timelike};
use diesel::prelude::*;
use diesel::IntoSql;

use super::alert_log;
use super::mentions::{self, lower, substr};
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

/// One room of an alert: counts from SQL, and only the latest few lines, so that what a round
/// reads is bounded whatever the number and size of unread messages.
#[derive(Debug, Clone)]
pub struct RoomDue {
    /// Room id.
    pub room_id: i64,
    /// Its slug.
    pub slug: String,
    /// Its name.
    pub name: String,
    /// Messages covered.
    pub count: usize,
    /// Of those, how many mention the member.
    pub mentions: usize,
    /// The first (oldest) message covered.
    pub first_id: i64,
    /// The newest message covered.
    pub newest_id: i64,
    /// When the oldest message covered was posted.
    pub oldest_at: NaiveDateTime,
    /// When the oldest mention covered was posted.
    pub oldest_mention_at: Option<NaiveDateTime>,
    /// A few of the messages covered (at most [`LINES_PER_ROOM`], texts cut to [`LINE_CHARS`]):
    /// mentions first, then the newest.
    pub messages: Vec<Pending>,
}

/// Lines of a room kept for a mail.
pub const LINES_PER_ROOM: usize = 3;

/// Characters of a message read for a mail line.
pub const LINE_CHARS: i32 = 1000;

/// The newest messages of a room read to find each member's lines.
const LINES_READ_PER_ROOM: i64 = 20;

/// Possible mentions read in one round at most, newest first; an older mention beyond them counts
/// as an ordinary message, as does one past the first [`LINE_CHARS`] characters of a message.
const MENTION_ROWS: i64 = 5_000;

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
        self.rooms.iter().map(|r| r.count).sum()
    }
}

/// Per member and room: (member, room, level, count, first id, newest id, oldest time).
type Tally = (
    i64,
    i64,
    String,
    i64,
    Option<i64>,
    Option<i64>,
    Option<NaiveDateTime>,
);

/// The alerts due at `now`. Reads counts per member and room in SQL, and the latest few lines of
/// each room with something to tell: a bounded read, whatever the number and size of unread messages.
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
    let group = ids_per_read(conn, candidates.len());
    let mut due = Vec::new();
    let mut rest = candidates;
    while !rest.is_empty() {
        let later = rest.split_off(group.min(rest.len()));
        due.extend(due_among(conn, rest, now, rules)?);
        rest = later;
    }
    Ok(due)
}

/// How many of `all` members' ids one statement binds. PostgreSQL takes them as one array, SQLite
/// one value each (at most 32,766 in a statement), so on SQLite they go in groups of 20,000.
pub(super) fn ids_per_read(conn: &AnyConnection, all: usize) -> usize {
    match conn {
        AnyConnection::Postgresql(_) => all.max(1),
        AnyConnection::Sqlite(_) => 20_000,
    }
}

/// The alerts due at `now` among `candidates`.
fn due_among(
    conn: &mut AnyConnection,
    candidates: Vec<User>,
    now: NaiveDateTime,
    rules: &Rules,
) -> Result<Vec<Due>> {
    let ids: Vec<i64> = candidates.iter().map(|u| u.id).collect();
    let (members, authors) = diesel::alias!(users as members, users as authors);
    let unread = || {
        memberships::table
            .inner_join(messages::table.on(messages::room_id.eq(memberships::room_id)))
            .inner_join(members.on(members.field(users::id).eq(memberships::user_id)))
            .inner_join(authors.on(authors.field(users::id).eq(messages::author_id)))
            .filter(memberships::user_id.eq_any(&ids))
            .filter(memberships::alert_level.ne("muted"))
            .filter(messages::id.gt(memberships::last_read_id))
            .filter(messages::id.gt(memberships::alerted_through_id))
            .filter(messages::author_id.ne(memberships::user_id))
            .filter(messages::deleted_at.is_null())
    };
    let all: Vec<Tally> = unread()
        .group_by((
            memberships::user_id,
            memberships::room_id,
            memberships::alert_level,
        ))
        .select((
            memberships::user_id,
            memberships::room_id,
            memberships::alert_level,
            diesel::dsl::count_star(),
            diesel::dsl::min(messages::id),
            diesel::dsl::max(messages::id),
            diesel::dsl::min(messages::created_at),
        ))
        .load(conn)?;
    // A line of an unread message, for whom and where: (member, room, line).
    let line = || {
        (
            memberships::user_id,
            memberships::room_id,
            (
                messages::id,
                messages::author_id,
                authors.field(users::username),
                substr(messages::body, 1, LINE_CHARS),
                messages::created_at,
            ),
        )
    };
    // Mentions: SQL finds `@name` anywhere (a superset: `@anna` for ann), newest first and at most
    // MENTION_ROWS, texts cut short; whole names are then told apart here.
    let found: Vec<(i64, i64, Line)> = unread()
        .filter(
            lower(messages::body).like(lower(
                "%@".into_sql::<diesel::sql_types::Text>()
                    .concat(members.field(users::username))
                    .concat("%"),
            )),
        )
        .order(messages::id.desc())
        .limit(MENTION_ROWS)
        .select(line())
        .load(conn)?;
    let names: BTreeMap<i64, &str> = candidates
        .iter()
        .map(|u| (u.id, u.username.as_str()))
        .collect();
    let mut mentions: BTreeMap<(i64, i64), Vec<Pending>> = BTreeMap::new();
    for (user_id, room_id, (id, _, author, body, created_at)) in found {
        if names
            .get(&user_id)
            .is_some_and(|name| mentions::mentions(&body, name))
        {
            mentions
                .entry((user_id, room_id))
                .or_default()
                .push(Pending {
                    id,
                    author,
                    body,
                    created_at,
                    mention: true,
                });
        }
    }
    // Replies in a thread the member started or took part in count as mentions too.
    let thread = diesel::alias!(messages as thread);
    let replies: Vec<(i64, i64, Line)> = unread()
        .filter(messages::parent_id.is_not_null())
        .filter(diesel::dsl::exists(
            thread
                .filter(
                    thread
                        .field(messages::id)
                        .nullable()
                        .eq(messages::parent_id)
                        .or(thread.field(messages::parent_id).eq(messages::parent_id)),
                )
                .filter(thread.field(messages::author_id).eq(memberships::user_id)),
        ))
        .order(messages::id.desc())
        .limit(MENTION_ROWS)
        .select(line())
        .load(conn)?;
    // So does every message of a direct conversation.
    let direct_rooms = rooms::table
        .filter(rooms::kind.eq(super::direct::KIND))
        .select(rooms::id);
    let direct: Vec<(i64, i64, Line)> = unread()
        .filter(messages::room_id.eq_any(direct_rooms))
        .order(messages::id.desc())
        .limit(MENTION_ROWS)
        .select(line())
        .load(conn)?;
    for (user_id, room_id, (id, _, author, body, created_at)) in replies.into_iter().chain(direct) {
        let found = mentions.entry((user_id, room_id)).or_default();
        if !found.iter().any(|m| m.id == id) {
            found.push(Pending {
                id,
                author,
                body,
                created_at,
                mention: true,
            });
        }
    }
    for found in mentions.values_mut() {
        found.sort_by_key(|m| std::cmp::Reverse(m.id));
    }
    let mut tallies: BTreeMap<i64, Vec<RoomDue>> = BTreeMap::new();
    for (user_id, room_id, level, count, first, newest, oldest) in all {
        // Newest first.
        let mentioned = mentions.remove(&(user_id, room_id)).unwrap_or_default();
        let oldest_mention_at = mentioned.iter().map(|m| m.created_at).min();
        let (count, first, newest, oldest) = if level == "mentions" {
            if mentioned.is_empty() {
                continue;
            }
            (
                mentioned.len() as i64,
                mentioned.iter().map(|m| m.id).min(),
                mentioned.iter().map(|m| m.id).max(),
                oldest_mention_at,
            )
        } else {
            (count, first, newest, oldest)
        };
        let (Some(first_id), Some(newest_id), Some(oldest_at)) = (first, newest, oldest) else {
            continue;
        };
        tallies.entry(user_id).or_default().push(RoomDue {
            room_id,
            slug: String::new(),
            name: String::new(),
            count: usize::try_from(count).unwrap_or(0),
            mentions: mentioned.len(),
            first_id,
            newest_id,
            oldest_at,
            oldest_mention_at,
            messages: mentioned.into_iter().take(LINES_PER_ROOM).collect(),
        });
    }
    let mut due = Vec::new();
    for user in candidates {
        let Some(rooms) = tallies.remove(&user.id) else {
            continue;
        };
        if is_due(&user, &rooms, now, rules) {
            due.push(Due { user, rooms });
        }
    }
    add_lines(conn, &mut due)?;
    for d in &mut due {
        d.rooms
            .sort_by_key(|r| (r.mentions == 0, std::cmp::Reverse(r.count)));
    }
    Ok(due)
}

/// A recent message of a room: id, author id, author's name, the start of its text, when.
type Line = (i64, i64, String, String, NaiveDateTime);

/// A recent message of a room, as the window query reads it.
#[derive(QueryableByName)]
struct LineRow {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    id: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    room_id: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    author_id: i64,
    #[diesel(sql_type = diesel::sql_types::Text)]
    username: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    body: String,
    #[diesel(sql_type = diesel::sql_types::Timestamp)]
    created_at: NaiveDateTime,
}

/// Fills in each room's name and each member's latest lines: one read of the rooms, and one of the
/// newest few messages per room (texts cut short in SQL).
fn add_lines(conn: &mut AnyConnection, due: &mut [Due]) -> Result<()> {
    let mut oldest_wanted: BTreeMap<i64, i64> = BTreeMap::new();
    for room in due.iter().flat_map(|d| &d.rooms) {
        let entry = oldest_wanted.entry(room.room_id).or_insert(room.first_id);
        *entry = (*entry).min(room.first_id);
    }
    if oldest_wanted.is_empty() {
        return Ok(());
    }
    let room_ids: Vec<i64> = oldest_wanted.keys().copied().collect();
    let names: BTreeMap<i64, (String, String)> = rooms::table
        .filter(rooms::id.eq_any(&room_ids))
        .select((rooms::id, rooms::slug, rooms::name, rooms::kind))
        .load::<(i64, String, String, String)>(conn)?
        .into_iter()
        .map(|(id, slug, name, kind)| {
            // A direct conversation is not named by its people: subjects show on Admin → Outbox.
            let name = if kind == super::direct::KIND {
                "a direct message".to_string()
            } else {
                name
            };
            (id, (slug, name))
        })
        .collect();
    // The newest few messages of every room at once (one statement whatever the number of rooms):
    // numbered per room by a window over ids only, texts read for the few kept. Every value put in
    // the text is an id from the database (an i64).
    let cases: String = oldest_wanted
        .iter()
        .map(|(room, oldest)| format!(" WHEN {room} THEN {oldest}"))
        .collect();
    let rooms_list = room_ids
        .iter()
        .map(|id| id.to_string())
        .collect::<Vec<_>>()
        .join(", ");
    let rows: Vec<LineRow> = diesel::sql_query(format!(
        "SELECT m.id, m.room_id, m.author_id, u.username, substr(m.body, 1, {LINE_CHARS}) AS body, m.created_at \
         FROM (SELECT id, ROW_NUMBER() OVER (PARTITION BY room_id ORDER BY id DESC) AS n \
               FROM messages WHERE room_id IN ({rooms_list}) AND deleted_at IS NULL \
               AND id >= CASE room_id{cases} END) newest \
         JOIN messages m ON m.id = newest.id JOIN users u ON u.id = m.author_id \
         WHERE newest.n <= {LINES_READ_PER_ROOM}"
    ))
    .load(conn)?;
    let mut latest: BTreeMap<i64, Vec<Line>> = BTreeMap::new();
    for row in rows {
        latest.entry(row.room_id).or_default().push((
            row.id,
            row.author_id,
            row.username,
            row.body,
            row.created_at,
        ));
    }
    for d in due.iter_mut() {
        let uid = d.user.id;
        for room in &mut d.rooms {
            if let Some((slug, name)) = names.get(&room.room_id) {
                room.slug.clone_from(slug);
                room.name.clone_from(name);
            }
            // Mention lines are already there (newest first); the newest other lines fill up,
            // except in a room heard about for mentions only.
            let mentions_only = room.count == room.mentions;
            let mut lines = std::mem::take(&mut room.messages);
            if !mentions_only {
                let taken: Vec<i64> = lines.iter().map(|m| m.id).collect();
                lines.extend(
                    latest
                        .get(&room.room_id)
                        .into_iter()
                        .flatten()
                        .filter(|(id, author_id, ..)| {
                            *id >= room.first_id
                                && *id <= room.newest_id
                                && *author_id != uid
                                && !taken.contains(id)
                        })
                        .map(|(id, _, author, body, created_at)| Pending {
                            id: *id,
                            author: author.clone(),
                            mention: false,
                            body: body.clone(),
                            created_at: *created_at,
                        }),
                );
            }
            lines.sort_by_key(|m| (!m.mention, std::cmp::Reverse(m.id)));
            lines.truncate(LINES_PER_ROOM);
            room.messages = lines;
        }
    }
    Ok(())
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
    let ripe = rooms.iter().any(|r| {
        r.oldest_at <= now - rules.alert_delay
            || r.oldest_mention_at
                .is_some_and(|at| at <= now - rules.mention_delay)
    });
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
/// round), renders each mail with `render`, and records them all, keeping other planners out (see
/// the module's introduction). Returns how many were written; none while another instance is
/// planning. Run it outside a transaction.
pub fn plan(
    conn: &mut AnyConnection,
    now: NaiveDateTime,
    rules: &Rules,
    limit: usize,
    render: impl Fn(&Due) -> Result<NewMail>,
) -> Result<usize> {
    let prepare = |conn: &mut AnyConnection| -> Result<(Vec<Due>, Vec<NewMail>)> {
        let mut due = due(conn, now, rules)?;
        due.truncate(limit);
        // A mail that does not render is left out (and tried again next round); the rest go.
        Ok(due
            .into_iter()
            .filter_map(|d| match render(&d) {
                Ok(mail) => Some((d, mail)),
                Err(e) => {
                    log::error!("rendering the alert for user {}: {e}", d.user.id);
                    None
                }
            })
            .unzip())
    };
    match conn {
        AnyConnection::Postgresql(_) => conn.transaction(|conn| {
            let AnyConnection::Postgresql(pg) = conn else {
                return Ok(0);
            };
            if !diesel::select(pg_try_advisory_xact_lock(PLANNER_LOCK)).get_result(pg)? {
                return Ok(0);
            }
            let (due, mails) = prepare(conn)?;
            let log = decisions(conn, now, rules, &due)?;
            let written = record(conn, &due, &mails, now)?;
            alert_log::record(conn, &log, now)?;
            Ok(written)
        }),
        // SQLite is one instance: a lock in the process keeps its planners apart, and the reads run
        // before the write lock is taken, so posts are never held up behind planning.
        AnyConnection::Sqlite(_) => {
            static PLANNING: std::sync::Mutex<()> = std::sync::Mutex::new(());
            let _one_planner = PLANNING
                .lock()
                .map_err(|_| Error::internal("planning alerts", "the planner lock is poisoned"))?;
            let (due, mails) = prepare(conn)?;
            let log = decisions(conn, now, rules, &due)?;
            if due.is_empty() && log.is_empty() {
                return Ok(0);
            }
            crate::db::write_transaction(conn, |conn| {
                let written = record(conn, &due, &mails, now)?;
                alert_log::record(conn, &log, now)?;
                Ok(written)
            })
        }
    }
}

/// What the alert log says of this round: the alerts sent, and why the others were not.
fn decisions(
    conn: &mut AnyConnection,
    now: NaiveDateTime,
    rules: &Rules,
    due: &[Due],
) -> Result<Vec<alert_log::Entry>> {
    let mut log = alert_log::not_sent(conn, now, rules, due)?;
    log.extend(alert_log::sent(due));
    Ok(log)
}

/// Records the alerts and writes their mails into the outbox, in the caller's transaction, in three
/// statements. Each due member is marked alerted, room by room, through the newest message their
/// own tally covered there. Within a room, ids commit in order (posts take the room's row lock), so
/// every message up to it that could alert them was read by that query; none is skipped. (Across
/// rooms that does not hold on PostgreSQL, so the mark is per room.)
fn record(
    conn: &mut AnyConnection,
    due: &[Due],
    mails: &[NewMail],
    now: NaiveDateTime,
) -> Result<usize> {
    if due.is_empty() {
        return Ok(0);
    }
    let members: Vec<i64> = due.iter().map(|d| d.user.id).collect();
    // Each member is marked through the newest message their own tally saw in each room (so a
    // message that committed between two reads is never skipped for anyone), in one statement:
    // `CASE WHEN user_id = … AND room_id = … THEN … END`. Every value is an id from the database (an
    // i64), so the text is built here rather than bound.
    let mut rooms: Vec<i64> = Vec::new();
    let mut cases = String::new();
    for d in due {
        for room in &d.rooms {
            cases.push_str(&format!(
                " WHEN user_id = {} AND room_id = {} THEN {}",
                d.user.id, room.room_id, room.newest_id
            ));
            rooms.push(room.room_id);
        }
    }
    if rooms.is_empty() {
        return Ok(0);
    }
    rooms.sort_unstable();
    rooms.dedup();
    let list = |ids: &[i64]| {
        ids.iter()
            .map(|id| id.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    diesel::sql_query(format!(
        "UPDATE memberships SET alerted_through_id = CASE{cases} END \
         WHERE user_id IN ({}) AND room_id IN ({}) AND alert_level <> 'muted' \
         AND alerted_through_id < CASE{cases} END",
        list(&members),
        list(&rooms),
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
