//! The live room's JSON: what changed after a cursor, held polls, posting, presence, and the
//! promise that a poll with nothing new does no database work.

use rocket::http::Status;
use serde_json::Value;

use crate::both_backends;
use crate::common::{Backend, Browser, TestApp};

both_backends!(
    events_answer_what_changed,
    empty_polls_touch_no_database,
    a_post_wakes_held_polls,
    the_api_posts_like_the_form,
    presence_is_shown_and_saved_in_batches,
    a_reader_at_the_latest_page_reads_what_polls_deliver,
    batches_of_presence_and_reads_only_move_forward,
    members_woken_by_one_change_share_one_read
);

fn json(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

/// Polls `general` once after `cursor`, as a page does when it opens (its reader's arrival may
/// change presence), and gives the cursor to hold polls at from then on.
async fn settle(browser: &mut Browser<'_>, cursor: &str) -> String {
    let page = browser
        .get(&format!("/api/rooms/general/events?after={cursor}"))
        .await;
    if page.status == Status::Ok {
        json(&page.body)["cursor"]
            .as_str()
            .expect("cursor")
            .to_string()
    } else {
        cursor.to_string()
    }
}

/// The cursor the room page hands to its script.
pub(crate) fn page_cursor(body: &str) -> String {
    body.split(r#"data-cursor=""#)
        .nth(1)
        .and_then(|r| r.split('"').next())
        .expect("data-cursor")
        .to_string()
}

pub(crate) async fn post_json(
    browser: &mut Browser<'_>,
    app: &TestApp,
    path: &str,
    body: &str,
    csrf: Option<&str>,
) -> (Status, Value) {
    let mut request = app
        .client
        .post(path.to_string())
        .header(rocket::http::ContentType::JSON)
        .body(body);
    if let Some(token) = csrf {
        request = request.header(rocket::http::Header::new("X-CSRF-Token", token.to_string()));
    }
    let response = request.cookies(browser.cookies()).dispatch().await;
    let status = response.status();
    let text = response.into_string().await.unwrap_or_default();
    (
        status,
        if text.is_empty() {
            Value::Null
        } else {
            json(&text)
        },
    )
}

async fn events_answer_what_changed(backend: Backend) {
    let Some(app) = TestApp::start(backend).await else {
        return;
    };
    let ann = app.user("ann", false).await;
    let bob = app.user("bob", false).await;
    let room = app.room("general", false, &[ann, bob]).await;
    app.room("secret", true, &[bob]).await;

    let mut anonymous = app.browser();
    let page = anonymous.get("/api/rooms/general/events?after=0.0").await;
    assert_eq!(page.status, Status::Unauthorized);
    assert_eq!(json(&page.body)["error"], "Please log in.");

    let mut browser = app.login("ann").await;
    let page = browser.get("/rooms/general").await.expect(Status::Ok);
    let cursor = page_cursor(&page.body);
    assert!(page
        .body
        .contains(r#"<script type="module" src="/static/js/room.js"></script>"#));

    let missing = browser.get("/api/rooms/secret/events?after=0.0").await;
    assert_eq!(missing.status, Status::NotFound);
    assert!(json(&missing.body)["error"].is_string());
    for bad in ["abc", "1.x", "-5", ""] {
        let page = browser
            .get(&format!("/api/rooms/general/events?after={bad}"))
            .await;
        assert_eq!(page.status, Status::BadRequest, "{bad}");
        assert!(json(&page.body)["error"]
            .as_str()
            .unwrap_or("")
            .contains("cursor"));
    }
    browser
        .get(&format!("/api/rooms/general/events?after={cursor}"))
        .await
        .expect(Status::NoContent);

    let ids = app
        .messages(room, bob, vec!["<b>hello</b> ann".into()])
        .await;
    // A change made behind the app's back (straight in the database) is not in memory; one made
    // through the app is. Post through the app:
    let mut bob_browser = app.login("bob").await;
    bob_browser.get("/rooms/general").await;
    bob_browser
        .post("/rooms/general/messages", &[("body", "second")])
        .await
        .expect(Status::SeeOther);

    let changed = browser
        .get(&format!("/api/rooms/general/events?after={cursor}"))
        .await
        .expect(Status::Ok);
    let events = json(&changed.body);
    let messages = events["messages"].as_array().expect("messages");
    assert_eq!(messages.len(), 2, "both changes since the cursor: {events}");
    assert_eq!(messages[0]["id"], ids[0]);
    assert_eq!(messages[0]["author"], "bob");
    let html = messages[0]["html"].as_str().expect("html");
    assert!(
        html.trim_start()
            .starts_with(&format!(r#"<li class="message" id="m{}""#, ids[0])),
        "{html}"
    );
    assert!(
        html.contains("&lt;b&gt;hello&lt;/b&gt; ann"),
        "rendered by the page's own template, escaped"
    );
    assert_eq!(events["more"], false);
    let next = events["cursor"].as_str().expect("cursor").to_string();
    assert_ne!(next, cursor);
    browser
        .get(&format!("/api/rooms/general/events?after={next}"))
        .await
        .expect(Status::NoContent);

    // Edits and deletions come through as changes of the same message.
    let id = ids[0];
    app.write(move |c| {
        confab::chat::messages::delete(c, room, id, bob, false, confab::chat::now()).map(|_| ())
    })
    .await;
    bob_browser.get("/rooms/general").await;
    bob_browser
        .post("/rooms/general/messages", &[("body", "third")])
        .await
        .expect(Status::SeeOther);
    let events = json(
        &browser
            .get(&format!("/api/rooms/general/events?after={next}"))
            .await
            .expect(Status::Ok)
            .body,
    );
    let deleted = events["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .find(|m| m["id"] == id)
        .expect("the deleted message");
    assert_eq!(deleted["deleted"], true);
    assert!(deleted["html"]
        .as_str()
        .unwrap_or("")
        .contains("message deleted"));
}

async fn empty_polls_touch_no_database(backend: Backend) {
    let Some(app) = TestApp::start(backend).await else {
        return;
    };
    let ann = app.user("ann", false).await;
    app.room("general", false, &[ann]).await;
    let mut browser = app.login("ann").await;
    let page = browser.get("/rooms/general").await.expect(Status::Ok);
    let cursor = page_cursor(&page.body);
    // Warm up: the session check and the room are now in memory.
    browser
        .get(&format!("/api/rooms/general/events?after={cursor}"))
        .await;

    let before = app.db().queries();
    for _ in 0..20 {
        let page = browser
            .get(&format!(
                "/api/rooms/general/events?after={cursor}&state=active"
            ))
            .await;
        assert!(
            page.status == Status::NoContent || page.status == Status::Ok,
            "{:?}",
            page.status
        );
    }
    // Presence may have changed once (the first poll), which answers 200 without a query too.
    let polls = app.db().queries() - before;
    assert_eq!(polls, 0, "20 polls with nothing new cost {polls} queries");

    // A poll that finds a new message costs a bounded number of queries.
    browser
        .post("/rooms/general/messages", &[("body", "news")])
        .await
        .expect(Status::SeeOther);
    let before = app.db().queries();
    let page = browser
        .get(&format!("/api/rooms/general/events?after={cursor}"))
        .await
        .expect(Status::Ok);
    assert_eq!(
        json(&page.body)["messages"].as_array().map(Vec::len),
        Some(1)
    );
    let cost = app.db().queries() - before;
    assert!(
        cost <= 3,
        "a poll with one new message cost {cost} queries (the pool check, the changes, and their \
         reactions and saved marks in one)"
    );
}

async fn a_post_wakes_held_polls(backend: Backend) {
    let Some(app) = TestApp::builder(backend)
        .with(&[("poll_wait_max", 3600)])
        .start()
        .await
    else {
        return;
    };
    let ann = app.user("ann", false).await;
    let bob = app.user("bob", false).await;
    app.room("general", false, &[ann, bob]).await;
    let mut ann_browser = app.login("ann").await;
    let mut carl_browser = app.login("bob").await;
    let mut bob_browser = app.login("bob").await;
    let cursor = page_cursor(&ann_browser.get("/rooms/general").await.body);
    bob_browser.get("/rooms/general").await;
    carl_browser.get("/rooms/general").await;
    // Settle presence so that only the post can wake the held polls.
    let cursor = settle(&mut ann_browser, &cursor).await;

    let held = format!("/api/rooms/general/events?after={cursor}&wait=3600");
    let (first, second, posted) =
        tokio::join!(ann_browser.get(&held), carl_browser.get(&held), async {
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            bob_browser
                .post("/rooms/general/messages", &[("body", "wake up")])
                .await
        });
    posted.expect(Status::SeeOther);
    for page in [first, second] {
        let events = json(&page.expect(Status::Ok).body);
        let bodies: Vec<&str> = events["messages"]
            .as_array()
            .expect("messages")
            .iter()
            .filter_map(|m| m["html"].as_str())
            .collect();
        assert!(
            bodies.iter().any(|html| html.contains("wake up")),
            "every held poll of the room is answered: {events}"
        );
    }
}

async fn the_api_posts_like_the_form(backend: Backend) {
    let Some(app) = TestApp::builder(backend)
        .with(&[("max_held_polls", 0), ("poll_wait_max", 3600)])
        .start()
        .await
    else {
        return;
    };
    let ann = app.user("ann", false).await;
    app.room("general", false, &[ann]).await;
    let mut browser = app.login("ann").await;
    let page = browser.get("/rooms/general").await.expect(Status::Ok);
    let csrf = browser.csrf.clone().expect("token");

    let (status, forged) = post_json(
        &mut browser,
        &app,
        "/api/rooms/general/messages",
        r#"{"body":"hi"}"#,
        None,
    )
    .await;
    assert_eq!(status, Status::Forbidden);
    assert!(forged["error"].as_str().unwrap_or("").contains("expired"));
    let (status, empty) = post_json(
        &mut browser,
        &app,
        "/api/rooms/general/messages",
        r#"{"body":"  "}"#,
        Some(&csrf),
    )
    .await;
    assert_eq!(status, Status::UnprocessableEntity);
    assert_eq!(empty["error"], "A message can't be empty.");
    let (status, _) = post_json(
        &mut browser,
        &app,
        "/api/rooms/general/messages",
        "{not json",
        Some(&csrf),
    )
    .await;
    assert!(
        status == Status::BadRequest || status == Status::UnprocessableEntity,
        "{status}"
    );
    let (status, _) = post_json(
        &mut browser,
        &app,
        "/api/rooms/nowhere/messages",
        r#"{"body":"x"}"#,
        Some(&csrf),
    )
    .await;
    assert_eq!(status, Status::NotFound);

    let body = r#"{"body":"from the live page <i>", "client_id":"abcdef123456"}"#;
    let (status, first) = post_json(
        &mut browser,
        &app,
        "/api/rooms/general/messages",
        body,
        Some(&csrf),
    )
    .await;
    assert_eq!(status, Status::Created);
    assert!(first["html"]
        .as_str()
        .unwrap_or("")
        .contains("from the live page &lt;i&gt;"));
    let (_, second) = post_json(
        &mut browser,
        &app,
        "/api/rooms/general/messages",
        body,
        Some(&csrf),
    )
    .await;
    assert_eq!(first["id"], second["id"], "the same client_id posts once");

    // With no room for held polls, a poll that asks to wait is answered at once (a long wait
    // would make this test hang).
    let cursor = page_cursor(&page.body);
    let events = browser
        .get(&format!(
            "/api/rooms/general/events?after={cursor}&wait=3600"
        ))
        .await;
    assert_eq!(events.status, Status::Ok, "the post above changed the room");
    let now = json(&events.body)["cursor"]
        .as_str()
        .expect("cursor")
        .to_string();
    let held = tokio::time::timeout(
        std::time::Duration::from_secs(600),
        browser.get(&format!("/api/rooms/general/events?after={now}&wait=3600")),
    )
    .await
    .expect("answered without being held");
    assert_eq!(held.status, Status::NoContent);
}

async fn presence_is_shown_and_saved_in_batches(backend: Backend) {
    let Some(app) = TestApp::start(backend).await else {
        return;
    };
    let ann = app.user("ann", false).await;
    let bob = app.user("bob", false).await;
    app.room("general", false, &[ann, bob]).await;
    let mut ann_browser = app.login("ann").await;
    let cursor = page_cursor(&ann_browser.get("/rooms/general").await.body);
    let page = ann_browser
        .get("/api/rooms/general/events?after=0.0&state=idle")
        .await
        .expect(Status::Ok);
    let presence = json(&page.body)["presence"].clone();
    let states: Vec<(String, String)> = presence
        .as_array()
        .expect("presence")
        .iter()
        .map(|p| {
            (
                p["username"].as_str().unwrap_or("").to_string(),
                p["state"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    assert_eq!(
        states,
        vec![("ann".into(), "idle".into()), ("bob".into(), "away".into())]
    );

    let mut bob_browser = app.login("bob").await;
    let room = bob_browser.get("/rooms/general").await.expect(Status::Ok);
    assert!(
        room.body.contains(r#"<li class="presence-idle">"#),
        "ann shows as idle on bob's page"
    );
    // Changes within a second of the room's last wake-up by presence wait for the next one; a
    // held poll gets them then.
    let page = ann_browser
        .get(&format!(
            "/api/rooms/general/events?after={cursor}&state=active&wait=10"
        ))
        .await
        .expect(Status::Ok);
    assert!(
        page.body.contains(r#"{"username":"bob","state":"active""#),
        "{}",
        page.body
    );

    // Polls do not write; the batch does.
    let seen = |app: &TestApp| {
        let db = app.db().clone();
        async move {
            db.run(|c| {
                Ok::<_, confab::error::Error>(
                    confab::chat::users::find_by_username(c, "ann")?
                        .expect("ann")
                        .last_seen_at,
                )
            })
            .await
            .expect("read")
        }
    };
    assert_eq!(seen(&app).await, None);
    let live = app
        .client
        .rocket()
        .state::<confab::live::Live>()
        .expect("live")
        .clone();
    confab::jobs::presence::flush(app.db(), &live).await;
    assert!(
        seen(&app).await.is_some(),
        "the batch wrote when ann was last seen"
    );
}

async fn a_reader_at_the_latest_page_reads_what_polls_deliver(backend: Backend) {
    let Some(app) = TestApp::start(backend).await else {
        return;
    };
    let ann = app.user("ann", false).await;
    let bob = app.user("bob", false).await;
    app.room("general", false, &[ann, bob]).await;
    let mut ann_browser = app.login("ann").await;
    let mut bob_browser = app.login("bob").await;
    let cursor = page_cursor(&ann_browser.get("/rooms/general").await.body);
    bob_browser.get("/rooms/general").await.expect(Status::Ok);
    let read_by_ann = |app: &TestApp| {
        let db = app.db().clone();
        async move {
            db.run(move |c| {
                Ok::<_, confab::error::Error>(
                    confab::chat::rooms::for_member(c, "general", ann)?
                        .1
                        .last_read_id,
                )
            })
            .await
            .expect("read")
        }
    };
    let live = app
        .client
        .rocket()
        .state::<confab::live::Live>()
        .expect("live")
        .clone();
    bob_browser
        .post("/rooms/general/messages", &[("body", "first")])
        .await
        .expect(Status::SeeOther);
    let before = read_by_ann(&app).await;

    // Away from the latest page (an older page, a search), a poll does not count as reading.
    let answer = ann_browser
        .get(&format!(
            "/api/rooms/general/events?after={cursor}&state=active&latest=false"
        ))
        .await
        .expect(Status::Ok);
    assert!(answer.body.contains("first"), "{}", answer.body);
    confab::jobs::presence::flush_reads(app.db(), &live).await;
    assert_eq!(
        read_by_ann(&app).await,
        before,
        "not read away from the latest page"
    );

    // At the latest page and active, it does: written in the next batch.
    let cursor = json(&answer.body)["cursor"]
        .as_str()
        .expect("cursor")
        .to_string();
    bob_browser
        .post("/rooms/general/messages", &[("body", "second")])
        .await
        .expect(Status::SeeOther);
    let answer = ann_browser
        .get(&format!(
            "/api/rooms/general/events?after={cursor}&state=active&latest=true"
        ))
        .await
        .expect(Status::Ok);
    let delivered = json(&answer.body)["messages"][0]["id"]
        .as_i64()
        .expect("a message id");
    confab::jobs::presence::flush_reads(app.db(), &live).await;
    assert_eq!(
        read_by_ann(&app).await,
        delivered,
        "read up to what was delivered"
    );
    let home = ann_browser.get("/").await.expect(Status::Ok);
    assert!(
        home.body.contains(r#"data-slug="general" data-unread="0""#),
        "nothing unread in the sidebar: {}",
        home.body
    );
}

/// An instance whose listening connection dropped (PostgreSQL restarted, a network blip) hears
/// nothing of what changed meanwhile: when it listens again it reads every room's cursor (waking
/// held polls) and reloads members on next use (a member removed meanwhile sees nothing more).
#[rocket::async_test]
async fn an_instance_that_stopped_listening_catches_up() {
    let Some(app) = TestApp::builder(Backend::Postgres)
        .with(&[("poll_wait_max", 3600)])
        .start()
        .await
    else {
        return;
    };
    let ann = app.user("ann", false).await;
    let bob = app.user("bob", false).await;
    let cat = app.user("cat", false).await;
    let room = app.room("general", false, &[ann, bob, cat]).await;
    let mut ann_browser = app.login("ann").await;
    let mut bob_browser = app.login("bob").await;
    ann_browser.get("/rooms/general").await.expect(Status::Ok);
    let cursor = page_cursor(&bob_browser.get("/rooms/general").await.body);
    settle(&mut ann_browser, &cursor).await;
    let cursor = settle(&mut bob_browser, &cursor).await;

    // Bob holds a poll (and polls again after a change of presence) until the message comes.
    // Without catching up, the held poll would wait an hour: fail instead.
    let delivered = tokio::time::timeout(std::time::Duration::from_secs(120), async {
        let mut after = cursor.clone();
        loop {
            let answer = bob_browser
                .get(&format!(
                    "/api/rooms/general/events?after={after}&wait=3600"
                ))
                .await;
            let events = json(&answer.expect(Status::Ok).body);
            if events.to_string().contains("while you were not listening") {
                break;
            }
            after = events["cursor"].as_str().expect("cursor").to_string();
        }
    });
    let (delivered, ()) = tokio::join!(delivered, async {
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        let dropped = app
            .write(|c| {
                use diesel::RunQueryDsl;
                Ok(diesel::sql_query(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                     WHERE datname = current_database() AND application_name = 'confab-listen'",
                )
                .execute(c)?)
            })
            .await;
        assert_eq!(dropped, 1, "this instance's listening connection");
        // Unheard by this instance: written straight to the database while it reconnects.
        app.write(move |c| confab::chat::rooms::remove_member(c, room, ann))
            .await;
        app.messages(room, cat, vec!["while you were not listening".into()])
            .await;
    });
    delivered.expect("the held poll was woken when the instance listened again");
    ann_browser
        .get(&format!("/api/rooms/general/events?after={cursor}"))
        .await
        .expect(Status::NotFound);
}

#[rocket::async_test]
async fn a_post_on_one_instance_wakes_polls_on_another() {
    let Some(app) = TestApp::builder(Backend::Postgres)
        .with(&[("poll_wait_max", 3600)])
        .start()
        .await
    else {
        return;
    };
    let ann = app.user("ann", false).await;
    let bob = app.user("bob", false).await;
    app.room("general", false, &[ann, bob]).await;
    // A second instance on the same database, as behind a load balancer.
    let other = rocket::local::asynchronous::Client::untracked(confab::app(
        app.database.settings(&[("poll_wait_max", 3600)]),
    ))
    .await
    .expect("second instance");
    let mut ann_browser = app.login("ann").await;
    let cursor = page_cursor(&ann_browser.get("/rooms/general").await.body);
    let cursor = settle(&mut ann_browser, &cursor).await;

    // Bob posts through the other instance, with his own session there.
    let mut bob_there = Browser::on(&other);
    bob_there.get("/login").await;
    bob_there
        .post(
            "/login",
            &[("username", "bob"), ("password", crate::common::PASSWORD)],
        )
        .await
        .expect(Status::SeeOther);
    bob_there.get("/rooms/general").await.expect(Status::Ok);
    let held = format!("/api/rooms/general/events?after={cursor}&wait=3600");
    // Without the other instance's notification the held poll would wait an hour: fail instead.
    let waiting = tokio::time::timeout(std::time::Duration::from_secs(120), ann_browser.get(&held));
    let (page, posted) = tokio::join!(waiting, async {
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        bob_there
            .post(
                "/rooms/general/messages",
                &[("body", "from the other instance")],
            )
            .await
    });
    posted.expect(Status::SeeOther);
    let page = page.expect("the held poll was woken by the other instance's post");
    let events = json(&page.expect(Status::Ok).body);
    assert!(
        events.to_string().contains("from the other instance"),
        "{events}"
    );

    // A reply there wakes the next held poll here too, with its thread and the first message's
    // new reply count.
    let first = events["messages"][0]["id"].as_i64().expect("id");
    let held = format!(
        "/api/rooms/general/events?after={}&wait=3600",
        events["cursor"].as_str().expect("cursor")
    );
    let waiting = tokio::time::timeout(std::time::Duration::from_secs(120), ann_browser.get(&held));
    let (page, posted) = tokio::join!(waiting, async {
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        bob_there
            .post(
                "/rooms/general/messages",
                &[
                    ("body", "a reply over there"),
                    ("reply_to", &first.to_string()),
                ],
            )
            .await
    });
    posted.expect(Status::SeeOther);
    let events = json(&page.expect("woken by the reply").expect(Status::Ok).body);
    let messages = events["messages"].as_array().expect("messages");
    assert!(
        messages.iter().any(|m| m["parent_id"] == first)
            && messages
                .iter()
                .any(|m| m["id"] == first && m["reply_count"] == 1),
        "{events}"
    );

    // And so does a reaction there. (First catch up: the reply moved the cursor twice, and the
    // woken poll may have answered at the first step.)
    let mut cursor = events["cursor"].as_str().expect("cursor").to_string();
    let caught_up = ann_browser
        .get(&format!("/api/rooms/general/events?after={cursor}"))
        .await;
    if caught_up.status == Status::Ok {
        cursor = json(&caught_up.body)["cursor"]
            .as_str()
            .expect("cursor")
            .to_string();
    }
    let held = format!("/api/rooms/general/events?after={cursor}&wait=3600");
    let waiting = tokio::time::timeout(std::time::Duration::from_secs(120), ann_browser.get(&held));
    let (page, reacted) = tokio::join!(waiting, async {
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        bob_there
            .post(
                &format!("/rooms/general/messages/{first}/reactions"),
                &[("emoji", "👀")],
            )
            .await
    });
    reacted.expect(Status::SeeOther);
    let events = json(&page.expect("woken by the reaction").expect(Status::Ok).body);
    assert_eq!(events["messages"][0]["id"], first);
    assert_eq!(
        events["messages"][0]["reactions"],
        serde_json::json!([{ "emoji": "👀", "count": 1 }])
    );
}

/// The batch writers, straight on the database: several rows in one statement, in batches larger
/// than one statement takes, and nothing moves back.
async fn batches_of_presence_and_reads_only_move_forward(backend: Backend) {
    use chrono::{Duration, NaiveDate};
    use confab::chat::{rooms, users};
    let Some(app) = TestApp::start(backend).await else {
        return;
    };
    let ann = app.user("ann", false).await;
    let bob = app.user("bob", false).await;
    let general = app.room("general", false, &[ann, bob]).await;
    let noon = NaiveDate::from_ymd_opt(2026, 12, 4)
        .and_then(|d| d.and_hms_micro_opt(12, 0, 0, 123_456))
        .expect("a time");
    let later = noon + Duration::seconds(90);
    let state = |app: &TestApp| {
        let db = app.db().clone();
        async move {
            db.run(move |c| {
                let person = |c: &mut _, name| {
                    let u = users::find_by_username(c, name)?.expect("a user");
                    Ok::<_, confab::error::Error>((u.last_seen_at, u.last_active_at))
                };
                let read = |c: &mut _, uid| {
                    Ok::<_, confab::error::Error>(
                        rooms::for_member(c, "general", uid)?.1.last_read_id,
                    )
                };
                Ok::<_, confab::error::Error>((
                    person(c, "ann")?,
                    person(c, "bob")?,
                    read(c, ann)?,
                    read(c, bob)?,
                ))
            })
            .await
            .expect("read")
        }
    };
    let write = |app: &TestApp,
                 seen: Vec<(i64, chrono::NaiveDateTime, Option<chrono::NaiveDateTime>)>,
                 reads: Vec<(i64, i64, i64)>| {
        let db = app.db().clone();
        async move {
            db.write(move |c| {
                users::record_presence(c, &seen)?;
                rooms::mark_read_many(c, &reads)
            })
            .await
            .expect("write")
        }
    };
    // Ann seen and active, Bob only seen; ids that are no one's are passed over. More rows than
    // one statement takes, ann's and bob's in the second.
    let (mut seen, mut reads) = (Vec::new(), Vec::new());
    for nobody in 1..=600 {
        seen.push((100_000 + nobody, noon, Some(noon)));
        reads.push((general, 100_000 + nobody, 9));
    }
    // Past the first statement's rows.
    seen.extend([(ann, later, Some(later)), (bob, noon, None)]);
    reads.extend([(general, ann, 7), (general, bob, 3)]);
    write(&app, seen, reads).await;
    assert_eq!(
        state(&app).await,
        ((Some(later), Some(later)), (Some(noon), None), 7, 3)
    );

    // An older batch changes nothing; a newer one moves what it carries.
    write(
        &app,
        vec![(ann, noon, Some(noon)), (bob, later, Some(later))],
        vec![(general, ann, 5), (general, bob, 4)],
    )
    .await;
    assert_eq!(
        state(&app).await,
        ((Some(later), Some(later)), (Some(later), Some(later)), 7, 4)
    );
}

/// The members one change wakes share one read of it; what is each reader's own (whether they
/// saved a message) stays their own.
async fn members_woken_by_one_change_share_one_read(backend: Backend) {
    let Some(app) = TestApp::start(backend).await else {
        return;
    };
    let ann = app.user("ann", false).await;
    let bob = app.user("bob", false).await;
    let cat = app.user("cat", false).await;
    let room = app.room("general", false, &[ann, bob, cat]).await;
    let notes = app.messages(room, cat, vec!["notes".into()]).await[0];
    let mut ann_browser = app.login("ann").await;
    let mut bob_browser = app.login("bob").await;
    let mut cat_browser = app.login("cat").await;
    ann_browser.get("/rooms/general").await.expect(Status::Ok);
    cat_browser.get("/rooms/general").await.expect(Status::Ok);
    let cursor = page_cursor(&bob_browser.get("/rooms/general").await.body);
    // Bob saved it; ann, who did not, makes the shared read.
    bob_browser
        .post(&format!("/rooms/general/messages/{notes}/save"), &[])
        .await
        .expect(Status::SeeOther);
    // Settle presence (and warm the session checks), so that only the reaction changes the room.
    settle(&mut ann_browser, &cursor).await;
    settle(&mut bob_browser, &cursor).await;
    cat_browser
        .post(
            &format!("/rooms/general/messages/{notes}/reactions"),
            &[("emoji", "👍")],
        )
        .await
        .expect(Status::SeeOther);

    let poll = format!("/api/rooms/general/events?after={cursor}");
    let ann_answer = json(&ann_browser.get(&poll).await.expect(Status::Ok).body);
    let before = app.db().queries();
    let bob_answer = json(&bob_browser.get(&poll).await.expect(Status::Ok).body);
    let cost = app.db().queries() - before;
    assert_eq!(
        cost, 0,
        "the second reader of the same change read it again"
    );
    let html = |answer: &Value| {
        answer["messages"]
            .as_array()
            .expect("messages")
            .iter()
            .find(|m| m["id"] == notes)
            .and_then(|m| m["html"].as_str())
            .unwrap_or_else(|| panic!("the reacted message: {answer}"))
            .to_string()
    };
    assert!(
        !html(&ann_answer).contains("saved-tag"),
        "ann did not save it"
    );
    assert!(html(&bob_answer).contains("saved-tag"), "bob did");
    assert_eq!(bob_answer["messages"][0]["reactions"][0]["count"], 1);
}
