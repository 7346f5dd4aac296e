//! Pinned messages (any member pins; the room lists them at the top and on a page of their own)
//! and saved messages (each member's private list), with plain forms.

use rocket::http::Status;

use crate::both_backends;
use crate::common::{message_ids, Backend, TestApp};
use crate::live::page_cursor;
use crate::reading::search;

both_backends!(pinning_for_the_room, saving_for_myself);

async fn pinning_for_the_room(backend: Backend) {
    let Some(app) = TestApp::start(backend).await else {
        return;
    };
    let ann = app.user("ann", false).await;
    let bob = app.user("bob", false).await;
    let carol = app.user("carol", false).await;
    let general = app.room("general", false, &[ann, bob]).await;
    app.room("lobby", false, &[carol]).await;
    let rules = app
        .messages(
            general,
            bob,
            vec!["House rules: be **kind**".into(), "chatter".into()],
        )
        .await[0];
    let mut ann_browser = app.login("ann").await;
    let page = ann_browser.get("/rooms/general").await.expect(Status::Ok);
    assert!(
        !page.body.contains(r#"class="pinned""#),
        "nothing pinned yet"
    );
    let cursor = page_cursor(&page.body);
    ann_browser
        .post(&format!("/rooms/general/messages/{rules}/pin"), &[])
        .await
        .expect(Status::SeeOther);

    // Everyone in the room sees it pinned: at the top of the room, on the pinned page, live.
    let mut bob_browser = app.login("bob").await;
    let page = bob_browser.get("/rooms/general").await.expect(Status::Ok);
    assert!(
        page.body.contains("📌 1 pinned")
            && page.body.contains(&format!(
                r#"?around={rules}#m{rules}"><strong>bob</strong> House rules: be kind</a>"#
            )),
        "{}",
        page.body
    );
    let pinned = bob_browser
        .get("/rooms/general/pinned")
        .await
        .expect(Status::Ok);
    assert_eq!(message_ids(&pinned.body), vec![rules]);
    assert!(pinned.body.contains("📌 pinned") && pinned.body.contains(">Unpin<"));
    let events = ann_browser
        .get(&format!("/api/rooms/general/events?after={cursor}"))
        .await
        .expect(Status::Ok);
    let events: serde_json::Value = serde_json::from_str(&events.body).expect("json");
    assert_eq!(events["messages"][0]["id"], rules);
    assert_eq!(events["messages"][0]["pinned"], true);
    let found = search(&mut bob_browser, "is:pinned rules").await.0;
    assert_eq!(found, vec![rules]);

    // Non-members get nothing; bob unpins.
    let mut carol_browser = app.login("carol").await;
    carol_browser.get("/rooms/lobby").await.expect(Status::Ok);
    carol_browser
        .get("/rooms/general/pinned")
        .await
        .expect(Status::NotFound);
    carol_browser
        .post(&format!("/rooms/general/messages/{rules}/pin"), &[])
        .await
        .expect(Status::NotFound);
    bob_browser
        .post(&format!("/rooms/general/messages/{rules}/pin"), &[])
        .await
        .expect(Status::SeeOther);
    let pinned = ann_browser
        .get("/rooms/general/pinned")
        .await
        .expect(Status::Ok);
    assert!(message_ids(&pinned.body).is_empty());
    assert!(pinned.body.contains("Nothing is pinned here."));

    // A deleted message leaves the pinned list (and its reactions go with it).
    ann_browser
        .post(&format!("/rooms/general/messages/{rules}/pin"), &[])
        .await
        .expect(Status::SeeOther);
    ann_browser
        .post(
            &format!("/rooms/general/messages/{rules}/reactions"),
            &[("emoji", "👍")],
        )
        .await
        .expect(Status::SeeOther);
    bob_browser
        .post(&format!("/rooms/general/messages/{rules}/delete"), &[])
        .await
        .expect(Status::SeeOther);
    let page = ann_browser.get("/rooms/general").await.expect(Status::Ok);
    assert!(
        !page.body.contains(r#"class="pinned""#),
        "nothing pinned is left"
    );
    assert!(
        !page.body.contains(r#"class="reaction"#),
        "no reactions on a deleted message"
    );
    let pinned = ann_browser
        .get("/rooms/general/pinned")
        .await
        .expect(Status::Ok);
    assert!(message_ids(&pinned.body).is_empty());
}

async fn saving_for_myself(backend: Backend) {
    let Some(app) = TestApp::start(backend).await else {
        return;
    };
    let ann = app.user("ann", false).await;
    let bob = app.user("bob", false).await;
    let general = app.room("general", false, &[ann, bob]).await;
    let ops = app.room("ops", false, &[ann, bob]).await;
    let first = app
        .messages(general, bob, vec!["read this later".into()])
        .await[0];
    let second = app
        .messages(ops, bob, vec!["and the ops notes".into()])
        .await[0];
    let mut ann_browser = app.login("ann").await;
    ann_browser.get("/saved").await.expect(Status::Ok);
    for (slug, id) in [("general", first), ("ops", second)] {
        let saved = ann_browser
            .post(&format!("/rooms/{slug}/messages/{id}/save"), &[])
            .await
            .expect(Status::SeeOther);
        assert_eq!(
            saved.location,
            Some(format!("/rooms/{slug}?around={id}#m{id}"))
        );
    }
    let list = ann_browser.get("/saved").await.expect(Status::Ok);
    assert_eq!(
        message_ids(&list.body),
        vec![second, first],
        "most recently saved first"
    );
    assert!(
        list.body.contains(r#"in <a href="/rooms/ops">"#),
        "each with its room"
    );
    let found = search(&mut ann_browser, "is:saved notes").await.0;
    assert_eq!(found, vec![second]);

    // Private: bob sees no saved marks and an empty list; his is:saved finds nothing.
    let mut bob_browser = app.login("bob").await;
    let room = bob_browser.get("/rooms/general").await.expect(Status::Ok);
    assert!(!room.body.contains("saved-tag"));
    let list = bob_browser.get("/saved").await.expect(Status::Ok);
    assert!(message_ids(&list.body).is_empty() && list.body.contains("Nothing saved yet."));
    let found = search(&mut bob_browser, "is:saved notes").await.0;
    assert!(found.is_empty());

    // Saving again takes it off; leaving a room hides what was saved there.
    ann_browser
        .post(&format!("/rooms/general/messages/{first}/save"), &[])
        .await
        .expect(Status::SeeOther);
    ann_browser
        .post("/rooms/ops/leave", &[])
        .await
        .expect(Status::SeeOther);
    let list = ann_browser.get("/saved").await.expect(Status::Ok);
    assert!(message_ids(&list.body).is_empty(), "{}", list.body);
    // Another room's message through this room's address: not found.
    ann_browser
        .post(&format!("/rooms/general/messages/{second}/save"), &[])
        .await
        .expect(Status::NotFound);
}
