//! Side by side with django-conversate, the persistent chat of the project's seeds, as the
//! performance issue measured it: the same four scenarios (a room page of the latest 100
//! messages, a poll with nothing new, a poll returning one new message, a post), driven by the
//! same client in the same run, each side's CPU counted over its server processes and PostgreSQL.
//!
//! Conversate is not part of this repository: docs/benchmarks.md says how it was set up (gunicorn
//! on a port, a room `bench` of 10 members `bench0`…`bench9` with 10,000 messages). Its answers
//! are checked as well as Confab's: it says `"success": false` with a 200, so every poll and post
//! is read for `"success": true` before and after each scenario, and a poll after the posts must
//! return every one of them.

use std::sync::Arc;

use hyper::{Method, StatusCode};

use super::{
    command_cpu_ms, drive_asking, postgres_cpu_ms, start_child, token, Ask, Measured, Server,
    Session,
};

/// Requests per scenario on conversate's side (its room page costs some 80 ms of CPU).
const CONVERSATE_REQUESTS: usize = 160;
/// Concurrent clients on each side.
const CLIENTS: usize = 16;
/// Form bodies.
const FORM: &str = "application/x-www-form-urlencoded";

/// What one side measured, scenario by scenario.
struct Side {
    page: Measured,
    empty_poll: Measured,
    one_new: Measured,
    post: Measured,
}

/// Runs both sides against conversate at `base` (`http://127.0.0.1:8099`) and Confab on `url`
/// (a fresh `confab` child process), and prints the comparison.
pub async fn compare(base: &str, url: &str, dir: &std::path::Path, requests: usize) {
    let port: u16 = base
        .rsplit(':')
        .next()
        .and_then(|p| p.trim_end_matches('/').parse().ok())
        .expect("--conversate http://127.0.0.1:<port>");
    let theirs = conversate(Arc::new(Server::new(port, None))).await;
    let ours = confab(url, dir, requests).await;
    println!(
        "| scenario | conversate req/s | Confab req/s | × | CPU per request, conversate → Confab | × |\n|---|---|---|---|---|---|"
    );
    for (what, c, o) in [
        ("room page, latest 100", &theirs.page, &ours.page),
        ("poll, nothing new", &theirs.empty_poll, &ours.empty_poll),
        ("poll, one new message", &theirs.one_new, &ours.one_new),
        ("post a message", &theirs.post, &ours.post),
    ] {
        println!(
            "| {what} | {:.0} | {:.0} | {:.0}× | {:.2} ms → {:.3} ms | {:.0}× |",
            c.throughput(),
            o.throughput(),
            o.throughput() / c.throughput(),
            c.cpu_ms,
            o.cpu_ms,
            c.cpu_ms / o.cpu_ms,
        );
    }
}

/// The value of cookie `name` among `headers`' `Set-Cookie`s.
fn cookie(headers: &[(String, String)], name: &str) -> String {
    headers
        .iter()
        .filter(|(k, _)| k == "set-cookie")
        .find_map(|(_, v)| v.strip_prefix(&format!("{name}="))?.split(';').next())
        .unwrap_or_else(|| panic!("no {name} cookie"))
        .to_string()
}

/// Logs `user` in through Django's login form.
async fn login(server: &Server, user: &str) -> Session {
    let (status, headers, _) = server
        .request(Method::GET, "/accounts/login/", None, None)
        .await;
    assert_eq!(status, StatusCode::OK, "conversate's login page");
    let csrf = cookie(&headers, "csrftoken");
    let anonymous = Session {
        cookies: format!("csrftoken={csrf}"),
        csrf: csrf.clone(),
    };
    let form = format!("csrfmiddlewaretoken={csrf}&username={user}&password=bench+password");
    let (status, headers, _) = server
        .request(
            Method::POST,
            "/accounts/login/",
            Some(&anonymous),
            Some((FORM, form)),
        )
        .await;
    assert_eq!(status, StatusCode::FOUND, "logging {user} in to conversate");
    let csrf = cookie(&headers, "csrftoken");
    let session = cookie(&headers, "sessionid");
    Session {
        cookies: format!("csrftoken={csrf}; sessionid={session}"),
        csrf,
    }
}

