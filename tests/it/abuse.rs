//! Abuse found in review, each tried for real: floods, odd redirects, removed members, stale links,
//! caching of private pages.

use rocket::http::Status;
use serde_json::Value;

use super::common::{encode, Backend, TestApp, PASSWORD};

crate::both_backends!(
    posting_too_fast_is_refused_and_keeps_the_draft,
    next_with_characters_invalid_in_a_uri,
    admin_redirects_from_odd_slugs,
    private_answers_are_not_cached,
    a_password_change_voids_links_and_rotates_the_session,
    a_held_poll_answers_nothing_to_a_removed_member,
    deeply_nested_messages_render_bounded,
    a_search_has_a_budget_on_sqlite,
    a_resend_is_answered_with_the_stored_message,
);

async fn posting_too_fast_is_refused_and_keeps_the_draft(backend: Backend) {
    let Some(app) = TestApp::builder(backend)
        .with(&[("post_burst", 3), ("post_per_minute", 1)])
        .start()
        .await
    else {
        return;
    };
    let ann = app.user("ann", false).await;
    let bob = app.user("bob", false).await;
    app.room("general", false, &[ann, bob]).await;
    let mut browser = app.login("ann").await;
    browser.get("/rooms/general").await.expect(Status::Ok);
    for i in 0..3 {
        browser
            .post(
                "/rooms/general/messages",
                &[("body", &format!("message {i}"))],
            )
            .await
            .expect(Status::SeeOther);
    }
    let refused = browser
        .post("/rooms/general/messages", &[("body", "one too many")])
        .await;
    assert_eq!(refused.status, Status::TooManyRequests);
    assert!(
        refused.body.contains("sending messages very fast"),
        "{}",
        refused.body
    );
    assert!(
        refused.body.contains(">one too many</textarea>"),
        "the draft is kept in the form: {}",
        refused.body
    );
    let csrf = browser.csrf.clone().expect("token");
    let response = app
        .client
        .post("/api/rooms/general/messages")
        .header(rocket::http::ContentType::JSON)
        .header(rocket::http::Header::new("X-CSRF-Token", csrf))
        .cookies(browser.cookies())
        .body(r#"{"body":"from the live page"}"#)
        .dispatch()
        .await;
    assert_eq!(response.status(), Status::TooManyRequests);
    assert!(response.headers().get_one("Retry-After").is_some());
    let body: Value =
        serde_json::from_str(&response.into_string().await.unwrap_or_default()).expect("json");
    assert!(body["error"].as_str().unwrap_or("").contains("very fast"));
    let count = app
        .write(|c| {
            use confab::db::schema::messages;
            use diesel::prelude::*;
            Ok(messages::table.count().get_result::<i64>(c)?)
        })
        .await;
    assert_eq!(count, 3, "nothing past the limit was stored");
    // Bob has his own allowance.
    let mut bob = app.login("bob").await;
    bob.get("/rooms/general").await;
    bob.post("/rooms/general/messages", &[("body", "bob is fine")])
        .await
        .expect(Status::SeeOther);
}

async fn next_with_characters_invalid_in_a_uri(backend: Backend) {
    let Some(app) = TestApp::start(backend).await else {
        return;
    };
    app.user("ann", false).await;
    for next in [
        "/rooms/a b",
        "/rooms/é",
        "/x\"y",
        "/<script>",
        "/a\tb",
        "/%zz",
    ] {
        let mut browser = app.browser();
        browser
            .get(&format!("/login?next={}", encode(next)))
            .await
            .expect(Status::Ok);
        let page = browser
            .post(
                "/login",
                &[("username", "ann"), ("password", PASSWORD), ("next", next)],
            )
            .await;
        assert_eq!(
            page.status,
            Status::SeeOther,
            "next={next:?}: {}",
            page.body
        );
        let location = page.location.clone().expect("a redirect");
        assert!(location.starts_with('/') && !location.contains(['"', '<', ' ', '\t']));
        assert!(
            rocket::http::uri::Origin::parse(&location).is_ok(),
            "{location}"
        );
        // Logged in: the session the redirect carries works.
        browser.get("/").await.expect(Status::Ok);
    }
    let sessions = app
        .write(|c| {
            use confab::db::schema::sessions;
            use diesel::prelude::*;
            Ok(sessions::table.count().get_result::<i64>(c)?)
        })
        .await;
    assert_eq!(sessions, 6, "one working session per login, none orphaned");
}

async fn admin_redirects_from_odd_slugs(backend: Backend) {
    let Some(app) = TestApp::start(backend).await else {
        return;
    };
    app.user("root", true).await;
    let mut admin = app.login("root").await;
    admin.get("/admin/rooms").await.expect(Status::Ok);
    for path in [
        "/admin/rooms/a%20b",
        "/admin/rooms/%C3%A9t%C3%A9/members",
        "/admin/rooms/%22x%3C/archive",
    ] {
        let page = admin.post(path, &[("name", "x"), ("username", "x")]).await;
        assert!(
            page.status.code < 500,
            "{path}: {} {}",
            page.status,
            page.body
        );
    }
}

async fn private_answers_are_not_cached(backend: Backend) {
    let Some(app) = TestApp::start(backend).await else {
        return;
    };
    let ann = app.user("ann", false).await;
    app.room("general", false, &[ann]).await;
    let mut browser = app.login("ann").await;
    for path in [
        "/",
        "/rooms/general",
        "/rooms/general/export.txt",
        "/rooms/general/export.json",
        "/api/rooms/general/events?after=0.0",
        "/settings",
    ] {
        let page = browser.get(path).await;
        assert!(page.status.code < 400, "{path}: {}", page.status);
        assert_eq!(page.header("Cache-Control"), Some("no-store"), "{path}");
    }
    let css = browser
        .get("/static/css/confab.css")
        .await
        .expect(Status::Ok);
    assert!(css
        .header("Cache-Control")
        .unwrap_or("")
        .contains("max-age"));
}

async fn a_password_change_voids_links_and_rotates_the_session(backend: Backend) {
    let Some(app) = TestApp::start(backend).await else {
        return;
    };
    let ann = app.user("ann", false).await;
    let reset = app
        .write(move |c| {
            confab::chat::tokens::issue(c, ann, confab::chat::tokens::RESET, confab::chat::now())
        })
        .await;
    let invite = app
        .write(move |c| {
            confab::chat::tokens::issue(
                c,
                ann,
                confab::chat::tokens::SET_PASSWORD,
                confab::chat::now(),
            )
        })
        .await;
    let mut browser = app.login("ann").await;
    let mut other = app.login("ann").await;
    let before = browser.cookies();
    browser.get("/settings").await.expect(Status::Ok);
    let new_password = "an entirely new password";
    browser
        .post(
            "/settings/password",
            &[
                ("current", PASSWORD),
                ("password", new_password),
                ("confirm", new_password),
            ],
        )
        .await
        .expect(Status::SeeOther);
    browser.get("/settings").await.expect(Status::Ok);
    let after = browser.cookies();
    let session = |cookies: &[rocket::http::Cookie<'static>]| {
        cookies
            .iter()
            .find(|c| c.name() == "confab_session")
            .map(|c| c.value().to_string())
    };
    assert!(session(&after).is_some());
    assert_ne!(session(&before), session(&after), "a new session id");
    // The old session cookie no longer works, nor does the other browser's.
    let mut stale = app.browser();
    for cookie in before {
        stale = with_cookie(stale, cookie);
    }
    let page = stale.get("/settings").await;
    assert_ne!(page.status, Status::Ok, "the old session id is dead");
    assert_ne!(other.get("/settings").await.status, Status::Ok);
    for link in [reset, invite] {
        let page = app.browser().get(&format!("/password/{link}")).await;
        assert_eq!(page.status, Status::NotFound, "outstanding links are void");
    }
}

fn with_cookie<'c>(
    mut browser: super::common::Browser<'c>,
    cookie: rocket::http::Cookie<'static>,
) -> super::common::Browser<'c> {
    browser.add_cookie(cookie);
    browser
}

