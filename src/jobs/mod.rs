//! Background tasks, started at liftoff and ended with the server.

pub mod alerts;
pub mod listen;
pub mod presence;
pub mod sweep;

use std::time::Duration;

use rocket::fairing::AdHoc;

use crate::db::Db;
use crate::files::FileStore;
use crate::live::Live;
use crate::settings::Settings;

/// Starts the background tasks once Rocket is up.
pub fn stage() -> AdHoc {
    AdHoc::on_liftoff("Background jobs", |rocket| {
        Box::pin(async move {
            let (Some(db), Some(store), Some(settings)) = (
                rocket.state::<Db>(),
                rocket.state::<FileStore>(),
                rocket.state::<Settings>(),
            ) else {
                return;
            };
            let (Some(live), flush_every) = (
                rocket.state::<Live>(),
                Duration::from_secs(settings.presence_flush_secs),
            ) else {
                return;
            };
            presence::start(db.clone(), live.clone(), flush_every, rocket.shutdown());
            if let (crate::db::DatabaseUrl::Postgres(url), Some(listen::Stop(stop))) =
                (&settings.database_url, rocket.state::<listen::Stop>())
            {
                let stop = stop.clone();
                listen::start(url.clone(), live.clone(), stop.clone());
                let shutdown = rocket.shutdown();
                tokio::spawn(async move {
                    shutdown.await;
                    stop.store(true, std::sync::atomic::Ordering::Relaxed);
                });
            }
            if let Some(mail) = rocket.state::<std::sync::Arc<crate::mail::Mail>>() {
                alerts::start(
                    db.clone(),
                    mail.clone(),
                    settings.clone(),
                    rocket.shutdown(),
                );
            }
            // Tests drive the sweep and pruning by hand, so that neither races their own rows.
            if !settings.jobs_enabled {
                return;
            }
            if let crate::db::DatabaseUrl::Sqlite(_) = &settings.database_url {
                listen::watch_sqlite(
                    db.clone(),
                    live.clone(),
                    listen::SQLITE_WATCH_EVERY,
                    rocket.shutdown(),
                );
            }
            let (db, store, settings) = (db.clone(), store.clone(), settings.clone());
            let stale_after = Duration::from_secs(settings.uploads.stale_secs);
            let every = Duration::from_secs(settings.uploads.sweep_interval_secs);
            let mut shutdown = rocket.shutdown();
            tokio::spawn(async move {
                let mut ticks = tokio::time::interval(every);
                loop {
                    tokio::select! {
                        _ = ticks.tick() => {
                            if let Err(e) = sweep::left_over_uploads(&db, &store, stale_after).await {
                                log::warn!("sweeping left-over uploads: {e}");
                            }
                            if let Err(e) = sweep::prune(&db, &settings, crate::chat::now()).await {
                                log::warn!("pruning old rows: {e}");
                            }
                        }
                        _ = &mut shutdown => break,
                    }
                }
            });
        })
    })
}