/// The number after `"last": ` (quoted or not) in a page's settings or a poll's answer.
fn last_of(text: &str) -> i64 {
    text.split(r#""last": "#)
        .nth(1)
        .map(|r| r.trim_start_matches('"'))
        .and_then(|r| r.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse().ok())
        .expect("a message id")
}

/// The room's newest message id: the page's settings name the newest message by time, which posts
/// made at once may not order as their ids, so a poll after it gives the highest id.
async fn newest(server: &Server, session: &Session) -> i64 {
    let (status, _, page) = server
        .request(Method::GET, "/conversate/bench/", Some(session), None)
        .await;
    assert_eq!(status, StatusCode::OK, "conversate's room page");
    assert!(
        page.matches(r#"<tr class="cnv_user_"#).count() >= 100,
        "conversate's room page shows 100 messages"
    );
    let shown = last_of(&page);
    last_of(&succeeds(server, session, poll(shown, session)).await)
}

/// A poll of conversate's room after message `last`, as its page's script makes it.
fn poll(last: i64, session: &Session) -> (Method, String, Option<(&'static str, String)>) {
    let form = format!(
        "last={last}&hasFocus=true&csrfmiddlewaretoken={}",
        session.csrf
    );
    (
        Method::POST,
        "/conversate/bench/api/poll/".to_string(),
        Some((FORM, form)),
    )
}

/// A post to conversate's room by a reader whose newest message is `last`.
fn send(
    text: &str,
    last: i64,
    session: &Session,
) -> (Method, String, Option<(&'static str, String)>) {
    let form = format!(
        "content={text}&last={last}&hasFocus=true&csrfmiddlewaretoken={}",
        session.csrf
    );
    (
        Method::POST,
        "/conversate/bench/api/send/".to_string(),
        Some((FORM, form)),
    )
}

/// Makes `request` once and checks that conversate says it succeeded; returns its body.
async fn succeeds(
    server: &Server,
    session: &Session,
    request: (Method, String, Option<(&'static str, String)>),
) -> String {
    let (method, path, body) = request;
    let (status, _, answer) = server.request(method, &path, Some(session), body).await;
    assert_eq!(status, StatusCode::OK, "{path}");
    assert!(answer.contains(r#""success": true"#), "{path}: {answer}");
    answer
}

/// `requests` polls of conversate's room after message `last` by `sessions`, the last of them
/// checked to have succeeded.
async fn polls(
    server: &Arc<Server>,
    sessions: &[Session],
    requests: usize,
    last: i64,
    cpu: Arc<dyn Fn() -> f64 + Send + Sync>,
) -> Measured {
    let ask: Ask = Arc::new(move |_, s| poll(last, s));
    let measured = drive_asking(server, sessions, CLIENTS, requests, ask, cpu).await;
    succeeds(server, &sessions[0], poll(last, &sessions[0])).await;
    measured
}

/// Conversate's side: eight of its members logged in, each scenario checked around its run.
async fn conversate(server: Arc<Server>) -> Side {
    let mut sessions = Vec::new();
    for u in 0..8 {
        sessions.push(login(&server, &format!("bench{u}")).await);
    }
    let cpu = Arc::new(|| command_cpu_ms("gunicorn") + postgres_cpu_ms());
    let n = CONVERSATE_REQUESTS;
    let page = drive_asking(
        &server,
        &sessions,
        CLIENTS,
        n,
        Arc::new(|_, _| (Method::GET, "/conversate/bench/".to_string(), None)),
        cpu.clone(),
    )
    .await;

    let last = newest(&server, &sessions[0]).await;
    let empty = succeeds(&server, &sessions[0], poll(last, &sessions[0])).await;
    assert!(empty.contains(r#""messages": []"#), "{empty}");
    let empty_poll = polls(&server, &sessions, n * 4, last, cpu.clone()).await;

    succeeds(&server, &sessions[1], send("one+new", last, &sessions[1])).await;
    let one = succeeds(&server, &sessions[0], poll(last, &sessions[0])).await;
    assert_eq!(one.matches(r#""pk": "#).count(), 1, "{one}");
    let one_new = polls(&server, &sessions, n * 4, last, cpu.clone()).await;

    // Each poster has seen the room up to the posts before its own, as a live page has.
    let before = newest(&server, &sessions[0]).await;
    let ask: Ask = Arc::new(move |i, s| send(&format!("bench+post+{i}"), before + i as i64, s));
    let post = drive_asking(&server, &sessions, CLIENTS, n * 2, ask, cpu).await;
    let since = succeeds(&server, &sessions[0], poll(before, &sessions[0])).await;
    assert_eq!(
        since.matches(r#""pk": "#).count(),
        n * 2 + sessions.len(),
        "every post to conversate was kept"
    );
    Side {
        page,
        empty_poll,
        one_new,
        post,
    }
}

/// Confab's side, in a `confab` child process, on the bench's rooms: pages and polls in `r0`
/// (20,000 messages at the small scale), posts in `r1`.
async fn confab(url: &str, dir: &std::path::Path, requests: usize) -> Side {
    let started = start_child(url, dir).await;
    let server = started.server.clone();
    let sessions = server.members().await;
    let cpu = started.cpu();
    let page = drive_asking(
        &server,
        &sessions,
        CLIENTS,
        requests,
        Arc::new(|_, _| (Method::GET, "/rooms/r0".to_string(), None)),
        cpu.clone(),
    )
    .await;

    let mut cursor = String::new();
    for session in &sessions {
        cursor = token(&server, session, "r0").await;
    }
    let empty = format!("/api/rooms/r0/events?after={cursor}");
    let (status, _, _) = server
        .request(Method::GET, &empty, Some(&sessions[0]), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "a poll with nothing new");
    // Polls are cheap on this side: four times the requests of the other scenarios.
    let polls = |path: String| {
        drive_asking(
            &server,
            &sessions,
            CLIENTS,
            requests * 4,
            Arc::new(move |_, _| (Method::GET, path.clone(), None)),
            cpu.clone(),
        )
    };
    let empty_poll = polls(empty.clone()).await;

    let status = super::post(
        &server,
        &sessions[1],
        "r0",
        "one new",
        &format!("side-by-side-one-new-{}", std::process::id()),
    )
    .await;
    assert!(status.is_success(), "posting the one new message: {status}");
    let (status, _, one) = server
        .request(Method::GET, &empty, Some(&sessions[0]), None)
        .await;
    assert_eq!(status, StatusCode::OK, "a poll with one new message");
    assert!(one.contains("one new"), "{one}");
    let one_new = polls(empty).await;

    let run = std::process::id();
    let ask: Ask = Arc::new(move |i, _| {
        let json = format!(r#"{{"body":"bench post {i}","client_id":"side-{run}-{i}"}}"#);
        (
            Method::POST,
            "/api/rooms/r1/messages".to_string(),
            Some(("application/json", json)),
        )
    });
    let post = drive_asking(&server, &sessions, CLIENTS, requests * 2, ask, cpu).await;
    drop(started);
    Side {
        page,
        empty_poll,
        one_new,
        post,
    }
}
