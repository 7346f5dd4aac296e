//! Several instances on one PostgreSQL: each listens for the others' changes (`LISTEN`), fed by
//! triggers on `rooms.cursor` and `memberships`, and moves its in-memory rooms forward, so a post
//! on one instance wakes the held polls on all of them.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::{Connection, PgConnection};

use crate::chat::rooms;
use crate::db::AnyConnection;
use crate::live::Live;

/// Stops the listener when the app it belongs to is dropped or shut down.
#[derive(Debug, Default)]
pub struct Stop(pub Arc<AtomicBool>);

impl Drop for Stop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// How often pending notifications are read from the socket.
const EVERY: Duration = Duration::from_millis(25);

/// Starts the listener on its own thread and connection; it ends when `stop` is set.
pub fn start(url: String, live: Live, stop: Arc<AtomicBool>) {
    let spawned = std::thread::Builder::new()
        .name("confab-listen".into())
        .spawn(move || {
            let mut backoff = Duration::from_millis(200);
            while !stop.load(Ordering::Relaxed) {
                match listen(&url, &live, &stop) {
                    Ok(()) => return,
                    Err(e) => {
                        log::warn!("listening for other instances' changes: {e}; retrying");
                        std::thread::sleep(backoff);
                        backoff = (backoff * 2).min(Duration::from_secs(10));
                    }
                }
            }
        });
    if let Err(e) = spawned {
        log::error!("cannot start the listener thread: {e}");
    }
}

fn listen(url: &str, live: &Live, stop: &AtomicBool) -> Result<(), String> {
    let pg = PgConnection::establish(url).map_err(|e| e.to_string())?;
    let mut conn = AnyConnection::Postgresql(pg);
    conn.batch_execute(
        "SET application_name = 'confab-listen'; LISTEN confab_rooms; LISTEN confab_members",
    )
    .map_err(|e| e.to_string())?;
    // What changed while this instance was not listening (a restart of PostgreSQL, a dropped
    // connection) went unheard: every room's cursor is read again, and its members on next use.
    let cursors = rooms::cursors(&mut conn).map_err(|e| e.detail())?;
    live.forget_all();
    for (room, cursor) in cursors {
        live.advance(room, cursor);
    }
    let AnyConnection::Postgresql(conn) = &mut conn else {
        return Err("the listener needs PostgreSQL".into());
    };
    while !stop.load(Ordering::Relaxed) {
        for notification in conn.notifications_iter() {
            let notification = notification.map_err(|e| e.to_string())?;
            apply(live, &notification.channel, &notification.payload);
        }
        std::thread::sleep(EVERY);
    }
    Ok(())
}

fn apply(live: &Live, channel: &str, payload: &str) {
    match channel {
        "confab_rooms" => {
            if let Some((room, cursor)) = payload.split_once(':') {
                if let (Ok(room), Ok(cursor)) = (room.parse(), cursor.parse()) {
                    live.advance(room, cursor);
                }
            }
        }
        "confab_members" => {
            if let Ok(room) = payload.parse() {
                live.forget(room);
            }
        }
        _ => {}
    }
}

/// How often a SQLite instance looks for changes written by other processes.
pub const SQLITE_WATCH_EVERY: Duration = Duration::from_secs(1);

/// On SQLite (one instance, but operator commands such as `confab import` write from processes of
/// their own): reads every room's cursor once a `every` and moves the in-memory rooms forward, so
/// open pages see those changes too. Polls themselves still cost no query.
pub fn watch_sqlite(
    db: crate::db::Db,
    live: Live,
    every: Duration,
    mut shutdown: rocket::Shutdown,
) {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(every);
        loop {
            tokio::select! {
                _ = ticks.tick() => {}
                _ = &mut shutdown => break,
            }
            match db.run(crate::chat::rooms::cursors).await {
                Ok(cursors) => {
                    for (room, cursor) in cursors {
                        live.advance(room, cursor);
                    }
                }
                Err(e) => log::debug!("reading room cursors: {}", e.detail()),
            }
        }
    });
}
