//! Bringing history in: a Slack export zip, a django-conversate database (its schema from its own
//! migrations, on PostgreSQL and SQLite) and Confab's own room export, each imported once however
//! often it runs, and a bad export refused before anything is written.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;

use confab::db::schema::{memberships, messages, reactions, rooms, users};
use confab::import;
use confab::service::imports::{self, Invite, Options, Summary};
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use rocket::http::Status;
use serde_json::json;

use crate::both_backends;
use crate::common::{files_under, Backend, PgDatabase, TestApp};

both_backends!(
    a_slack_export_arrives_whole_and_once,
    a_bad_export_writes_nothing,
    a_file_that_cannot_be_read_leaves_its_room_unwritten,
    a_conversate_database_arrives_whole_and_once,
    a_room_moves_between_confabs,
    imported_messages_reach_an_open_page
);

/// Slack's times of the fixture's messages.
const TS: [&str; 8] = [
    "1700000000.000100",
    "1700000100.000200",
    "1700000200.000300",
    "1700000300.000400",
    "1700000400.000500",
    "1700090000.000600",
    "1700180000.000700",
    "1700000450.000800",
];

/// A small Slack export: three people (Ann's address in other case than hers here, Carol with
/// none), a public channel whose name is taken here, a private channel and a direct message;
/// every markup form, a thread with an edit, reactions (one unknown), a join notice, a file the
/// files folder holds and one it does not.
fn slack_messages() -> Vec<(String, serde_json::Value)> {
    vec![
        (
            "general/2023-11-14.json".into(),
            json!([
                {"type": "message", "user": "U1", "ts": TS[0],
                 "text": "*bold* _it_ ~gone~ `*code*` hi <@U2> see <#C1|general> and <https://example.org/a?b=1&amp;c=2|the site> &lt;3",
                 "reactions": [{"name": "thumbsup", "users": ["U2"], "count": 1},
                               {"name": "party-parrot", "users": ["U1"], "count": 1}]},
                {"type": "message", "user": "U2", "ts": TS[1], "thread_ts": TS[0],
                 "text": "a threaded answer", "edited": {"user": "U2", "ts": "1700000150.000000"}},
                {"type": "message", "subtype": "channel_join", "user": "U3", "ts": TS[2], "text": "<@U3> has joined the channel"},
                {"type": "message", "user": "U2", "ts": TS[3], "text": "the notes",
                 "files": [{"id": "F1", "name": "notes.txt", "title": "notes"}]},
                {"type": "message", "user": "U1", "ts": TS[4], "text": "",
                 "files": [{"id": "F2", "name": "lost.png", "title": "lost"}]},
                {"type": "message", "subtype": "tombstone", "user": "U1", "ts": TS[7],
                 "text": "This message was deleted.", "files": [{"id": "F3", "name": "gone.txt"}]}
            ]),
        ),
        (
            "secret/2023-11-15.json".into(),
            json!([{"type": "message", "user": "U3", "ts": TS[5], "text": "private words"}]),
        ),
        (
            "D1/2023-11-16.json".into(),
            json!([{"type": "message", "user": "U2", "ts": TS[6], "text": "just between us"}]),
        ),
    ]
}

fn slack_lists() -> Vec<(String, serde_json::Value)> {
    vec![
        (
            "users.json".into(),
            json!([
                {"id": "U1", "team_id": "T1", "name": "ann", "profile": {"email": "ANN@example.org"}},
                {"id": "U2", "team_id": "T1", "name": "Bob Smith", "profile": {"email": "bob@slack.example"}},
                {"id": "U3", "team_id": "T1", "name": "carol", "profile": {}}
            ]),
        ),
        (
            "channels.json".into(),
            json!([{"id": "C1", "name": "general", "members": ["U1", "U2"],
                    "topic": {"value": "Everything"}, "purpose": {"value": ""}}]),
        ),
        (
            "groups.json".into(),
            json!([{"id": "G1", "name": "secret", "members": ["U1", "U3"]}]),
        ),
        (
            "dms.json".into(),
            json!([{"id": "D1", "members": ["U1", "U2"]}]),
        ),
    ]
}

