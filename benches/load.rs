//! Confab's benchmark: seeds a database with a realistic history, serves Confab in-process on
//! loopback, drives it with concurrent keep-alive clients, and compares each scenario with the
//! baseline (`GET /healthz` under the same concurrency, in the same run).
//!
//! ```text
//! cargo bench --bench load -- [--scale small|large] [--database-url postgres://…] [--requests N]
//!                               [--only pages|posts|memory|capacity] [--conversate URL]
//! ```
//!
//! `--only pages` runs the baseline and the room pages alone and only prints them.
//! `--conversate URL` compares Confab with django-conversate served at URL (see
//! docs/benchmarks.md for how it is set up) and only prints the comparison.
//!
//! Without `--database-url` it uses a SQLite file under `target/bench/`, reused between runs of the
//! same scale. The table is printed and written into `docs/benchmarks.md` (the section of the
//! backend that ran); each target line says PASS or FAIL.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use confab::db::{self, AnyConnection, DatabaseUrl, Db};
use diesel::connection::SimpleConnection;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{Method, Request, StatusCode};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;

const PASSWORD: &str = "bench password";

struct Scale {
    name: &'static str,
    rooms: i64,
    users: i64,
    messages: i64,
    big_room: i64,
}

const SMALL: Scale = Scale {
    name: "small",
    rooms: 20,
    users: 500,
    messages: 40_000,
    big_room: 20_000,
};
const LARGE: Scale = Scale {
    name: "large",
    rooms: 200,
    users: 10_000,
    messages: 1_000_000,
    big_room: 500_000,
};
/// The comparison room holds this many messages.
const SMALL_ROOM: i64 = 1_000;
/// Bench clients log in as these users, members of every room.
const CLIENT_USERS: i64 = 64;

struct Args {
    scale: &'static Scale,
    database_url: Option<String>,
    requests: usize,
    /// `--only pages` (the baseline and the room pages) or `--only memory` (the server's memory
    /// per connection and per held poll, and during a 1 GiB upload): printed, docs/benchmarks.md
    /// untouched.
    only: Option<Only>,
    /// `--only capacity --members N,N…`: the capacity scenario at each size, printed.
    capacity: Option<Vec<usize>>,
    /// `--conversate http://127.0.0.1:<port>`: Confab side by side with django-conversate served
    /// there, printed.
    conversate: Option<String>,
}

/// A part of the benchmark run alone.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Only {
    Pages,
    Posts,
    Memory,
}

fn args() -> Args {
    let mut args = Args {
        scale: &SMALL,
        database_url: None,
        requests: 4000,
        only: None,
        capacity: None,
        conversate: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--scale" => {
                args.scale = if it.next().as_deref() == Some("large") {
                    &LARGE
                } else {
                    &SMALL
                }
            }
            "--database-url" => args.database_url = it.next(),
            "--conversate" => args.conversate = it.next(),
            "--only" => match it.next().as_deref() {
                Some("pages") => args.only = Some(Only::Pages),
                Some("posts") => args.only = Some(Only::Posts),
                Some("memory") => args.only = Some(Only::Memory),
                Some("capacity") => {
                    args.capacity.get_or_insert_with(|| vec![1000, 2000, 4000]);
                }
                _ => {}
            },
            "--members" => {
                args.capacity = it
                    .next()
                    .map(|list| list.split(',').filter_map(|n| n.parse().ok()).collect())
            }
            "--requests" => {
                args.requests = it
                    .next()
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(args.requests)
            }
            _ => {} // cargo bench passes --bench
        }
    }
    args
}

#[path = "load/capacity.rs"]
mod capacity;
#[path = "load/conversate.rs"]
mod conversate;

fn exec(conn: &mut AnyConnection, sql: &str) {
    conn.batch_execute(sql)
        .unwrap_or_else(|e| panic!("seeding: {e}\n{}", &sql[..sql.len().min(300)]));
}

/// Seeds the database with multi-row inserts, unless it already holds this scale.
fn seed(url: &DatabaseUrl, scale: &Scale) {
    db::migrate(url).expect("migrate");
    let mut conn = db::connect(url).expect("connect");
    let existing: i64 = {
        use diesel::prelude::*;
        // The capacity scenario's members (`cap…`) are not the scale's.
        confab::db::schema::users::table
            .filter(confab::db::schema::users::username.not_like("cap%"))
            .count()
            .get_result(&mut conn)
            .expect("count")
    };
    if existing == scale.users {
        println!("reusing the seeded {} database", scale.name);
        return;
    }
    assert_eq!(
        existing, 0,
        "the database holds something else; give an empty one"
    );
    let started = Instant::now();
    let hash = confab::chat::users::hash_password(PASSWORD).expect("hash");
    let at = |minutes_ago: i64| {
        (chrono::Utc::now().naive_utc() - chrono::Duration::minutes(minutes_ago))
            .format("%Y-%m-%d %H:%M:%S")
    };
    let batch = |conn: &mut AnyConnection, head: &str, rows: &mut Vec<String>| {
        if !rows.is_empty() {
            exec(conn, &format!("{head} VALUES {}", rows.join(",")));
            rows.clear();
        }
    };
    exec(&mut conn, "BEGIN");
    let mut rows = Vec::new();
    for u in 0..scale.users {
        rows.push(format!(
            "('u{u}', 'u{u}@example.org', '{hash}', false, true, 'UTC', '{}')",
            at(0)
        ));
        if rows.len() == 1000 {
            batch(&mut conn, "INSERT INTO users (username, email, password_hash, is_admin, is_active, time_zone, created_at)", &mut rows);
        }
    }
    batch(&mut conn, "INSERT INTO users (username, email, password_hash, is_admin, is_active, time_zone, created_at)", &mut rows);
    for r in 0..scale.rooms {
        rows.push(format!("('r{r}', 'Room {r}', '', false, '{}')", at(0)));
    }
    batch(
        &mut conn,
        "INSERT INTO rooms (slug, name, description, is_private, created_at)",
        &mut rows,
    );
    for u in 1..=scale.users {
        let rooms: Vec<i64> = if u <= CLIENT_USERS {
            (1..=scale.rooms).collect()
        } else {
            vec![1 + u % scale.rooms, 1 + (u * 7) % scale.rooms]
        };
        for r in rooms.into_iter().collect::<std::collections::BTreeSet<_>>() {
            rows.push(format!("({r}, {u}, 0, '{}')", at(0)));
            if rows.len() == 1000 {
                batch(
                    &mut conn,
                    "INSERT INTO memberships (room_id, user_id, last_read_id, joined_at)",
                    &mut rows,
                );
            }
        }
    }
    batch(
        &mut conn,
        "INSERT INTO memberships (room_id, user_id, last_read_id, joined_at)",
        &mut rows,
    );
    exec(&mut conn, "COMMIT");
    // Room 1 is the big room, room 2 the 1,000-message room, the rest share what is left.
    let mut revisions: HashMap<i64, i64> = HashMap::new();
    let rest = (scale.messages - scale.big_room - SMALL_ROOM).max(0);
    let total = scale.big_room + SMALL_ROOM + rest;
    exec(&mut conn, "BEGIN");
    for i in 0..total {
        let room = if i < scale.big_room {
            1
        } else if i < scale.big_room + SMALL_ROOM {
            2
        } else {
            3 + i % (scale.rooms - 2)
        };
        let revision = revisions.entry(room).or_insert(0);
        *revision += 1;
        let author = 1 + (i * 31) % scale.users;
        let word = if i == scale.big_room / 2 {
            " zyzzyva"
        } else {
            ""
        };
        let minutes_ago = (total - i) / 2;
        rows.push(format!(
            "({room}, {author}, 'message {i} about topic {}{word}', {}, '{}')",
            i % 97,
            revision,
            at(minutes_ago)
        ));
        if rows.len() == 2000 {
            batch(
                &mut conn,
                "INSERT INTO messages (room_id, author_id, body, revision, created_at)",
                &mut rows,
            );
        }
        if i % 100_000 == 99_999 {
            exec(&mut conn, "COMMIT; BEGIN");
            println!("  {} messages", i + 1);
        }
    }
    batch(
        &mut conn,
        "INSERT INTO messages (room_id, author_id, body, revision, created_at)",
        &mut rows,
    );
    for (room, revision) in &revisions {
        exec(
            &mut conn,
            &format!(
                "UPDATE rooms SET cursor = {revision}, last_message_at = '{}' WHERE id = {room}",
                at(0)
            ),
        );
    }
    exec(&mut conn, "COMMIT");
    exec(&mut conn, "ANALYZE");
    println!(
        "seeded {} users, {} rooms, {total} messages in {:.1} s",
        scale.users,
        scale.rooms,
        started.elapsed().as_secs_f64()
    );
}

