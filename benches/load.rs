//! Confab's benchmark: seeds a database with a realistic history, serves Confab in-process on
//! loopback, drives it with concurrent keep-alive clients, and compares each scenario with the
//! baseline (`GET /healthz` under the same concurrency, in the same run).
//!
//! ```text
//! cargo bench --bench load -- [--scale small|large] [--database-url postgres://…] [--requests N]
//! ```
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
}

fn args() -> Args {
    let mut args = Args {
        scale: &SMALL,
        database_url: None,
        requests: 4000,
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
        confab::db::schema::users::table
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
            "('u{u}', 'u{u}@example.org', '{hash}', false, true, 'UTC', 0, '{}')",
            at(0)
        ));
        if rows.len() == 1000 {
            batch(&mut conn, "INSERT INTO users (username, email, password_hash, is_admin, is_active, time_zone, failed_logins, created_at)", &mut rows);
        }
    }
    batch(&mut conn, "INSERT INTO users (username, email, password_hash, is_admin, is_active, time_zone, failed_logins, created_at)", &mut rows);
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
    db: Db,
}

impl Server {
    async fn request(
        &self,
        method: Method,
        path: &str,
        session: Option<&Session>,
        body: Option<(&str, String)>,
    ) -> (StatusCode, Vec<(String, String)>, String) {
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
            .expect("response");
        let status = response.status();
        let headers = response
            .headers()
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
            .collect();
        let bytes = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        (
            status,
            headers,
            String::from_utf8_lossy(&bytes).into_owned(),
        )
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
    let next = Arc::new(AtomicU64::new(0));
    let before = server.db.queries();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..clients {
        let (server, next, make) = (server.clone(), next.clone(), make.clone());
        let session = sessions[c % sessions.len()].clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed) as usize;
                if i >= requests {
                    break;
                }
                let path = make(i);
                let t = Instant::now();
                let (status, _, _) = server
                    .request(Method::GET, &path, Some(&session), None)
                    .await;
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
    let queries = (server.db.queries() - before) as f64 / requests as f64;
    Measured {
        requests,
        seconds,
        p50: percentile(&latencies, 0.5),
        p99: percentile(&latencies, 0.99),
        queries,
    }
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
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
    verdicts: Vec<String>,
}

impl Report {
    fn row(&mut self, scenario: &str, m: &Measured, baseline: f64) {
        self.rows.push(format!(
            "| {scenario} | {:.0} | {:.2}× | {:.2} ms | {:.2} ms | {:.2} |",
            m.throughput(),
            m.throughput() / baseline,
            m.p50.as_secs_f64() * 1000.0,
            m.p99.as_secs_f64() * 1000.0,
            m.queries
        ));
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
    let seed_url = url.clone();
    let scale_ref: &'static Scale = scale;
    tokio::task::spawn_blocking(move || seed(&seed_url, scale_ref))
        .await
        .expect("seed");

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("port");
    let url_text = match &url {
        DatabaseUrl::Postgres(u) => u.clone(),
        DatabaseUrl::Sqlite(p) => p.display().to_string(),
    };
    let figment = confab::Settings::default_figment()
        .merge(("database_url", url_text))
        .merge(("data_dir", dir.join("data")))
        .merge(("uploads_dir", dir.join("uploads")))
        .merge(("port", port))
        .merge(("log_level", "off"))
        .merge(("jobs_enabled", false))
        .merge(("login_slowdown_ms", 0))
        .merge(("db_pool_size", 16))
        .merge(("max_held_polls", 20_000))
        .merge(("workers", 8));
    let settings = confab::Settings::from_figment(figment).expect("settings");
    let rocket = confab::app(settings).ignite().await.expect("ignite");
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
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    let http: Http = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(2048)
        .build(connector);
    let server = Arc::new(Server {
        base: format!("http://127.0.0.1:{port}"),
        http,
        db,
    });
    let idle_rss = rss_kib();

    let mut sessions = Vec::new();
    for u in 0..8 {
        sessions.push(server.login(&format!("u{u}")).await);
    }
    let mut report = Report {
        rows: Vec::new(),
        verdicts: Vec::new(),
    };
    let n = args.requests;

    let baseline = drive(
        &server,
        &sessions,
        64,
        n,
        Arc::new(|_| "/healthz".to_string()),
    )
    .await;
    let base = baseline.throughput();
    report.row("baseline: GET /healthz (64 clients)", &baseline, base);

    // Empty polls.
    let cursor = token(&server, &sessions[0], "r0").await;
    let mut cursors = Vec::new();
    for s in &sessions {
        cursors.push(token(&server, s, "r0").await);
    }
    let _ = cursor;
    let empty_path = Arc::new(cursors[0].clone());
    let empty = drive(
        &server,
        &sessions[..1],
        64,
        n,
        Arc::new(move |_| format!("/api/rooms/r0/events?after={empty_path}")),
    )
    .await;
    report.row("poll with nothing new (64 clients)", &empty, base);
    report.target(
        &format!(
            "empty poll ≥ 0.8 × baseline ({:.2}×)",
            empty.throughput() / base
        ),
        empty.throughput() >= 0.8 * base,
    );
    report.target(
        &format!("empty poll makes 0 queries ({:.2})", empty.queries),
        empty.queries == 0.0,
    );

    // A poll that returns one new message.
    let mut poll_queries = Vec::new();
    let mut after = token(&server, &sessions[0], "r1").await;
    for i in 0..50 {
        post(
            &server,
            &sessions[1],
            "r1",
            &format!("one new {i}"),
            &format!("one-new-{i}-{}", std::process::id()),
        )
        .await;
        let before = server.db.queries();
        let (status, _, body) = server
            .request(
                Method::GET,
                &format!("/api/rooms/r1/events?after={after}"),
                Some(&sessions[0]),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        poll_queries.push(server.db.queries() - before);
        after = body
            .split(r#""cursor":""#)
            .nth(1)
            .and_then(|r| r.split('"').next())
            .expect("cursor")
            .to_string();
    }
    let per_poll = poll_queries.iter().sum::<u64>() as f64 / poll_queries.len() as f64;
    report.rows.push(format!(
        "| poll returning one new message | | | | | {per_poll:.2} |"
    ));
    report.target(
        &format!("poll with one new message ≤ 2 queries ({per_poll:.2})"),
        per_poll <= 2.0,
    );

    // Posting: 50 concurrent posters.
    let posters = 50;
    let per_poster = (n / posters).max(4);
    let before_count = count_messages(&server.db, "r1").await;
    let before_queries = server.db.queries();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for p in 0..posters {
        let server = server.clone();
        let session = sessions[p % sessions.len()].clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            for i in 0..per_poster {
                let t = Instant::now();
                let id = format!("bench-{}-{p}-{i}", std::process::id());
                assert_eq!(
                    post(&server, &session, "r1", &format!("post {p} {i}"), &id).await,
                    StatusCode::CREATED
                );
                // Every fourth post is sent twice, as a double click would.
                if i % 4 == 0 {
                    assert_eq!(
                        post(&server, &session, "r1", &format!("post {p} {i}"), &id).await,
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
    latencies.sort();
    let sends = posters * per_poster + posters * per_poster.div_ceil(4);
    let posted = Measured {
        requests: sends,
        seconds: started.elapsed().as_secs_f64(),
        p50: percentile(&latencies, 0.5),
        p99: percentile(&latencies, 0.99),
        queries: (server.db.queries() - before_queries) as f64 / sends as f64,
    };
    report.row(
        "post a message, API (50 posters, 1 in 4 sent twice)",
        &posted,
        base,
    );
    let stored = count_messages(&server.db, "r1").await - before_count;
    report.target(
        &format!(
            "posts: none lost or doubled ({stored} stored of {})",
            posters * per_poster
        ),
        stored == (posters * per_poster) as i64,
    );
    report.target(
        &format!("post ≤ 4 queries per request ({:.2})", posted.queries),
        posted.queries <= 4.0,
    );

    // Room pages.
    let pages = n / 4;
    let latest_big = drive(
        &server,
        &sessions,
        16,
        pages,
        Arc::new(|_| "/rooms/r0".to_string()),
    )
    .await;
    let latest_small = drive(
        &server,
        &sessions,
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
    let middle = scale.big_room / 2;
    let older = drive(
        &server,
        &sessions,
        16,
        pages,
        Arc::new(move |i| format!("/rooms/r0?before={}", middle + (i as i64 % 1000))),
    )
    .await;
    let permalink = drive(
        &server,
        &sessions,
        16,
        pages,
        Arc::new(move |i| format!("/rooms/r0?around={}", middle + (i as i64 % 1000))),
    )
    .await;
    report.row("older page from the middle of the big room", &older, base);
    report.row("permalink in the middle of the big room", &permalink, base);
    let (r1, r2) = (
        older.p50.as_secs_f64() / latest_big.p50.as_secs_f64(),
        permalink.p50.as_secs_f64() / latest_big.p50.as_secs_f64(),
    );
    report.target(
        &format!("older page ≤ 1.3 × latest ({r1:.2}×), permalink ≤ 1.3 × latest ({r2:.2}×)"),
        r1 <= 1.3 && r2 <= 1.3,
    );

    let search = drive(
        &server,
        &sessions,
        8,
        (n / 20).max(20),
        Arc::new(|_| "/search?q=zyzzyva".to_string()),
    )
    .await;
    report.row("search for a rare word", &search, base);
    let ratio = search.p50.as_secs_f64() / latest_big.p50.as_secs_f64();
    report.target(
        &format!("rare-word search ≤ 10 × the latest page ({ratio:.2}×)"),
        ratio <= 10.0,
    );

    // Held polls: 1,000 waiting across 100 rooms (or as many rooms as there are), then a post.
    let rooms = scale.rooms.min(100) as usize;
    let mut room_tokens = Vec::new();
    for r in 0..rooms {
        room_tokens.push(token(&server, &sessions[0], &format!("r{r}")).await);
    }
    let waiting = 1000;
    let rss_before = rss_kib();
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
    let per_held = (rss_kib().saturating_sub(rss_before) as f64 / waiting as f64) * 1024.0;
    let posted_at = Instant::now();
    post(
        &server,
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
        "| held polls: {waiting} across {rooms} rooms, a post in one | | | {:.2} ms | {:.2} ms | |",
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
    report.target(
        &format!(
            "memory per held poll ≤ 20 KiB ({:.1} KiB, client and server in one process)",
            per_held / 1024.0
        ),
        per_held <= 20.0 * 1024.0,
    );
    for task in held {
        task.abort();
    }

    let rss = rss_kib();
    let table = format!(
        "### {backend}, scale `{}` ({} users, {} rooms, {} messages, the big room {})\n\n\
         | scenario | req/s | × baseline | p50 | p99 | queries/req |\n|---|---|---|---|---|---|\n{}\n\n\
         Memory (RSS of the one process that runs server and clients): {} MiB after start, {} MiB at the end.\n\n{}\n",
        scale.name, scale.users, scale.rooms, scale.messages, scale.big_room,
        report.rows.join("\n"),
        idle_rss / 1024,
        rss / 1024,
        report.verdicts.join("\n"),
    );
    println!("\n{table}");
    write_section(backend, &table);
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
