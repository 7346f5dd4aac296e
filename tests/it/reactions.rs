//! Reactions: toggled with a plain form (a quick emoji or any `:shortcode:`), shown as counts with
//! who reacted, delivered through the events feed, found by `has:reaction`, and never alerting.

use chrono::Duration;
use rocket::http::Status;

use confab::chat;
use confab::jobs::alerts::plan;

use crate::both_backends;
use crate::common::{Backend, TestApp};
use crate::live::page_cursor;
use crate::reading::search;

both_backends!(
    reacting_without_javascript,
    reactions_are_for_members_of_live_messages,
    reactions_arrive_live_and_alert_no_one
);

/// The `<li>` of message `id` on a page.
fn item(body: &str, id: i64) -> String {
    let start = body.find(&format!(r#"id="m{id}""#)).expect("the message");
    let end = body[start..].find("</li>").expect("its end") + start;
    body[start..end].to_string()
}

async fn react(
    browser: &mut crate::common::Browser<'_>,
    id: i64,
    emoji: &str,
) -> crate::common::browser::Page {
    browser
        .post(
            &format!("/rooms/general/messages/{id}/reactions"),
            &[("emoji", emoji)],
        )
        .await
}

async fn reacting_without_javascript(backend: Backend) {
    let Some(app) = TestApp::start(backend).await else {
        return;
    };
    let ann = app.user("ann", false).await;
    let bob = app.user("bob", false).await;
    let general = app.room("general", false, &[ann, bob]).await;
    let id = app
        .messages(general, ann, vec!["the release is out".into()])
        .await[0];
    app.messages(general, ann, vec!["nobody reacts to this".into()])
        .await;

    let mut bob_browser = app.login("bob").await;
    let page = bob_browser.get("/rooms/general").await.expect(Status::Ok);
    for emoji in chat::reactions::QUICK {
        assert!(
            item(&page.body, id).contains(&format!(r#"name="emoji" value="{emoji}""#)),
            "{emoji} offered"
        );
    }
    let done = react(&mut bob_browser, id, "🎉")
        .await
        .expect(Status::SeeOther);
    assert_eq!(
        done.location.as_deref(),
        Some(format!("/rooms/general?around={id}#m{id}").as_str())
    );
    react(&mut bob_browser, id, ":+1:")
        .await
        .expect(Status::SeeOther);
    let mut ann_browser = app.login("ann").await;
    ann_browser.get("/rooms/general").await.expect(Status::Ok);
    react(&mut ann_browser, id, "tada")
        .await
        .expect(Status::SeeOther);

    let page = ann_browser.get("/rooms/general").await.expect(Status::Ok);
    let shown = item(&page.body, id);
    assert!(
        shown.contains(r#"value="🎉" class="reaction mine" aria-pressed="true" title="bob, ann""#)
            && shown.contains("🎉 by bob, ann:</span> 2</button>"),
        "two 🎉, mine among them: {shown}"
    );
    assert!(
        shown.contains(r#"value="👍" class="reaction" aria-pressed="false" title="bob""#),
        "one 👍 from the :+1: shortcode: {shown}"
    );
    // The no-JavaScript list of who reacted.
    let list = ann_browser
        .get(&format!("/rooms/general/messages/{id}/reactions"))
        .await
        .expect(Status::Ok);
    assert!(
        list.body.contains("🎉</span> 2: bob, ann") && list.body.contains("👍</span> 1: bob"),
        "{}",
        list.body
    );

    // The same emoji again takes it back; an unknown one is refused and changes nothing.
    react(&mut bob_browser, id, "🎉")
        .await
        .expect(Status::SeeOther);
    let refused = react(&mut bob_browser, id, ":no-such-emoji:").await;
    assert_eq!(refused.status, Status::UnprocessableEntity);
    assert!(
        refused.body.contains("no emoji Confab knows"),
        "{}",
        refused.body
    );
    let hostile = react(&mut bob_browser, id, "<script>alert(1)</script>").await;
    assert_eq!(hostile.status, Status::UnprocessableEntity);
    assert!(!hostile.body.contains("<script>alert"), "escaped");
    let page = bob_browser.get("/rooms/general").await.expect(Status::Ok);
    let shown = item(&page.body, id);
    assert!(
        shown.contains(r#"title="ann""#) && shown.contains("🎉 by ann:</span> 1</button>"),
        "{shown}"
    );

    // `has:reaction` finds what someone reacted to.
    let found = search(&mut bob_browser, "has:reaction release").await.0;
    assert_eq!(found, vec![id]);
    let found = search(&mut bob_browser, "has:reaction nobody").await.0;
    assert!(found.is_empty());
    // The JSON export keeps them.
    let export = bob_browser
        .get("/rooms/general/export.json")
        .await
        .expect(Status::Ok);
    assert!(
        export
            .body
            .contains(r#""reactions":[{"by":["bob"],"emoji":"👍"},{"by":["ann"],"emoji":"🎉"}]"#),
        "{}",
        export.body
    );
}

async fn reactions_are_for_members_of_live_messages(backend: Backend) {
    let Some(app) = TestApp::start(backend).await else {
        return;
    };
    let ann = app.user("ann", false).await;
    let bob = app.user("bob", false).await;
    let carol = app.user("carol", false).await;
    let general = app.room("general", false, &[ann, bob]).await;
    let secret = app.room("secret", true, &[bob]).await;
    let id = app.messages(general, bob, vec!["hello".into()]).await[0];
    let hidden = app.messages(secret, bob, vec!["hidden".into()]).await[0];
    app.room("lobby", false, &[carol]).await;
    let mut carol_browser = app.login("carol").await;
    carol_browser.get("/rooms/lobby").await.expect(Status::Ok);
    // Carol is in no room with these messages.
    assert_eq!(
        react(&mut carol_browser, id, "👍").await.status,
        Status::NotFound
    );
    carol_browser
        .get(&format!("/rooms/general/messages/{id}/reactions"))
        .await
        .expect(Status::NotFound);
    let mut ann_browser = app.login("ann").await;
    ann_browser.get("/rooms/general").await.expect(Status::Ok);
    // Another room's message through this room's address: not found.
    assert_eq!(
        react(&mut ann_browser, hidden, "👍").await.status,
        Status::NotFound
    );
    ann_browser
        .post(
            &format!("/rooms/secret/messages/{hidden}/reactions"),
            &[("emoji", "👍")],
        )
        .await
        .expect(Status::NotFound);
    // A forged form changes nothing.
    let forged = ann_browser
        .post_raw(
            &format!("/rooms/general/messages/{id}/reactions"),
            &[("csrf", "forged"), ("emoji", "👍")],
        )
        .await;
    assert_eq!(forged.status, Status::Forbidden);
    // A deleted message takes none.
    let mut bob_browser = app.login("bob").await;
    bob_browser.get("/rooms/general").await.expect(Status::Ok);
    bob_browser
        .post(&format!("/rooms/general/messages/{id}/delete"), &[])
        .await
        .expect(Status::SeeOther);
    let late = react(&mut ann_browser, id, "👍").await;
    assert_eq!(late.status, Status::UnprocessableEntity);
    let count: i64 = app
        .write(|c| {
            use diesel::prelude::*;
            Ok(confab::db::schema::reactions::table.count().get_result(c)?)
        })
        .await;
    assert_eq!(count, 0, "nothing refused was stored");
}

async fn reactions_arrive_live_and_alert_no_one(backend: Backend) {
    let Some(app) = TestApp::start(backend).await else {
        return;
    };
    let ann = app.user("ann", false).await;
    let bob = app.user("bob", false).await;
    let general = app.room("general", false, &[ann, bob]).await;
    let id = app.messages(general, ann, vec!["ship it?".into()]).await[0];
    let mut ann_browser = app.login("ann").await;
    let cursor = page_cursor(
        &ann_browser
            .get("/rooms/general")
            .await
            .expect(Status::Ok)
            .body,
    );
    let mut bob_browser = app.login("bob").await;
    bob_browser.get("/rooms/general").await.expect(Status::Ok);
    react(&mut bob_browser, id, "👍")
        .await
        .expect(Status::SeeOther);

    let events = ann_browser
        .get(&format!("/api/rooms/general/events?after={cursor}"))
        .await
        .expect(Status::Ok);
    let events: serde_json::Value = serde_json::from_str(&events.body).expect("json");
    let message = &events["messages"][0];
    assert_eq!(message["id"], id);
    assert_eq!(
        message["reactions"],
        serde_json::json!([{ "emoji": "👍", "count": 1 }])
    );
    let html = message["html"].as_str().expect("html");
    assert!(
        html.contains(r#"class="reaction""#) && html.contains(r#"name="csrf" value=""#),
        "{html}"
    );
    assert!(
        !html.contains(r#"name="csrf" value="""#),
        "the fragment's forms carry ann's token"
    );

    // Ann is away for a day: a reaction is no reason to mail her (nor bob, who read the room).
    app.write_reads().await;
    let later = chat::now() + Duration::days(1);
    let planned = plan(app.db(), &app.mail(), app.settings(), later)
        .await
        .expect("plan");
    assert_eq!(planned, 0, "reactions do not alert");
    // While a message at the same moment would.
    app.messages(general, bob, vec!["shipped".into()]).await;
    let planned = plan(app.db(), &app.mail(), app.settings(), later)
        .await
        .expect("plan");
    assert_eq!(planned, 1, "a message does");
    let sent = confab::jobs::alerts::send(app.db(), &app.mail(), app.settings(), later)
        .await
        .expect("send");
    assert_eq!(sent, 1);
    let mail = app.mail().delivered();
    assert!(mail.iter().any(|m| m.contains("shipped")) && !mail.iter().any(|m| m.contains("👍")));
}
