//! Writes who was seen, and when they were last active, to the database in batches rather than on
//! every poll, and the read markers that pages and polls moved (see [`Live::read`]) every second. The last
//! batches are written at shutdown. Rooms whose change of presence waited (see [`Live::seen`]) are
//! woken here too.

use std::time::Duration;

use rocket::Shutdown;

use crate::chat::{rooms, users};
use crate::db::Db;
use crate::live::{Live, PRESENCE_WAKE_EVERY};

/// Starts the batch writers, and the wake-ups of rooms whose change of presence waited.
pub fn start(db: Db, live: Live, every: Duration, mut shutdown: Shutdown) {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(every);
        let mut wakes = tokio::time::interval(PRESENCE_WAKE_EVERY);
        ticks.tick().await;
        loop {
            let stopping = tokio::select! {
                _ = wakes.tick() => {
                    live.wake_presence();
                    flush_reads(&db, &live).await;
                    continue;
                }
                _ = ticks.tick() => false,
                _ = &mut shutdown => true,
            };
            flush(&db, &live).await;
            if stopping {
                flush_reads(&db, &live).await;
                break;
            }
        }
    });
}

/// Writes everything seen since the last batch.
pub async fn flush(db: &Db, live: &Live) {
    let seen = live.take_unsaved();
    if seen.is_empty() {
        return;
    }
    if let Err(e) = db
        .write(move |conn| users::record_presence(conn, &seen))
        .await
    {
        log::warn!("writing presence: {e}");
    }
}

/// Writes the read markers that pages and polls moved since the last batch. They count in memory
/// until written; if the database cannot take them, they wait for the next batch.
pub async fn flush_reads(db: &Db, live: &Live) {
    let reads = live.unsaved_reads();
    if reads.is_empty() {
        return;
    }
    let batch = reads.clone();
    let written = db
        .write(move |conn| rooms::mark_read_many(conn, &batch))
        .await;
    match written {
        Ok(()) => live.saved_reads(&reads),
        Err(e) => log::warn!("writing read markers: {e}"),
    }
}