type Http = Client<HttpConnector, Full<Bytes>>;

/// One logged-in client identity: its cookies and form token.
#[derive(Clone)]
struct Session {
    cookies: String,
    csrf: String,
}

struct Server {
    base: String,
    http: Http,
    /// The in-process server's pool, whose statements are counted; `None` for a child process.
    db: Option<Db>,
}

impl Server {
    fn new(port: u16, db: Option<Db>) -> Server {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let http: Http = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(16_384)
            .build(connector);
        Server {
            base: format!("http://127.0.0.1:{port}"),
            http,
            db,
        }
    }

    fn queries(&self) -> u64 {
        self.db.as_ref().map_or(0, Db::queries)
    }

    async fn request(
        &self,
        method: Method,
        path: &str,
        session: Option<&Session>,
        body: Option<(&str, String)>,
    ) -> (StatusCode, Vec<(String, String)>, String) {
        self.try_request(method, path, session, body)
            .await
            .expect("an answer")
    }

    /// [`Server::request`], with `None` when no answer came (a connection refused or cut).
    async fn try_request(
        &self,
        method: Method,
        path: &str,
        session: Option<&Session>,
        body: Option<(&str, String)>,
    ) -> Option<(StatusCode, Vec<(String, String)>, String)> {
        let mut builder = Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base));
        if let Some(session) = session {
            builder = builder
                .header("Cookie", &session.cookies)
                .header("X-CSRF-Token", &session.csrf);
        }
        let body = match body {
            Some((content_type, text)) => {
                builder = builder.header("Content-Type", content_type);
                Full::new(Bytes::from(text))
            }
            None => Full::new(Bytes::new()),
        };
        let response = self
            .http
            .request(builder.body(body).expect("request"))
            .await
            .ok()?;
        let status = response.status();
        let headers = response
            .headers()
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
            .collect();
        let bytes = response.into_body().collect().await.ok()?.to_bytes();
        Some((
            status,
            headers,
            // Pages are UTF-8: checked at the speed of `from_utf8`, which the lossy form is not.
            String::from_utf8(bytes.to_vec())
                .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()),
        ))
    }

    /// The bench's first eight members (`u0`…`u7`), logged in.
    async fn members(&self) -> Vec<Session> {
        let mut sessions = Vec::new();
        for u in 0..8 {
            sessions.push(self.login(&format!("u{u}")).await);
        }
        sessions
    }

    async fn login(&self, user: &str) -> Session {
        let cookies = |headers: &[(String, String)]| -> Vec<String> {
            headers
                .iter()
                .filter(|(k, _)| k == "set-cookie")
                .map(|(_, v)| v.split(';').next().unwrap_or("").to_string())
                .collect()
        };
        let (_, headers, body) = self.request(Method::GET, "/login", None, None).await;
        let csrf = body
            .split(r#"name="csrf" value=""#)
            .nth(1)
            .and_then(|r| r.split('"').next())
            .expect("csrf")
            .to_string();
        let mut jar = cookies(&headers);
        let anonymous = Session {
            cookies: jar.join("; "),
            csrf: csrf.clone(),
        };
        let form = format!(
            "csrf={csrf}&username={user}&password={}",
            PASSWORD.replace(' ', "+")
        );
        let (status, headers, _) = self
            .request(
                Method::POST,
                "/login",
                Some(&anonymous),
                Some(("application/x-www-form-urlencoded", form)),
            )
            .await;
        assert_eq!(status, StatusCode::SEE_OTHER, "login of {user}");
        for cookie in cookies(&headers) {
            let name = cookie.split('=').next().unwrap_or("").to_string();
            jar.retain(|c| !c.starts_with(&format!("{name}=")));
            jar.push(cookie);
        }
        let session = Session {
            cookies: jar.join("; "),
            csrf: String::new(),
        };
        let (_, _, page) = self
            .request(Method::GET, "/settings", Some(&session), None)
            .await;
        let csrf = page
            .split(r#"name="csrf" value=""#)
            .nth(1)
            .and_then(|r| r.split('"').next())
            .expect("csrf")
            .to_string();
        Session { csrf, ..session }
    }
}

/// What one scenario measured.
struct Measured {
    requests: usize,
    seconds: f64,
    p50: Duration,
    p99: Duration,
    queries: f64,
    /// CPU time per request of this process (server and clients) and every PostgreSQL process.
    cpu_ms: f64,
}

/// CPU time used so far by this process and by every `postgres` process, in milliseconds.
fn cpu_ms() -> f64 {
    process_cpu_ms("self") + postgres_cpu_ms()
}

/// CPU time used so far by process `pid` (or `self`), in milliseconds (from `/proc`, in clock
/// ticks of 10 ms).
fn process_cpu_ms(pid: &str) -> f64 {
    // After the command name in parentheses: state, then fields 4.. ; utime and stime are the
    // 14th and 15th fields of the line.
    let ticks: u64 = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            let (_, rest) = stat.rsplit_once(')')?;
            let fields: Vec<&str> = rest.split_whitespace().collect();
            Some(
                fields
                    .get(11)
                    .and_then(|f| f.parse::<u64>().ok())
                    .unwrap_or(0)
                    + fields
                        .get(12)
                        .and_then(|f| f.parse::<u64>().ok())
                        .unwrap_or(0),
            )
        })
        .unwrap_or(0);
    ticks as f64 * 10.0
}

/// CPU time used so far by every `postgres` process, in milliseconds.
fn postgres_cpu_ms() -> f64 {
    command_cpu_ms("postgres")
}

/// CPU time used so far by every process whose command name is `command`, in milliseconds.
fn command_cpu_ms(command: &str) -> f64 {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 0.0;
    };
    entries
        .flatten()
        .filter(|entry| {
            std::fs::read_to_string(entry.path().join("comm")).is_ok_and(|c| c.trim() == command)
        })
        .map(|entry| process_cpu_ms(&entry.file_name().to_string_lossy()))
        .sum()
}

