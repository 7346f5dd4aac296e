//! The test harness: a Confab per test on its own database (a SQLite file in a temporary folder,
//! or a PostgreSQL database cloned from a migrated template), and a small browser that keeps
//! cookies and the form token like a real one.

use std::sync::OnceLock;

use confab::chat::{self, rooms, users};
use confab::db::{AnyConnection, DatabaseUrl, Db};
use confab::Settings;
use diesel::connection::SimpleConnection;
use diesel::{Connection, PgConnection, RunQueryDsl};
use rocket::http::{ContentType, Cookie, Status};
use rocket::local::asynchronous::{Client, LocalResponse};

/// The database a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Runs an async test function once per backend, as two tests `sqlite` and `postgres`.
#[macro_export]
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[rocket::async_test]
            async fn sqlite() {
                super::$name($crate::common::Backend::Sqlite).await
            }
            #[rocket::async_test]
            async fn postgres() {
                super::$name($crate::common::Backend::Postgres).await
            }
        }
    )*};
}

/// The password every test user has.
pub const PASSWORD: &str = "correct horse battery";

fn password_hash() -> &'static str {
    static HASH: OnceLock<String> = OnceLock::new();
    HASH.get_or_init(|| users::hash_password(PASSWORD).expect("hash"))
}

/// The server PostgreSQL tests create their databases on.
pub fn pg_admin_url() -> String {
    std::env::var("CONFAB_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

fn pg_url(database: &str) -> String {
    let admin = pg_admin_url();
    let base = admin
        .rsplit_once('/')
        .map_or(admin.as_str(), |(base, _)| base);
    format!("{base}/{database}")
}

/// Connects to the PostgreSQL server, or says why not. Under `CI=true` a missing server fails the test.
pub fn pg_admin() -> Option<PgConnection> {
    match PgConnection::establish(&pg_admin_url()) {
        Ok(conn) => Some(conn),
        Err(e) if std::env::var("CI").as_deref() == Ok("true") => {
            panic!(
                "PostgreSQL is required under CI=true but is not reachable at {}: {e}",
                pg_admin_url()
            )
        }
        Err(e) => {
            eprintln!(
                "skipped: PostgreSQL is not reachable at {} ({e})",
                pg_admin_url()
            );
            None
        }
    }
}

/// The migrated template database, made once per migration set (its name carries their hash).
fn pg_template() -> &'static str {
    static TEMPLATE: OnceLock<String> = OnceLock::new();
    TEMPLATE.get_or_init(|| {
        use sha2::{Digest, Sha256};
        let mut files: Vec<_> = walk("migrations/postgres");
        files.sort();
        let mut hasher = Sha256::new();
        for file in &files {
            hasher.update(file.to_string_lossy().as_bytes());
            hasher.update(std::fs::read(file).expect("read migration"));
        }
        let name = format!("confab_tmpl_{}", &hex::encode(hasher.finalize())[..16]);
        let mut admin = pg_admin().expect("PostgreSQL");
        admin
            .batch_execute("SELECT pg_advisory_lock(4242)")
            .expect("lock");
        let exists = diesel::select(diesel::dsl::sql::<diesel::sql_types::Bool>(&format!(
            "EXISTS (SELECT 1 FROM pg_database WHERE datname = '{name}')"
        )))
        .get_result::<bool>(&mut admin)
        .expect("query");
        if !exists {
            let building = format!("{name}_building");
            admin
                .batch_execute(&format!("DROP DATABASE IF EXISTS {building} WITH (FORCE)"))
                .expect("drop");
            admin
                .batch_execute(&format!("CREATE DATABASE {building}"))
                .expect("create template");
            confab::db::migrate(&DatabaseUrl::Postgres(pg_url(&building)))
                .expect("migrate template");
            admin
                .batch_execute(&format!("ALTER DATABASE {building} RENAME TO {name}"))
                .expect("rename");
        }
        admin
            .batch_execute("SELECT pg_advisory_unlock(4242)")
            .expect("unlock");
        name
    })
}

fn walk(dir: &str) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read dir").flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path.to_string_lossy()));
        } else {
            out.push(path);
        }
    }
    out
}

