//! Reading history later: search, "what you missed", jumping to a date, exports and formatting.

use chrono::NaiveDateTime;
use confab::chat::{self, attachments, messages};
use confab::db::schema::{messages as messages_table, users};
use diesel::prelude::*;
use rocket::http::Status;

use crate::both_backends;
use crate::common::{message_ids, Backend, Browser, TestApp};

both_backends!(
    search_finds_words_phrases_and_operators,
    search_follows_edits_deletions_and_membership,
    hostile_queries_get_a_page,
    what_you_missed_and_marking_read,
    jump_to_a_date_across_time_zones,
    export_is_complete_and_in_order,
    messages_are_formatted_safely,
);

/// The message ids a search page lists, in order.
fn result_ids(body: &str) -> Vec<i64> {
    body.split("?around=")
        .skip(1)
        .filter_map(|rest| rest.split('#').next()?.parse().ok())
        .collect()
}

pub(crate) async fn search(browser: &mut Browser<'_>, q: &str) -> (Vec<i64>, String) {
    let page = browser
        .get(&format!("/search?q={}", crate::common::encode(q)))
        .await
        .expect(Status::Ok);
    (result_ids(&page.body), page.body)
}

fn at(text: &str) -> NaiveDateTime {
    NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M").expect("time")
}

async fn set_created(app: &TestApp, id: i64, when: NaiveDateTime) {
    app.write(move |c| {
        diesel::update(messages_table::table.find(id))
            .set(messages_table::created_at.eq(when))
            .execute(c)?;
        Ok(())
    })
    .await;
}

async fn search_finds_words_phrases_and_operators(backend: Backend) {
    let Some(app) = TestApp::start(backend).await else {
        return;
    };
    let ann = app.user("ann", false).await;
    let bob = app.user("bob", false).await;
    let general = app.room("general", false, &[ann, bob]).await;
    let ops = app.room("ops", false, &[ann]).await;
    let secret = app.room("secret", true, &[bob]).await;
    let quarterly = app
        .messages(general, ann, vec!["The quarterly report is ready".into()])
        .await[0];
    let draft = app
        .messages(
            general,
            bob,
            vec!["Report draft, see **the numbers**".into()],
        )
        .await[0];
    let ops_report = app
        .messages(ops, ann, vec!["ops report for the week".into()])
        .await[0];
    app.messages(secret, bob, vec!["secret report".into()])
        .await;
    let (upload, _) = app
        .write(move |c| {
            let file = attachments::NewFile {
                file_name: "budget-2026.xlsx".into(),
                stored_name: "aa/bb/not-on-disk".into(),
                content_type: "application/octet-stream".into(),
                size: 10,
                sha256: "0".repeat(64),
                dimensions: None,
            };
            let posted = confab::service::uploads::post_with_file(
                c,
                "general",
                bob,
                "numbers attached",
                None,
                None,
                &file,
                chat::now(),
            );
            messages::NotPosted::into_stored(posted).map(|(stored, created)| (stored.id, created))
        })
        .await;
    set_created(&app, quarterly, at("2025-01-15 12:00")).await;

    let mut browser = app.login("ann").await;
    let (ids, body) = search(&mut browser, "report").await;
    assert_eq!(
        ids,
        vec![ops_report, draft, quarterly],
        "newest first, never the secret room"
    );
    assert!(
        body.contains("<mark>report</mark>") && body.contains("<mark>Report</mark>"),
        "terms are highlighted"
    );
    assert!(
        body.contains("see the numbers") && !body.contains("**the numbers**"),
        "excerpts are plain text"
    );

    assert_eq!(
        search(&mut browser, "\"quarterly report\"").await.0,
        vec![quarterly]
    );
    assert!(search(&mut browser, "\"report quarterly\"")
        .await
        .0
        .is_empty());
    assert_eq!(search(&mut browser, "report from:bob").await.0, vec![draft]);
    assert_eq!(
        search(&mut browser, "report in:ops").await.0,
        vec![ops_report]
    );
    assert_eq!(
        search(&mut browser, "budget").await.0,
        vec![upload],
        "file names are searched"
    );
    assert_eq!(
        search(&mut browser, "numbers has:file").await.0,
        vec![upload]
    );
    assert_eq!(
        search(&mut browser, "report after:2025-06-01").await.0,
        vec![ops_report, draft]
    );
    assert_eq!(
        search(&mut browser, "report before:2025-06-01").await.0,
        vec![quarterly]
    );
    assert_eq!(
        search(&mut browser, "REPORT READY").await.0,
        vec![quarterly],
        "case does not matter"
    );

    let (ids, body) = search(&mut browser, "from:bob in:general").await;
    assert!(ids.is_empty());
    assert!(
        body.contains("Add a word or a"),
        "a helpful message: {body}"
    );
    let (_, body) = search(&mut browser, "cats before:yesterday").await;
    assert!(body.contains("needs a date like 2026-11-23"));

    // Results page back by keyset.
    let many = app
        .messages(
            ops,
            ann,
            (0..30).map(|i| format!("paging needle {i}")).collect(),
        )
        .await;
    let (first, body) = search(&mut browser, "needle").await;
    assert_eq!(first.len(), 25);
    let older = body
        .split("before=")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .expect("an older link")
        .to_string();
    let page = browser
        .get(&format!("/search?q=needle&before={older}"))
        .await
        .expect(Status::Ok);
    let second = result_ids(&page.body);
    assert_eq!(second.len(), 5);
    let mut all: Vec<i64> = first.into_iter().chain(second).collect();
    all.reverse();
    assert_eq!(all, many, "every result once, newest first across pages");
}

