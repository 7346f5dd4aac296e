//! Writes who was seen, and when they were last active, to the database in batches rather than on
//! every poll. The last batch is written at shutdown.

use std::time::Duration;

use rocket::Shutdown;

use crate::chat::users;
use crate::db::Db;
use crate::live::Live;

/// Starts the batch writer.
pub fn start(db: Db, live: Live, every: Duration, mut shutdown: Shutdown) {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(every);
        ticks.tick().await;
        loop {
            let stopping = tokio::select! {
                _ = ticks.tick() => false,
                _ = &mut shutdown => true,
            };
            flush(&db, &live).await;
            if stopping {
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
