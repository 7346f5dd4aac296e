//! Direct conversations: started from a form (or a name in the member list), the same people open
//! the same room, nobody else sees it (admins included), nobody joins or leaves, and every message
//! counts like a mention.

use chrono::Duration;
use rocket::http::Status;

use confab::chat;
use confab::jobs::alerts::{plan, send};

use crate::both_backends;
use crate::common::{Backend, TestApp};
use crate::reading::search;
use crate::smtp::SmtpSink;

both_backends!(
    starting_a_conversation_without_javascript,
    a_conversation_is_invisible_to_everyone_else,
    every_direct_message_alerts_like_a_mention
);

/// Opens the conversation with `names`; returns its address.
async fn open(browser: &mut crate::common::Browser<'_>, names: &str) -> String {
    let page = browser
        .post("/direct", &[("usernames", names)])
        .await
        .expect(Status::SeeOther);
    let location = page.location.expect("a redirect");
    location.trim_end_matches("#compose").to_string()
}

async fn starting_a_conversation_without_javascript(backend: Backend) {
    let Some(app) = TestApp::builder(backend)
        .with(&[("direct_max_members", 3)])
        .start()
        .await
    else {
        return;
    };
    let ann = app.user("ann", false).await;
    let bob = app.user("bob", false).await;
    app.user("carol", false).await;
    app.user("dave", false).await;
    app.room("general", false, &[ann, bob]).await;
    let mut ann_browser = app.login("ann").await;
    // From a name in a room's member list.
    let room = ann_browser.get("/rooms/general").await.expect(Status::Ok);
    assert!(room.body.contains(r#"<a href="/direct/new?with=bob""#));
    let form = ann_browser
        .get("/direct/new?with=bob")
        .await
        .expect(Status::Ok);
    assert!(form.body.contains(r#"name="usernames" value="bob""#));
    let with_bob = open(&mut ann_browser, "bob").await;
    assert!(with_bob.starts_with("/rooms/dm-"), "{with_bob}");
    // The same people again (in any order, with @ or repeats) open the same room.
    assert_eq!(open(&mut ann_browser, "@Bob, bob").await, with_bob);
    let mut bob_browser = app.login("bob").await;
    bob_browser.get("/").await.expect(Status::Ok);
    assert_eq!(open(&mut bob_browser, "ann").await, with_bob);
    let three = open(&mut ann_browser, "carol bob").await;
    assert_ne!(three, with_bob);

    // Each sees the others' names: in the sidebar under "Direct messages" and on the page.
    ann_browser
        .post(
            &format!("{with_bob}/messages"),
            &[("body", "just between us")],
        )
        .await
        .expect(Status::SeeOther);
    let missed = bob_browser.get("/missed").await.expect(Status::Ok);
    assert!(
        missed.body.contains("just between us"),
        "what you missed includes it"
    );
    let page = bob_browser.get(&with_bob).await.expect(Status::Ok);
    assert!(
        page.body
            .contains("<h1>ann <span class=\"tag\">direct</span></h1>"),
        "{}",
        page.body
    );
    assert!(!page.body.contains("Leave room"), "nobody leaves");
    let sidebar = ann_browser.get("/help").await.expect(Status::Ok).body;
    let direct = &sidebar[sidebar.find("Direct messages").expect("the section")..];
    assert!(
        direct.contains(r#"<span class="name">bob</span>"#)
            && direct.contains(r#"<span class="name">bob, carol</span>"#)
    );

    // Refused: nobody named, only myself, a stranger, too many people. Nothing is created.
    for (names, why) in [
        ("", "Name at least one other person."),
        ("ann", "Name at least one other person."),
        ("zed", "There is no one called “zed” here."),
        ("bob carol dave", "at most 3 people"),
        ("<script>", "There is no one called “&lt;script&gt;” here."),
    ] {
        let refused = ann_browser.post("/direct", &[("usernames", names)]).await;
        assert_eq!(refused.status, Status::UnprocessableEntity, "{names}");
        assert!(refused.body.contains(why), "{names}: {}", refused.body);
    }
    let rooms: i64 = app
        .write(|c| {
            use diesel::prelude::*;
            Ok(confab::db::schema::rooms::table
                .filter(confab::db::schema::rooms::kind.eq("direct"))
                .count()
                .get_result(c)?)
        })
        .await;
    assert_eq!(rooms, 2);

    // Nobody leaves; search finds it with in:@name.
    let leave = bob_browser.post(&format!("{with_bob}/leave"), &[]).await;
    assert_eq!(leave.status, Status::UnprocessableEntity);
    let found = search(&mut bob_browser, "in:@ann between").await.0;
    assert_eq!(found.len(), 1);
    let none = search(&mut bob_browser, "in:@carol between").await.0;
    assert!(none.is_empty(), "no conversation of just bob and carol");
}

async fn a_conversation_is_invisible_to_everyone_else(backend: Backend) {
    let Some(app) = TestApp::start(backend).await else {
        return;
    };
    let ann = app.user("ann", false).await;
    app.user("bob", false).await;
    let root = app.user("root", true).await;
    app.room("lobby", false, &[ann, root]).await;
    let mut ann_browser = app.login("ann").await;
    ann_browser.get("/").await.expect(Status::Ok);
    let with_bob = open(&mut ann_browser, "bob").await;
    let slug = with_bob.trim_start_matches("/rooms/").to_string();
    let page = ann_browser
        .post(&format!("{with_bob}/messages"), &[("body", "secret plans")])
        .await
        .expect(Status::SeeOther);
    let id: i64 = page
        .location
        .and_then(|l| l.rsplit("#m").next().and_then(|id| id.parse().ok()))
        .expect("the message id");

    // The admin is in no such room: every address of it is "not found", and no list shows it.
    let mut admin = app.login("root").await;
    for path in [
        with_bob.clone(),
        format!("{with_bob}/pinned"),
        format!("{with_bob}/export.txt"),
        format!("{with_bob}/messages/{id}/thread"),
        format!("{with_bob}/messages/{id}/reactions"),
        format!("/api/rooms/{slug}/events?after=0.0"),
        format!("/admin/rooms/{slug}"),
    ] {
        let page = admin.get(&path).await;
        assert_eq!(page.status, Status::NotFound, "{path}");
        assert!(!page.body.contains("secret plans"), "{path}");
    }
    for (path, fields) in [
        (format!("{with_bob}/messages"), vec![("body", "let me in")]),
        (format!("{with_bob}/join"), vec![]),
        (
            format!("{with_bob}/messages/{id}/reactions"),
            vec![("emoji", "👍")],
        ),
        (
            format!("/admin/rooms/{slug}/members"),
            vec![("username", "root")],
        ),
    ] {
        let page = admin.post(&path, &fields).await;
        assert_eq!(page.status, Status::NotFound, "{path}");
    }
    let rooms = admin.get("/admin/rooms").await.expect(Status::Ok);
    assert!(!rooms.body.contains(&slug) && !rooms.body.contains("ann, bob"));
    let home = admin.get("/").await.expect(Status::Ok);
    assert!(!home.body.contains(&slug), "not among the rooms to join");
    let found = search(&mut admin, "secret plans").await.0;
    assert!(found.is_empty());
}

async fn every_direct_message_alerts_like_a_mention(backend: Backend) {
    let sink = SmtpSink::start().await;
    let url = sink.url();
    let Some(app) = TestApp::builder(backend)
        .with_settings(move |s| s.mail.smtp_url = Some(url))
        .start()
        .await
    else {
        return;
    };
    app.user("ann", false).await;
    app.user("bob", false).await;
    let mut ann_browser = app.login("ann").await;
    ann_browser.get("/").await.expect(Status::Ok);
    let with_bob = open(&mut ann_browser, "bob").await;
    ann_browser
        .post(
            &format!("{with_bob}/messages"),
            &[("body", "are you free tomorrow?")],
        )
        .await
        .expect(Status::SeeOther);
    // Bob's sidebar marks it as for him.
    let sidebar = app
        .login("bob")
        .await
        .get("/help")
        .await
        .expect(Status::Ok)
        .body;
    let direct = &sidebar[sidebar.find("Direct messages").expect("section")..];
    assert!(direct.contains("mention-mark"), "{direct}");
    // After the mention delay (before the general one) bob is mailed, with no @ in the message.
    let at = chat::now() + Duration::minutes(3);
    let settings = app.settings().clone();
    assert_eq!(
        plan(app.db(), &app.mail(), &settings, at)
            .await
            .expect("plan"),
        1
    );
    send(app.db(), &app.mail(), &settings, at)
        .await
        .expect("send");
    let mails = sink.mails();
    assert_eq!(mails.len(), 1);
    assert!(mails[0].header("To").is_some_and(|to| to.contains("bob@")));
    assert_eq!(
        mails[0].header("Subject").as_deref(),
        Some("1 new message in a direct message"),
        "the subject (also on Admin → Outbox) names no one"
    );
    let text = mails[0].text();
    assert!(
        text.contains("are you free tomorrow?") && text.contains("mentions you"),
        "{text}"
    );
}
