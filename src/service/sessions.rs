//! Sessions: logging in (with the failed-login limits), checking a session (from a short-lived
//! cache, so that most requests and every poll need no query), logging out and ending sessions.
//! Every change to sessions or accounts forgets the cached checks of the user it touched.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use chrono::Duration;

use super::{blocking, Services};
use crate::chat::users::{self, User};
use crate::chat::{self, logins, sessions};
use crate::error::{Error, Result};

/// A checked session: its user, its id, and when it was checked.
type Checked = (Arc<User>, i64, Instant);

/// Recent session checks by token. Revoking a session through this instance forgets it at once;
/// another instance notices within the cache's lifetime.
pub struct SessionCache {
    entries: Mutex<HashMap<String, Checked>>,
    ttl: std::time::Duration,
}

impl SessionCache {
    /// A cache whose entries live for `ttl`.
    pub fn new(ttl: std::time::Duration) -> SessionCache {
        SessionCache {
            entries: Mutex::default(),
            ttl,
        }
    }

    fn entries(&self) -> MutexGuard<'_, HashMap<String, Checked>> {
        self.entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn get(&self, token: &str) -> Option<(Arc<User>, i64)> {
        self.entries()
            .get(token)
            .filter(|(_, _, at)| at.elapsed() < self.ttl)
            .map(|(user, session_id, _)| (Arc::clone(user), *session_id))
    }

    fn put(&self, token: String, user: Arc<User>, session_id: i64) {
        let mut entries = self.entries();
        if entries.len() > 10_000 {
            entries.retain(|_, (_, _, at)| at.elapsed() < self.ttl);
        }
        entries.insert(token, (user, session_id, Instant::now()));
    }

    /// Forgets every cached session of a user (after a revocation or a change to their account).
    pub fn forget_user(&self, user_id: i64) {
        self.entries().retain(|_, (user, _, _)| user.id != user_id);
    }
}

/// The user and session id a session token stands for, if it is valid. The account is shared with
/// the cache, so that a request holds no copy of its own.
pub async fn check(svc: &Services, token: String) -> Result<Option<(Arc<User>, i64)>> {
    if let Some(found) = svc.sessions.get(&token) {
        return Ok(Some(found));
    }
    let max_idle = Duration::days(svc.settings.login.session_days);
    let lookup = token.clone();
    let found = svc
        .db
        .run(move |conn| sessions::authenticate(conn, &lookup, chat::now(), max_idle))
        .await?
        .map(|(session, user)| (Arc::new(user), session.id));
    if let Some((user, session_id)) = &found {
        svc.sessions.put(token, Arc::clone(user), *session_id);
    }
    Ok(found)
}

/// A login form as it arrived.
pub struct Attempt<'a> {
    /// The name typed.
    pub username: &'a str,
    /// The password typed.
    pub password: &'a str,
    /// Where it came from (see `web::ClientAddress`).
    pub address: &'a str,
    /// The browser's name for itself.
    pub user_agent: &'a str,
}

/// How a login went, when it was not refused outright.
pub enum LoggedIn {
    /// A new session, by its token.
    Session(String),
    /// The name or the password is wrong (the answer never says which).
    Wrong,
    /// The right password for a deactivated account.
    Deactivated,
}

/// Logs in. Every attempt is counted before the password is checked, in one statement per
/// counter, so that guesses sent in parallel cannot slip past the limit; counted per name tried
/// (whether or not it exists) and client address, and per address alone, so that a guesser locks
/// out only themselves. Over a limit the answer is [`Error::TooManyRequests`]; each failure
/// beyond the second for a name is answered more slowly.
pub async fn log_in(svc: &Services, attempt: Attempt<'_>) -> Result<LoggedIn> {
    let limits = svc.settings.login.clone();
    let now = chat::now();
    let name = attempt.username.to_string();
    let user = svc
        .db
        .run(move |conn| users::find_by_username(conn, &name))
        .await?;
    let window_start = now - Duration::seconds(limits.lockout_secs);
    let (name, from) = (attempt.username.to_string(), attempt.address.to_string());
    let address_limit = limits.max_failures_per_address;
    let counted = svc
        .db
        .write(move |conn| {
            logins::count_attempt(conn, &name, &from, now, window_start, address_limit)
        })
        .await?;
    let lockout = Duration::seconds(limits.lockout_secs);
    // The window that is over its limit says how long to wait.
    let refused = |counted: &logins::Counted, at_limit: bool| {
        let over = |n: i32, limit: i32| if at_limit { n >= limit } else { n > limit };
        let started = if over(counted.for_address, address_limit) {
            Some(counted.address_started)
        } else if over(counted.for_name, limits.max_failures) {
            Some(counted.name_started)
        } else {
            None
        };
        started.map(|started| Error::TooManyRequests {
            retry_after_secs: (started + lockout - now).num_seconds().max(1),
        })
    };
    if let Some(refusal) = refused(&counted, false) {
        return Err(refusal);
    }
    let hash = user.as_ref().and_then(|u| u.password_hash.clone());
    let password = attempt.password.to_string();
    let matches = blocking(move || Ok(users::verify_password(hash.as_deref(), &password))).await?;
    match user {
        Some(user) if matches && user.is_active => {
            let (name, from) = (attempt.username.to_string(), attempt.address.to_string());
            let agent = attempt.user_agent.to_string();
            let token = svc
                .db
                .write(move |conn| {
                    logins::succeeded(conn, &name, &from)?;
                    sessions::create(conn, user.id, &agent, now)
                })
                .await?;
            Ok(LoggedIn::Session(token))
        }
        // A right password for a deactivated account says so; anything else is one message.
        Some(_) if matches => Ok(LoggedIn::Deactivated),
        _ => {
            // Slower with each failure for this name, from here or from anywhere.
            let steps = (counted.for_name - 2)
                .max(counted.for_name_anywhere - limits.max_failures)
                .max(0);
            if steps > 0 {
                let delay = limits.slowdown_ms * steps as u64;
                tokio::time::sleep(std::time::Duration::from_millis(delay.min(5_000))).await;
            }
            match refused(&counted, true) {
                Some(refusal) => Err(refusal),
                None => Ok(LoggedIn::Wrong),
            }
        }
    }
}

/// Ends the session of `token` (logging out), and forgets `user_id`'s cached checks.
pub async fn log_out(svc: &Services, token: Option<String>, user_id: Option<i64>) -> Result<()> {
    if let Some(user_id) = user_id {
        svc.sessions.forget_user(user_id);
    }
    if let Some(token) = token {
        svc.db
            .write(move |conn| sessions::end(conn, &token))
            .await?;
    }
    Ok(())
}

/// Ends one of `uid`'s own sessions.
pub async fn revoke(svc: &Services, uid: i64, session_id: i64) -> Result<()> {
    svc.db
        .write(move |conn| sessions::revoke(conn, uid, session_id))
        .await?;
    svc.sessions.forget_user(uid);
    Ok(())
}

/// Ends every session of user `user_id` but `keep`; returns the user and how many ended.
pub async fn end_all(svc: &Services, user_id: i64, keep: Option<i64>) -> Result<(User, usize)> {
    let ended = svc
        .db
        .write(move |conn| {
            let user = users::find(conn, user_id)?;
            let n = sessions::revoke_all(conn, user.id, keep)?;
            Ok::<_, Error>((user, n))
        })
        .await;
    svc.sessions.forget_user(user_id);
    ended
}
