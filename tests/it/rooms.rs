//! The room list, joining and leaving open rooms, and private rooms staying private.

use rocket::http::Status;

use crate::both_backends;
use crate::common::{Backend, TestApp};

both_backends!(
    join_and_leave_open_rooms,
    private_rooms_are_invisible_to_others,
    room_list_shows_unread_counts,
    unread_counts_stop_at_a_hundred,
    a_member_of_many_rooms_still_gets_pages,
    error_pages_keep_the_navigation
);

/// A member back from a long absence sees "100+", and a mention among the newest unread messages,
/// without any page counting everything they missed.
async fn unread_counts_stop_at_a_hundred(backend: Backend) {
    let Some(app) = TestApp::start(backend).await else {
        return;
    };
    let ann = app.user("ann", false).await;
    let bob = app.user("bob", false).await;
    let busy = app.room("busy", false, &[ann, bob]).await;
    let quiet = app.room("quiet", false, &[ann, bob]).await;
    let mut bodies: Vec<String> = (0..150).map(|i| format!("news {i}")).collect();
    bodies.push("@ann have a look".into());
    app.messages(busy, bob, bodies).await;
    app.messages(quiet, bob, (0..100).map(|i| format!("calm {i}")).collect())
        .await;

    let mut browser = app.login("ann").await;
    let home = browser.get("/").await.expect(Status::Ok);
    assert!(
        home.body
            .contains(r#"<span class="badge" title="unread messages">100+</span>"#),
        "{}",
        home.body
    );
    assert!(
        home.body
            .contains(r#"<span class="badge" title="unread messages">100</span>"#),
        "exactly 100 is 100: {}",
        home.body
    );
    assert!(home.body.contains("What you missed: 200+ unread messages"));
    let sidebar = home.body.split("mention-mark").count() - 1;
    assert_eq!(
        sidebar, 1,
        "the mention in #busy is marked, #quiet has none"
    );
}

/// An error page keeps the navigation for a person who is logged in, and shows none to others.
async fn error_pages_keep_the_navigation(backend: Backend) {
    let Some(app) = TestApp::start(backend).await else {
        return;
    };
    app.user("ann", false).await;
    app.room("secret", true, &[]).await;
    let mut ann = app.login("ann").await;
    for path in ["/rooms/nowhere", "/rooms/secret", "/admin/rooms"] {
        let page = ann.get(path).await;
        assert!(page.status.code >= 400, "{path}: {}", page.status);
        assert!(
            page.body.contains(r#"<a href="/settings">Settings</a>"#)
                && page
                    .body
                    .contains(r#"Log out<span class="who"> ann</span>"#),
            "{path} keeps the navigation: {}",
            page.body
        );
    }
    let mut stranger = app.browser();
    let page = stranger.get("/files/1/x").await.expect(Status::NotFound);
    assert!(!page.body.contains("Log out"), "{}", page.body);
}

async fn join_and_leave_open_rooms(backend: Backend) {
    let Some(app) = TestApp::start(backend).await else {
        return;
    };
    let ann = app.user("ann", false).await;
    app.room("lobby", false, &[]).await;
    app.room("secret", true, &[]).await;
    let room = app.room("old", false, &[]).await;
    app.write(move |c| confab::chat::rooms::set_archived(c, room, Some(confab::chat::now())))
        .await;
    let _ = ann;

    let mut browser = app.login("ann").await;
    let home = browser.get("/").await.expect(Status::Ok);
    assert!(
        home.body.contains("/rooms/lobby/join"),
        "the open room can be joined"
    );
    assert!(
        !home.body.contains("secret") && !home.body.contains("/rooms/old/join"),
        "private and archived rooms are not offered"
    );

    // A non-member opening an open room is offered to join it.
    let preview = browser.get("/rooms/lobby").await.expect(Status::Ok);
    assert!(preview.body.contains("not a member"));
    browser
        .post("/rooms/lobby/join", &[])
        .await
        .expect(Status::SeeOther);
    let home = browser.get("/").await.expect(Status::Ok);
    assert!(
        home.body.contains(r#"href="/rooms/lobby#compose""#),
        "{}",
        home.body
    );
    assert!(!home.body.contains("/rooms/lobby/join"));
    browser
        .post("/rooms/lobby/join", &[])
        .await
        .expect(Status::SeeOther);

    browser.get("/rooms/lobby").await.expect(Status::Ok);
    let left = browser
        .post("/rooms/lobby/leave", &[])
        .await
        .expect(Status::SeeOther);
    assert_eq!(left.location.as_deref(), Some("/"));
    let home = browser.get("/").await.expect(Status::Ok);
    assert!(home.body.contains("You left LOBBY."));
    assert!(home.body.contains("/rooms/lobby/join"));

    // Joining a private or archived room is not possible.
    browser
        .post("/rooms/secret/join", &[])
        .await
        .expect(Status::NotFound);
    browser
        .post("/rooms/old/join", &[])
        .await
        .expect(Status::NotFound);
    browser
        .post("/rooms/lobby/leave", &[])
        .await
        .expect(Status::NotFound);
}

async fn private_rooms_are_invisible_to_others(backend: Backend) {
    let Some(app) = TestApp::start(backend).await else {
        return;
    };
    let ann = app.user("ann", false).await;
    let bob = app.user("bob", false).await;
    let secret = app.room("secret", true, &[ann]).await;
    let general = app.room("general", false, &[ann, bob]).await;
    let hidden = app
        .messages(secret, ann, vec!["the secret plan".into()])
        .await[0];
    let public = app.messages(general, ann, vec!["hello all".into()]).await[0];

    let mut bob_browser = app.login("bob").await;
    let missing = bob_browser
        .get("/rooms/does-not-exist")
        .await
        .expect(Status::NotFound);
    let private = bob_browser
        .get("/rooms/secret")
        .await
        .expect(Status::NotFound);
    assert_eq!(
        private.body, missing.body,
        "a private room looks exactly like a missing one"
    );
    assert!(!private.body.contains("secret plan"));

    bob_browser
        .get(&format!("/rooms/secret?around={hidden}"))
        .await
        .expect(Status::NotFound);
    bob_browser
        .get(&format!("/rooms/secret?before={hidden}"))
        .await
        .expect(Status::NotFound);
    // Another room's message id through a room bob is in.
    bob_browser
        .get(&format!("/rooms/general?around={hidden}"))
        .await
        .expect(Status::NotFound);
    bob_browser
        .get(&format!("/rooms/general?around={public}"))
        .await
        .expect(Status::Ok);
    bob_browser.get("/rooms/general").await;
    bob_browser
        .post("/rooms/secret/messages", &[("body", "let me in")])
        .await
        .expect(Status::NotFound);
    bob_browser
        .post("/rooms/secret/join", &[])
        .await
        .expect(Status::NotFound);
    bob_browser
        .get(&format!("/rooms/secret/messages/{hidden}/edit"))
        .await
        .expect(Status::NotFound);
    bob_browser
        .get(&format!("/rooms/general/messages/{hidden}/edit"))
        .await
        .expect(Status::NotFound);
    bob_browser
        .post(&format!("/rooms/general/messages/{hidden}/delete"), &[])
        .await
        .expect(Status::NotFound);
    bob_browser
        .post(&format!("/rooms/secret/messages/{hidden}/delete"), &[])
        .await
        .expect(Status::NotFound);

    let home = bob_browser.get("/").await.expect(Status::Ok);
    assert!(!home.body.contains("SECRET"));

    let mut ann_browser = app.login("ann").await;
    let page = ann_browser.get("/rooms/secret").await.expect(Status::Ok);
    assert!(
        page.body.contains("the secret plan"),
        "the message survived every attempt"
    );
}

async fn room_list_shows_unread_counts(backend: Backend) {
    let Some(app) = TestApp::start(backend).await else {
        return;
    };
    let ann = app.user("ann", false).await;
    let bob = app.user("bob", false).await;
    let room = app.room("general", false, &[ann, bob]).await;
    app.messages(room, bob, vec!["one".into(), "two".into(), "three".into()])
        .await;
    app.messages(room, ann, vec!["my own".into()]).await;

    let mut browser = app.login("ann").await;
    let home = browser.get("/").await.expect(Status::Ok);
    assert!(
        home.body
            .contains(r#"<span class="badge" title="unread messages">3</span>"#),
        "{}",
        home.body
    );
    assert!(home.body.contains(r#"href="/rooms/general#new""#));
    assert!(
        home.body.contains("last message <time") && home.body.contains(">today "),
        "relative dates on the home page: {}",
        home.body
    );

    let page = browser.get("/rooms/general").await.expect(Status::Ok);
    assert!(page.body.contains("New since your last visit"));
    let divider = page
        .body
        .find("New since your last visit")
        .expect("divider");
    assert!(
        divider < page.body.find(">one<").expect("first unread"),
        "the divider comes before the first unread message"
    );

    let home = browser.get("/").await.expect(Status::Ok);
    assert!(
        !home.body.contains("class=\"badge\""),
        "opening the room marked it read"
    );
    let again = browser.get("/rooms/general").await.expect(Status::Ok);
    assert!(!again.body.contains("New since your last visit"));

    // Posting having read everything leaves nothing unread; posting with others' messages unread
    // leaves those unread.
    app.messages(room, ann, vec!["all caught up".into()]).await;
    let home = browser.get("/").await.expect(Status::Ok);
    assert!(!home.body.contains("class=\"badge\""), "{}", home.body);
    app.messages(room, bob, vec!["four".into(), "five".into()])
        .await;
    app.messages(room, ann, vec!["without reading".into()])
        .await;
    let home = browser.get("/").await.expect(Status::Ok);
    assert!(
        home.body
            .contains(r#"<span class="badge" title="unread messages">2</span>"#),
        "{}",
        home.body
    );
}

/// The sidebar's unread read goes in statements of a bounded size: a member of more rooms than
/// SQLite takes terms in one compound statement (500) still gets every page, with the counts.
async fn a_member_of_many_rooms_still_gets_pages(backend: Backend) {
    let Some(app) = TestApp::start(backend).await else {
        return;
    };
    let ann = app.user("ann", false).await;
    let bob = app.user("bob", false).await;
    let last = app
        .write(move |c| {
            let mut last = 0;
            for i in 0..520 {
                let fields = confab::chat::rooms::RoomFields {
                    slug: &format!("room-{i}"),
                    name: &format!("Room {i}"),
                    description: "",
                    is_private: false,
                };
                let room = confab::chat::rooms::create(c, &fields, confab::chat::now())?;
                confab::chat::rooms::add_member(c, room.id, ann, confab::chat::now())?;
                confab::chat::rooms::add_member(c, room.id, bob, confab::chat::now())?;
                last = room.id;
            }
            Ok(last)
        })
        .await;
    app.messages(last, bob, vec!["hello @ann".into(), "and more".into()])
        .await;
    let mut browser = app.login("ann").await;
    let home = browser.get("/").await.expect(Status::Ok);
    assert!(
        home.body
            .contains(r#"<span class="badge" title="unread messages">2</span>"#),
        "{}",
        home.body
    );
    assert!(home.body.contains("mention-mark"));
}
