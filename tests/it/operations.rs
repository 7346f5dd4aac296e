//! What operators rely on: migrations, settings, the `confab` commands, health checks, and a
//! database that goes away.

use std::process::{Command, Stdio};

use confab::db::{self, DatabaseUrl};
use confab::Settings;
use diesel::connection::SimpleConnection;
use rocket::figment::Figment;
use rocket::http::Status;

use crate::both_backends;
use crate::common::{Backend, PgDatabase, TestApp, TestDatabase};

both_backends!(
    unknown_migrations_are_refused,
    operator_commands,
    health_and_readiness
);

fn names(dir: &str) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("migrations folder")
        .flatten()
        .map(|e| {
            let path = e.path();
            for file in ["up.sql", "down.sql"] {
                assert!(
                    path.join(file).is_file(),
                    "{} has no {file}",
                    path.display()
                );
            }
            e.file_name().to_string_lossy().into_owned()
        })
        .collect();
    names.sort();
    names
}

#[test]
fn migration_trees_have_the_same_names() {
    let postgres = names("migrations/postgres");
    let sqlite = names("migrations/sqlite");
    assert!(!postgres.is_empty());
    assert_eq!(
        postgres, sqlite,
        "every migration exists for both backends, with the same stamp and name"
    );
}

#[test]
fn database_urls_are_never_guessed() {
    assert_eq!(
        DatabaseUrl::parse("postgres://u@h/db"),
        Ok(DatabaseUrl::Postgres("postgres://u@h/db".into()))
    );
    assert_eq!(
        DatabaseUrl::parse("postgresql://u@h/db"),
        Ok(DatabaseUrl::Postgres("postgresql://u@h/db".into()))
    );
    assert_eq!(
        DatabaseUrl::parse("data/confab.db"),
        Ok(DatabaseUrl::Sqlite("data/confab.db".into()))
    );
    assert_eq!(
        DatabaseUrl::parse("sqlite://data/c.db"),
        Ok(DatabaseUrl::Sqlite("data/c.db".into()))
    );
    for bad in [
        "postgres:confab",
        "postgress://x/y",
        "mysql://u@h/db",
        "",
        ":memory:",
        "sqlite://",
    ] {
        assert!(DatabaseUrl::parse(bad).is_err(), "{bad} must be refused");
    }
    assert_eq!(
        DatabaseUrl::Postgres("postgres://u:secret@h/db".into()).display(),
        "postgres://…@h/db"
    );
}

#[test]
fn bad_settings_name_the_setting() {
    let dir = tempfile::tempdir().expect("dir");
    let base = || Settings::default_figment().merge(("data_dir", dir.path()));
    let cases: [(Figment, &str); 5] = [
        (base().merge(("page_size", 0)), "page_size"),
        (base().merge(("page_size", "many")), "page_size"),
        (
            base().merge(("database_url", "postgres:confab")),
            "database_url",
        ),
        (
            base().merge(("public_url", "chat.example.org")),
            "public_url",
        ),
        (base().merge(("max_message_chars", 0)), "max_message_chars"),
    ];
    for (figment, key) in cases {
        let error = Settings::from_figment(figment).expect_err(key).to_string();
        assert!(error.contains(key), "`{error}` names {key}");
        assert!(!error.contains('\n'), "one line: {error}");
    }
    assert!(
        !dir.path().join("confab").exists() && !std::path::Path::new("postgres:confab").exists(),
        "no SQLite file was made"
    );
    let ok = Settings::from_figment(base()).expect("defaults are valid");
    assert_eq!(
        ok.database_url,
        DatabaseUrl::Sqlite(dir.path().join("confab.db"))
    );
    assert_eq!(ok.page_size, 100);
    let key = std::fs::read_to_string(dir.path().join("secret_key"))
        .expect("a secret key is generated once");
    let again = Settings::from_figment(base()).expect("valid");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("secret_key")).expect("key"),
        key,
        "and reused"
    );
    drop(again);
}