async fn a_held_poll_answers_nothing_to_a_removed_member(backend: Backend) {
    let Some(app) = TestApp::builder(backend)
        .with(&[("poll_wait_max", 3600)])
        .start()
        .await
    else {
        return;
    };
    let ann = app.user("ann", false).await;
    let bob = app.user("bob", false).await;
    let room = app.room("general", false, &[ann, bob]).await;
    let mut browser = app.login("ann").await;
    let page = browser.get("/rooms/general").await.expect(Status::Ok);
    let cursor = page
        .body
        .split(r#"data-cursor=""#)
        .nth(1)
        .and_then(|r| r.split('"').next())
        .expect("cursor")
        .to_string();
    let held = format!("/api/rooms/general/events?after={cursor}&wait=3600");
    let poll = browser.get(&held);
    let act = async {
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        app.write(move |c| confab::chat::rooms::remove_member(c, room, ann))
            .await;
        // What the in-process admin page does after a membership change, then a change in the room.
        let live = app
            .client
            .rocket()
            .state::<confab::live::Live>()
            .expect("live");
        live.forget(room);
        app.messages(room, bob, vec!["after ann left".into()]).await;
        let cursor = app
            .write(move |c| {
                use confab::db::schema::rooms;
                use diesel::prelude::*;
                Ok(rooms::table
                    .find(room)
                    .select(rooms::cursor)
                    .first::<i64>(c)?)
            })
            .await;
        live.advance(room, cursor);
    };
    let (answer, ()) = tokio::join!(poll, act);
    assert_eq!(answer.status, Status::NotFound, "{}", answer.body);
    assert!(!answer.body.contains("presence"), "{}", answer.body);
    assert!(!answer.body.contains("after ann left"));
}

async fn deeply_nested_messages_render_bounded(backend: Backend) {
    let Some(app) = TestApp::start(backend).await else {
        return;
    };
    let ann = app.user("ann", false).await;
    let room = app.room("general", false, &[ann]).await;
    let hostile = format!("{}too deep", "> ".repeat(5000));
    app.messages(room, ann, vec![hostile; 30]).await;
    let mut browser = app.login("ann").await;
    let (page, health) = tokio::join!(
        browser.get("/rooms/general"),
        app.client.get("/healthz").dispatch()
    );
    assert_eq!(health.status(), Status::Ok);
    let page = page.expect(Status::Ok);
    assert_eq!(page.body.matches("too deep").count(), 30);
    assert!(
        page.body.matches("<blockquote>").count() <= 30 * confab::format::MAX_NESTING,
        "nesting is bounded"
    );
}

async fn a_search_has_a_budget_on_sqlite(backend: Backend) {
    let Some(app) = TestApp::builder(backend)
        .with(&[("search_scan_rows", 10)])
        .start()
        .await
    else {
        return;
    };
    let ann = app.user("ann", false).await;
    let quiet = app.room("quiet", false, &[ann]).await;
    let busy = app.room("busy", false, &[ann]).await;
    app.messages(quiet, ann, vec!["a common thing".into()])
        .await;
    app.messages(
        busy,
        ann,
        (0..30).map(|i| format!("common word {i}")).collect(),
    )
    .await;
    let mut browser = app.login("ann").await;
    let broad = browser.get("/search?q=common").await.expect(Status::Ok);
    assert!(
        broad.body.contains("<mark>common</mark> word"),
        "{}",
        broad.body
    );
    let narrow = browser
        .get(&format!("/search?q={}", encode("common in:quiet")))
        .await;
    match backend {
        // The newest matches walked (at least a page) are all in another room: the walk stops
        // there and says so.
        Backend::Sqlite => {
            assert_eq!(narrow.status, Status::UnprocessableEntity);
            assert!(narrow.body.contains("matches too much"), "{}", narrow.body);
        }
        // PostgreSQL's budget is time (search_timeout_ms), which this search is well within.
        Backend::Postgres => {
            assert_eq!(narrow.status, Status::Ok);
            assert!(
                narrow.body.contains("<mark>common</mark> thing"),
                "{}",
                narrow.body
            );
        }
    }
}

/// The live page resends with the same form id (a retry after a lost answer): the answer is the
/// message as first stored, never the text of the resend under the old id.
async fn a_resend_is_answered_with_the_stored_message(backend: Backend) {
    let Some(app) = TestApp::start(backend).await else {
        return;
    };
    let ann = app.user("ann", false).await;
    app.room("general", false, &[ann]).await;
    let mut browser = app.login("ann").await;
    browser.get("/rooms/general").await.expect(Status::Ok);
    let csrf = browser.csrf.clone().expect("token");
    let post = |body: &'static str| {
        let request = app
            .client
            .post("/api/rooms/general/messages")
            .header(rocket::http::ContentType::JSON)
            .header(rocket::http::Header::new("X-CSRF-Token", csrf.clone()))
            .cookies(browser.cookies())
            .body(format!(
                r#"{{"body":"{body}","client_id":"0123456789abcdef0123456789abcdef"}}"#
            ));
        async move {
            let response = request.dispatch().await;
            let status = response.status();
            let json: Value =
                serde_json::from_str(&response.into_string().await.unwrap_or_default())
                    .expect("json");
            (status, json)
        }
    };
    let (status, first) = post("the first text").await;
    assert_eq!(status, Status::Created);
    let (status, again) = post("a different text").await;
    assert_eq!(status, Status::Created);
    assert_eq!(again["id"], first["id"], "one message");
    let html = again["html"].as_str().unwrap_or("");
    assert!(html.contains("the first text"), "{html}");
    assert!(!html.contains("a different text"));
}
