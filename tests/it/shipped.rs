//! Confab as shipped: the built binary, started from an empty folder, reached over real HTTP, with
//! mail through a real SMTP server.

use std::collections::BTreeMap;
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use super::common::{Backend, TestApp};
use super::process::{Server, PASSWORD};
use super::smtp::SmtpSink;

crate::both_backends!(the_binary_mails_alerts_through_smtp);

/// A response, read whole.
pub struct Reply {
    pub status: u16,
    pub headers: hyper::HeaderMap,
    pub body: String,
}

/// The boundary of the multipart bodies these tests write by hand.
const BOUNDARY: &str = "confabtestboundary";

/// A multipart body up to the start of a file's bytes: the form token, then the file part's head.
fn file_part_head(csrf: &str, file_name: &str) -> String {
    format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\n{csrf}\r\n\
         --{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{file_name}\"\r\n\
         Content-Type: application/octet-stream\r\n\r\n"
    )
}

impl Reply {
    /// The form token of the page's forms.
    pub fn csrf(&self) -> String {
        self.body
            .split("name=\"csrf\" value=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .expect("a csrf field on the page")
            .to_string()
    }

    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }
}

/// A plain HTTP client with a cookie jar, like a browser without JavaScript.
pub struct Http {
    base: String,
    cookies: BTreeMap<String, String>,
    client: Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>,
}

impl Http {
    pub fn new(base: String) -> Http {
        Http {
            base,
            cookies: BTreeMap::new(),
            client: Client::builder(TokioExecutor::new()).build_http(),
        }
    }

    /// The `Cookie` header this client sends.
    pub fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    async fn send(&mut self, method: &str, path: &str, form: Option<String>) -> Reply {
        let cookie = self.cookie_header();
        let mut request = hyper::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base))
            .header("Cookie", cookie);
        if form.is_some() {
            request = request.header("Content-Type", "application/x-www-form-urlencoded");
        }
        let request = request
            .body(Full::new(Bytes::from(form.unwrap_or_default())))
            .expect("request");
        let response = self.client.request(request).await.expect("response");
        for value in response.headers().get_all("set-cookie") {
            let value = value.to_str().unwrap_or("");
            if let Some((name, rest)) = value.split_once('=') {
                let cookie_value = rest.split(';').next().unwrap_or("");
                if cookie_value.is_empty() {
                    self.cookies.remove(name);
                } else {
                    self.cookies
                        .insert(name.to_string(), cookie_value.to_string());
                }
            }
        }
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        Reply {
            status,
            headers,
            body: String::from_utf8_lossy(&body).into_owned(),
        }
    }

    pub async fn get(&mut self, path: &str) -> Reply {
        self.send("GET", path, None).await
    }

    /// Posts a form with the page's CSRF token (read from `from`, the page that holds the form).
    pub async fn post(&mut self, from: &Reply, path: &str, fields: &[(&str, &str)]) -> Reply {
        let csrf = from.csrf();
        let form = std::iter::once(("csrf", csrf.as_str()))
            .chain(fields.iter().copied())
            .map(|(k, v)| format!("{k}={}", super::common::encode(v)))
            .collect::<Vec<_>>()
            .join("&");
        self.send("POST", path, Some(form)).await
    }

    /// Logs in through the login form.
    pub async fn login(&mut self, name: &str) {
        let page = self.get("/login").await;
        assert_eq!(page.status, 200);
        let done = self
            .post(
                &page,
                "/login",
                &[("username", name), ("password", PASSWORD)],
            )
            .await;
        assert_eq!(done.status, 303, "logged in: {}", done.body);
    }
}

/// A served binary with `settings`, ann logged in over HTTP, and the form token of her room page.
async fn ann_in_general(settings: &[(&str, &str)]) -> (Server, Http, String) {
    let mut server = Server::new(settings);
    server.start().await;
    let mut http = Http::new(server.url(""));
    http.login("ann").await;
    let csrf = http.get("/rooms/general").await.csrf();
    (server, http, csrf)
}