async fn unknown_migrations_are_refused(backend: Backend) {
    let Some(database) = TestDatabase::new(backend) else {
        return;
    };
    db::migrate(&database.url).expect("migrate");
    assert!(
        db::migrate(&database.url).expect("again").is_empty(),
        "nothing is pending twice"
    );
    let mut conn = db::connect(&database.url).expect("connect");
    conn.batch_execute(
        "INSERT INTO __diesel_schema_migrations (version) VALUES ('29991231000000')",
    )
    .expect("insert");
    let error = db::migrate(&database.url)
        .expect_err("a newer database is refused")
        .to_string();
    assert!(
        error.contains("29991231000000") && error.contains("does not know"),
        "{error}"
    );

    // The server refuses to start on it too.
    let started =
        rocket::local::asynchronous::Client::untracked(confab::app(database.settings(&[]))).await;
    let Err(error) = started else {
        panic!("Confab must not start on a database it does not know")
    };
    assert!(
        matches!(error.kind(), rocket::error::ErrorKind::FailedFairings(f) if f.iter().any(|f| f.name == "Migrations"))
    );
}

fn confab(database: &TestDatabase, args: &[&str], stdin: &str) -> (bool, String, String) {
    let (url, data) = (
        database.url_string(),
        database.dir.path().join("data").display().to_string(),
    );
    let out = crate::process::Server::bare(&[
        ("CONFAB_DATABASE_URL", url.as_str()),
        ("CONFAB_DATA_DIR", data.as_str()),
    ])
    .command(args, stdin);
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

async fn operator_commands(backend: Backend) {
    let Some(database) = TestDatabase::new(backend) else {
        return;
    };
    let (ok, out, err) = confab(&database, &["migrate"], "");
    assert!(ok, "{err}");
    assert!(
        out.contains("up to date") || out.contains("Applied"),
        "{out}"
    );

    let (ok, out, err) = confab(
        &database,
        &["user", "add", "Ann", "ann@example.org", "--admin"],
        "a good password\n",
    );
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "Created admin user ann.");
    let fails = |args: &[&str], stdin: &str, expected: &str| {
        let (ok, _, err) = confab(&database, args, stdin);
        assert!(!ok, "{args:?} must fail");
        assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
        assert!(err.contains(expected), "{args:?}: {err}");
    };
    fails(
        &["user", "add", "ann", "other@example.org"],
        "a good password\n",
        "is taken",
    );
    fails(
        &["user", "add", "bob", "not-an-email"],
        "a good password\n",
        "valid email",
    );
    fails(
        &["user", "add", "bob", "bob@example.org"],
        "short\n",
        "at least 8",
    );
    fails(
        &["user", "password", "nobody"],
        "a good password\n",
        "no user `nobody`",
    );
    fails(&["room", "add", "Bad Slug", "Bad"], "", "room address");
    fails(
        &["room", "member", "add", "nowhere", "ann"],
        "",
        "no room `nowhere`",
    );

    let (ok, _, err) = confab(
        &database,
        &["room", "add", "plans", "Plans", "--private"],
        "",
    );
    assert!(ok, "{err}");
    fails(&["room", "add", "plans", "Again"], "", "already a room");
    fails(
        &["room", "member", "add", "plans", "ghost"],
        "",
        "no active user `ghost`",
    );
    let (ok, out, err) = confab(&database, &["room", "member", "add", "plans", "ann"], "");
    assert!(ok && out.contains("ann is a member of Plans"), "{out}{err}");
    let (ok, _, err) = confab(
        &database,
        &["user", "password", "ann"],
        "another password\n",
    );
    assert!(ok, "{err}");

    // The web app sees what the commands did.
    let client =
        rocket::local::asynchronous::Client::untracked(confab::app(database.settings(&[])))
            .await
            .expect("app");
    let app = TestApp { client, database };
    let mut browser = app.browser();
    browser.get("/login").await;
    browser
        .post(
            "/login",
            &[("username", "ann"), ("password", "another password")],
        )
        .await
        .expect(Status::SeeOther);
    let page = browser.get("/rooms/plans").await.expect(Status::Ok);
    assert!(page.body.contains("Plans"));
}

