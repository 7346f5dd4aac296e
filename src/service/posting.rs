//! Group commit for posts: the posts that reach one room while an earlier write to it is under way
//! are written together, in one transaction that moves the room's cursor once for all of them and
//! commits once. A busy room's posters then wait for at most the write in progress and their own,
//! not for one commit per post ahead of them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

use super::Services;
use crate::chat;
use crate::chat::messages::{self, NewPost, NotPosted, Stored};
use crate::db::DbUnavailable;
use crate::error::Error;

/// The most posts written in one transaction.
const BATCH_MAX: usize = 64;

/// What one post's writer answers.
type Outcome = std::result::Result<Stored, NotPosted>;

/// A post as queued: who writes what, with the form's one-time token.
struct Queued {
    author_id: i64,
    body: String,
    client_id: Option<String>,
}

impl Queued {
    fn new_post(&self) -> NewPost<'_> {
        NewPost {
            author_id: self.author_id,
            body: &self.body,
            client_id: self.client_id.as_deref(),
        }
    }
}

/// A post waiting for its room's next write, and where its outcome goes.
struct Waiting {
    post: Queued,
    answer: oneshot::Sender<Outcome>,
}

/// The posts waiting to be written, by room. A room is in the map while a writer task drains it.
#[derive(Default)]
pub struct PostQueue {
    rooms: Mutex<HashMap<String, Vec<Waiting>>>,
}

impl PostQueue {
    /// Queues a post (body validated, not a reply) by member `author_id` to room `slug`, starting
    /// the room's writer if none is running, and waits for its outcome. The write goes on if the
    /// caller stops waiting.
    pub async fn post(
        &self,
        svc: &Services,
        slug: &str,
        author_id: i64,
        body: String,
        client_id: Option<String>,
    ) -> Outcome {
        let (answer, outcome) = oneshot::channel();
        let waiting = Waiting {
            post: Queued {
                author_id,
                body,
                client_id,
            },
            answer,
        };
        let start = {
            let mut rooms = self.lock();
            match rooms.get_mut(slug) {
                Some(queue) => {
                    queue.push(waiting);
                    false
                }
                None => {
                    rooms.insert(slug.to_string(), vec![waiting]);
                    true
                }
            }
        };
        if start {
            tokio::spawn(drain(svc.clone(), slug.to_string()));
        }
        outcome.await.unwrap_or_else(|_| {
            Err(Error::internal("posting", "the room's writer stopped before answering").into())
        })
    }

    /// The next posts to write to room `slug`; none (and the room is left) when it has no more.
    fn next(&self, slug: &str) -> Vec<Waiting> {
        let mut rooms = self.lock();
        let Some(queue) = rooms.get_mut(slug) else {
            return Vec::new();
        };
        if queue.is_empty() {
            rooms.remove(slug);
            return Vec::new();
        }
        let take = queue.len().min(BATCH_MAX);
        queue.drain(..take).collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Vec<Waiting>>> {
        // The map stays consistent if a holder panicked: every change to it is one call.
        self.rooms
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Writes room `slug`'s queued posts, a batch at a time, until none are left.
async fn drain(svc: Services, slug: String) {
    let _leaves = Leaves {
        queue: &svc.posting,
        slug: &slug,
    };
    loop {
        let batch = svc.posting.next(&slug);
        if batch.is_empty() {
            return;
        }
        write(&svc, &slug, batch).await;
    }
}

/// Takes a room's writer out of the queue if it panics, answering (with an error) the posts that
/// were waiting for it, so that the next post starts a new writer instead of waiting forever.
struct Leaves<'a> {
    queue: &'a PostQueue,
    slug: &'a str,
}

impl Drop for Leaves<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.queue.lock().remove(self.slug);
        }
    }
}

/// Writes one batch and answers each poster. When the batch cannot be written as one (an author is
/// not a member, the room is archived or gone, a form was used in another room, a statement
/// failed), nothing of it is kept and each post is written alone, so that each poster gets their
/// own answer and one bad post cannot fail the others; only a database that does not answer fails
/// them all at once.
async fn write(svc: &Services, slug: &str, batch: Vec<Waiting>) {
    let (posts, answers): (Vec<Queued>, Vec<_>) =
        batch.into_iter().map(|w| (w.post, w.answer)).unzip();
    let posts = Arc::new(posts);
    let (shared, room) = (Arc::clone(&posts), slug.to_string());
    let written = svc
        .db
        .write(move |conn| {
            let batch: Vec<NewPost<'_>> = shared.iter().map(Queued::new_post).collect();
            match messages::post_many(conn, &room, &batch, chat::now()) {
                Ok(Some(batch)) if batch.outcomes.iter().all(Result::is_err) => {
                    Err(Undone::NothingNew(batch.outcomes))
                }
                Ok(written) => Ok(written),
                Err(e) => Err(Undone::Failed(e)),
            }
        })
        .await;
    match written {
        Err(Undone::NothingNew(outcomes)) => {
            for (answer, outcome) in answers.into_iter().zip(outcomes) {
                let _ = answer.send(outcome);
            }
        }
        Ok(Some(batch)) => {
            svc.live.advance(batch.room_id, batch.cursor);
            for (answer, outcome) in answers.into_iter().zip(batch.outcomes) {
                // A poster who stopped waiting has nobody to answer; the post stays.
                let _ = answer.send(outcome);
            }
        }
        Err(Undone::Failed(e @ Error::Unavailable(_))) => {
            for answer in answers {
                let _ = answer.send(Err(e.again().into()));
            }
        }
        Ok(None) | Err(Undone::Failed(_)) => {
            for (at, answer) in answers.into_iter().enumerate() {
                let _ = answer.send(alone(svc, slug, Arc::clone(&posts), at).await);
            }
        }
    }
}

/// Why a batch's transaction was rolled back.
enum Undone {
    /// Every post was a form sent before: there is nothing new, so the room's cursor and last
    /// activity stay where they were. The answers (the messages the first sends stored) stand.
    NothingNew(Vec<Outcome>),
    /// The batch failed.
    Failed(Error),
}

impl From<DbUnavailable> for Undone {
    fn from(e: DbUnavailable) -> Undone {
        Undone::Failed(e.into())
    }
}

impl From<diesel::result::Error> for Undone {
    fn from(e: diesel::result::Error) -> Undone {
        Undone::Failed(e.into())
    }
}

/// Writes post `at` of `posts` in a transaction of its own.
async fn alone(svc: &Services, slug: &str, posts: Arc<Vec<Queued>>, at: usize) -> Outcome {
    let room = slug.to_string();
    let outcome = svc
        .db
        .write(move |conn| {
            let post = &posts[at];
            messages::post(
                conn,
                &room,
                post.author_id,
                &post.body,
                post.client_id.as_deref(),
                None,
                chat::now(),
            )
        })
        .await;
    if let Ok(stored) = &outcome {
        svc.live.advance(stored.room_id, stored.cursor);
    }
    outcome
}