impl Measured {
    fn throughput(&self) -> f64 {
        self.requests as f64 / self.seconds
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted
        .get(((sorted.len() as f64 - 1.0) * p).round() as usize)
        .copied()
        .unwrap_or_default()
}

/// Runs `requests` requests from `clients` concurrent clients; `make` gives each request's path.
async fn drive(
    server: &Arc<Server>,
    sessions: &[Session],
    clients: usize,
    requests: usize,
    make: Arc<dyn Fn(usize) -> String + Send + Sync>,
) -> Measured {
    let ask: Ask = Arc::new(move |i, _| (Method::GET, make(i), None));
    drive_asking(server, sessions, clients, requests, ask, Arc::new(cpu_ms)).await
}

/// One request of a scenario: method, path and body, made for request `i` by `session`.
type Ask =
    Arc<dyn Fn(usize, &Session) -> (Method, String, Option<(&'static str, String)>) + Send + Sync>;

/// [`drive`], with any request (`ask`) and the CPU time counted by `cpu` (milliseconds so far).
async fn drive_asking(
    server: &Arc<Server>,
    sessions: &[Session],
    clients: usize,
    requests: usize,
    ask: Ask,
    cpu: Arc<dyn Fn() -> f64 + Send + Sync>,
) -> Measured {
    // Warm-up, not measured: each session asks once, so that one-off work (a read marker moving,
    // a first plan, a cold cache) does not land in the figures of whichever scenario runs first.
    // (Numbered past the measured requests, so that a post's form id is never sent twice.)
    for (i, session) in sessions.iter().enumerate() {
        let (method, path, body) = ask(requests + i, session);
        let (status, _, _) = server.request(method, &path, Some(session), body).await;
        assert!(status.is_success(), "{path}: {status}");
    }
    let next = Arc::new(AtomicU64::new(0));
    let before = server.queries();
    let cpu_before = cpu();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..clients {
        let (server, next, ask) = (server.clone(), next.clone(), ask.clone());
        let session = sessions[c % sessions.len()].clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed) as usize;
                if i >= requests {
                    break;
                }
                let (method, path, body) = ask(i, &session);
                let t = Instant::now();
                let (status, _, _) = server.request(method, &path, Some(&session), body).await;
                assert!(status.is_success(), "{path}: {status}");
                latencies.push(t.elapsed());
            }
            latencies
        }));
    }
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await.expect("client"));
    }
    let seconds = started.elapsed().as_secs_f64();
    latencies.sort();
    let queries = (server.queries() - before) as f64 / requests as f64;
    Measured {
        requests,
        seconds,
        p50: percentile(&latencies, 0.5),
        p99: percentile(&latencies, 0.99),
        queries,
        cpu_ms: (cpu() - cpu_before) / requests as f64,
    }
}

/// The resident memory of a process, from `/proc/<pid>/status`.
fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

struct Report {
    rows: Vec<String>,
    /// Figures that are not a row of the table (memory, the planner, the upload).
    notes: Vec<String>,
    verdicts: Vec<String>,
}

impl Report {
    fn row(&mut self, scenario: &str, m: &Measured, baseline: f64) {
        self.rows.push(format!(
            "| {scenario} | {:.0} | {:.2}× | {:.2} ms | {:.2} ms | {:.2} | {:.2} ms |",
            m.throughput(),
            m.throughput() / baseline,
            m.p50.as_secs_f64() * 1000.0,
            m.p99.as_secs_f64() * 1000.0,
            m.queries,
            m.cpu_ms
        ));
    }

    fn note(&mut self, line: String) {
        println!("{line}");
        self.notes.push(format!("- {line}"));
    }

    fn target(&mut self, what: &str, pass: bool) {
        let line = format!("{} {what}", if pass { "PASS" } else { "FAIL" });
        println!("{line}");
        self.verdicts.push(format!("- {line}"));
    }
}

async fn token(server: &Server, session: &Session, room: &str) -> String {
    let (_, _, page) = server
        .request(Method::GET, &format!("/rooms/{room}"), Some(session), None)
        .await;
    let token = page
        .split(r#"data-cursor=""#)
        .nth(1)
        .and_then(|r| r.split('"').next())
        .expect("cursor")
        .to_string();
    // Settle presence: the first poll may report it.
    let (status, _, body) = server
        .request(
            Method::GET,
            &format!("/api/rooms/{room}/events?after={token}"),
            Some(session),
            None,
        )
        .await;
    if status == StatusCode::OK {
        return body
            .split(r#""cursor":""#)
            .nth(1)
            .and_then(|r| r.split('"').next())
            .expect("cursor")
            .to_string();
    }
    token
}

/// `posters` concurrent posters post `per_poster` messages each in `room`; every fourth is sent
/// twice, as a double click would. Returns each post's latency.
async fn post_concurrently(
    server: &Arc<Server>,
    sessions: &[Session],
    room: &'static str,
    posters: usize,
    per_poster: usize,
    tag: &str,
) -> Vec<Duration> {
    let mut tasks = Vec::new();
    for p in 0..posters {
        let server = server.clone();
        let session = sessions[p % sessions.len()].clone();
        let tag = format!("{tag}-{}-{p}", std::process::id());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            for i in 0..per_poster {
                let t = Instant::now();
                let id = format!("{tag}-{i}");
                let body = format!("post {p} {i}");
                assert_eq!(
                    post(&server, &session, room, &body, &id).await,
                    StatusCode::CREATED
                );
                if i % 4 == 0 {
                    assert_eq!(
                        post(&server, &session, room, &body, &id).await,
                        StatusCode::CREATED
                    );
                }
                latencies.push(t.elapsed());
            }
            latencies
        }));
    }
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await.expect("poster"));
    }
    latencies
}