async fn health_and_readiness(backend: Backend) {
    let Some(app) = TestApp::start(backend).await else {
        return;
    };
    let mut browser = app.browser();
    let health = browser.get("/healthz").await.expect(Status::Ok);
    assert_eq!(health.body, "ok");
    browser.get("/readyz").await.expect(Status::Ok);
    let css = browser
        .get("/static/css/confab.css")
        .await
        .expect(Status::Ok);
    assert!(css.body.contains(".message"));
    browser
        .get("/static/../Cargo.toml")
        .await
        .expect(Status::NotFound);
    let missing = browser.get("/no/such/page").await.expect(Status::NotFound);
    assert!(
        missing.body.contains("<h1>Not found</h1>"),
        "errors are styled pages"
    );
}

#[rocket::async_test]
async fn two_processes_migrate_one_fresh_postgres_database() {
    let Some(database) = PgDatabase::create(false) else {
        return;
    };
    let spawn = || {
        Command::new(env!("CARGO_BIN_EXE_confab"))
            .arg("migrate")
            .env("CONFAB_DATABASE_URL", &database.url)
            .env(
                "CONFAB_DATA_DIR",
                std::env::temp_dir().join("confab-migrate-test"),
            )
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn")
    };
    let (a, b) = (spawn(), spawn());
    for child in [a, b] {
        let out = child.wait_with_output().expect("wait");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let url = DatabaseUrl::Postgres(database.url.clone());
    assert!(
        db::migrate(&url).expect("migrated").is_empty(),
        "both runs together applied everything once"
    );
}

#[rocket::async_test]
async fn connections_the_database_dropped_are_replaced() {
    let Some(app) = TestApp::start(Backend::Postgres).await else {
        return;
    };
    app.user("ann", false).await;
    let mut browser = app.login("ann").await;
    browser.get("/").await.expect(Status::Ok);
    browser.get("/settings").await.expect(Status::Ok);

    // The server ends every connection of this database, as a restart would.
    let name = app.postgres().name.clone();
    let mut admin = crate::common::pg_admin().expect("admin");
    admin
        .batch_execute(&format!(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"
        ))
        .expect("terminate");

    // A connection trusted from its last use may fail one request; that error has every pooled
    // connection checked again before reuse, so the next requests get fresh ones.
    let first = browser.get("/").await;
    assert!(
        [Status::Ok, Status::ServiceUnavailable].contains(&first.status),
        "{}",
        first.status
    );
    browser.get("/").await.expect(Status::Ok);
    browser.get("/settings").await.expect(Status::Ok);
}

#[rocket::async_test]
async fn a_database_that_goes_away_answers_503() {
    let Some(app) = TestApp::start(Backend::Postgres).await else {
        return;
    };
    let ann = app.user("ann", false).await;
    let room = app.room("general", false, &[ann]).await;
    let mut browser = app.login("ann").await;
    let mut other_tab = app.login("ann").await;
    browser.get("/").await.expect(Status::Ok);
    let cursor = crate::live::page_cursor(&browser.get("/rooms/general").await.body);
    other_tab.get("/rooms/general").await.expect(Status::Ok);

    app.drop_database();

    let page = browser.get("/").await;
    assert_eq!(page.status, Status::ServiceUnavailable, "{}", page.body);
    assert!(page.body.contains("cannot reach its database"));
    browser
        .get("/readyz")
        .await
        .expect(Status::ServiceUnavailable);
    browser.get("/healthz").await.expect(Status::Ok);
    let login = browser
        .post(
            "/login",
            &[("username", "ann"), ("password", crate::common::PASSWORD)],
        )
        .await;
    assert_eq!(login.status, Status::ServiceUnavailable);

    // Polls that must read (the room moved on, as another instance's post would tell) share one
    // read: when it fails, every one of them is told so, and the next poll tries again.
    let live = app
        .client
        .rocket()
        .state::<confab::live::Live>()
        .expect("live");
    live.advance(room, i64::MAX / 2);
    let poll = format!("/api/rooms/general/events?after={cursor}");
    let (first, second) = tokio::join!(browser.get(&poll), other_tab.get(&poll));
    for answer in [first, second, browser.get(&poll).await] {
        assert_eq!(answer.status, Status::ServiceUnavailable, "{}", answer.body);
        assert!(
            answer.body.contains("cannot reach its database"),
            "{}",
            answer.body
        );
    }
}