/// Writes a zip of these files.
fn zip(path: &Path, files: &[(String, serde_json::Value)]) {
    let file = std::fs::File::create(path).expect("zip file");
    let mut zip = zip::ZipWriter::new(file);
    let options = zip::write::SimpleFileOptions::default();
    for (name, value) in files {
        zip.start_file(name.as_str(), options).expect("zip entry");
        zip.write_all(value.to_string().as_bytes())
            .expect("zip write");
    }
    zip.finish().expect("zip finish");
}

/// The fixture export and its files folder (holding F1 only).
fn slack_export(dir: &Path) -> (PathBuf, PathBuf) {
    let path = dir.join("export.zip");
    let mut all = slack_lists();
    all.extend(slack_messages());
    zip(&path, &all);
    let files = dir.join("files");
    std::fs::create_dir_all(files.join("F1")).expect("files dir");
    std::fs::write(files.join("F1").join("notes.txt"), "the notes themselves").expect("file");
    // A deleted message's file is in the folder too, and must not be kept.
    std::fs::write(files.join("F3-gone.txt"), "deleted").expect("file");
    (path, files)
}

fn options(invite: Invite) -> Options {
    Options {
        map_users: HashMap::new(),
        invite,
    }
}

async fn run(app: &TestApp, history: import::History, options: &Options) -> Summary {
    imports::run(
        app.services(),
        history,
        options,
        Arc::new(AtomicUsize::new(0)),
    )
    .await
    .expect("import")
}

/// (id, body, created, edited, parent, reply count) of a room's messages, by id.
type Row = (
    i64,
    String,
    chrono::NaiveDateTime,
    Option<chrono::NaiveDateTime>,
    Option<i64>,
    i32,
);

async fn room_messages(app: &TestApp, slug: &str) -> Vec<Row> {
    let slug = slug.to_string();
    app.write(move |c| {
        Ok(messages::table
            .inner_join(rooms::table)
            .filter(rooms::slug.eq(slug))
            .order(messages::id.asc())
            .select((
                messages::id,
                messages::body,
                messages::created_at,
                messages::edited_at,
                messages::parent_id,
                messages::reply_count,
            ))
            .load(c)?)
    })
    .await
}

async fn count_rows(app: &TestApp) -> (i64, i64, i64, i64) {
    app.write(|c| {
        Ok((
            users::table.count().get_result(c)?,
            rooms::table.count().get_result(c)?,
            messages::table.count().get_result(c)?,
            reactions::table.count().get_result(c)?,
        ))
    })
    .await
}

