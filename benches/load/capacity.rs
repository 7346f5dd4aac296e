//! Capacity in members: `--only capacity [--members N …]` simulates real members for
//! [`SECONDS`]. Each one holds an events poll with `wait` as the page does (on the latest page, so
//! that an active member's answers mark what they carry read) and polls again at once when
//! answered. Members post every [`POST_EVERY`] and load their room's page every
//! [`PAGE_EVERY`] on average, in rooms of 10, 25 and 50 members, and change state (active, idle,
//! hidden) as readers do. The scenario reports delivery (post sent to a member's poll answered
//! with it), errors, CPU and memory for each N.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hyper::{Method, StatusCode};

use super::{exec, percentile, postgres_cpu_ms, process_cpu_ms, rss_kib, Server, Session};
use confab::db::{self, DatabaseUrl};

/// How long each size is measured, after every member holds a poll.
const SECONDS: u64 = 60;
/// A member posts this often on average.
const POST_EVERY: Duration = Duration::from_secs(180);
/// A member loads their room's page this often on average.
const PAGE_EVERY: Duration = Duration::from_secs(600);
/// A member changes state (active, idle, hidden) this often.
const STATE_EVERY: Duration = Duration::from_secs(120);
/// Members opening their first page at once, while they arrive.
const RAMP_PAGES: usize = 32;
/// Room sizes, in turn.
const ROOM_SIZES: [usize; 3] = [10, 25, 50];

/// Removes the members, rooms, sessions and messages [`seed`] made.
fn remove(conn: &mut db::AnyConnection) {
    exec(conn, "BEGIN");
    for table in ["messages", "memberships"] {
        exec(conn, &format!("DELETE FROM {table} WHERE room_id IN (SELECT id FROM rooms WHERE slug LIKE 'cap-r%')"));
    }
    exec(conn, "DELETE FROM rooms WHERE slug LIKE 'cap-r%'");
    exec(
        conn,
        "DELETE FROM sessions WHERE user_id IN (SELECT id FROM users WHERE username LIKE 'cap%')",
    );
    exec(conn, "DELETE FROM users WHERE username LIKE 'cap%'");
    exec(conn, "COMMIT");
}

/// Leaves the database as the other scenarios seeded it: the members and rooms of [`seed`]
/// would otherwise weigh on every later run (hundreds of open rooms beside each page). On
/// PostgreSQL the tables are vacuumed as autovacuum would (a machine may run it off), so that no
/// later scan reads the removed rows.
pub fn unseed(url: &DatabaseUrl) {
    let mut conn = db::connect(url).expect("connect");
    remove(&mut conn);
    if matches!(url, DatabaseUrl::Postgres(_)) {
        exec(
            &mut conn,
            "VACUUM ANALYZE users, rooms, memberships, sessions, messages",
        );
    }
}

/// The room of member `m` (0-based) and the rooms' sizes, for `members` members.
fn rooms_of(members: usize) -> (Vec<usize>, usize) {
    let mut room_of = Vec::with_capacity(members);
    let (mut room, mut left, mut sizes) = (0, ROOM_SIZES[0], 0);
    for _ in 0..members {
        if left == 0 {
            room += 1;
            sizes += 1;
            left = ROOM_SIZES[sizes % ROOM_SIZES.len()];
        }
        room_of.push(room);
        left -= 1;
    }
    (room_of, room + 1)
}