/// A fresh, empty PostgreSQL database (no migrations), dropped with the returned guard.
pub struct PgDatabase {
    pub name: String,
    pub url: String,
}

impl PgDatabase {
    /// Makes a database, cloned from the migrated template when `migrated`.
    pub fn create(migrated: bool) -> Option<PgDatabase> {
        let mut admin = pg_admin()?;
        let name = format!("confab_t_{}", &confab::secrets::random_token()[..16]);
        let template = if migrated {
            format!(" TEMPLATE {}", pg_template())
        } else {
            String::new()
        };
        admin
            .batch_execute(&format!("CREATE DATABASE {name}{template}"))
            .expect("create test database");
        Some(PgDatabase {
            url: pg_url(&name),
            name,
        })
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        if let Ok(mut admin) = PgConnection::establish(&pg_admin_url()) {
            let _ = admin.batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ));
        }
    }
}

/// A database for one test, on either backend.
pub struct TestDatabase {
    pub url: DatabaseUrl,
    pub dir: tempfile::TempDir,
    pub postgres: Option<PgDatabase>,
}

impl TestDatabase {
    /// A migrated database (SQLite: migrated when the app starts), or `None` when PostgreSQL is
    /// not available outside CI.
    pub fn new(backend: Backend) -> Option<TestDatabase> {
        let dir = tempfile::tempdir().expect("temp dir");
        match backend {
            Backend::Sqlite => Some(TestDatabase {
                url: DatabaseUrl::Sqlite(dir.path().join("confab.db")),
                dir,
                postgres: None,
            }),
            Backend::Postgres => {
                let pg = PgDatabase::create(true)?;
                Some(TestDatabase {
                    url: DatabaseUrl::Postgres(pg.url.clone()),
                    dir,
                    postgres: Some(pg),
                })
            }
        }
    }

    /// The URL as a setting value.
    pub fn url_string(&self) -> String {
        match &self.url {
            DatabaseUrl::Postgres(url) => url.clone(),
            DatabaseUrl::Sqlite(path) => path.to_string_lossy().into_owned(),
        }
    }

    /// Test settings for this database, with `extra` settings on top.
    pub fn settings(&self, extra: &[(&str, i64)]) -> Settings {
        let figment = Settings::default_figment()
            .merge(("database_url", self.url_string()))
            .merge(("data_dir", self.dir.path().join("data")))
            .merge(("uploads_dir", self.dir.path().join("uploads")))
            .merge(("log_level", "off"))
            .merge(("login_slowdown_ms", 0))
            .merge(("db_pool_size", 4))
            .merge(("jobs_enabled", false))
            .merge(("mail_dir", confab::mail::IN_MEMORY));
        let figment = extra.iter().fold(figment, |figment, (key, value)| {
            figment.merge((*key, *value))
        });
        Settings::from_figment(figment).expect("test settings")
    }
}

/// A running Confab for one test. When it is dropped (and the test did not fail), it checks
/// that the test left nothing behind: no mail still pending in the outbox (deliver it with
/// [`TestApp::deliver_mail`]) and no temporary upload file.
pub struct TestApp {
    pub client: Client,
    pub database: TestDatabase,
}

