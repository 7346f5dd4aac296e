//! Left-over temporary uploads: an upload interrupted by a crash or a lost connection leaves a file in
//! `tmp/`. One whose row committed is moved into place; any other is removed.

use std::time::Duration;

use crate::chat::attachments;
use crate::db::Db;
use crate::error::{Error, Result};
use crate::files::FileStore;

/// Sweeps temporary files untouched for `stale_after`; returns how many it handled.
pub async fn left_over_uploads(db: &Db, store: &FileStore, stale_after: Duration) -> Result<usize> {
    let scan = store.clone();
    let stale = tokio::task::spawn_blocking(move || scan.stale_temp_files(stale_after))
        .await
        .map_err(|e| Error::Internal(e.to_string()))?
        .map_err(|e| Error::Internal(format!("reading the uploads folder: {e}")))?;
    let count = stale.len();
    for (path, stored_name) in stale {
        let committed = match stored_name.clone() {
            Some(name) => {
                db.run(move |conn| attachments::is_stored(conn, &name))
                    .await?
            }
            None => false,
        };
        let done = match (committed, stored_name) {
            (true, Some(name)) => store.finish(&name).await,
            _ => tokio::fs::remove_file(&path).await,
        };
        if let Err(e) = done {
            log::warn!("sweeping {}: {e}", path.display());
        }
    }
    Ok(count)
}