/// Adds `members` members `cap0…` and their rooms `cap-r0…` unless they are there (fewer are
/// removed first). Their password hash has argon2's smallest cost (it carries its parameters), so
/// that thousands can log in.
pub fn seed(url: &DatabaseUrl, members: usize) {
    use argon2::password_hash::{rand_core::OsRng, PasswordHasher, SaltString};
    use diesel::prelude::*;
    let mut conn = db::connect(url).expect("connect");
    let existing: i64 = confab::db::schema::users::table
        .filter(confab::db::schema::users::username.like("cap%"))
        .count()
        .get_result(&mut conn)
        .expect("count");
    if existing as usize >= members {
        return;
    }
    // Fewer than asked for: seed them all again, so that the rooms keep their sizes.
    remove(&mut conn);
    let params = argon2::Params::new(8, 1, 1, None).expect("params");
    let hash = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
        .hash_password(
            super::PASSWORD.as_bytes(),
            &SaltString::generate(&mut OsRng),
        )
        .expect("hash")
        .to_string();
    let now = chrono::Utc::now().naive_utc().format("%Y-%m-%d %H:%M:%S");
    let (room_of, rooms) = rooms_of(members);
    exec(&mut conn, "BEGIN");
    for chunk in (0..members).collect::<Vec<_>>().chunks(1000) {
        let rows: Vec<String> = chunk
            .iter()
            .map(|m| {
                format!("('cap{m}', 'cap{m}@example.org', '{hash}', false, true, 'UTC', '{now}')")
            })
            .collect();
        exec(&mut conn, &format!("INSERT INTO users (username, email, password_hash, is_admin, is_active, time_zone, created_at) VALUES {}", rows.join(",")));
    }
    let rows: Vec<String> = (0..rooms)
        .map(|r| format!("('cap-r{r}', 'Capacity {r}', '', false, '{now}')"))
        .collect();
    for chunk in rows.chunks(1000) {
        exec(
            &mut conn,
            &format!(
                "INSERT INTO rooms (slug, name, description, is_private, created_at) VALUES {}",
                chunk.join(",")
            ),
        );
    }
    for chunk in (0..members).collect::<Vec<_>>().chunks(1000) {
        let rows: Vec<String> = chunk
            .iter()
            .map(|m| {
                format!(
                    "((SELECT id FROM rooms WHERE slug = 'cap-r{}'), (SELECT id FROM users WHERE username = 'cap{m}'), 0, '{now}')",
                    room_of[*m]
                )
            })
            .collect();
        exec(
            &mut conn,
            &format!(
                "INSERT INTO memberships (room_id, user_id, last_read_id, joined_at) VALUES {}",
                rows.join(",")
            ),
        );
    }
    exec(&mut conn, "COMMIT");
}

/// What one size measured.
pub struct Outcome {
    /// Members simulated.
    pub members: usize,
    /// Posts sent.
    pub posts: u64,
    /// Deliveries measured: a post seen by a member other than its author.
    pub deliveries: usize,
    /// Delivery p50 and p99.
    pub p50: Duration,
    /// See `p50`.
    pub p99: Duration,
    /// Requests that failed (a status other than 2xx/3xx, or no answer).
    pub errors: u64,
    /// The same, by what failed (`poll 503`, `post none`, …).
    pub error_kinds: std::collections::BTreeMap<String, u64>,
    /// CPU per second of the run, in ms: the server's, PostgreSQL's, and the members' (this
    /// process).
    pub cpu_ms: Cpu,
    /// The server's resident memory at the end.
    pub server_mib: u64,
    /// The members' (this process's) resident memory at the end.
    pub members_mib: u64,
}

/// CPU used, in ms per second of the run.
#[derive(Clone, Copy)]
pub struct Cpu {
    /// The `confab` process.
    pub server: f64,
    /// Every PostgreSQL process.
    pub postgres: f64,
    /// The simulated members.
    pub members: f64,
}

impl Cpu {
    fn now(server_pid: u32) -> Cpu {
        Cpu {
            server: process_cpu_ms(&server_pid.to_string()),
            postgres: postgres_cpu_ms(),
            members: process_cpu_ms("self"),
        }
    }

    fn per_second(self, before: Cpu, seconds: f64) -> Cpu {
        Cpu {
            server: (self.server - before.server) / seconds,
            postgres: (self.postgres - before.postgres) / seconds,
            members: (self.members - before.members) / seconds,
        }
    }
}