/// A test app's settings, on top of the test defaults.
pub struct TestAppBuilder {
    backend: Backend,
    extra: Vec<(&'static str, i64)>,
    adjust: Vec<Adjust>,
}

/// A change to a test app's settings.
type Adjust = Box<dyn FnOnce(&mut Settings)>;

impl TestAppBuilder {
    /// Numeric settings by their keys, as an operator would set them (validated).
    pub fn with(mut self, extra: &[(&'static str, i64)]) -> TestAppBuilder {
        self.extra.extend_from_slice(extra);
        self
    }

    /// Changes the settings directly, after the keyed ones.
    pub fn with_settings(mut self, adjust: impl FnOnce(&mut Settings) + 'static) -> TestAppBuilder {
        self.adjust.push(Box::new(adjust));
        self
    }

    /// Starts Confab on a fresh database, or `None` when PostgreSQL is not available outside CI.
    pub async fn start(self) -> Option<TestApp> {
        let database = TestDatabase::new(self.backend)?;
        let mut settings = database.settings(&self.extra);
        for adjust in self.adjust {
            adjust(&mut settings);
        }
        let client = Client::untracked(confab::app(settings))
            .await
            .expect("valid rocket");
        Some(TestApp { client, database })
    }
}

impl TestApp {
    /// The app's PostgreSQL database (for tests that run on PostgreSQL only).
    pub fn postgres(&self) -> &PgDatabase {
        self.database
            .postgres
            .as_ref()
            .expect("a PostgreSQL test app")
    }

    /// A test app to configure before it starts.
    pub fn builder(backend: Backend) -> TestAppBuilder {
        TestAppBuilder {
            backend,
            extra: Vec::new(),
            adjust: Vec::new(),
        }
    }

    /// Starts Confab on a fresh database with default test settings.
    pub async fn start(backend: Backend) -> Option<TestApp> {
        Self::builder(backend).start().await
    }

    /// Runs the outbox sender once, as the background job would: every pending mail goes to the
    /// app's transport (in memory unless the test chose SMTP or a folder). Returns how many went.
    pub async fn deliver_mail(&self) -> usize {
        confab::jobs::alerts::send(
            self.db(),
            &self.mail(),
            self.settings(),
            confab::chat::now(),
        )
        .await
        .expect("outbox sender")
    }

    /// The app's settings.
    pub fn settings(&self) -> &confab::Settings {
        self.client
            .rocket()
            .state::<confab::Settings>()
            .expect("settings")
    }

    /// The app's mail service.
    pub fn mail(&self) -> std::sync::Arc<confab::mail::Mail> {
        self.client
            .rocket()
            .state::<std::sync::Arc<confab::mail::Mail>>()
            .expect("mail")
            .clone()
    }

    /// The app's database pool.
    pub fn db(&self) -> &Db {
        self.client.rocket().state::<Db>().expect("db")
    }

    /// Runs domain code against the app's database in a write transaction.
    pub async fn write<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut AnyConnection) -> confab::error::Result<T> + Send + 'static,
    ) -> T {
        self.db().write(f).await.expect("test setup write")
    }

    /// Creates a user whose password is [`PASSWORD`].
    pub async fn user(&self, name: &str, admin: bool) -> i64 {
        let (name, hash) = (name.to_string(), password_hash().to_string());
        self.write(move |c| {
            users::create(
                c,
                &name,
                &format!("{name}@example.org"),
                Some(&hash),
                admin,
                chat::now(),
            )
        })
        .await
    }

    /// Creates a room with these members.
    pub async fn room(&self, slug: &str, private: bool, members: &[i64]) -> i64 {
        let (slug, members) = (slug.to_string(), members.to_vec());
        self.write(move |c| {
            let fields = rooms::RoomFields {
                slug: &slug,
                name: &slug.to_uppercase(),
                description: "",
                is_private: private,
            };
            let room = rooms::create(c, &fields, chat::now())?;
            for member in members {
                rooms::add_member(c, room.id, member, chat::now())?;
            }
            Ok(room.id)
        })
        .await
    }

    /// Posts messages straight through the domain (for long histories).
    pub async fn messages(&self, room_id: i64, author: i64, bodies: Vec<String>) -> Vec<i64> {
        self.write(move |c| {
            use diesel::{ExpressionMethods, QueryDsl};
            let slug: String = confab::db::schema::rooms::table
                .filter(confab::db::schema::rooms::id.eq(room_id))
                .select(confab::db::schema::rooms::slug)
                .first(c)?;
            bodies
                .iter()
                .map(|b| {
                    let posted = chat::messages::post(c, &slug, author, b, None, chat::now());
                    chat::messages::NotPosted::into_stored(posted).map(|(stored, _)| stored.id)
                })
                .collect()
        })
        .await
    }

    /// A browser with no cookies yet.
    pub fn browser(&self) -> Browser<'_> {
        Browser {
            client: &self.client,
            cookies: Vec::new(),
            csrf: None,
            remote: None,
        }
    }