async fn a_slack_export_arrives_whole_and_once(backend: Backend) {
    let Some(app) = TestApp::start(backend).await else {
        return;
    };
    let ann = app.user("ann", true).await;
    let general = app.room("general", false, &[ann]).await;
    app.messages(general, ann, vec!["ours, not imported".into()])
        .await;
    let before = room_messages(&app, "general").await;
    let dir = tempfile::tempdir().expect("dir");
    let (zip, files) = slack_export(dir.path());

    let history = import::slack::read(&zip, Some(&files)).expect("a good export");
    let summary = run(&app, history, &options(Invite::Print)).await;
    assert_eq!(
        (summary.users_created, summary.users_mapped),
        (2, 1),
        "{summary:?}"
    );
    assert_eq!(
        (summary.rooms_created, summary.messages),
        (3, 7),
        "{summary:?}"
    );
    assert_eq!((summary.files, summary.reactions), (1, 1), "{summary:?}");
    let skipped = &summary.skipped.0;
    assert_eq!(
        skipped.get("notices (joins, leaves, topic changes)"),
        Some(&1)
    );
    assert_eq!(
        skipped.get("reactions with an emoji Confab does not know"),
        Some(&1)
    );
    assert_eq!(
        skipped.get("files not in the export (named in their message)"),
        Some(&1)
    );
    // Bob has an address and is invited; Carol has none and stays inactive.
    assert_eq!(summary.invited.len(), 1, "{:?}", summary.invited);
    assert_eq!(summary.invited[0].0, "bob-smith");
    assert!(summary.invited[0]
        .1
        .as_deref()
        .is_some_and(|l| l.contains("/password/")));
    let carol_active: bool = app
        .write(|c| {
            Ok(users::table
                .filter(users::username.eq("carol"))
                .select(users::is_active)
                .first(c)?)
        })
        .await;
    assert!(!carol_active, "a person without an address is not invited");

    // Our own room is untouched; Slack's #general arrived beside it.
    assert_eq!(room_messages(&app, "general").await, before);
    let imported = room_messages(&app, "general-2").await;
    assert_eq!(imported.len(), 5, "{imported:?}");
    let times: Vec<String> = imported.iter().map(|m| m.2.to_string()).collect();
    assert_eq!(
        times,
        [
            "2023-11-14 22:13:20.000100",
            "2023-11-14 22:15:00.000200",
            "2023-11-14 22:18:20.000400",
            "2023-11-14 22:20:00.000500",
            "2023-11-14 22:20:50.000800"
        ]
    );
    let (first, reply) = (&imported[0], &imported[1]);
    assert_eq!(
        first.1,
        "**bold** *it* ~~gone~~ `*code*` hi @bob-smith see #general and [the site](https://example.org/a?b=1&c=2) <3"
    );
    assert_eq!(first.5, 1, "the thread counts its reply");
    assert_eq!(reply.4, Some(first.0), "the answer is in the thread");
    assert_eq!(
        reply.3.map(|t| t.to_string()).as_deref(),
        Some("2023-11-14 22:15:50")
    );
    assert_eq!(imported[3].1, "(file not imported: lost\\.png)");
    assert_eq!(imported[4].1, "", "a deleted message stays a deleted line");

    let mut browser = app.login("ann").await;
    let page = browser.get("/rooms/general-2").await.expect(Status::Ok);
    for shown in [
        "<strong>bold</strong>",
        "<em>it</em>",
        "<del>gone</del>",
        "<code>*code*</code>",
        "href=\"https://example.org/a?b=1&amp;c=2\"",
        "notes.txt",
        "Everything",
        "👍",
    ] {
        assert!(page.body.contains(shown), "{shown} is not on the page");
    }
    // Imported history is read: no unread count, and no alert is due about it.
    let unread: Vec<(i64, i64, i64)> = app
        .write(|c| {
            Ok(memberships::table
                .inner_join(rooms::table)
                .filter(rooms::slug.eq("general-2"))
                .select((
                    memberships::user_id,
                    memberships::last_read_id,
                    memberships::alerted_through_id,
                ))
                .load(c)?)
        })
        .await;
    let newest = imported.last().map(|m| m.0).expect("messages");
    assert_eq!(unread.len(), 2);
    assert!(
        unread
            .iter()
            .all(|&(_, read, alerted)| read == newest && alerted == newest),
        "{unread:?}"
    );
    // The file is stored, with no temporary copy left behind.
    let stored = files_under(&app.settings().uploads.dir);
    assert_eq!(stored.len(), 1, "{stored:?}");
    assert_eq!(
        std::fs::read_to_string(&stored[0]).expect("stored file"),
        "the notes themselves"
    );
    // Search finds imported words.
    let found = browser.get("/search?q=threaded").await.expect(Status::Ok);
    assert!(
        found.body.contains("a <mark>threaded</mark> answer"),
        "{}",
        found.body
    );
    // The private channel is private (Carol's, Ann's); the direct message is a direct conversation.
    let kinds: Vec<(String, bool, String)> = app
        .write(|c| {
            Ok(rooms::table
                .order(rooms::id.asc())
                .select((rooms::name, rooms::is_private, rooms::kind))
                .load(c)?)
        })
        .await;
    assert_eq!(kinds[2], ("secret".into(), true, "room".into()));
    assert_eq!(kinds[3].2, "direct");
    assert_eq!(kinds[3].0, "ann, bob-smith");

    // A second run writes nothing, and puts nobody back who left an imported room.
    let bob = app
        .write(|c| {
            let bob: i64 = users::table
                .filter(users::username.eq("bob-smith"))
                .select(users::id)
                .first(c)?;
            let room = confab::chat::rooms::find_by_slug(c, "general-2")?;
            confab::chat::rooms::remove_member(c, room.id, bob)?;
            Ok(bob)
        })
        .await;
    let counts = count_rows(&app).await;
    let history = import::slack::read(&zip, Some(&files)).expect("a good export");
    let again = run(&app, history, &options(Invite::Print)).await;
    assert_eq!(
        (
            again.users_created,
            again.rooms_created,
            again.messages,
            again.files
        ),
        (0, 0, 0, 0),
        "{again:?}"
    );
    assert_eq!(again.already, 7);
    assert_eq!(count_rows(&app).await, counts);
    assert_eq!(files_under(&app.settings().uploads.dir).len(), 1);
    let bob_back: i64 = app
        .write(move |c| {
            Ok(memberships::table
                .inner_join(rooms::table)
                .filter(rooms::slug.eq("general-2"))
                .filter(memberships::user_id.eq(bob))
                .count()
                .get_result(c)?)
        })
        .await;
    assert_eq!(bob_back, 0, "who left stays out");
    app.deliver_mail().await;
}

