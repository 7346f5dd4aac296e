//! Posting, the exactly-once form token, paging back through history, permalinks, edits and deletions.

use rocket::http::Status;

use confab::chat::{self, messages};

use crate::both_backends;
use crate::common::{message_ids, Backend, TestApp};

both_backends!(
    posting_without_javascript,
    a_form_posts_exactly_once,
    bad_messages_are_refused_and_kept,
    paging_back_to_the_first_message,
    permalinks_open_the_page_around_a_message,
    editing_and_deleting,
    every_change_moves_the_room_cursor,
    messages_are_grouped_by_author,
    readers_at_one_cursor_share_one_read_of_a_page,
    away_members_show_when_they_were_last_seen
);

/// Away members show when they were last seen anywhere (another instance, another room): the page
/// reads the members again once what it holds is older than the presence batches.
async fn away_members_show_when_they_were_last_seen(backend: Backend) {
    let Some(app) = TestApp::builder(backend)
        .with(&[("presence_flush_secs", 1)])
        .start()
        .await
    else {
        return;
    };
    let ann = app.user("ann", false).await;
    let bob = app.user("bob", false).await;
    app.room("general", false, &[ann, bob]).await;
    let seen = |day: &'static str| {
        let at = chrono::NaiveDateTime::parse_from_str(day, "%Y-%m-%d %H:%M").expect("time");
        app.write(move |c| {
            use confab::db::schema::users;
            use diesel::prelude::*;
            diesel::update(users::table.find(bob))
                .set(users::last_seen_at.eq(at))
                .execute(c)?;
            Ok(())
        })
    };
    seen("2025-01-05 10:00").await;
    let mut browser = app.login("ann").await;
    let page = browser.get("/rooms/general").await.expect(Status::Ok);
    assert!(page.body.contains("last seen 5 Jan 2025"), "{}", page.body);
    // Bob is seen elsewhere; the batch of presence writes it to the database.
    seen("2025-02-07 10:00").await;
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let page = browser.get("/rooms/general").await.expect(Status::Ok);
    assert!(page.body.contains("last seen 7 Feb 2025"), "{}", page.body);
    assert!(page.body.contains(r#"title="Message bob directly""#));
    assert!(!page.body.contains(r#"title="Message ann directly""#));
    // The member list is rendered once per list and reader: Bob sees Ann as a link and himself
    // not, and once he is here, Ann's next page shows him here, with no "last seen".
    let mut bobs = app.login("bob").await;
    let page = bobs.get("/rooms/general").await.expect(Status::Ok);
    assert!(page.body.contains(r#"title="Message ann directly""#));
    assert!(!page.body.contains(r#"title="Message bob directly""#));
    let page = browser.get("/rooms/general").await.expect(Status::Ok);
    assert!(page.body.contains(r#"title="Message bob directly""#));
    assert!(!page.body.contains("last seen"), "{}", page.body);
}

/// The ids of the messages a page shows as saved by its reader.
fn saved_ids(body: &str) -> Vec<i64> {
    body.split(r#"<li class="message"#)
        .skip(1)
        .filter(|li| li.contains("saved-tag"))
        .filter_map(|li| li.split(r#"id="m"#).nth(1)?.split('"').next()?.parse().ok())
        .collect()
}

/// Members who open a page of a room where nothing changed share one read of it; what only the
/// reader sees (saved marks, the unread divider) is still theirs, and a saved mark shows at once.
async fn readers_at_one_cursor_share_one_read_of_a_page(backend: Backend) {
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
            vec!["one".into(), "two".into(), "three".into()],
        )
        .await;
    let mut ann_browser = app.login("ann").await;
    let mut bob_browser = app.login("bob").await;
    ann_browser.get("/rooms/general").await.expect(Status::Ok);
    bob_browser.get("/rooms/general").await.expect(Status::Ok);
    ann_browser
        .post(&format!("/rooms/general/messages/{}/save", ids[1]), &[])
        .await
        .expect(Status::SeeOther);

    // Saving moved no cursor, but ann's page shows it at once; bob's does not show ann's mark.
    let before = app.db().queries();
    let page = ann_browser.get("/rooms/general").await.expect(Status::Ok);
    let first_read = app.db().queries() - before;
    assert_eq!(message_ids(&page.body), ids);
    assert_eq!(saved_ids(&page.body), [ids[1]], "ann's own mark, at once");
    assert!(
        !page.body.contains("New since your last visit"),
        "ann read these on her first visit"
    );
    let before = app.db().queries();
    let page = bob_browser.get("/rooms/general").await.expect(Status::Ok);
    let shared = app.db().queries() - before;
    assert_eq!(message_ids(&page.body), ids);
    assert!(saved_ids(&page.body).is_empty(), "ann's mark is hers");
    assert!(
        shared < first_read,
        "bob's page reads only his room and sidebar ({shared} statements, ann's {first_read})"
    );

    // An older page is shared the same way; a permalink that is not in the room is "not found" for
    // everyone who asked for it together.
    let older = format!("/rooms/general?before={}", ids[2]);
    let (ann_page, bob_page) =
        rocket::futures::join!(ann_browser.get(&older), bob_browser.get(&older));
    assert_eq!(message_ids(&ann_page.body), ids[..2]);
    assert_eq!(message_ids(&bob_page.body), ids[..2]);
    assert_eq!(saved_ids(&ann_page.body), [ids[1]]);
    assert!(saved_ids(&bob_page.body).is_empty());
    let (ann_page, bob_page) = rocket::futures::join!(
        ann_browser.get("/rooms/general?around=999999"),
        bob_browser.get("/rooms/general?around=999999"),
    );
    assert_eq!(ann_page.status, Status::NotFound);
    assert_eq!(bob_page.status, Status::NotFound);

    // A new message moves the cursor: the next page reads again and shows it, with the divider
    // before it for the reader who has not seen it.
    let newer = app.messages(general, bob, vec!["four".into()]).await[0];
    let page = ann_browser.get("/rooms/general").await.expect(Status::Ok);
    assert_eq!(message_ids(&page.body).last(), Some(&newer));
    let divider = page
        .body
        .find("New since your last visit")
        .expect("divider");
    assert!(divider < page.body.find(&format!(r#"id="m{newer}""#)).expect("four"));
    assert_eq!(saved_ids(&page.body), [ids[1]]);
    // What the page showed counts as read, before and after the batch of read markers is written.
    let page = ann_browser.get("/rooms/general").await.expect(Status::Ok);
    assert!(!page.body.contains("New since your last visit"));
    app.write_reads().await;
    let marker: i64 = app
        .write(move |c| {
            use confab::db::schema::memberships;
            use diesel::prelude::*;
            Ok(memberships::table
                .filter(memberships::room_id.eq(general))
                .filter(memberships::user_id.eq(ann))
                .select(memberships::last_read_id)
                .first(c)?)
        })
        .await;
    assert_eq!(marker, newer);
    // Read already, the latest page leaves nothing to write.
    ann_browser.get("/rooms/general").await.expect(Status::Ok);
    assert_eq!(app.services().live.unsaved_reads(), Vec::new());
}

/// Consecutive messages by one author within a few minutes are one group: the name and avatar
/// once. Another author, or a gap, starts a new group.
async fn messages_are_grouped_by_author(backend: Backend) {
    let Some(app) = TestApp::start(backend).await else {
        return;
    };
    let ann = app.user("ann", false).await;
    let bob = app.user("bob", false).await;
    let room = app.room("general", false, &[ann, bob]).await;
    app.messages(room, ann, vec!["one".into(), "two".into()])
        .await;
    app.messages(room, bob, vec!["three".into()]).await;
    app.messages(room, ann, vec!["four".into()]).await;
    // A fifth by ann, but ten minutes later.
    let later = chat::now() + chrono::Duration::minutes(10);
    app.write(move |c| {
        messages::post(c, "general", ann, "five", None, None, later)
            .map(|_| ())
            .map_err(|e| match e {
                messages::NotPosted::Failed(e) => e,
                messages::NotPosted::Duplicate(_) => confab::error::Error::NotFound,
            })
    })
    .await;
    let mut browser = app.login("bob").await;
    let page = browser.get("/rooms/general").await.expect(Status::Ok);
    let item = |text: &str| {
        page.body
            .split("<li class=\"message")
            .find(|li| li.contains(&format!("<p>{text}</p>")))
            .unwrap_or_else(|| panic!("{text} on the page"))
            .to_string()
    };
    let grouped = |text: &str| item(text).starts_with(" continued");
    assert!(
        !grouped("one") && grouped("two"),
        "ann's second joins her first"
    );
    assert!(!grouped("three"), "another author starts a group");
    assert!(!grouped("four"), "so does ann again after bob");
    assert!(!grouped("five"), "and a gap of ten minutes");
    assert!(
        item("one").contains(r#"<span class="avatar avatar-"#)
            && item("one").contains(">AN</span>"),
        "a generated avatar with initials"
    );
}

async fn posting_without_javascript(backend: Backend) {
    let Some(app) = TestApp::start(backend).await else {
        return;
    };
    let ann = app.user("ann", false).await;
    let bob = app.user("bob", false).await;
    app.room("general", false, &[ann, bob]).await;

    let mut ann_browser = app.login("ann").await;
    ann_browser.get("/rooms/general").await.expect(Status::Ok);
    let hostile = "<script>alert(1)</script> <img src=x onerror=alert(2)>\nsecond line\u{0}\u{7} see https://example.org/a?b=1&c=2 and javascript:alert(3)";
    let posted = ann_browser
        .post("/rooms/general/messages", &[("body", hostile)])
        .await
        .expect(Status::SeeOther);
    let location = posted.location.expect("redirect");
    assert!(location.starts_with("/rooms/general#m"), "{location}");

    let mut bob_browser = app.login("bob").await;
    let page = bob_browser.get("/rooms/general").await.expect(Status::Ok);
    assert!(page.body.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    // Keyboard users skip the navigation: to the content, the messages or the composer.
    for target in ["#main", "#messages", "#body"] {
        assert!(
            page.body
                .contains(&format!(r#"<a class="skip" href="{target}">"#)),
            "a skip link to {target}"
        );
    }
    assert!(page.body.contains(r#"id="messages""#) && page.body.contains(r#"id="main""#));
    assert!(!page.body.contains("<script>") && !page.body.contains("<img"));
    assert!(
        page.body.contains("<p>second line"),
        "the second line stays a line of its own"
    );
    assert!(
        !page.body.contains('\u{7}') && !page.body.contains('\u{0}'),
        "control characters are dropped"
    );
    assert!(page.body.contains(
        r#"<a href="https://example.org/a?b=1&amp;c=2" rel="noopener noreferrer nofollow""#
    ));
    assert!(!page.body.contains(r#"href="javascript"#));
    let csp = page.header("Content-Security-Policy").expect("CSP");
    assert!(csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"));

    bob_browser
        .post("/rooms/general/messages", &[("body", "hi ann")])
        .await
        .expect(Status::SeeOther);
    let page = ann_browser.get("/rooms/general").await.expect(Status::Ok);
    assert!(page.body.contains("hi ann"));
    assert_eq!(message_ids(&page.body).len(), 2);
}

async fn a_form_posts_exactly_once(backend: Backend) {
    let Some(app) = TestApp::start(backend).await else {
        return;
    };
    let ann = app.user("ann", false).await;
    app.room("general", false, &[ann]).await;
    let mut browser = app.login("ann").await;
    let page = browser.get("/rooms/general").await.expect(Status::Ok);
    let client_id = page
        .body
        .split(r#"name="client_id" value=""#)
        .nth(1)
        .and_then(|r| r.split('"').next())
        .expect("token")
        .to_string();

    let first = browser
        .post(
            "/rooms/general/messages",
            &[("body", "only once"), ("client_id", &client_id)],
        )
        .await
        .expect(Status::SeeOther);
    let second = browser
        .post(
            "/rooms/general/messages",
            &[("body", "only once"), ("client_id", &client_id)],
        )
        .await
        .expect(Status::SeeOther);
    assert_eq!(
        first.location, second.location,
        "the resubmission leads to the same message"
    );

    // Without a token every post is a new message.
    browser
        .post("/rooms/general/messages", &[("body", "again")])
        .await
        .expect(Status::SeeOther);
    browser
        .post("/rooms/general/messages", &[("body", "again")])
        .await
        .expect(Status::SeeOther);
    let page = browser.get("/rooms/general").await.expect(Status::Ok);
    assert_eq!(page.body.matches("only once").count(), 1);
    assert_eq!(message_ids(&page.body).len(), 3);
    let fresh = page
        .body
        .split(r#"name="client_id" value=""#)
        .nth(1)
        .and_then(|r| r.split('"').next())
        .expect("token");
    assert_ne!(fresh, client_id, "every page render gets a new token");

    // The same token sent to another room (whose next cursor equals the revision of the message
    // the token posted) is refused with the draft kept, and changes nothing there.
    app.room("other", false, &[ann]).await;
    let refused = browser
        .post(
            "/rooms/other/messages",
            &[("body", "wrong room"), ("client_id", &client_id)],
        )
        .await
        .expect(Status::UnprocessableEntity);
    assert!(
        refused.body.contains("already used in another room"),
        "{}",
        refused.body
    );
    assert!(refused.body.contains("wrong room"), "the draft is kept");
    let other = browser.get("/rooms/other").await.expect(Status::Ok);
    assert!(message_ids(&other.body).is_empty());
    assert!(other.body.contains(r#"data-cursor="0."#), "{}", other.body);
}

async fn bad_messages_are_refused_and_kept(backend: Backend) {
    let extra = &[("max_message_chars", 50)];
    let Some(app) = TestApp::builder(backend).with(extra).start().await else {
        return;
    };
    let ann = app.user("ann", false).await;
    app.room("general", false, &[ann]).await;
    let mut browser = app.login("ann").await;
    browser.get("/rooms/general").await.expect(Status::Ok);

    let empty = browser
        .post("/rooms/general/messages", &[("body", "  \n\t \u{7} ")])
        .await;
    assert_eq!(empty.status, Status::UnprocessableEntity);
    assert!(
        empty.body.contains("A message can&#x27;t be empty.")
            || empty.body.contains("A message can't be empty."),
        "{}",
        empty.body
    );

    let long = format!("{} <tail>", "x".repeat(60));
    let too_long = browser
        .post("/rooms/general/messages", &[("body", &long)])
        .await;
    assert_eq!(too_long.status, Status::UnprocessableEntity);
    assert!(too_long.body.contains("the limit is 50"));
    assert!(
        too_long
            .body
            .contains(&format!("{} &lt;tail&gt;</textarea>", "x".repeat(60))),
        "the typed text is kept, escaped"
    );

    // A body far beyond any form limit is refused as too large, not read into memory.
    let huge = "y".repeat(2 * 1024 * 1024);
    let refused = browser
        .post("/rooms/general/messages", &[("body", &huge)])
        .await;
    assert_eq!(refused.status, Status::PayloadTooLarge);
    assert!(refused.body.contains("too large"));

    let page = browser.get("/rooms/general").await.expect(Status::Ok);
    assert!(message_ids(&page.body).is_empty(), "nothing was stored");
}

async fn paging_back_to_the_first_message(backend: Backend) {
    let extra = &[("page_size", 5)];
    let Some(app) = TestApp::builder(backend).with(extra).start().await else {
        return;
    };
    let ann = app.user("ann", false).await;
    let room = app.room("general", false, &[ann]).await;
    let ids = app
        .messages(
            room,
            ann,
            (1..=17).map(|i| format!("message number {i}")).collect(),
        )
        .await;

    let mut browser = app.login("ann").await;
    let mut page = browser.get("/rooms/general").await.expect(Status::Ok);
    let mut seen = Vec::new();
    let mut pages = 0;
    loop {
        pages += 1;
        let on_page = message_ids(&page.body);
        assert!(on_page.len() <= 5);
        assert!(on_page.windows(2).all(|w| w[0] < w[1]), "oldest at the top");
        seen.splice(0..0, on_page);
        let Some(older) = page
            .body
            .split(r#"href="/rooms/general?before="#)
            .nth(1)
            .and_then(|r| r.split('"').next())
        else {
            break;
        };
        let older = older.to_string();
        page = browser
            .get(&format!("/rooms/general?before={older}"))
            .await
            .expect(Status::Ok);
        assert!(
            page.body.contains("?after="),
            "older pages link to newer ones"
        );
    }
    assert_eq!(pages, 4);
    assert_eq!(seen, ids, "every message, each once, in order");
    assert!(page.body.contains("This is the beginning of GENERAL."));

    // Newer links walk forward again.
    let forward = browser
        .get(&format!("/rooms/general?after={}", ids[4]))
        .await
        .expect(Status::Ok);
    assert_eq!(message_ids(&forward.body), ids[5..10].to_vec());
}

async fn permalinks_open_the_page_around_a_message(backend: Backend) {
    let extra = &[("page_size", 6)];
    let Some(app) = TestApp::builder(backend).with(extra).start().await else {
        return;
    };
    let ann = app.user("ann", false).await;
    let room = app.room("general", false, &[ann]).await;
    let ids = app
        .messages(
            room,
            ann,
            (1..=30).map(|i| format!("message number {i}")).collect(),
        )
        .await;
    let target = ids[10];

    let mut browser = app.login("ann").await;
    let page = browser
        .get(&format!("/rooms/general?around={target}"))
        .await
        .expect(Status::Ok);
    let shown = message_ids(&page.body);
    assert!(shown.contains(&target));
    assert_eq!(shown, ids[8..14].to_vec());
    let target_item = page
        .body
        .split("<li ")
        .find(|li| li.contains(&format!(r#"id="m{target}""#)))
        .expect("the target on the page");
    assert!(
        target_item.starts_with(r#"class="message marked"#),
        "the target is marked: {target_item}"
    );
    assert!(
        page.body.contains(&format!(
            r#"href="/rooms/general?around={target}#m{target}""#
        )),
        "each message has its permalink"
    );
    assert!(
        page.body.contains(&format!("?before={}", ids[8]))
            && page.body.contains(&format!("?after={}", ids[13])),
        "links to the older and the newer messages"
    );
    // At either end of the history, the page has no link past it.
    let first = browser
        .get(&format!("/rooms/general?around={}", ids[0]))
        .await
        .expect(Status::Ok);
    assert_eq!(message_ids(&first.body), ids[0..4].to_vec());
    assert!(!first.body.contains("?before=") && first.body.contains(&format!("?after={}", ids[3])));
    let last = browser
        .get(&format!("/rooms/general?around={}", ids[29]))
        .await
        .expect(Status::Ok);
    assert_eq!(message_ids(&last.body), ids[27..30].to_vec());
    assert!(last.body.contains(&format!("?before={}", ids[27])) && !last.body.contains("?after="));
    browser
        .get("/rooms/general?around=999999")
        .await
        .expect(Status::NotFound);

    // The latest page still shows the newest messages; the permalink did not mark the room read.
    let latest = browser.get("/rooms/general").await.expect(Status::Ok);
    assert_eq!(message_ids(&latest.body), ids[24..].to_vec());
}

async fn editing_and_deleting(backend: Backend) {
    let Some(app) = TestApp::start(backend).await else {
        return;
    };
    let ann = app.user("ann", false).await;
    let bob = app.user("bob", false).await;
    app.user("admin", true).await;
    let room = app.room("general", false, &[ann, bob]).await;
    let ids = app
        .messages(
            room,
            ann,
            vec!["first draft".into(), "to be removed".into()],
        )
        .await;
    let (first, second) = (ids[0], ids[1]);

    let mut ann_browser = app.login("ann").await;
    let edit = ann_browser
        .get(&format!("/rooms/general/messages/{first}/edit"))
        .await
        .expect(Status::Ok);
    assert!(edit.body.contains(">first draft</textarea>"));
    let empty = ann_browser
        .post(
            &format!("/rooms/general/messages/{first}/edit"),
            &[("body", " ")],
        )
        .await;
    assert_eq!(empty.status, Status::UnprocessableEntity);
    let saved = ann_browser
        .post(
            &format!("/rooms/general/messages/{first}/edit"),
            &[("body", "final text")],
        )
        .await
        .expect(Status::SeeOther);
    assert_eq!(
        saved.location,
        Some(format!("/rooms/general?around={first}#m{first}"))
    );

    let mut bob_browser = app.login("bob").await;
    let page = bob_browser.get("/rooms/general").await.expect(Status::Ok);
    assert!(
        page.body.contains("final text")
            && page.body.contains("(edited)")
            && !page.body.contains("first draft")
    );
    assert!(
        !page.body.contains(&format!("/messages/{first}/edit")),
        "no edit link on others' messages"
    );
    bob_browser
        .get(&format!("/rooms/general/messages/{first}/edit"))
        .await
        .expect(Status::Forbidden);
    bob_browser
        .post(
            &format!("/rooms/general/messages/{first}/edit"),
            &[("body", "hijacked")],
        )
        .await
        .expect(Status::Forbidden);
    bob_browser
        .post(&format!("/rooms/general/messages/{first}/delete"), &[])
        .await
        .expect(Status::Forbidden);
    bob_browser
        .get(&format!("/rooms/general/messages/{first}/delete"))
        .await
        .expect(Status::Forbidden);

    // Deleting asks first: the link leads to a page that shows the message and the button.
    ann_browser.get("/rooms/general").await;
    let asked = ann_browser
        .get(&format!("/rooms/general/messages/{second}/delete"))
        .await
        .expect(Status::Ok);
    assert!(
        asked.body.contains("Delete this message?")
            && asked.body.contains("to be removed")
            && asked.body.contains(&format!(
                r#"action="/rooms/general/messages/{second}/delete""#
            )),
        "{}",
        asked.body
    );
    ann_browser
        .post(&format!("/rooms/general/messages/{second}/delete"), &[])
        .await
        .expect(Status::SeeOther);
    let page = bob_browser.get("/rooms/general").await.expect(Status::Ok);
    assert!(page.body.contains("message deleted") && !page.body.contains("to be removed"));
    ann_browser
        .get(&format!("/rooms/general/messages/{second}/delete"))
        .await
        .expect(Status::Forbidden);
    assert_eq!(
        message_ids(&page.body),
        vec![first, second],
        "the deleted message keeps its place"
    );
    ann_browser
        .post(
            &format!("/rooms/general/messages/{second}/edit"),
            &[("body", "back")],
        )
        .await
        .expect(Status::UnprocessableEntity);

    // An admin may delete anyone's message, even in a room they are a member of only for that.
    let admin_id = app
        .write(|c| {
            Ok(confab::chat::users::find_by_username(c, "admin")?
                .expect("admin")
                .id)
        })
        .await;
    app.write(move |c| confab::chat::rooms::add_member(c, room, admin_id, confab::chat::now()))
        .await;
    let mut admin = app.login("admin").await;
    admin.get("/rooms/general").await;
    admin
        .post(&format!("/rooms/general/messages/{first}/delete"), &[])
        .await
        .expect(Status::SeeOther);
    let page = ann_browser.get("/rooms/general").await;
    assert_eq!(page.body.matches(">message deleted<").count(), 2);
}

async fn every_change_moves_the_room_cursor(backend: Backend) {
    use confab::chat::{messages, now, rooms};
    let Some(app) = TestApp::start(backend).await else {
        return;
    };
    let ann = app.user("ann", false).await;
    let room = app.room("general", false, &[ann]).await;
    let cursor = |app: &TestApp| {
        let db = app.db().clone();
        async move {
            db.run(|c| Ok::<_, confab::error::Error>(rooms::find_by_slug(c, "general")?.cursor))
                .await
                .expect("cursor")
        }
    };
    assert_eq!(cursor(&app).await, 0);
    let id = app.messages(room, ann, vec!["one".into()]).await[0];
    let after_post = cursor(&app).await;
    app.write(move |c| messages::edit(c, room, id, ann, "two", now()))
        .await;
    let after_edit = cursor(&app).await;
    app.write(move |c| messages::delete(c, room, id, ann, false, now()))
        .await;
    let after_delete = cursor(&app).await;
    assert!(0 < after_post && after_post < after_edit && after_edit < after_delete);
    let message = app.write(move |c| messages::get(c, room, id)).await;
    assert_eq!(
        message.message.revision, after_delete,
        "the message carries the cursor of its last change"
    );
}