async fn search_follows_edits_deletions_and_membership(backend: Backend) {
    let Some(app) = TestApp::start(backend).await else {
        return;
    };
    let ann = app.user("ann", false).await;
    let bob = app.user("bob", false).await;
    let general = app.room("general", false, &[ann, bob]).await;
    let ids = app
        .messages(
            general,
            bob,
            vec!["original wording".into(), "doomed message".into()],
        )
        .await;
    let mut browser = app.login("ann").await;
    assert_eq!(search(&mut browser, "original").await.0, vec![ids[0]]);
    let (first, second) = (ids[0], ids[1]);
    app.write(move |c| messages::edit(c, general, first, bob, "revised wording", chat::now()))
        .await;
    app.write(move |c| messages::delete(c, general, second, bob, false, chat::now()).map(|_| ()))
        .await;
    assert!(
        search(&mut browser, "original").await.0.is_empty(),
        "the old text is gone from the index"
    );
    assert_eq!(search(&mut browser, "revised").await.0, vec![first]);
    assert!(
        search(&mut browser, "doomed").await.0.is_empty(),
        "deleted messages are not found"
    );

    browser.get("/rooms/general").await;
    browser
        .post("/rooms/general/leave", &[])
        .await
        .expect(Status::SeeOther);
    assert!(
        search(&mut browser, "revised").await.0.is_empty(),
        "a room left is a room no longer searched"
    );
}

