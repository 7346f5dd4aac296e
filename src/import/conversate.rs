//! A django-conversate database (PostgreSQL or SQLite), read without changing it: Django's
//! `auth_user`, and conversate's `conversate_room`, `conversate_roomuser` (membership) and
//! `conversate_message` (`timestamp` in whole seconds since 1970, `file` relative to the store
//! root, `''` for none). Columns are read by name: Django's SQLite migrations reorder them.

use std::collections::HashMap;
use std::path::Path;

use diesel::connection::{LoadConnection, SimpleConnection};
use diesel::prelude::*;
use diesel::query_builder::SqlQuery;
use diesel::query_dsl::LoadQuery;
use diesel::sql_types::{BigInt, Nullable, Text};
use diesel::{PgConnection, SqliteConnection};

use super::{FileRef, History, Person, Post, ReadError, RoomHistory};
use crate::db::DatabaseUrl;

#[derive(QueryableByName)]
struct UserRow {
    #[diesel(sql_type = BigInt)]
    id: i64,
    #[diesel(sql_type = Text)]
    username: String,
    #[diesel(sql_type = Text)]
    email: String,
}

#[derive(QueryableByName)]
struct RoomRow {
    #[diesel(sql_type = BigInt)]
    id: i64,
    #[diesel(sql_type = Text)]
    title: String,
    #[diesel(sql_type = Text)]
    slug: String,
}

#[derive(QueryableByName)]
struct MemberRow {
    #[diesel(sql_type = BigInt)]
    room_id: i64,
    #[diesel(sql_type = BigInt)]
    user_id: i64,
}

#[derive(QueryableByName)]
struct MessageRow {
    #[diesel(sql_type = BigInt)]
    id: i64,
    #[diesel(sql_type = BigInt)]
    room_id: i64,
    #[diesel(sql_type = BigInt)]
    user_id: i64,
    #[diesel(sql_type = BigInt)]
    timestamp: i64,
    #[diesel(sql_type = Text)]
    content: String,
    #[diesel(sql_type = Nullable<Text>)]
    file: Option<String>,
}

const USERS: &str = "SELECT CAST(id AS BIGINT) AS id, username, email FROM auth_user ORDER BY id";
const ROOMS: &str = "SELECT CAST(id AS BIGINT) AS id, title, slug FROM conversate_room ORDER BY id";
const MEMBERS: &str =
    "SELECT CAST(room_id AS BIGINT) AS room_id, CAST(user_id AS BIGINT) AS user_id \
                       FROM conversate_roomuser ORDER BY id";
const MESSAGES: &str = "SELECT CAST(id AS BIGINT) AS id, CAST(room_id AS BIGINT) AS room_id, \
                        CAST(user_id AS BIGINT) AS user_id, CAST(\"timestamp\" AS BIGINT) AS \"timestamp\", \
                        content, file FROM conversate_message ORDER BY \"timestamp\", id";

struct Tables {
    users: Vec<UserRow>,
    rooms: Vec<RoomRow>,
    members: Vec<MemberRow>,
    messages: Vec<MessageRow>,
}

fn tables<C>(conn: &mut C) -> QueryResult<Tables>
where
    C: LoadConnection,
    SqlQuery: for<'a> LoadQuery<'a, C, UserRow>
        + for<'a> LoadQuery<'a, C, RoomRow>
        + for<'a> LoadQuery<'a, C, MemberRow>
        + for<'a> LoadQuery<'a, C, MessageRow>,
{
    conn.transaction(|conn| {
        Ok(Tables {
            users: diesel::sql_query(USERS).load(conn)?,
            rooms: diesel::sql_query(ROOMS).load(conn)?,
            members: diesel::sql_query(MEMBERS).load(conn)?,
            messages: diesel::sql_query(MESSAGES).load(conn)?,
        })
    })
}