    /// A browser logged in as `name`.
    pub async fn login(&self, name: &str) -> Browser<'_> {
        let mut browser = self.browser();
        browser.get("/login").await;
        let page = browser
            .post("/login", &[("username", name), ("password", PASSWORD)])
            .await;
        assert_eq!(
            page.status,
            Status::SeeOther,
            "login of {name} failed: {}",
            page.body
        );
        browser
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if std::thread::panicking() {
            return;
        }
        let temp = files_under(&self.settings().uploads_dir.join("tmp"));
        assert!(
            temp.is_empty(),
            "the test left temporary upload files: {temp:?}"
        );
        // A test that took the database away has no outbox left to check.
        let Ok(mut conn) = confab::db::connect(&self.database.url) else {
            return;
        };
        let pending: i64 = {
            use confab::db::schema::outbox;
            use diesel::prelude::*;
            outbox::table
                .filter(outbox::status.eq("pending"))
                .count()
                .get_result(&mut conn)
                .expect("counting pending mail")
        };
        assert_eq!(
            pending, 0,
            "the test left mail in the outbox: deliver it with `app.deliver_mail()` and check it"
        );
    }
}

/// What a request answered.
#[derive(Debug)]
pub struct Page {
    pub status: Status,
    pub body: String,
    pub location: Option<String>,
    pub headers: Vec<(String, String)>,
}

impl Page {
    /// Panics unless the page has this status.
    pub fn expect(self, status: Status) -> Page {
        assert_eq!(
            self.status, status,
            "unexpected status; body: {}",
            self.body
        );
        self
    }

    /// One header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A client that keeps its cookies and the latest form token, as a browser without JavaScript would.
pub struct Browser<'c> {
    client: &'c Client,
    cookies: Vec<Cookie<'static>>,
    pub csrf: Option<String>,
    /// The client address its forms come from (none: Rocket's local client has no peer).
    pub remote: Option<std::net::SocketAddr>,
}