/// Runs `members` members for [`SECONDS`] against `server`, the `confab` process `pid`.
pub async fn run(server: &Arc<Server>, pid: u32, members: usize) -> Outcome {
    let (room_of, _) = rooms_of(members);
    // Log everyone in, 64 at a time.
    let mut sessions: Vec<Option<Session>> = vec![None; members];
    for chunk in (0..members).collect::<Vec<_>>().chunks(64) {
        let logins: Vec<_> = chunk
            .iter()
            .map(|&m| {
                let server = server.clone();
                tokio::spawn(async move { (m, server.login(&format!("cap{m}")).await) })
            })
            .collect();
        for login in logins {
            let (m, session) = login.await.expect("login");
            sessions[m] = Some(session);
        }
    }
    let sessions: Vec<Session> = sessions.into_iter().flatten().collect();
    let start = Instant::now();
    let errors = Arc::new(Errors::default());
    let latencies = Arc::new(Mutex::new(Vec::new()));
    let stop_at = Arc::new(Mutex::new(None::<Instant>));
    let holding = Arc::new(AtomicU64::new(0));
    // Every member: the page once (for its cursor), then a held poll, again and again. Members
    // arrive RAMP_PAGES at a time: all opening their page at one instant is not the steady state
    // measured, and queues pages past the pool's wait (503).
    let arriving = Arc::new(tokio::sync::Semaphore::new(RAMP_PAGES));
    let mut tasks = Vec::new();
    for m in 0..members {
        let (server, session) = (server.clone(), sessions[m].clone());
        let (errors, latencies, stop_at) = (errors.clone(), latencies.clone(), stop_at.clone());
        let (holding, arriving) = (holding.clone(), arriving.clone());
        let room = format!("cap-r{}", room_of[m]);
        tasks.push(tokio::spawn(async move {
            let me = format!("cap{m}");
            let arrived = arriving.acquire_owned().await;
            let first = server
                .try_request(Method::GET, &format!("/rooms/{room}"), Some(&session), None)
                .await;
            drop(arrived);
            let Some((status, _, page)) = first else {
                errors.add("page", None);
                return;
            };
            if !status.is_success() {
                errors.add("page", Some(status));
                return;
            }
            let mut cursor = page
                .split(r#"data-cursor=""#)
                .nth(1)
                .and_then(|r| r.split('"').next())
                .unwrap_or("0")
                .to_string();
            holding.fetch_add(1, Ordering::Relaxed);
            loop {
                if stop_at
                    .lock()
                    .ok()
                    .and_then(|s| *s)
                    .is_some_and(|s| Instant::now() >= s)
                {
                    return;
                }
                // Readers are mostly at the page; some are idle, some in a background tab. Each
                // changes state every [`STATE_EVERY`], at its own moment.
                let since = start.elapsed().as_secs() + (m as u64 * 7) % STATE_EVERY.as_secs();
                let state = match (m as u64 + since / STATE_EVERY.as_secs()) % 20 {
                    0..=15 => "active",
                    16..=18 => "idle",
                    _ => "hidden",
                };
                let path = format!(
                    "/api/rooms/{room}/events?after={cursor}&wait=25&state={state}&latest=true"
                );
                let Some((status, _, body)) = server
                    .try_request(Method::GET, &path, Some(&session), None)
                    .await
                else {
                    errors.add("poll", None);
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                };
                match status {
                    StatusCode::NO_CONTENT => {}
                    StatusCode::OK => {
                        let Ok(events) = serde_json::from_str::<serde_json::Value>(&body) else {
                            errors.add("poll answer", None);
                            continue;
                        };
                        if let Some(next) = events["cursor"].as_str() {
                            cursor = next.to_string();
                        }
                        let now = start.elapsed();
                        for message in events["messages"].as_array().into_iter().flatten() {
                            let html = message["html"].as_str().unwrap_or_default();
                            let sent = html
                                .split("sent-at-")
                                .nth(1)
                                .and_then(|r| r.split(|c: char| !c.is_ascii_digit()).next())
                                .and_then(|n| n.parse::<u64>().ok());
                            if let (Some(sent), false) = (sent, message["author"] == me.as_str()) {
                                if let Ok(mut l) = latencies.lock() {
                                    l.push(now.saturating_sub(Duration::from_micros(sent)));
                                }
                            }
                        }
                    }
                    other => {
                        errors.add("poll", Some(other));
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                }
            }
        }));
    }
    // Every member has loaded its page and holds its first poll before the measurement starts.
    let ramp = Instant::now();
    while holding.load(Ordering::Relaxed) < members as u64
        && ramp.elapsed() < Duration::from_secs(300)
    {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    eprintln!("capacity: {members} members hold a poll; measuring for {SECONDS} s");
    let (cpu_before, measured_from) = (Cpu::now(pid), Instant::now());
    let posts = Arc::new(AtomicU64::new(0));
    let posts_per_second = members as f64 / POST_EVERY.as_secs_f64();
    let pages_per_second = members as f64 / PAGE_EVERY.as_secs_f64();
    let (mut owed_posts, mut owed_pages, mut next) = (0.0, 0.0, 0usize);
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    while measured_from.elapsed() < Duration::from_secs(SECONDS) {
        tick.tick().await;
        owed_posts += posts_per_second * 0.02;
        owed_pages += pages_per_second * 0.02;
        while owed_posts >= 1.0 {
            owed_posts -= 1.0;
            // Members take turns, spread over the rooms.
            next = (next + 7919) % members;
            let (server, session, errors, posts) = (
                server.clone(),
                sessions[next].clone(),
                errors.clone(),
                posts.clone(),
            );
            let room = format!("cap-r{}", room_of[next]);
            let sent = start.elapsed().as_micros();
            tokio::spawn(async move {
                let n = posts.fetch_add(1, Ordering::Relaxed);
                let json =
                    format!(r#"{{"body":"sent-at-{sent} news","client_id":"cap-{n}-{sent}"}}"#);
                let answer = server
                    .try_request(
                        Method::POST,
                        &format!("/api/rooms/{room}/messages"),
                        Some(&session),
                        Some(("application/json", json)),
                    )
                    .await;
                match answer {
                    Some((status, _, _)) if status.is_success() => {}
                    Some((status, _, _)) => errors.add("post", Some(status)),
                    None => errors.add("post", None),
                }
            });
        }
        while owed_pages >= 1.0 {
            owed_pages -= 1.0;
            next = (next + 104729) % members;
            let (server, session, errors) =
                (server.clone(), sessions[next].clone(), errors.clone());
            let room = format!("cap-r{}", room_of[next]);
            tokio::spawn(async move {
                match server
                    .try_request(Method::GET, &format!("/rooms/{room}"), Some(&session), None)
                    .await
                {
                    Some((status, _, _)) if status.is_success() => {}
                    Some((status, _, _)) => errors.add("page", Some(status)),
                    None => errors.add("page", None),
                }
            });
        }
    }
    let seconds = measured_from.elapsed().as_secs_f64();
    let cpu_ms = Cpu::now(pid).per_second(cpu_before, seconds);
    // Let the last deliveries land, then stop the members (a held poll ends within its wait).
    tokio::time::sleep(Duration::from_secs(2)).await;
    if let Ok(mut s) = stop_at.lock() {
        *s = Some(Instant::now());
    }
    let (server_mib, members_mib) = (rss_kib(pid) / 1024, rss_kib(std::process::id()) / 1024);
    for task in tasks {
        task.abort();
    }
    let mut latencies = latencies.lock().map(|l| l.clone()).unwrap_or_default();
    latencies.sort();
    Outcome {
        members,
        posts: posts.load(Ordering::Relaxed),
        deliveries: latencies.len(),
        p50: percentile(&latencies, 0.5),
        p99: percentile(&latencies, 0.99),
        errors: errors.total(),
        error_kinds: errors.kinds(),
        cpu_ms,
        server_mib,
        members_mib,
    }
}

/// Failed requests by what failed.
#[derive(Default)]
struct Errors(Mutex<std::collections::BTreeMap<String, u64>>);

impl Errors {
    /// Counts a failed `what` (`page`, `poll`, `post`): its status, or none when no answer came.
    fn add(&self, what: &str, status: Option<StatusCode>) {
        let kind = match status {
            Some(status) => format!("{what} {}", status.as_u16()),
            None => format!("{what}: no answer"),
        };
        if let Ok(mut kinds) = self.0.lock() {
            *kinds.entry(kind).or_default() += 1;
        }
    }

    fn kinds(&self) -> std::collections::BTreeMap<String, u64> {
        self.0.lock().map(|k| k.clone()).unwrap_or_default()
    }

    fn total(&self) -> u64 {
        self.kinds().values().sum()
    }
}

/// The report line of one size.
pub fn line(o: &Outcome) -> String {
    format!(
        "| {} | {} posts, {} deliveries | {:.1} / {:.1} ms | {} {:?} | {:.2} + {:.2} + {:.2} | {} + {} MiB |",
        o.members,
        o.posts,
        o.deliveries,
        o.p50.as_secs_f64() * 1000.0,
        o.p99.as_secs_f64() * 1000.0,
        o.errors,
        o.error_kinds,
        o.cpu_ms.server / 1000.0,
        o.cpu_ms.postgres / 1000.0,
        o.cpu_ms.members / 1000.0,
        o.server_mib,
        o.members_mib,
    )
}