/// Reads the conversate database at `url`; uploaded files are looked up under `store` (its
/// `CONVERSATE_STORE_ROOT`, or `MEDIA_ROOT`).
pub fn read(url: &str, store: Option<&Path>) -> Result<History, ReadError> {
    let parsed = DatabaseUrl::parse(url).map_err(|e| ReadError::new("the database address", e))?;
    let shown = parsed.display();
    let unreadable = |e: diesel::result::Error| {
        ReadError::new(
            &shown,
            format!("cannot read django-conversate's tables ({e}); is this its database?"),
        )
    };
    let tables = match &parsed {
        DatabaseUrl::Postgres(url) => {
            let mut conn = PgConnection::establish(url)
                .map_err(|e| ReadError::new(&shown, format!("cannot connect ({e})")))?;
            // One snapshot of all four tables, even while conversate is still running.
            conn.batch_execute(
                "SET default_transaction_read_only = on; \
                 SET default_transaction_isolation = 'repeatable read'",
            )
            .map_err(unreadable)?;
            tables(&mut conn).map_err(unreadable)?
        }
        DatabaseUrl::Sqlite(path) => {
            if !path.is_file() {
                return Err(ReadError::new(&shown, "no such file"));
            }
            let uri = format!("file:{}?mode=ro", path.display());
            let mut conn = SqliteConnection::establish(&uri)
                .map_err(|e| ReadError::new(&shown, format!("cannot open ({e})")))?;
            tables(&mut conn).map_err(unreadable)?
        }
    };
    // Known by its first account, room and message: the same wherever the database is moved,
    // different for another installation.
    let first_user = tables
        .users
        .first()
        .map(|u| format!("{}:{}", u.id, u.username));
    let first_room = tables.rooms.first().map(|r| format!("{}:{}", r.id, r.slug));
    let first_message = tables
        .messages
        .iter()
        .min_by_key(|m| m.id)
        .map(|m| format!("{}:{}", m.id, m.timestamp));
    let name = super::fingerprint(&[
        first_user.as_deref().unwrap_or(""),
        first_room.as_deref().unwrap_or(""),
        first_message.as_deref().unwrap_or(""),
    ]);
    Ok(history(tables, &name, store))
}

fn history(tables: Tables, name: &str, store: Option<&Path>) -> History {
    let mut history = History {
        source: format!("conversate:{name}"),
        ..History::default()
    };
    history.people = tables
        .users
        .iter()
        .map(|u| Person {
            key: u.id.to_string(),
            username: u.username.clone(),
            email: Some(u.email.clone()).filter(|e| !e.is_empty()),
        })
        .collect();
    let mut members: HashMap<i64, Vec<String>> = HashMap::new();
    for m in &tables.members {
        let list = members.entry(m.room_id).or_default();
        let key = m.user_id.to_string();
        if !list.contains(&key) {
            list.push(key);
        }
    }
    let mut posts: HashMap<i64, Vec<Post>> = HashMap::new();
    for m in tables.messages {
        let Some(at) = chrono::DateTime::from_timestamp(m.timestamp, 0)
            .map(|t| t.naive_utc())
            .filter(|at| super::plausible(*at))
        else {
            history.skipped.add("messages with an impossible time");
            continue;
        };
        let file = m.file.filter(|f| !f.is_empty()).map(|stored| FileRef {
            name: stored.rsplit('/').next().unwrap_or(&stored).to_string(),
            path: store.and_then(|root| within(root, &stored)),
        });
        if m.content.trim().is_empty() && file.is_none() {
            history.skipped.add("empty messages");
            continue;
        }
        posts.entry(m.room_id).or_default().push(Post {
            key: m.id.to_string(),
            author: m.user_id.to_string(),
            at,
            body: m.content,
            edited_at: None,
            deleted: false,
            thread: None,
            reactions: Vec::new(),
            file,
        });
    }
    history.rooms = tables
        .rooms
        .into_iter()
        .map(|r| RoomHistory {
            key: r.id.to_string(),
            slug: r.slug,
            name: r.title,
            description: String::new(),
            // A conversate room is for its members only.
            private: true,
            direct: false,
            archived_at: None,
            members: members.remove(&r.id).unwrap_or_default(),
            posts: posts.remove(&r.id).unwrap_or_default(),
        })
        .collect();
    for orphans in posts.into_values() {
        for _ in orphans {
            history
                .skipped
                .add("messages of rooms that no longer exist");
        }
    }
    history
}

/// The file `stored` (a path relative to the store root) when it is really under `root`.
fn within(root: &Path, stored: &str) -> Option<std::path::PathBuf> {
    let relative = Path::new(stored);
    let plain = relative
        .components()
        .all(|c| matches!(c, std::path::Component::Normal(_)));
    let path = root.join(relative);
    (plain && path.is_file()).then_some(path)
}