impl<'c> Browser<'c> {
    /// A browser with no cookies yet, on any client.
    pub fn on(client: &'c Client) -> Browser<'c> {
        Browser {
            client,
            cookies: Vec::new(),
            csrf: None,
            remote: None,
        }
    }

    async fn finish(&mut self, response: LocalResponse<'_>) -> Page {
        for cookie in response.cookies().iter() {
            self.cookies.retain(|c| c.name() != cookie.name());
            let removed = cookie.value().is_empty()
                || cookie
                    .max_age()
                    .is_some_and(|age| age.is_zero() || age.is_negative());
            if !removed {
                self.cookies.push(cookie.clone().into_owned());
            }
        }
        let status = response.status();
        let location = response.headers().get_one("Location").map(str::to_string);
        let headers = response
            .headers()
            .iter()
            .map(|h| (h.name().to_string(), h.value().to_string()))
            .collect();
        let body = response.into_string().await.unwrap_or_default();
        if let Some(token) = body
            .split(r#"name="csrf" value=""#)
            .nth(1)
            .and_then(|rest| rest.split('"').next())
        {
            self.csrf = Some(token.to_string());
        }
        Page {
            status,
            body,
            location,
            headers,
        }
    }

    /// Holds one more cookie (replacing any of the same name).
    pub fn add_cookie(&mut self, cookie: Cookie<'static>) {
        self.cookies.retain(|c| c.name() != cookie.name());
        self.cookies.push(cookie);
    }

    /// The cookies this browser holds.
    pub fn cookies(&self) -> Vec<Cookie<'static>> {
        self.cookies.clone()
    }

    /// GET a path.
    pub async fn get(&mut self, path: &str) -> Page {
        let response = self
            .client
            .get(path.to_string())
            .cookies(self.cookies.clone())
            .dispatch()
            .await;
        self.finish(response).await
    }

    /// POST a form with the latest form token added.
    pub async fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Page {
        let csrf = self.csrf.clone().unwrap_or_default();
        let mut all = vec![("csrf", csrf.as_str())];
        all.extend_from_slice(fields);
        self.post_raw(path, &all).await
    }

    /// POST a multipart form with the latest form token as its first field.
    pub async fn upload(&mut self, path: &str, parts: &[Part<'_>]) -> Page {
        let csrf = self.csrf.clone().unwrap_or_default();
        let mut all = vec![Part::text("csrf", &csrf)];
        all.extend(parts.iter().map(|p| Part {
            name: p.name,
            file_name: p.file_name,
            content: p.content.clone(),
        }));
        self.post_bytes(path, multipart(&all)).await
    }

    /// POST raw bytes as multipart/form-data.
    pub async fn post_bytes(&mut self, path: &str, body: Vec<u8>) -> Page {
        let content_type =
            ContentType::new("multipart", "form-data").with_params(("boundary", BOUNDARY));
        let response = self
            .client
            .post(path.to_string())
            .header(content_type)
            .cookies(self.cookies.clone())
            .body(body)
            .dispatch()
            .await;
        self.finish(response).await
    }

    /// GET with extra headers, returning the body as bytes.
    pub async fn get_bytes(
        &mut self,
        path: &str,
        headers: &[(&'static str, &str)],
    ) -> (Page, Vec<u8>) {
        let mut request = self
            .client
            .get(path.to_string())
            .cookies(self.cookies.clone());
        for (name, value) in headers {
            request = request.header(rocket::http::Header::new(*name, value.to_string()));
        }
        let response = request.dispatch().await;
        let status = response.status();
        let headers = response
            .headers()
            .iter()
            .map(|h| (h.name().to_string(), h.value().to_string()))
            .collect();
        let bytes = response.into_bytes().await.unwrap_or_default();
        (
            Page {
                status,
                body: String::new(),
                location: None,
                headers,
            },
            bytes,
        )
    }

    /// POST a form exactly as given (no form token added).
    pub async fn post_raw(&mut self, path: &str, fields: &[(&str, &str)]) -> Page {
        let body = fields
            .iter()
            .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
            .collect::<Vec<_>>()
            .join("&");
        let mut request = self
            .client
            .post(path.to_string())
            .header(ContentType::Form)
            .cookies(self.cookies.clone())
            .body(body);
        if let Some(remote) = self.remote {
            request = request.remote(remote);
        }
        let response = request.dispatch().await;
        self.finish(response).await
    }
}

/// One part of a multipart form.
pub struct Part<'a> {
    pub name: &'a str,
    pub file_name: Option<&'a str>,
    pub content: Vec<u8>,
}

impl<'a> Part<'a> {
    /// A plain field.
    pub fn text(name: &'a str, value: &str) -> Part<'a> {
        Part {
            name,
            file_name: None,
            content: value.as_bytes().to_vec(),
        }
    }

    /// A file field.
    pub fn file(file_name: &'a str, content: impl Into<Vec<u8>>) -> Part<'a> {
        Part {
            name: "file",
            file_name: Some(file_name),
            content: content.into(),
        }
    }
}

/// The boundary test uploads use.
pub const BOUNDARY: &str = "confab-test-boundary-7MA4YWxkTrZu0gW";

/// Encodes a multipart/form-data body.
pub fn multipart(parts: &[Part<'_>]) -> Vec<u8> {
    let mut body = Vec::new();
    for part in parts {
        body.extend_from_slice(format!("--{BOUNDARY}\r\n").as_bytes());
        match part.file_name {
            Some(file_name) => body.extend_from_slice(
                format!(
                    "Content-Disposition: form-data; name=\"{}\"; filename=\"{}\"\r\nContent-Type: application/octet-stream\r\n\r\n",
                    part.name,
                    file_name.replace('"', "%22").replace('\n', "%0A").replace('\r', "%0D")
                )
                .as_bytes(),
            ),
            None => body.extend_from_slice(format!("Content-Disposition: form-data; name=\"{}\"\r\n\r\n", part.name).as_bytes()),
        }
        body.extend_from_slice(&part.content);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    body
}

/// Every regular file under a folder.
pub fn files_under(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    if !dir.exists() {
        return Vec::new();
    }
    walk(&dir.to_string_lossy())
}

/// Percent-encodes a form value.
pub fn encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// The ids of the messages on a room page, in page order.
pub fn message_ids(body: &str) -> Vec<i64> {
    body.split(r#"<li class="message"#)
        .skip(1)
        .filter_map(|rest| {
            rest.split(r#"id="m"#)
                .nth(1)?
                .split('"')
                .next()?
                .parse()
                .ok()
        })
        .collect()
}

/// The token of the one-time link an admin page shows (Tera escapes its slashes).
pub fn one_time_link(body: &str) -> String {
    let body = body.replace("&#x2F;", "/");
    let token = body
        .split("/password/")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("a one-time link");
    token.to_string()
}
