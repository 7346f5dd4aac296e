//! Application services: one module per family of use cases, between the web (and the CLI) and the
//! domain. A service function owns its transaction and the side effects that must follow a commit
//! (waking the room's pollers, removing files, queueing mail), so a caller cannot forget one.
//! Handlers parse and authorise, call one service function, and render.

pub mod accounts;
pub mod avatars;
pub mod imports;
pub mod limits;
pub mod messages;
pub mod posting;
pub mod reading;
pub mod replies;
pub mod rooms;
pub mod sessions;
pub mod shared;
pub mod unread;
pub mod uploads;

use std::sync::Arc;

use crate::db::Db;
use crate::error::{Error, Result};
use crate::files::FileStore;
use crate::live::Live;
use crate::mail::Mail;
use crate::settings::Settings;
use limits::PostLimits;

/// What the use cases work with, shared by every request, job and command.
#[derive(Clone)]
pub struct Services {
    /// The database.
    pub db: Db,
    /// Room heads, held polls and presence.
    pub live: Live,
    /// Uploaded files.
    pub store: FileStore,
    /// Mail rendering and delivery.
    pub mail: Arc<Mail>,
    /// How fast each member may post.
    pub post_limits: Arc<PostLimits>,
    /// Recent session checks.
    pub sessions: Arc<sessions::SessionCache>,
    /// Poll answers' reads, shared by the members one change wakes.
    pub changes: Arc<shared::SharedChanges>,
    /// Room pages' reads of history, shared by the members who open a page at the same cursor.
    pub pages: Arc<shared::SharedPages>,
    /// Members' unread counts per room, until the room or their marker moves.
    pub unread: Arc<unread::UnreadCounts>,
    /// Posts waiting to be written together, by room.
    pub posting: Arc<posting::PostQueue>,
    /// The settings.
    pub settings: Arc<Settings>,
}

impl Services {
    /// The services over these parts, with the posting limits and session cache the settings ask for.
    pub fn new(
        settings: &Settings,
        db: Db,
        live: Live,
        store: FileStore,
        mail: Arc<Mail>,
    ) -> Services {
        Services {
            db,
            live,
            store,
            mail,
            post_limits: Arc::new(PostLimits::new(
                settings.post_burst,
                settings.post_per_minute,
            )),
            sessions: Arc::new(sessions::SessionCache::new(std::time::Duration::from_secs(
                settings.login.session_cache_secs,
            ))),
            changes: Arc::default(),
            pages: Arc::default(),
            unread: Arc::default(),
            posting: Arc::default(),
            settings: Arc::new(settings.clone()),
        }
    }
}

impl Services {
    /// Forgets the shared reads of room `room_id`, or of every room: something they hold changed
    /// without a room's cursor moving (a saved mark, a picture). Other instances share a read for
    /// a moment at most ([`shared`]).
    pub fn forget_reads(&self, room_id: Option<i64>) {
        let of_room = |room: i64| room_id.is_none_or(|id| id == room);
        self.changes.forget_if(|key| of_room(key.room_id));
        self.pages.forget_if(|key| of_room(key.room_id));
    }
}

/// Runs CPU-heavy work (password hashing, thumbnails) on the blocking pool, at most one job per
/// core at a time, so that a flood of logins or images cannot exhaust memory.
pub async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    static CPU: std::sync::OnceLock<tokio::sync::Semaphore> = std::sync::OnceLock::new();
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let permit = CPU
        .get_or_init(|| tokio::sync::Semaphore::new(cores))
        .acquire()
        .await
        .map_err(|e| Error::internal("waiting for a CPU slot", e))?;
    let result = tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::internal("a CPU task", e))?;
    drop(permit);
    result
}