async fn a_bad_export_writes_nothing(backend: Backend) {
    let Some(app) = TestApp::start(backend).await else {
        return;
    };
    app.user("ann", true).await;
    let dir = tempfile::tempdir().expect("dir");
    let (good, files) = slack_export(dir.path());
    let bytes = std::fs::read(&good).expect("zip");

    let truncated = dir.path().join("truncated.zip");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).expect("write");
    let error = import::slack::read(&truncated, Some(&files)).expect_err("truncated");
    assert!(error.to_string().contains("not a readable zip"), "{error}");

    let broken = dir.path().join("broken.zip");
    let mut all = slack_lists();
    all.extend(slack_messages());
    all.push(("general/2023-11-17.json".into(), json!({"not": "a list"})));
    zip(&broken, &all);
    let error = import::slack::read(&broken, Some(&files)).expect_err("broken");
    assert!(
        error.to_string().contains("general/2023-11-17.json"),
        "the error names the file: {error}"
    );

    let not_slack = dir.path().join("other.zip");
    zip(&not_slack, &[("readme.json".into(), json!([]))]);
    let error = import::slack::read(&not_slack, None).expect_err("not slack");
    assert!(error.to_string().contains("users.json"), "{error}");

    let not_confab = dir.path().join("export.json");
    std::fs::write(
        &not_confab,
        "{\"room\": \"x\", \"messages\": [{\"id\": 1}]}",
    )
    .expect("write");
    let error = import::confab::read(&not_confab, None).expect_err("not confab");
    assert!(
        error.to_string().contains("not a Confab room export"),
        "{error}"
    );

    let error = import::conversate::read(
        &dir.path().join("missing.sqlite3").display().to_string(),
        None,
    )
    .expect_err("no database");
    assert!(error.to_string().contains("no such file"), "{error}");
    // Nothing was read, so nothing was written.
    assert_eq!(count_rows(&app).await, (1, 0, 0, 0));
    if backend == Backend::Postgres {
        // A database that does not answer is one clear line, not a panic.
        let out = crate::process::Server::bare(&[(
            "CONFAB_DATABASE_URL",
            "postgres://127.0.0.1:1/nowhere?connect_timeout=2",
        )])
        .command(&["import", "slack", &good.display().to_string()], "");
        let error = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success());
        assert_eq!(error.trim().lines().count(), 1, "{error}");
        assert!(error.starts_with("confab: "), "{error}");
        assert!(!error.contains("panicked"), "{error}");
    }
}