#[tokio::test]
async fn the_binary_runs_from_an_empty_folder() {
    let mut server = Server::new(&[]);
    server.start().await;
    let mut http = Http::new(server.url(""));
    let login = http.get("/login").await;
    assert_eq!(login.status, 200);
    assert!(login.body.contains("name=\"username\""), "{}", login.body);
    assert!(login.body.contains("/static/favicon.svg"));
    let css = http.get("/static/css/confab.css").await;
    assert_eq!(css.status, 200);
    assert!(css.header("content-type").starts_with("text/css"));
    assert!(css.body.contains('{'), "a real stylesheet");
    let script = http.get("/static/js/room.js").await;
    assert_eq!(script.status, 200);
    assert!(script.header("content-type").contains("javascript"));
    let icon = http.get("/favicon.ico").await;
    assert_eq!(icon.status, 200);
    assert!(icon.body.contains("<svg"));
    let unread = http.get("/static/favicon-unread.svg").await;
    assert!(unread.status == 200 && unread.header("content-type").starts_with("image/svg"));
    let module = http.get("/static/js/room/poller.js").await;
    assert!(module.status == 200 && module.header("content-type").contains("javascript"));
    assert_eq!(http.get("/static/../Cargo.toml").await.status, 404);
    assert_eq!(http.get("/static/css/nothing.css").await.status, 404);

    http.login("ann").await;
    let room = http.get("/rooms/general").await;
    assert_eq!(room.status, 200, "{}", room.body);
    assert!(room.body.contains("General"));
    assert_eq!(room.header("cache-control"), "no-store", "a private page");
    let posted = http
        .post(
            &room,
            "/rooms/general/messages",
            &[("body", "hello from an empty folder")],
        )
        .await;
    assert_eq!(posted.status, 303);
    let room = http.get("/rooms/general").await;
    assert!(room.body.contains("hello from an empty folder"));
    let entries: Vec<String> = std::fs::read_dir(server.dir())
        .expect("dir")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        !entries.iter().any(|e| e == "templates" || e == "static"),
        "nothing was unpacked beside it: {entries:?}"
    );
}

#[tokio::test]
async fn a_theme_folder_replaces_embedded_files() {
    let theme = tempfile::tempdir().expect("dir");
    std::fs::create_dir_all(theme.path().join("static/css")).expect("dir");
    std::fs::create_dir_all(theme.path().join("templates")).expect("dir");
    std::fs::write(
        theme.path().join("static/css/confab.css"),
        "body { color: rebeccapurple }",
    )
    .expect("css");
    // A partial override that extends the embedded base layout.
    std::fs::write(
        theme.path().join("templates/login.html.tera"),
        "{% extends \"base\" %}{% block content %}<p>Our club's own login</p>{% endblock %}",
    )
    .expect("template");
    let theme_dir = theme.path().display().to_string();
    let mut server = Server::new(&[("CONFAB_THEME_DIR", &theme_dir)]);
    server.start().await;
    let mut http = Http::new(server.url(""));
    let css = http.get("/static/css/confab.css").await;
    assert_eq!(css.body, "body { color: rebeccapurple }");
    let script = http.get("/static/js/room.js").await;
    assert_eq!(script.status, 200, "files the theme lacks stay embedded");
    let login = http.get("/login").await;
    assert!(
        login.body.contains("Our club's own login"),
        "{}",
        login.body
    );
    assert!(
        login.body.contains("/static/css/confab.css"),
        "the embedded base"
    );

    let out = Server::bare(&[("CONFAB_THEME_DIR", "/no/such/theme")]).command(&["migrate"], "");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("theme_dir"));
}

#[tokio::test]
async fn operator_commands_version_and_settings_checks() {
    let server = Server::bare(&[]);
    let out = server.command(&["--version"], "");
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("confab {}", env!("CARGO_PKG_VERSION"))
    );
    let idle_as_away = Server::bare(&[("CONFAB_AWAY_AFTER", "60"), ("CONFAB_POLL_MAX", "60")]);
    let out = idle_as_away.command(&["migrate"], "");
    assert!(!out.status.success(), "away_after must exceed poll_max");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("away_after"), "{stderr}");

    // Without smtp_url the test mail is written as a file.
    let out = server.command(&["mail", "test", "ops@example.org"], "");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("smtp_url is not set"));
    let mails: Vec<_> = std::fs::read_dir(server.dir().join("data/mail"))
        .expect("mail dir")
        .flatten()
        .collect();
    assert_eq!(mails.len(), 1);
}