async fn hostile_queries_get_a_page(backend: Backend) {
    let Some(app) = TestApp::start(backend).await else {
        return;
    };
    let ann = app.user("ann", false).await;
    let general = app.room("general", false, &[ann]).await;
    app.messages(
        general,
        ann,
        vec!["100% of the_budget \"quoted\" o'clock".into()],
    )
    .await;
    let mut browser = app.login("ann").await;
    let long = "x".repeat(10_000);
    let hostile = [
        "\"",
        "\"\"",
        "'",
        "\\",
        "%",
        "_",
        "%_%",
        "' OR 1=1 --",
        "\"; DROP TABLE messages; --",
        "NEAR(a b)",
        "a AND OR NOT b",
        "*",
        "col:x",
        "^start",
        "(((",
        "a\"b\"c\"",
        "from:",
        "in:",
        "has:",
        "before:",
        "after:2026-13-45",
        "\u{0}",
        "😀",
        &long,
    ];
    for q in hostile {
        let page = browser
            .get(&format!("/search?q={}", crate::common::encode(q)))
            .await;
        assert_eq!(page.status, Status::Ok, "{:.40}", q);
        assert!(page.body.contains("<h1>Search</h1>"));
    }
    assert_eq!(
        search(&mut browser, "the_budget").await.0.len(),
        1,
        "punctuation splits words, it does not break queries"
    );
    assert_eq!(search(&mut browser, "100%").await.0.len(), 1);
    let page = browser
        .get(&format!(
            "/search?q={}",
            crate::common::encode(&"word ".repeat(2000))
        ))
        .await
        .expect(Status::Ok);
    assert!(page.body.contains("Only the first 20 words were used."));
}