/// django-conversate's tables, created by its migrations' SQL, with two people (Ann, whose address
/// matches hers here, and Dave), a room with a doubled membership row, and four messages from
/// `start` (seconds since 1970), one with a file under the store root and two in the same second
/// (ids 99 and 100, which must keep that order).
fn conversate_rows(conn: &mut impl SimpleConnection, sql: &str, start: i64) {
    conn.batch_execute(sql).expect("conversate schema");
    conn.batch_execute(&format!(
        "INSERT INTO auth_user (id, password, is_superuser, username, first_name, last_name, email, is_staff, is_active, date_joined)
             VALUES (1, '!', TRUE, 'ann', 'Ann', '', 'ann@example.org', TRUE, TRUE, '2019-01-01 10:00:00'),
                    (2, '!', FALSE, 'dave', 'Dave', '', 'dave@example.net', FALSE, TRUE, '2019-01-02 10:00:00');
         INSERT INTO conversate_room (id, title, slug) VALUES (1, 'The Lobby', 'lobby');
         INSERT INTO conversate_roomuser (last_seen, has_focus, colour, alert, mail_alert, room_id, user_id)
             VALUES (NULL, FALSE, '000000', TRUE, FALSE, 1, 1),
                    (NULL, FALSE, '000000', TRUE, FALSE, 1, 2),
                    (NULL, FALSE, '000000', TRUE, FALSE, 1, 2);
         INSERT INTO conversate_message (id, \"timestamp\", content, room_id, user_id, file)
             VALUES (1, {start}, 'first words, @dave', 1, 1, ''),
                    (99, {}, 'a photo of the plan', 1, 2, 'conversate/the_plan.txt'),
                    (100, {}, 'in the same second', 1, 1, NULL),
                    (101, {}, 'last words', 1, 1, NULL);",
        start + 60,
        start + 60,
        start + 120,
    ))
    .expect("conversate rows");
}

async fn a_conversate_database_arrives_whole_and_once(backend: Backend) {
    let Some(app) = TestApp::start(backend).await else {
        return;
    };
    app.user("ann", false).await;
    // Another Dave is here already: conversate's Dave becomes dave-2, and so do mentions of him.
    app.user("dave", false).await;
    let dir = tempfile::tempdir().expect("dir");
    let store = dir.path().join("media");
    std::fs::create_dir_all(store.join("conversate")).expect("store");
    std::fs::write(store.join("conversate").join("the_plan.txt"), "plan").expect("file");

    // One conversate on SQLite, one on PostgreSQL (when there is one; always under CI).
    let sqlite_path = dir.path().join("conversate.sqlite3");
    let mut sqlite =
        diesel::SqliteConnection::establish(&sqlite_path.display().to_string()).expect("sqlite");
    conversate_rows(
        &mut sqlite,
        include_str!("../fixtures/conversate/sqlite.sql"),
        1546336800,
    );
    drop(sqlite);
    let mut sources = vec![sqlite_path.display().to_string()];
    let pg = PgDatabase::create(false);
    if let Some(pg) = &pg {
        let mut conn = diesel::PgConnection::establish(&pg.url).expect("postgres");
        // Another installation: its history began on another day.
        conversate_rows(
            &mut conn,
            include_str!("../fixtures/conversate/postgres.sql"),
            1546423200,
        );
        sources.push(pg.url.clone());
    }

    for (n, url) in sources.iter().enumerate() {
        let history = import::conversate::read(url, Some(&store)).expect("conversate");
        let summary = run(&app, history, &options(Invite::Mail)).await;
        assert_eq!(summary.users_mapped, 1 + n, "{summary:?}");
        assert_eq!(summary.users_created, usize::from(n == 0), "{summary:?}");
        assert_eq!(
            (summary.rooms_created, summary.messages, summary.files),
            (1, 4, 1)
        );
        let slug = if n == 0 { "lobby" } else { "lobby-2" };
        let imported = room_messages(&app, slug).await;
        let bodies: Vec<&str> = imported.iter().map(|m| m.1.as_str()).collect();
        assert_eq!(
            bodies,
            [
                "first words, @dave-2",
                "a photo of the plan",
                "in the same second",
                "last words"
            ]
        );
        let first = ["2019-01-01 10:00:00", "2019-01-02 10:00:00"][n];
        assert_eq!(imported[0].2.to_string(), first);
        let private: bool = app
            .write(move |c| {
                Ok(rooms::table
                    .filter(rooms::slug.eq(slug))
                    .select(rooms::is_private)
                    .first(c)?)
            })
            .await;
        assert!(private, "a conversate room is for its members");
        let again = run(
            &app,
            import::conversate::read(url, Some(&store)).expect("conversate"),
            &options(Invite::No),
        )
        .await;
        assert_eq!(
            (again.messages, again.rooms_created, again.already),
            (0, 0, 4)
        );
    }
    // The same database moved elsewhere is the same source: nothing is imported twice.
    let moved = dir.path().join("elsewhere.sqlite3");
    std::fs::copy(&sqlite_path, &moved).expect("copy");
    let again = run(
        &app,
        import::conversate::read(&moved.display().to_string(), Some(&store)).expect("moved"),
        &options(Invite::No),
    )
    .await;
    assert_eq!(
        (again.messages, again.already, again.users_created),
        (0, 4, 0)
    );
    // Dave was created once (the second database maps him by address), invited by mail.
    assert_eq!(app.deliver_mail().await, 1);
    let mails = app.mail().delivered();
    assert!(
        mails.len() == 1
            && mails[0].contains("dave@example.net")
            && mails[0].contains("/password/"),
        "{mails:?}"
    );
    let dave: Vec<bool> = app
        .write(|c| {
            Ok(users::table
                .filter(users::email.eq("dave@example.net"))
                .select(users::is_active)
                .load(c)?)
        })
        .await;
    assert_eq!(dave, [true], "an invited person is active");
    let mut browser = app.login("ann").await;
    let page = browser.get("/rooms/lobby").await.expect(Status::Ok);
    assert!(page.body.contains("The Lobby") && page.body.contains("the_plan.txt"));
}

async fn a_room_moves_between_confabs(backend: Backend) {
    let (Some(old), Some(new)) = (TestApp::start(backend).await, TestApp::start(backend).await)
    else {
        return;
    };
    let ann = old.user("ann", false).await;
    let bob = old.user("bob", false).await;
    let room = old.room("plans", true, &[ann, bob]).await;
    let ids = old
        .messages(
            room,
            ann,
            vec!["first".into(), "second *with* markup".into()],
        )
        .await;
    let mut browser = old.login("bob").await;
    browser.get("/rooms/plans").await.expect(Status::Ok);
    let reacted = browser
        .post(
            &format!("/rooms/plans/messages/{}/reactions", ids[0]),
            &[("emoji", "🎉")],
        )
        .await;
    assert_eq!(reacted.status, Status::SeeOther, "{}", reacted.body);
    browser
        .post(
            "/rooms/plans/messages",
            &[("body", "an answer"), ("reply_to", &ids[0].to_string())],
        )
        .await;
    let export = browser
        .get("/rooms/plans/export.json")
        .await
        .expect(Status::Ok);
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("plans.json");
    std::fs::write(&path, &export.body).expect("export file");

    new.user("ann", false).await;
    let mut map = HashMap::new();
    map.insert("ann".to_string(), "ann".to_string());
    let options = Options {
        map_users: map,
        invite: Invite::No,
    };
    let summary = run(
        &new,
        import::confab::read(&path, None).expect("export"),
        &options,
    )
    .await;
    assert_eq!(
        (summary.users_mapped, summary.users_created),
        (1, 1),
        "{summary:?}"
    );
    assert_eq!((summary.messages, summary.reactions), (3, 1), "{summary:?}");
    let moved = room_messages(&new, "plans").await;
    let original = room_messages(&old, "plans").await;
    let strip = |rows: &[Row]| -> Vec<(String, chrono::NaiveDateTime, bool, i32)> {
        rows.iter()
            .map(|m| (m.1.clone(), m.2, m.4.is_some(), m.5))
            .collect()
    };
    assert_eq!(strip(&moved), strip(&original));
    let private: bool = new
        .write(|c| {
            Ok(rooms::table
                .filter(rooms::slug.eq("plans"))
                .select(rooms::is_private)
                .first(c)?)
        })
        .await;
    assert!(private, "a private room stays private");
    let again = run(
        &new,
        import::confab::read(&path, None).expect("export"),
        &options,
    )
    .await;
    assert_eq!((again.messages, again.already), (0, 3));
}

async fn imported_messages_reach_an_open_page(backend: Backend) {
    let Some(app) = TestApp::builder(backend)
        .with_settings(|s| s.jobs_enabled = true)
        .start()
        .await
    else {
        return;
    };
    app.user("ann", false).await;
    let dir = tempfile::tempdir().expect("dir");
    let (zip_path, files) = slack_export(dir.path());
    let confab = |args: &[&str]| {
        let url = app.database.url_string();
        let uploads = app.settings().uploads.dir.display().to_string();
        let data = dir.path().join("data").display().to_string();
        let out = crate::process::Server::bare(&[
            ("CONFAB_DATABASE_URL", url.as_str()),
            ("CONFAB_DATA_DIR", data.as_str()),
            ("CONFAB_UPLOADS_DIR", uploads.as_str()),
        ])
        .command(args, "");
        let (stdout, stderr) = (
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        );
        assert!(out.status.success(), "{args:?}: {stderr}");
        stdout
    };
    let zip_arg = zip_path.display().to_string();
    let files_arg = files.display().to_string();
    // Carol is Cat here; the first run is on a terminal (`script` gives it one) and shows a bar.
    app.user("cat", false).await;
    let map = dir.path().join("people.csv");
    std::fs::write(&map, "# slack,confab\ncarol, cat\n").expect("map");
    let map_arg = map.display().to_string();
    let command = format!(
        "{} import slack {zip_arg} --files {files_arg} --map-users {map_arg}",
        env!("CARGO_BIN_EXE_confab")
    );
    let out = std::process::Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .env("CONFAB_DATABASE_URL", app.database.url_string())
        .env("CONFAB_DATA_DIR", dir.path().join("data"))
        .env("CONFAB_UPLOADS_DIR", &app.settings().uploads.dir)
        .env("ROCKET_LOG_LEVEL", "off")
        .output()
        .expect("script");
    let out = String::from_utf8_lossy(&out.stdout).replace('\r', "\n");
    assert!(
        out.contains("Importing ["),
        "a progress bar on a terminal: {out}"
    );
    assert!(out.contains("Imported from slack:T1"), "{out}");
    assert!(
        out.contains("people:    1 created, 2 found here already"),
        "{out}"
    );
    assert!(
        out.contains("messages:  7 imported, 0 already here"),
        "{out}"
    );
    assert!(
        out.contains("1 notices (joins, leaves, topic changes)"),
        "{out}"
    );
    assert!(out.contains("New people are inactive"), "{out}");
    let cat_in_secret: i64 = app
        .write(|c| {
            Ok(memberships::table
                .inner_join(rooms::table)
                .inner_join(users::table)
                .filter(rooms::slug.eq("secret"))
                .filter(users::username.eq("cat"))
                .count()
                .get_result(c)?)
        })
        .await;
    assert_eq!(
        cat_in_secret, 1,
        "the map put Carol's place in #secret to Cat"
    );

    // Ann has the room open; a later export brings two more messages (one a reply in the thread).
    let mut browser = app.login("ann").await;
    let page = browser.get("/rooms/general").await.expect(Status::Ok);
    let cursor = crate::live::page_cursor(&page.body);
    let mut all = slack_lists();
    let mut more = slack_messages();
    if let Some(serde_json::Value::Array(day)) = more.get_mut(0).map(|(_, v)| v) {
        day.push(json!({"type": "message", "user": "U2", "ts": "1700000500.000000", "text": "later news"}));
        day.push(json!({"type": "message", "user": "U2", "ts": "1700000600.000000", "thread_ts": TS[0], "text": "later answer"}));
    }
    // #secret moved on here since: Ann wrote in it. What the export adds to it is left out.
    browser.get("/rooms/secret").await.expect(Status::Ok);
    let ann_page = browser
        .post("/rooms/secret/messages", &[("body", "written here")])
        .await;
    assert_eq!(ann_page.status, Status::SeeOther);
    if let Some(serde_json::Value::Array(day)) = more.get_mut(1).map(|(_, v)| v) {
        day.push(
            json!({"type": "message", "user": "U3", "ts": "1700090100.000000", "text": "too late"}),
        );
    }
    all.extend(more);
    zip(&zip_path, &all);
    let out = confab(&[
        "import",
        "slack",
        &zip_arg,
        "--files",
        &files_arg,
        "--map-users",
        &map_arg,
    ]);
    assert!(
        !out.contains("Importing ["),
        "no bar without a terminal: {out}"
    );
    assert!(
        out.contains("messages:  2 imported, 7 already here"),
        "{out}"
    );
    assert!(
        out.contains("rooms:     0 created, 1 given new messages"),
        "{out}"
    );
    assert!(
        out.contains(
            "1 messages for rooms that have had messages posted here since the last import"
        ),
        "{out}"
    );

    let answer = browser
        .get(&format!("/api/rooms/general/events?after={cursor}&wait=20"))
        .await
        .expect(Status::Ok);
    let events: serde_json::Value = serde_json::from_str(&answer.body).expect("json");
    let texts: Vec<String> = events["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|m| m["html"].as_str().unwrap_or_default().to_string())
        .collect();
    let news = texts.iter().position(|t| t.contains("later news"));
    let reply = texts.iter().position(|t| t.contains("later answer"));
    assert!(
        matches!((news, reply), (Some(a), Some(b)) if a < b),
        "the new messages arrive in order: {texts:?}"
    );
    // The answer joined the thread, and the thread's first message came along counting it.
    let changed = events["messages"].as_array().expect("messages");
    let root = changed
        .iter()
        .find(|m| {
            m["html"]
                .as_str()
                .is_some_and(|h| h.contains("<strong>bold</strong>"))
        })
        .expect("the thread's first message changed");
    assert_eq!(root["reply_count"], 2, "{root}");
    let answer = &changed[reply.unwrap_or_default()];
    assert_eq!(answer["parent_id"], root["id"], "{answer}");
}

/// A file that fails while it is copied in (here a link to `/proc/self/mem`, which cannot be read
/// from its start) stops the import before its room's transaction: the room and its messages are
/// not written, the files already copied for it are gone, and the error says what happened. A
/// second run, with the file readable, imports the room whole.
async fn a_file_that_cannot_be_read_leaves_its_room_unwritten(backend: Backend) {
    let Some(app) = TestApp::start(backend).await else {
        return;
    };
    let dir = tempfile::tempdir().expect("dir");
    let (zip_path, files) = slack_export(dir.path());
    let mut all = slack_lists();
    let mut messages = slack_messages();
    if let Some(serde_json::Value::Array(day)) = messages.get_mut(0).map(|(_, v)| v) {
        day.push(
            json!({"type": "message", "user": "U1", "ts": "1700000900.000000", "text": "",
                        "files": [{"id": "F9", "name": "broken.bin"}]}),
        );
    }
    all.extend(messages);
    zip(&zip_path, &all);
    std::os::unix::fs::symlink("/proc/self/mem", files.join("broken.bin")).expect("link");

    let history = import::slack::read(&zip_path, Some(&files)).expect("a readable export");
    let error = imports::run(
        app.services(),
        history,
        &options(Invite::No),
        Arc::new(AtomicUsize::new(0)),
    )
    .await
    .expect_err("the file cannot be read");
    assert!(
        error.detail().contains("broken.bin cannot be read"),
        "{}",
        error.detail()
    );
    let (_, rooms, messages, _) = count_rows(&app).await;
    assert_eq!(
        (rooms, messages),
        (0, 0),
        "#general is the first room: nothing of it is written"
    );
    assert_eq!(
        files_under(&app.settings().uploads.dir),
        Vec::<PathBuf>::new(),
        "the notes copied for #general are gone again"
    );

    std::fs::remove_file(files.join("broken.bin")).expect("unlink");
    std::fs::write(files.join("broken.bin"), "fine now").expect("file");
    let history = import::slack::read(&zip_path, Some(&files)).expect("a readable export");
    let summary = run(&app, history, &options(Invite::No)).await;
    assert_eq!(
        (summary.rooms_created, summary.messages, summary.files),
        (3, 8, 2)
    );
}

/// An import copies a room's files before its transaction, which may come long after the first
/// copy: the copies are marked fresh just before it, so that a running server's sweep (which
/// removes temporary files untouched for `stale_secs`) leaves them alone.
#[rocket::async_test]
async fn copies_marked_fresh_escape_the_sweep() {
    let dir = tempfile::tempdir().expect("dir");
    let store = confab::files::FileStore::new(dir.path().join("uploads"));
    let name = confab::files::FileStore::new_stored_name();
    let path = store.temp_path(&name);
    std::fs::create_dir_all(path.parent().expect("tmp dir")).expect("tmp dir");
    std::fs::write(&path, "copied an hour ago").expect("copy");
    let hour_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(3700);
    std::fs::File::options()
        .write(true)
        .open(&path)
        .and_then(|f| f.set_modified(hour_ago))
        .expect("age it");
    let stale = |store: &confab::files::FileStore| {
        store
            .stale_temp_files(std::time::Duration::from_secs(3600))
            .expect("scan")
            .len()
    };
    assert_eq!(stale(&store), 1, "the sweep would take it");
    store.touch_temp(&name).await.expect("touch");
    assert_eq!(stale(&store), 0, "marked fresh, the sweep leaves it");
}