// Multi-threaded: the sink keeps serving while the test waits for the command.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mail_test_goes_through_smtp_and_reports_failure() {
    let sink = SmtpSink::start().await;
    let url = sink.url();
    let server = Server::bare(&[("CONFAB_SMTP_URL", &url)]);
    let out = server.command(&["mail", "test", "ops@example.org"], "");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mails = sink.mails();
    assert_eq!(mails.len(), 1);
    assert_eq!(mails[0].to, vec!["ops@example.org".to_string()]);
    assert!(mails[0].text().contains("Mail delivery works"));

    let nobody = format!("smtp://127.0.0.1:{}", super::process::free_port());
    let out = Server::bare(&[("CONFAB_SMTP_URL", &nobody)])
        .command(&["mail", "test", "x@example.org"], "");
    assert!(!out.status.success(), "a server that is down is reported");
    assert!(String::from_utf8_lossy(&out.stderr).contains("not sent"));
}

async fn the_binary_mails_alerts_through_smtp(backend: Backend) {
    // The database is prepared through the library; the binary does the mailing.
    let Some(app) = TestApp::start(backend).await else {
        return;
    };
    let ann = app.user("ann", false).await;
    let bob = app.user("bob", false).await;
    let room = app.room("general", false, &[ann, bob]).await;
    app.messages(room, bob, vec!["the minutes are up".into()])
        .await;
    let sink = SmtpSink::start().await;
    let (url, smtp) = (app.database.url_string(), sink.url());
    let data = app.database.dir.path().join("binary-data");
    let data = data.display().to_string();
    let inbound_port = super::process::free_port();
    let inbound = format!("127.0.0.1:{inbound_port}");
    let mut server = Server::bare(&[
        ("CONFAB_DATABASE_URL", &url),
        ("CONFAB_DATA_DIR", &data),
        ("CONFAB_SMTP_URL", &smtp),
        ("CONFAB_ALERT_DELAY", "1"),
        ("CONFAB_MENTION_ALERT_DELAY", "1"),
        ("CONFAB_ALERT_TICK", "1"),
        ("CONFAB_POLL_MAX", "2"),
        ("CONFAB_POLL_MIN", "1"),
        ("CONFAB_AWAY_AFTER", "3"),
        ("CONFAB_REPLY_ADDRESS", "confab+{token}@chat.test"),
        ("CONFAB_INBOUND_SMTP_ADDRESS", &inbound),
    ]);
    server.start().await;
    let mut mails = Vec::new();
    for _ in 0..300 {
        mails = sink.mails();
        if !mails.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mail = mails.first().expect("an alert arrived at the SMTP server");
    assert!(
        mails
            .iter()
            .all(|m| m.to != vec!["bob@example.org".to_string()]),
        "bob wrote it"
    );
    assert_eq!(mail.to, vec!["ann@example.org".to_string()]);
    assert!(
        mail.text().contains("the minutes are up"),
        "{}",
        mail.text()
    );
    assert!(mail.header("List-Unsubscribe").is_some());

    // Ann answers the mail; the binary's inbound listener posts it in the room, in the thread.
    let reply_to = mail.header("Reply-To").expect("a reply address");
    let reply = format!(
        "From: ann@example.org\r\nTo: {reply_to}\r\nSubject: Re: news\r\nMessage-ID: <bin-1@example.org>\r\n\r\nOn my way.\r\n\r\nOn Tue, Dec 1, 2026, Confab wrote:\r\n> the minutes are up\r\n"
    );
    let smtp = lettre::AsyncSmtpTransport::<lettre::Tokio1Executor>::builder_dangerous("127.0.0.1")
        .port(inbound_port)
        .build();
    let envelope = lettre::address::Envelope::new(
        Some("ann@example.org".parse().expect("sender")),
        vec![reply_to.parse().expect("recipient")],
    )
    .expect("envelope");
    lettre::AsyncTransport::send_raw(&smtp, &envelope, reply.as_bytes())
        .await
        .expect("the reply is accepted");
    let posted: Vec<(i64, String, Option<i64>)> = app
        .write(move |c| {
            use confab::db::schema::messages;
            use diesel::prelude::*;
            Ok(messages::table
                .filter(messages::author_id.eq(ann))
                .select((messages::room_id, messages::body, messages::parent_id))
                .load(c)?)
        })
        .await;
    assert_eq!(posted.len(), 1, "{posted:?}");
    assert_eq!((posted[0].0, posted[0].1.as_str()), (room, "On my way."));
    assert!(
        posted[0].2.is_some(),
        "a reply to the one message of the alert"
    );
    // It stops cleanly, SMTP pool and all.
    assert!(server.terminate().success(), "a clean stop");
}

/// A client that starts an upload and then sends nothing more gets 408, and its partial file is gone.
#[tokio::test]
async fn a_stalled_upload_is_answered_and_cleaned_up() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (server, http, csrf) = ann_in_general(&[("CONFAB_UPLOAD_IDLE_SECS", "1")]).await;
    let boundary = BOUNDARY;
    let head = format!(
        "{}{}",
        file_part_head(&csrf, "big.bin"),
        "x".repeat(100_000)
    );
    let request = format!(
        "POST /rooms/general/files HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: {}\r\n\
         Content-Type: multipart/form-data; boundary={boundary}\r\nContent-Length: 10000000\r\n\r\n",
        http.cookie_header()
    );
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", server.port))
        .await
        .expect("connect");
    stream.write_all(request.as_bytes()).await.expect("head");
    stream.write_all(head.as_bytes()).await.expect("part");
    // Then nothing: the server gives up after upload_idle_secs.
    let mut answer = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(30), stream.read(&mut answer))
        .await
        .expect("an answer, not a connection held forever")
        .expect("read");
    let answer = String::from_utf8_lossy(&answer[..n]);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    let tmp = server.dir().join("uploads/tmp");
    let left: Vec<_> = std::fs::read_dir(&tmp)
        .map(|entries| entries.flatten().collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "no partial file left: {left:?}");
}