async fn post(
    server: &Server,
    session: &Session,
    room: &str,
    body: &str,
    client_id: &str,
) -> StatusCode {
    let json = format!(r#"{{"body":"{body}","client_id":"{client_id}"}}"#);
    server
        .request(
            Method::POST,
            &format!("/api/rooms/{room}/messages"),
            Some(session),
            Some(("application/json", json)),
        )
        .await
        .0
}

fn main() {
    let args = args();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(run(args));
}

/// A Confab under test, served on a local port, with eight members logged in.
struct Bench {
    server: Arc<Server>,
    sessions: Vec<Session>,
    db: Db,
    settings: confab::Settings,
    /// Requests per scenario.
    requests: usize,
}

/// Runs every scenario in turn and writes the report into docs/benchmarks.md.
async fn run(args: Args) {
    let scale = args.scale;
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("target")
        .join("bench");
    std::fs::create_dir_all(&dir).expect("bench dir");
    let url = match &args.database_url {
        Some(url) => DatabaseUrl::parse(url).expect("database url"),
        None => DatabaseUrl::Sqlite(dir.join(format!("{}.db", scale.name))),
    };
    let backend = if matches!(url, DatabaseUrl::Postgres(_)) {
        "PostgreSQL"
    } else {
        "SQLite"
    };
    let url_text = match &url {
        DatabaseUrl::Postgres(u) => u.clone(),
        DatabaseUrl::Sqlite(p) => p.display().to_string(),
    };
    let bench = serve(&url, &url_text, scale, &dir, args.requests).await;
    let mut report = Report {
        rows: Vec::new(),
        notes: Vec::new(),
        verdicts: Vec::new(),
    };
    if let Some(sizes) = &args.capacity {
        let largest = sizes.iter().copied().max().unwrap_or(0);
        let seed_url = url.clone();
        tokio::task::spawn_blocking(move || capacity::seed(&seed_url, largest))
            .await
            .expect("seed members");
        println!(
            "| members | sent | delivery p50 / p99 | errors | CPU (cores): server + PostgreSQL + members | memory: server + members |\n|---|---|---|---|---|---|"
        );
        // Each size in a fresh `confab` child process, so that the server's CPU and memory are
        // its own and neither process runs out of file descriptors (two per member each).
        for &members in sizes {
            let started = start_child(&url_text, &dir).await;
            let outcome = capacity::run(&started.server, started.pid, members).await;
            println!("{}", capacity::line(&outcome));
        }
        let seed_url = url.clone();
        tokio::task::spawn_blocking(move || capacity::unseed(&seed_url))
            .await
            .expect("remove the members");
        return;
    }
    if let Some(base) = &args.conversate {
        conversate::compare(base, &url_text, &dir, args.requests / 2).await;
        return;
    }
    if args.only == Some(Only::Memory) {
        memory(&url_text, &dir, scale, &mut report).await;
        upload_memory(&url_text, &dir, &mut report).await;
        println!("{}", report.notes.join("\n"));
        println!("{}", report.verdicts.join("\n"));
        return;
    }
    let base = baseline_throughput(&bench, &mut report).await;
    if args.only == Some(Only::Pages) {
        room_pages(&bench, &mut report, base, scale).await;
        page_cpu(&url_text, &dir, args.requests / 2, &mut report).await;
        println!("{}", report.rows.join("\n"));
        println!("{}", report.notes.join("\n"));
        println!("{}", report.verdicts.join("\n"));
        return;
    }
    if args.only == Some(Only::Posts) {
        posting(&bench, &mut report, base, scale).await;
        println!("{}", report.rows.join("\n"));
        println!("{}", report.verdicts.join("\n"));
        return;
    }
    polls(&bench, &mut report).await;
    posting(&bench, &mut report, base, scale).await;
    if matches!(url, DatabaseUrl::Postgres(_)) {
        upkeep(&bench.db).await;
    }
    let latest_big = room_pages(&bench, &mut report, base, scale).await;
    page_cpu(&url_text, &dir, args.requests / 2, &mut report).await;
    searches(&bench, &mut report, base, &latest_big).await;
    held_polls(&bench, &mut report, scale).await;
    alert_planning(&bench.db, &bench.settings, scale, &mut report).await;
    memory(&url_text, &dir, scale, &mut report).await;
    upload_memory(&url_text, &dir, &mut report).await;

    let table = format!(
        "### {backend}, scale `{}` ({} users, {} rooms, {} messages, the big room {})\n\n\
         | scenario | req/s | × baseline | p50 | p99 | queries/req | CPU/req |\n|---|---|---|---|---|---|---|\n{}\n\n{}\n\n{}\n",
        scale.name, scale.users, scale.rooms, scale.messages, scale.big_room,
        report.rows.join("\n"),
        report.notes.join("\n"),
        report.verdicts.join("\n"),
    );
    println!("\n{table}");
    write_section(backend, &table);
}

/// Seeds the database, starts Confab on a free port and logs eight members in.
async fn serve(
    url: &DatabaseUrl,
    url_text: &str,
    scale: &'static Scale,
    dir: &std::path::Path,
    requests: usize,
) -> Bench {
    let seed_url = url.clone();
    tokio::task::spawn_blocking(move || seed(&seed_url, scale))
        .await
        .expect("seed");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("port");
    let figment = confab::Settings::default_figment()
        .merge(("database_url", url_text))
        .merge(("data_dir", dir.join("data")))
        .merge(("uploads_dir", dir.join("uploads")))
        .merge(("port", port))
        .merge(("log_level", "off"))
        .merge(("jobs_enabled", false))
        .merge(("login_slowdown_ms", 0))
        // Thousands of members log in from this one address.
        .merge(("login_max_failures_per_address", 1_000_000))
        // A session check is read again once its minute in the cache is over: one statement a
        // minute per session, by design. The empty poll's line measures the poll, so a large
        // scale's longer run must not cross that minute.
        .merge(("session_cache_secs", 3_600))
        // Likewise who was seen is written in one batch every `presence_flush_secs` (30 s by
        // default) for everyone, not per poll; a batch landing in the empty polls' window would
        // count as theirs.
        .merge(("presence_flush_secs", 3_600))
        .merge(("db_pool_size", 16))
        .merge(("max_held_polls", 20_000))
        // The benchmark posts as fast as it can from few accounts: no posting limit.
        .merge(("post_burst", 1_000_000))
        .merge(("post_per_minute", 1_000_000))
        .merge(("workers", 8));
    let settings = confab::Settings::from_figment(figment).expect("settings");
    let rocket = confab::app(settings.clone())
        .ignite()
        .await
        .expect("ignite");
    let db = rocket.state::<Db>().expect("db").clone();
    tokio::spawn(async move {
        let _ = rocket.launch().await;
    });
    for _ in 0..200 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let server = Arc::new(Server::new(port, Some(db.clone())));

    let sessions = server.members().await;
    Bench {
        server,
        sessions,
        db,
        settings,
        requests,
    }
}

/// `GET /healthz` from 64 clients: the yardstick every other figure is a ratio of.
async fn baseline_throughput(bench: &Bench, report: &mut Report) -> f64 {
    let Bench {
        server, sessions, ..
    } = bench;
    let n = bench.requests;
    let baseline = drive(
        server,
        sessions,
        64,
        n,
        Arc::new(|_| "/healthz".to_string()),
    )
    .await;
    report.row(
        "baseline: GET /healthz (64 clients)",
        &baseline,
        baseline.throughput(),
    );
    baseline.throughput()
}

/// Polls with nothing new (no query at all) and polls that return one new message.
async fn polls(bench: &Bench, report: &mut Report) {
    let Bench {
        server, sessions, ..
    } = bench;
    let n = bench.requests;
    // Empty polls: every client shows up in the room first, so that the cursor (room and presence)
    // stays put while they poll.
    for s in sessions {
        token(server, s, "r0").await;
    }
    // Their arrival wakes the room's polls at the next presence wake-up, not at once.
    tokio::time::sleep(confab::live::PRESENCE_WAKE_EVERY * 2).await;
    let cursor = token(server, &sessions[0], "r0").await;
    let empty_poll = format!("/api/rooms/r0/events?after={cursor}");
    let is_empty = |status: StatusCode| status == StatusCode::NO_CONTENT;
    assert!(
        is_empty(
            server
                .request(Method::GET, &empty_poll, Some(&sessions[0]), None)
                .await
                .0
        ),
        "a poll with nothing new answers 204"
    );
    // Both an empty poll and `/healthz` take a fraction of a second for `n` requests, where one
    // scheduling hiccup on two cores can move the ratio by a third: the line compares the medians
    // of three alternating rounds of each, four times as long.
    let empty_path = Arc::new(empty_poll.clone());
    let mut rounds = Vec::new();
    for _ in 0..3 {
        let healthz = drive(
            server,
            sessions,
            64,
            4 * n,
            Arc::new(|_| "/healthz".to_string()),
        )
        .await;
        let path = empty_path.clone();
        let empty = drive(
            server,
            &sessions[..1],
            64,
            4 * n,
            Arc::new(move |_| path.to_string()),
        )
        .await;
        rounds.push((healthz.throughput(), empty));
    }
    let queries = rounds.iter().map(|(_, empty)| empty.queries).sum::<f64>();
    let mut healthz: Vec<f64> = rounds.iter().map(|(healthz, _)| *healthz).collect();
    healthz.sort_by(f64::total_cmp);
    rounds.sort_by(|a, b| a.1.throughput().total_cmp(&b.1.throughput()));
    let (_, empty) = rounds.swap_remove(1);
    let ratio = empty.throughput() / healthz[1];
    assert!(
        is_empty(
            server
                .request(Method::GET, &empty_poll, Some(&sessions[0]), None)
                .await
                .0
        ),
        "the polls stayed empty"
    );
    // The row's ratio, too, is to the median `/healthz` of these rounds.
    report.row("poll with nothing new (64 clients)", &empty, healthz[1]);
    report.target(
        &format!("empty poll ≥ 0.8 × baseline ({ratio:.2}×, medians of three rounds each)"),
        ratio >= 0.8,
    );
    report.target(
        &format!("empty poll makes 0 queries ({queries:.2})"),
        queries == 0.0,
    );

    // A poll that returns one new message.
    let mut poll_queries = Vec::new();
    let mut after = token(server, &sessions[0], "r1").await;
    for i in 0..50 {
        post(
            server,
            &sessions[1],
            "r1",
            &format!("one new {i}"),
            &format!("one-new-{i}-{}", std::process::id()),
        )
        .await;
        let before = server.queries();
        let (status, _, body) = server
            .request(
                Method::GET,
                &format!("/api/rooms/r1/events?after={after}"),
                Some(&sessions[0]),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        poll_queries.push(server.queries() - before);
        after = body
            .split(r#""cursor":""#)
            .nth(1)
            .and_then(|r| r.split('"').next())
            .expect("cursor")
            .to_string();
    }
    let per_poll = poll_queries.iter().sum::<u64>() as f64 / poll_queries.len() as f64;
    report.rows.push(format!(
        "| poll returning one new message | | | | | {per_poll:.2} | |"
    ));
    report.target(
        &format!("poll with one new message ≤ 2 queries ({per_poll:.2})"),
        per_poll <= 2.0,
    );
}

/// Posting through the API (concurrently, some sent twice), in the big room, and by plain form.
async fn posting(bench: &Bench, report: &mut Report, base: f64, scale: &Scale) {
    let Bench {
        server,
        sessions,
        db,
        ..
    } = bench;
    let n = bench.requests;
    // Posting: 50 concurrent posters, after a round that warms every pooled connection (a
    // connection idle for a while is checked with `SELECT 1` before use).
    let posters = 50;
    let per_poster = (n / posters).max(4);
    post_concurrently(server, sessions, "r1", posters, 1, "warm").await;
    let before_count = count_messages(db, "r1").await;
    let before_queries = server.queries();
    let cpu_before = cpu_ms();
    let started = Instant::now();
    let mut latencies =
        post_concurrently(server, sessions, "r1", posters, per_poster, "bench").await;
    latencies.sort();
    let sends = posters * per_poster + posters * per_poster.div_ceil(4);
    let posted = Measured {
        requests: sends,
        seconds: started.elapsed().as_secs_f64(),
        p50: percentile(&latencies, 0.5),
        p99: percentile(&latencies, 0.99),
        queries: (server.queries() - before_queries) as f64 / sends as f64,
        cpu_ms: (cpu_ms() - cpu_before) / sends as f64,
    };
    report.row(
        "post a message, API (50 posters, 1 in 4 sent twice)",
        &posted,
        base,
    );
    let stored = count_messages(db, "r1").await - before_count;
    report.target(
        &format!(
            "posts: none lost or doubled ({stored} stored of {})",
            posters * per_poster
        ),
        stored == (posters * per_poster) as i64,
    );
    // The same in the 500,000-message room, whose messages are the oldest: a post must not cost
    // more there.
    let before_queries = server.queries();
    let cpu_before = cpu_ms();
    let started = Instant::now();
    let mut latencies = post_concurrently(server, sessions, "r0", posters, 4, "big").await;
    latencies.sort();
    let sends = posters * 4 + posters;
    let big_posted = Measured {
        requests: sends,
        seconds: started.elapsed().as_secs_f64(),
        p50: percentile(&latencies, 0.5),
        p99: percentile(&latencies, 0.99),
        queries: (server.queries() - before_queries) as f64 / sends as f64,
        cpu_ms: (cpu_ms() - cpu_before) / sends as f64,
    };
    report.row(
        &format!(
            "post a message, API, in the {}-message room",
            scale.big_room
        ),
        &big_posted,
        base,
    );

    // The plain form, as a browser without JavaScript sends it (one poster, each form sent once).
    let forms = 200;
    let before_queries = server.queries();
    let cpu_before = cpu_ms();
    let started = Instant::now();
    let mut latencies = Vec::new();
    for i in 0..forms {
        let form = format!(
            "csrf={}&client_id=form-{}-{i}&body=form+post+{i}",
            sessions[2].csrf,
            std::process::id()
        );
        let t = Instant::now();
        let (status, _, _) = server
            .request(
                Method::POST,
                "/rooms/r1/messages",
                Some(&sessions[2]),
                Some(("application/x-www-form-urlencoded", form)),
            )
            .await;
        assert_eq!(status, StatusCode::SEE_OTHER, "form post");
        latencies.push(t.elapsed());
    }
    latencies.sort();
    let form_posted = Measured {
        requests: forms,
        seconds: started.elapsed().as_secs_f64(),
        p50: percentile(&latencies, 0.5),
        p99: percentile(&latencies, 0.99),
        queries: (server.queries() - before_queries) as f64 / forms as f64,
        cpu_ms: (cpu_ms() - cpu_before) / forms as f64,
    };
    report.row("post a message, form (one poster)", &form_posted, base);
    report.target(
        &format!(
            "posts arriving together share a commit: < 2 queries per post with {posters} posters (API {:.3}, big room {:.3})",
            posted.queries, big_posted.queries
        ),
        posted.queries < 2.0 && big_posted.queries < 2.0,
    );
    report.target(
        &format!(
            "post ≤ 0.8 ms of CPU (Confab, its clients and PostgreSQL) with {posters} posters (API {:.2} ms, big room {:.2} ms)",
            posted.cpu_ms, big_posted.cpu_ms
        ),
        posted.cpu_ms <= 0.8 && big_posted.cpu_ms <= 0.8,
    );
    report.target(
        &format!(
            "post ≤ 4 queries per request (API {:.3}, big room {:.3}, form {:.3})",
            posted.queries, big_posted.queries, form_posted.queries
        ),
        posted.queries <= 4.0 && big_posted.queries <= 4.0 && form_posted.queries <= 4.0,
    );
}

/// The latest page of a big and a small room, an older page and a permalink; returns the big
/// room's latest page, which search is measured against.
async fn room_pages(bench: &Bench, report: &mut Report, base: f64, scale: &Scale) -> Measured {
    let Bench {
        server, sessions, ..
    } = bench;
    let n = bench.requests;
    // Room pages.
    let pages = n / 4;
    let latest_big = drive(
        server,
        sessions,
        16,
        pages,
        Arc::new(|_| "/rooms/r0".to_string()),
    )
    .await;
    let latest_small = drive(
        server,
        sessions,
        16,
        pages,
        Arc::new(|_| "/rooms/r1".to_string()),
    )
    .await;
    report.row(
        &format!("room page, latest 100, {}-message room", scale.big_room),
        &latest_big,
        base,
    );
    report.row(
        "room page, latest 100, 1,000-message room",
        &latest_small,
        base,
    );
    let ratio = latest_big.p50.as_secs_f64() / latest_small.p50.as_secs_f64();
    report.target(
        &format!("latest page in the big room ≤ 1.3 × the 1,000-message room ({ratio:.2}×)"),
        ratio <= 1.3,
    );
    // Older pages and permalinks, each at its own message, so that no two readers share a read
    // (the latest page above is read once and shared by every reader at its cursor): near the
    // newest end of the big room's history, then from its middle, which must cost no more.
    let (middle, recent) = (scale.big_room / 2, scale.big_room - 1_200);
    let older_recent = drive(
        server,
        sessions,
        16,
        pages,
        Arc::new(move |i| format!("/rooms/r0?before={}", recent + (i as i64 % 1000))),
    )
    .await;
    let older = drive(
        server,
        sessions,
        16,
        pages,
        Arc::new(move |i| format!("/rooms/r0?before={}", middle + (i as i64 % 1000))),
    )
    .await;
    let permalink = drive(
        server,
        sessions,
        16,
        pages,
        Arc::new(move |i| format!("/rooms/r0?around={}", middle + (i as i64 % 1000))),
    )
    .await;
    report.row(
        "older page near the end of the big room",
        &older_recent,
        base,
    );
    report.row("older page from the middle of the big room", &older, base);
    report.row("permalink in the middle of the big room", &permalink, base);
    let (r1, r2) = (
        older.p50.as_secs_f64() / older_recent.p50.as_secs_f64(),
        permalink.p50.as_secs_f64() / older_recent.p50.as_secs_f64(),
    );
    report.target(
        &format!(
            "older page from the middle ≤ 1.3 × one near the end ({r1:.2}×), permalink ≤ 1.3 × it ({r2:.2}×)"
        ),
        r1 <= 1.3 && r2 <= 1.3,
    );
    latest_big
}

/// The latest room page's CPU as the target counts it: a `confab` child process and PostgreSQL,
/// without this process's clients (whose share the in-process rows include).
async fn page_cpu(url: &str, dir: &std::path::Path, requests: usize, report: &mut Report) {
    let started = start_child(url, dir).await;
    let sessions = started.server.members().await;
    let latest: Ask = Arc::new(|_, _| (Method::GET, "/rooms/r0".to_string(), None));
    let clients_before = process_cpu_ms("self");
    let measured = drive_asking(
        &started.server,
        &sessions,
        16,
        requests,
        latest,
        started.cpu(),
    )
    .await;
    let cpu = measured.cpu_ms;
    // The clients' share over every request made, the unmeasured first one of each session too.
    let clients = (process_cpu_ms("self") - clients_before) / (requests + sessions.len()) as f64;
    drop(started);
    report.notes.push(format!(
        "Latest room page in a `confab` process of its own ({:.0} pages/s): {cpu:.2} ms of CPU per page in Confab and PostgreSQL, {clients:.2} ms in the bench's clients.",
        measured.throughput()
    ));
    report.target(
        &format!("room page ≤ 0.8 ms of CPU, Confab and PostgreSQL ({cpu:.2} ms)"),
        cpu <= 0.8,
    );
}

/// Searches for a rare word and for one in every message.
async fn searches(bench: &Bench, report: &mut Report, base: f64, latest_big: &Measured) {
    let Bench {
        server, sessions, ..
    } = bench;
    let n = bench.requests;
    let search = drive(
        server,
        sessions,
        8,
        (n / 20).max(20),
        Arc::new(|_| "/search?q=zyzzyva".to_string()),
    )
    .await;
    report.row("search for a rare word", &search, base);
    let common = drive(
        server,
        sessions,
        4,
        40,
        Arc::new(|_| "/search?q=topic".to_string()),
    )
    .await;
    report.row("search for a word in every message", &common, base);
    let ratio = search.p50.as_secs_f64() / latest_big.p50.as_secs_f64();
    report.target(
        &format!("rare-word search ≤ 10 × the latest page ({ratio:.2}×)"),
        ratio <= 10.0,
    );
}

/// 1,000 polls held across up to 100 rooms, then a post in one: how soon its waiters are answered.
async fn held_polls(bench: &Bench, report: &mut Report, scale: &Scale) {
    let Bench {
        server, sessions, ..
    } = bench;
    // Held polls: 1,000 waiting across 100 rooms (or as many rooms as there are), then a post.
    let rooms = scale.rooms.min(100) as usize;
    let mut room_tokens = Vec::new();
    for r in 0..rooms {
        room_tokens.push(token(server, &sessions[0], &format!("r{r}")).await);
    }
    let waiting = 1000;
    let target_room = 5 % rooms;
    let answered = Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut held = Vec::new();
    for w in 0..waiting {
        let (server, answered) = (server.clone(), answered.clone());
        let room = w % rooms;
        let path = format!(
            "/api/rooms/r{room}/events?after={}&wait=25",
            room_tokens[room]
        );
        let session = sessions[0].clone();
        held.push(tokio::spawn(async move {
            let (status, _, _) = server
                .request(Method::GET, &path, Some(&session), None)
                .await;
            if room == target_room && status == StatusCode::OK {
                answered.lock().expect("answered").push(Instant::now());
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let posted_at = Instant::now();
    post(
        server,
        &sessions[1],
        &format!("r{target_room}"),
        "wake up",
        &format!("wake-{}", std::process::id()),
    )
    .await;
    for _ in 0..200 {
        if answered.lock().expect("answered").len() >= waiting / rooms {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut delays: Vec<Duration> = answered
        .lock()
        .expect("answered")
        .iter()
        .map(|t| t.saturating_duration_since(posted_at))
        .collect();
    delays.sort();
    let expected = waiting / rooms;
    report.rows.push(format!(
        "| held polls: {waiting} across {rooms} rooms, a post in one | | | {:.2} ms | {:.2} ms | | |",
        percentile(&delays, 0.5).as_secs_f64() * 1000.0,
        percentile(&delays, 0.99).as_secs_f64() * 1000.0
    ));
    report.target(
        &format!(
            "every waiting member answered ({} of {expected})",
            delays.len()
        ),
        delays.len() == expected,
    );
    report.target(
        &format!(
            "post to answer p99 < 100 ms ({:.1} ms)",
            percentile(&delays, 0.99).as_secs_f64() * 1000.0
        ),
        percentile(&delays, 0.99) < Duration::from_millis(100),
    );
    for task in held {
        task.abort();
    }
}

/// The alert planner with a tenth of the users and with all of them, a fifth of them away with 20
/// unread messages in each of their rooms: the statements of a round must not grow with the users
/// (they are fixed by design; the time of a round is reported beside them).
async fn alert_planning(db: &Db, settings: &confab::Settings, scale: &Scale, report: &mut Report) {
    let theme = confab::assets::Theme::new(settings.theme_dir.clone());
    let mail = Arc::new(confab::mail::Mail::from_settings(settings, &theme).expect("mail"));
    let mut rounds = Vec::new();
    // Each member's read marker goes 20 messages back in each of their rooms (on PostgreSQL by the
    // `(room_id, id)` index, which `room_id = ANY(…)` makes it use).
    let in_room = match db.backend() {
        confab::db::Backend::Postgres => "messages.room_id = ANY (ARRAY[memberships.room_id])",
        confab::db::Backend::Sqlite => "messages.room_id = memberships.room_id",
    };
    for users in [scale.users / 10, scale.users] {
        // A day later, so that every unread message is old enough to alert about; members who are
        // present were active then.
        let now = confab::chat::now() + chrono::Duration::days(1);
        let present = now.format("%Y-%m-%d %H:%M:%S");
        // The decisions logged by an earlier round or run would make this one skip writing its
        // own (an entry is logged once), so each round starts with none.
        let setup = format!(
            "DELETE FROM outbox;
             DELETE FROM alert_log;
             UPDATE users SET alert_mode = 'off', last_alert_at = NULL, last_active_at = '{present}';
             UPDATE users SET alert_mode = 'on' WHERE id <= {users};
             UPDATE users SET last_active_at = NULL WHERE id <= {users} AND id % 5 = 0;
             UPDATE memberships SET alerted_through_id = 0, last_read_id = COALESCE(
                 (SELECT id FROM messages WHERE {in_room} ORDER BY room_id DESC, id DESC LIMIT 1 OFFSET 20), 0);"
        );
        db.run(move |conn| {
            conn.batch_execute(&setup)
                .map_err(confab::error::Error::from)
        })
        .await
        .expect("alert setup");
        // Every pooled connection used just now, so that none is checked with `SELECT 1` (after
        // 2 s idle) during the round and counted as one of its statements: as many pings as the
        // pool holds, each keeping its connection a moment so that no two share one.
        rocket::futures::future::join_all((0..settings.db_pool_size).map(|_| {
            db.run(|conn| {
                let pinged = confab::db::ping(conn);
                std::thread::sleep(Duration::from_millis(20));
                Ok::<_, confab::error::Error>(pinged?)
            })
        }))
        .await
        .into_iter()
        .collect::<Result<Vec<_>, _>>()
        .expect("warm the pool");
        let before = db.queries();
        let started = Instant::now();
        let written = confab::jobs::alerts::plan(db, &mail, settings, now)
            .await
            .expect("plan");
        let statements = db.queries() - before;
        report.note(format!(
            "Alert planning round with {users} users, {} away: {statements} statements, {written} mails written, {:.0} ms.",
            users / 5,
            started.elapsed().as_secs_f64() * 1000.0
        ));
        rounds.push(statements);
    }
    db.run(|conn| {
        // Back to the seeded state, so that the next run on this database starts the same.
        conn.batch_execute(
            "DELETE FROM outbox;
             DELETE FROM alert_log;
             UPDATE users SET alert_mode = 'on', last_alert_at = NULL, last_active_at = NULL;
             UPDATE memberships SET alerted_through_id = 0",
        )
        .map_err(confab::error::Error::from)
    })
    .await
    .expect("alert cleanup");
    report.target(
        &format!(
            "alert planning statements do not grow with users ({} at {}, {} at {})",
            rounds[0],
            scale.users / 10,
            rounds[1],
            scale.users
        ),
        rounds[1] <= rounds[0],
    );
}

/// A `confab` child process, killed when dropped.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("port")
}

/// A `confab` child process serving the seeded database, up and answering `/healthz`.
struct Started {
    child: Child,
    server: Arc<Server>,
    pid: u32,
}

impl Started {
    /// CPU time used so far by this `confab` process and by PostgreSQL, in milliseconds.
    fn cpu(&self) -> Arc<dyn Fn() -> f64 + Send + Sync> {
        let pid = self.pid.to_string();
        Arc::new(move || process_cpu_ms(&pid) + postgres_cpu_ms())
    }
}

async fn start_child(url: &str, dir: &std::path::Path) -> Started {
    let port = free_port();
    let child = Child(
        std::process::Command::new(env!("CARGO_BIN_EXE_confab"))
            .arg("serve")
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .env("CONFAB_DATABASE_URL", url)
            .env("CONFAB_DATA_DIR", dir.join("data"))
            .env("CONFAB_UPLOADS_DIR", dir.join("uploads"))
            .env("CONFAB_JOBS_ENABLED", "false")
            .env("CONFAB_LOGIN_SLOWDOWN_MS", "0")
            // Thousands of members log in from this one address.
            .env("CONFAB_LOGIN_MAX_FAILURES_PER_ADDRESS", "1000000")
            .env("CONFAB_MAX_HELD_POLLS", "20000")
            .env("CONFAB_POST_BURST", "1000000")
            .env("CONFAB_POST_PER_MINUTE", "1000000")
            .env("CONFAB_MAX_UPLOAD_BYTES", (2u64 << 30).to_string())
            .env("ROCKET_PORT", port.to_string())
            .env("ROCKET_LOG_LEVEL", "off")
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("start confab"),
    );
    let pid = child.0.id();
    let server = Arc::new(Server::new(port, None));
    let mut up = false;
    for _ in 0..400 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            up = server.request(Method::GET, "/healthz", None, None).await.0 == StatusCode::OK;
            if up {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(up, "the confab child process did not start");
    Started { child, server, pid }
}

/// Server memory, measured on `confab` child processes so that no client counts, each figure in a
/// fresh process (memory one measurement freed could otherwise hide the next one's growth): RSS
/// idle and per keep-alive connection, and per held poll with 5,000 held. (The upload's is
/// measured in a third process, by [`upload`].)
async fn memory(url: &str, dir: &std::path::Path, scale: &Scale, report: &mut Report) {
    let waiting = 5000;
    let first = start_child(url, dir).await;
    let idle = rss_kib(first.pid);
    let per_connection = idle_connections(&first.server, first.pid, waiting).await;
    drop(first.child);

    // 5,000 held polls across up to 100 rooms.
    let Started { child, server, pid } = start_child(url, dir).await;
    let session = server.login("u0").await;
    let rooms = scale.rooms.min(100) as usize;
    // One member holds them all, so that no poll is answered early by a change of presence.
    let mut room_tokens = Vec::new();
    for r in 0..rooms {
        room_tokens.push(token(&server, &session, &format!("r{r}")).await);
    }
    let before = rss_kib(pid);
    let mut held = Vec::new();
    for w in 0..waiting {
        let server = server.clone();
        let room = w % rooms;
        let path = format!(
            "/api/rooms/r{room}/events?after={}&wait=25",
            room_tokens[room]
        );
        let session = session.clone();
        held.push(tokio::spawn(async move {
            server
                .request(Method::GET, &path, Some(&session), None)
                .await
        }));
        if w % 250 == 249 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let holding = rss_kib(pid);
    let answered = held.iter().filter(|h| h.is_finished()).count();
    for task in held {
        task.abort();
    }
    drop(child);
    let per_held = holding.saturating_sub(before) as f64 / waiting as f64;
    report.note(format!(
        "Server memory (`confab` child processes, RSS): {} MiB idle; {waiting} held polls ({answered} answered early) add {:.1} MiB, {per_held:.1} KiB each; in another process, {waiting} idle keep-alive connections (after one `GET /healthz` each) add {per_connection:.1} KiB each.",
        idle / 1024,
        holding.saturating_sub(before) as f64 / 1024.0
    ));
    report.target(
        &format!(
            "memory per held poll ≤ 20 KiB ({per_held:.1} KiB; an idle keep-alive connection alone: {per_connection:.1} KiB)"
        ),
        per_held <= 20.0 && answered == 0,
    );
}

/// Opens `count` keep-alive connections that each made one `GET /healthz` and stay open; returns
/// the server's RSS growth per connection in KiB.
async fn idle_connections(server: &Server, pid: u32, count: usize) -> f64 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let address = server.base.trim_start_matches("http://").to_string();
    let before = rss_kib(pid);
    let mut open = Vec::new();
    for _ in 0..count {
        let mut stream = tokio::net::TcpStream::connect(&address)
            .await
            .expect("connect");
        stream
            .write_all(format!("GET /healthz HTTP/1.1\r\nHost: {address}\r\n\r\n").as_bytes())
            .await
            .expect("request");
        let mut buffer = [0u8; 2048];
        let read = stream.read(&mut buffer).await.expect("response");
        assert!(buffer[..read].starts_with(b"HTTP/1.1 200"), "healthz");
        open.push(stream);
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let grown = rss_kib(pid).saturating_sub(before) as f64 / count as f64;
    drop(open);
    grown
}

const GIB: u64 = 1 << 30;

/// The 1 GiB upload ([`upload`]) in a `confab` child process of its own.
async fn upload_memory(url: &str, dir: &std::path::Path, report: &mut Report) {
    let Started { child, server, pid } = start_child(url, dir).await;
    let session = server.login("u0").await;
    upload(&server, pid, dir, &session, report).await;
    drop(child);
}

/// Uploads a 1 GiB file through the plain form (raw HTTP/1.1, streamed from disk), sampling the
/// server's RSS meanwhile, and compares the time with a plain copy of the same file.
async fn upload(
    server: &Server,
    pid: u32,
    dir: &std::path::Path,
    session: &Session,
    report: &mut Report,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let source = dir.join("upload-1gib.bin");
    let copy = dir.join("upload-copy.bin");
    let (from, to) = (source.clone(), copy.clone());
    let copy_secs = tokio::task::spawn_blocking(move || {
        if std::fs::metadata(&from).map(|m| m.len()).ok() != Some(GIB) {
            use std::io::Write;
            let mut file = std::io::BufWriter::new(std::fs::File::create(&from).expect("source"));
            let block: Vec<u8> = (0..1u32 << 20)
                .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
                .collect();
            for _ in 0..1024 {
                file.write_all(&block).expect("write source");
            }
            file.flush().expect("flush source");
        }
        let started = Instant::now();
        std::fs::copy(&from, &to).expect("copy");
        let secs = started.elapsed().as_secs_f64();
        let _ = std::fs::remove_file(&to);
        secs
    })
    .await
    .expect("copy task");

    let boundary = "confab-bench-boundary";
    let preamble = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\n{}\r\n\
         --{boundary}\r\nContent-Disposition: form-data; name=\"body\"\r\n\r\n1 GiB\r\n\
         --{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.bin\"\r\n\
         Content-Type: application/octet-stream\r\n\r\n",
        session.csrf
    );
    let epilogue = format!("\r\n--{boundary}--\r\n");
    let length = preamble.len() as u64 + GIB + epilogue.len() as u64;
    let head = format!(
        "POST /rooms/r1/files HTTP/1.1\r\nHost: {}\r\nCookie: {}\r\n\
         Content-Type: multipart/form-data; boundary={boundary}\r\nContent-Length: {length}\r\n\
         Connection: close\r\n\r\n",
        server.base.trim_start_matches("http://"),
        session.cookies
    );
    let before = rss_kib(pid);
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sampler = {
        let done = done.clone();
        tokio::spawn(async move {
            let mut peak = 0;
            while !done.load(Ordering::Relaxed) {
                peak = peak.max(rss_kib(pid));
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            peak
        })
    };
    let started = Instant::now();
    let mut stream = tokio::net::TcpStream::connect(server.base.trim_start_matches("http://"))
        .await
        .expect("connect");
    stream.write_all(head.as_bytes()).await.expect("head");
    stream
        .write_all(preamble.as_bytes())
        .await
        .expect("preamble");
    // 1 MiB at a time: the client shares the machine, and small writes would make it the bottleneck.
    let mut file = tokio::fs::File::open(&source).await.expect("open source");
    let mut buffer = vec![0u8; 1 << 20];
    loop {
        let read = file.read(&mut buffer).await.expect("read source");
        if read == 0 {
            break;
        }
        stream.write_all(&buffer[..read]).await.expect("send file");
    }
    stream
        .write_all(epilogue.as_bytes())
        .await
        .expect("epilogue");
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .await
        .expect("response");
    let upload_secs = started.elapsed().as_secs_f64();
    done.store(true, Ordering::Relaxed);
    let peak = sampler.await.expect("sampler");
    assert!(
        response.starts_with("HTTP/1.1 303"),
        "upload: {}",
        response.lines().next().unwrap_or("")
    );
    let growth = peak.saturating_sub(before) as f64 / 1024.0;
    let mib_s = |secs: f64| 1024.0 / secs;
    report.note(format!(
        "Upload of 1 GiB through the form: {:.1} s ({:.0} MiB/s), a plain copy of the file {:.1} s ({:.0} MiB/s); server RSS grew {growth:.1} MiB.",
        upload_secs, mib_s(upload_secs), copy_secs, mib_s(copy_secs)
    ));
    report.target(
        &format!("1 GiB upload grows server RSS ≤ 8 MiB ({growth:.1} MiB)"),
        growth <= 8.0,
    );
    // Delete the upload again, so that the bench directory does not grow with every run.
    let id = response
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .starts_with("location:")
                .then(|| l.to_string())
        })
        .and_then(|l| l.rsplit("#m").next().map(|id| id.trim().to_string()))
        .expect("location");
    let (status, _, _) = server
        .request(
            Method::POST,
            &format!("/rooms/r1/messages/{id}/delete"),
            Some(session),
            Some((
                "application/x-www-form-urlencoded",
                format!("csrf={}", session.csrf),
            )),
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "deleting the upload");
}

/// What PostgreSQL's autovacuum does after the posting scenarios wrote thousands of messages in
/// seconds (a machine may run PostgreSQL with it off): the search index takes in its pending
/// entries and the planner's statistics count the new rows, as a live database's would.
async fn upkeep(db: &Db) {
    db.run(|conn| {
        conn.batch_execute("VACUUM ANALYZE messages")
            .map_err(confab::error::Error::from)
    })
    .await
    .expect("VACUUM ANALYZE messages");
}

async fn count_messages(db: &Db, slug: &'static str) -> i64 {
    db.run(move |conn| {
        use confab::db::schema::{messages, rooms};
        use diesel::prelude::*;
        let room: i64 = rooms::table
            .filter(rooms::slug.eq(slug))
            .select(rooms::id)
            .first(conn)?;
        Ok::<_, confab::error::Error>(
            messages::table
                .filter(messages::room_id.eq(room))
                .count()
                .get_result(conn)?,
        )
    })
    .await
    .expect("count")
}

/// Replaces this backend's section of docs/benchmarks.md.
fn write_section(backend: &str, table: &str) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("docs")
        .join("benchmarks.md");
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    let (start, end) = (
        format!("<!-- {backend}:start -->"),
        format!("<!-- {backend}:end -->"),
    );
    let section = format!("{start}\n{table}{end}");
    let updated = match (text.find(&start), text.find(&end)) {
        (Some(a), Some(b)) => format!("{}{section}{}", &text[..a], &text[b + end.len()..]),
        _ => format!("{text}\n{section}\n"),
    };
    if let Err(e) = std::fs::write(&path, updated) {
        eprintln!("could not write {}: {e}", path.display());
    }
}