async fn what_you_missed_and_marking_read(backend: Backend) {
    let Some(app) = TestApp::start(backend).await else {
        return;
    };
    let ann = app.user("ann", false).await;
    let bob = app.user("bob", false).await;
    let general = app.room("general", false, &[ann, bob]).await;
    let ops = app.room("ops", false, &[ann, bob]).await;
    let in_general = app
        .messages(
            general,
            bob,
            vec!["g one".into(), "g two".into(), "g three".into()],
        )
        .await;
    let in_ops = app
        .messages(ops, bob, vec!["o one".into(), "o two".into()])
        .await;
    app.messages(general, ann, vec!["my own".into()]).await;

    let mut browser = app.login("ann").await;
    let home = browser.get("/").await.expect(Status::Ok);
    assert!(
        home.body
            .contains(r#"<a href="/missed">What you missed: 5 unread messages</a>"#),
        "{}",
        home.body
    );
    let missed = browser.get("/missed").await.expect(Status::Ok);
    assert_eq!(
        message_ids(&missed.body),
        [in_general.clone(), in_ops.clone()].concat(),
        "grouped by room, oldest first"
    );
    assert!(
        !missed.body.contains("my own"),
        "one's own messages are not missed"
    );

    browser
        .post("/rooms/general/read", &[])
        .await
        .expect(Status::SeeOther);
    let missed = browser.get("/missed").await.expect(Status::Ok);
    assert_eq!(message_ids(&missed.body), in_ops);
    assert!(missed.body.contains("GENERAL is marked read."));

    app.messages(general, bob, vec!["later".into()]).await;
    browser
        .post("/missed/read", &[])
        .await
        .expect(Status::SeeOther);
    let missed = browser.get("/missed").await.expect(Status::Ok);
    assert!(missed.body.contains("You are all caught up."));
    let home = browser.get("/").await.expect(Status::Ok);
    assert!(
        !home.body.contains("What you missed:"),
        "no unread count on the home page once caught up (the sidebar still links to the page)"
    );
    browser
        .post("/rooms/nowhere/read", &[])
        .await
        .expect(Status::NotFound);
}

async fn jump_to_a_date_across_time_zones(backend: Backend) {
    let Some(app) = TestApp::builder(backend)
        .with(&[("page_size", 3)])
        .start()
        .await
    else {
        return;
    };
    let ann = app.user("ann", false).await;
    let general = app.room("general", false, &[ann]).await;
    let ids = app
        .messages(general, ann, (1..=8).map(|i| format!("m{i}")).collect())
        .await;
    // In Auckland (UTC+13 in November) 10:30 UTC is 23:30 on the 22nd, 11:30 UTC is 00:30 on the 23rd.
    let times = [
        "2026-11-20 09:00",
        "2026-11-21 09:00",
        "2026-11-22 10:30",
        "2026-11-22 11:30",
        "2026-11-22 12:00",
        "2026-11-24 09:00",
        "2026-11-25 09:00",
        "2026-11-26 09:00",
    ];
    for (id, time) in ids.iter().zip(times) {
        set_created(&app, *id, at(time)).await;
    }
    app.write(move |c| {
        diesel::update(users::table.find(ann))
            .set(users::time_zone.eq("Pacific/Auckland"))
            .execute(c)?;
        Ok(())
    })
    .await;
    let mut browser = app.login("ann").await;
    let page = browser
        .get("/rooms/general?date=2026-11-23")
        .await
        .expect(Status::Ok);
    assert_eq!(
        message_ids(&page.body),
        ids[3..6].to_vec(),
        "the 23rd in Auckland starts at 11:30 UTC on the 22nd"
    );
    let page = browser
        .get("/rooms/general?date=2026-11-22")
        .await
        .expect(Status::Ok);
    assert_eq!(message_ids(&page.body)[0], ids[2]);
    assert!(
        page.body.contains("?before=") && page.body.contains("?after="),
        "older and newer pages link on"
    );
    let page = browser
        .get("/rooms/general?date=2026-11-28")
        .await
        .expect(Status::Ok);
    assert!(page
        .body
        .contains("There are no messages on or after that day"));
    assert_eq!(message_ids(&page.body), ids[5..].to_vec());
    assert!(
        page.body.contains(r#"<input type="date" name="date""#),
        "the room has a date picker"
    );
    browser
        .get("/rooms/general?date=yesterday")
        .await
        .expect(Status::UnprocessableEntity);
}

async fn export_is_complete_and_in_order(backend: Backend) {
    let Some(app) = TestApp::builder(backend)
        .with(&[("page_size", 5)])
        .start()
        .await
    else {
        return;
    };
    let ann = app.user("ann", false).await;
    app.user("bob", false).await;
    let general = app.room("general", false, &[ann]).await;
    let ids = app
        .messages(
            general,
            ann,
            (1..=17).map(|i| format!("line **{i}**")).collect(),
        )
        .await;
    let gone = ids[3];
    app.write(move |c| messages::delete(c, general, gone, ann, false, chat::now()).map(|_| ()))
        .await;
    app.write(move |c| {
        let file = attachments::NewFile {
            file_name: "notes.pdf".into(),
            stored_name: "cc/dd/not-on-disk".into(),
            content_type: "application/pdf".into(),
            size: 10,
            sha256: "0".repeat(64),
            dimensions: None,
        };
        let posted = confab::service::uploads::post_with_file(
            c,
            "general",
            ann,
            "",
            None,
            None,
            &file,
            chat::now(),
        );
        messages::NotPosted::into_stored(posted).map(|_| ())
    })
    .await;
    let structured =
        "See [the handbook](https://example.org/h):\n\n- one\n- two\n\n> quoted *softly*";
    app.messages(general, ann, vec![structured.into()]).await;

    let mut browser = app.login("ann").await;
    let text = browser
        .get("/rooms/general/export.txt")
        .await
        .expect(Status::Ok);
    assert_eq!(
        text.header("Content-Disposition"),
        Some("attachment; filename=\"general.txt\"")
    );
    let lines: Vec<&str> = text.body.lines().filter(|l| l.starts_with('[')).collect();
    assert_eq!(lines.len(), 19);
    let expected: Vec<String> = (1..=17)
        .map(|i| {
            if i == 4 {
                "(message deleted)".to_string()
            } else {
                format!("line **{i}**")
            }
        })
        .collect();
    for (line, want) in lines.iter().zip(&expected) {
        assert!(line.ends_with(&format!("ann: {want}")), "{line} / {want}");
    }
    assert!(text
        .body
        .contains("file: notes.pdf <http://127.0.0.1:8000/files/"));
    // The text export keeps what was written: link targets, list and quote markers, emphasis.
    assert!(
        text.body.contains(
            "ann: See [the handbook](https://example.org/h):\n    \n    - one\n    - two\n    \n    > quoted *softly*\n"
        ),
        "{}",
        text.body
    );

    let json = browser
        .get("/rooms/general/export.json")
        .await
        .expect(Status::Ok);
    let value: serde_json::Value =
        serde_json::from_str(&json.body).unwrap_or_else(|e| panic!("{e}: {}", json.body));
    let exported = value["messages"].as_array().expect("messages");
    assert_eq!(exported.len(), 19);
    let exported_ids: Vec<i64> = exported.iter().filter_map(|m| m["id"].as_i64()).collect();
    assert!(exported_ids.windows(2).all(|w| w[0] < w[1]), "in order");
    assert_eq!(exported[0]["text"], "line 1");
    assert_eq!(exported[0]["body"], "line **1**");
    assert_eq!(exported[18]["body"], structured);
    assert_eq!(exported[3]["deleted"], true);
    assert_eq!(exported[17]["file"]["name"], "notes.pdf");

    let mut bob = app.login("bob").await;
    bob.get("/rooms/general/export.txt")
        .await
        .expect(Status::NotFound);
    bob.get("/rooms/general/export.json")
        .await
        .expect(Status::NotFound);
}

async fn messages_are_formatted_safely(backend: Backend) {
    let Some(app) = TestApp::start(backend).await else {
        return;
    };
    let ann = app.user("ann", false).await;
    app.room("general", false, &[ann]).await;
    let mut browser = app.login("ann").await;
    browser.get("/rooms/general").await;
    let body = "**bold** and *em* and `code`\n> quoted\n\n- a\n- b\n\n[click](javascript:alert(1)) <b>raw</b> https://example.org";
    browser
        .post("/rooms/general/messages", &[("body", body)])
        .await
        .expect(Status::SeeOther);
    let page = browser.get("/rooms/general").await.expect(Status::Ok);
    for fragment in [
        "<strong>bold</strong>",
        "<em>em</em>",
        "<code>code</code>",
        "<blockquote>",
        "<li>a</li>",
        "&lt;b&gt;raw&lt;&#x2F;b&gt;",
    ] {
        if !page.body.contains(fragment) && !page.body.contains(&fragment.replace("&#x2F;", "/")) {
            panic!("{fragment} missing from {}", page.body);
        }
    }
    assert!(!page.body.contains("javascript:"), "no javascript: link");
    assert!(page
        .body
        .contains(r#"<a href="https://example.org" rel="noopener noreferrer nofollow">"#));
}

/// A search that runs past `search_timeout_ms` (here: one that waits on a lock another session
/// holds) is refused with a clear page, and the next search works.
#[rocket::async_test]
async fn a_search_past_its_time_is_refused_clearly() {
    let Some(app) = TestApp::builder(Backend::Postgres)
        .with(&[("search_timeout_ms", 300)])
        .start()
        .await
    else {
        return;
    };
    let ann = app.user("ann", false).await;
    let general = app.room("general", false, &[ann]).await;
    app.messages(general, ann, vec!["the quarterly report".into()])
        .await;
    let mut browser = app.login("ann").await;
    assert_eq!(search(&mut browser, "quarterly").await.0.len(), 1);

    let url = app.postgres().url.clone();
    let mut blocker = diesel::PgConnection::establish(&url).expect("connect");
    use diesel::connection::SimpleConnection;
    blocker
        .batch_execute("BEGIN; LOCK TABLE messages IN ACCESS EXCLUSIVE MODE")
        .expect("lock");
    let page = browser
        .get(&format!("/search?q={}", crate::common::encode("quarterly")))
        .await;
    blocker.batch_execute("ROLLBACK").expect("unlock");
    assert_eq!(page.status, Status::UnprocessableEntity, "{}", page.body);
    assert!(
        page.body.contains("matches too much to finish in time"),
        "{}",
        page.body
    );
    assert_eq!(search(&mut browser, "quarterly").await.0.len(), 1);
}