/// What an operator sees in a release log for ordinary traffic: no warning per download and no
/// 404 for the icon browsers ask for.
#[tokio::test]
async fn ordinary_traffic_logs_no_warnings() {
    let (mut server, mut http, csrf) = ann_in_general(&[("ROCKET_LOG_LEVEL", "normal")]).await;
    let boundary = BOUNDARY;
    let body = format!(
        "{}some notes\r\n--{boundary}--\r\n",
        file_part_head(&csrf, "notes.txt")
    );
    let request = hyper::Request::builder()
        .method("POST")
        .uri(server.url("/rooms/general/files"))
        .header("Cookie", http.cookie_header())
        .header(
            "Content-Type",
            format!("multipart/form-data; boundary={boundary}"),
        )
        .body(Full::new(Bytes::from(body)))
        .expect("request");
    let response = http.client.request(request).await.expect("upload");
    assert_eq!(response.status().as_u16(), 303);
    let room = http.get("/rooms/general").await;
    let page = room.body.replace("&#x2F;", "/");
    let link = page
        .split("href=\"/files/")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("a download link")
        .to_string();
    let download = http.get(&format!("/files/{link}")).await;
    assert_eq!(download.status, 200);
    assert_eq!(download.body, "some notes");
    assert_eq!(http.get("/favicon.ico").await.status, 200);
    let log = server.stop_with_output();
    assert!(
        log.contains("GET /favicon.ico"),
        "the log was captured: {log}"
    );
    assert!(log.contains("Shield"), "Shield is on: {log}");
    assert!(
        !log.contains("Refusing to overwrite"),
        "no Shield warning per download: {log}"
    );
    // (Not a bare "404": the port or a token may contain those digits.)
    assert!(
        !log.contains("404 Not Found") && !log.contains("No matching routes"),
        "no 404s: {log}"
    );
    assert!(!log.contains("Warning"), "{log}");
}
