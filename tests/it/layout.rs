//! The chat layout without JavaScript: the room sidebar on every logged-in page, the message
//! actions menu, and the help page.

use rocket::http::Status;

use confab::chat;

use crate::both_backends;
use crate::common::{Backend, TestApp};

both_backends!(
    the_sidebar_lists_my_rooms_with_unread_counts_and_mentions,
    unread_counts_follow_every_change_and_quiet_rooms_are_not_counted_again,
    the_sidebar_lists_the_first_open_rooms_and_the_home_page_all,
    message_actions_sit_in_a_menu,
    the_help_page_lists_the_shortcuts
);

/// The sidebar's HTML on a page.
fn sidebar(page: &str) -> &str {
    let start = page
        .find(r#"<nav class="sidebar""#)
        .expect("a sidebar on the page");
    let end = page[start..].find("</nav>").expect("the sidebar's end") + start;
    &page[start..end]
}

/// The sidebar's entry of room `slug`.
fn entry<'a>(sidebar: &'a str, slug: &str) -> Option<&'a str> {
    sidebar
        .split("<li>")
        .find(|li| li.contains(&format!(r#"href="/rooms/{slug}"#)))
}

async fn the_sidebar_lists_my_rooms_with_unread_counts_and_mentions(backend: Backend) {
    let Some(app) = TestApp::start(backend).await else {
        return;
    };
    let ann = app.user("ann", true).await;
    let bob = app.user("bob", false).await;
    let carol = app.user("carol", false).await;
    let general = app.room("general", false, &[ann, bob]).await;
    let random = app.room("random", false, &[ann, bob]).await;
    app.room("lobby", false, &[carol]).await;
    app.room("secret", true, &[bob, carol]).await;
    app.messages(general, bob, vec!["hello @anna, not ann".into()])
        .await;
    app.messages(random, bob, vec!["first".into(), "look, @Ann!".into()])
        .await;
    app.messages(random, ann, vec!["my own @ann".into()]).await;

    let mut browser = app.login("ann").await;
    // Every logged-in page has it: the settings, the admin pages, help, search.
    for path in [
        "/settings",
        "/admin/users",
        "/help",
        "/search?q=x",
        "/missed",
    ] {
        let page = browser.get(path).await.expect(Status::Ok);
        let side = sidebar(&page.body);
        assert!(entry(side, "general").is_some(), "{path}: general listed");
    }
    let page = browser.get("/help").await.expect(Status::Ok);
    let side = sidebar(&page.body);
    let general_entry = entry(side, "general").expect("general");
    assert!(
        general_entry.contains("unread: </span>1</span>")
            && !general_entry.contains("mention-mark"),
        "general: one unread, @anna is not a mention of ann: {general_entry}"
    );
    let random_entry = entry(side, "random").expect("random");
    assert!(
        random_entry.contains("unread: </span>2</span>") && random_entry.contains("mention-mark"),
        "random: two unread by others, one mentions ann: {random_entry}"
    );
    assert!(
        side.contains("Open rooms") && entry(side, "lobby").is_some(),
        "an open room ann may join"
    );
    assert!(
        entry(side, "secret").is_none(),
        "someone else's private room is not listed"
    );
    assert!(
        side.contains(r#"href="/missed""#),
        "a link to what I missed"
    );
    assert!(
        page.body.contains("unread: </span>3</span>"),
        "the Rooms link counts every unread message (for phones)"
    );

    // In the room, its entry is the current page, and read once the page showed the messages.
    let page = browser.get("/rooms/random").await.expect(Status::Ok);
    let random_entry = entry(sidebar(&page.body), "random").expect("random");
    assert!(
        random_entry.contains(r#"aria-current="page""#)
            && !random_entry.contains("badge")
            && !random_entry.contains("mention-mark"),
        "the open room is current and read: {random_entry}"
    );
    // Each entry is rendered once and reused: the same entry, no longer current, on the next page,
    // and current again on a page about its room (its pinned messages).
    let page = browser.get("/help").await.expect(Status::Ok);
    let random_entry = entry(sidebar(&page.body), "random").expect("random");
    assert!(!random_entry.contains("aria-current") && !random_entry.contains("badge"));
    let page = browser.get("/rooms/random/pinned").await.expect(Status::Ok);
    let side = sidebar(&page.body);
    let random_entry = entry(side, "random").expect("random");
    assert!(
        random_entry.contains(r#"aria-current="page""#),
        "{random_entry}"
    );
    assert!(!entry(side, "general")
        .expect("general")
        .contains("aria-current"));
    // Error pages keep the navigation but not the sidebar (no query behind a failure).
    let page = browser.get("/rooms/nowhere").await.expect(Status::NotFound);
    assert!(page.body.contains("Log out") && !page.body.contains(r#"class="sidebar""#));
}

/// Unread counts are kept per room until the room changes or the member reads on: a page where
/// nothing happened counts nothing again, and every change shows on the next page.
async fn unread_counts_follow_every_change_and_quiet_rooms_are_not_counted_again(backend: Backend) {
    let Some(app) = TestApp::start(backend).await else {
        return;
    };
    let ann = app.user("ann", false).await;
    let bob = app.user("bob", false).await;
    let general = app.room("general", false, &[ann, bob]).await;
    let random = app.room("random", false, &[ann, bob]).await;
    let posted = app
        .messages(general, bob, vec!["one".into(), "two".into()])
        .await;
    let mut browser = app.login("ann").await;
    let unread = |page: &str, slug: &str| {
        let side = sidebar(page);
        let entry = entry(side, slug).expect("listed");
        let count = entry
            .split("unread: </span>")
            .nth(1)
            .and_then(|rest| rest.split('<').next())
            .map_or(0, |n| n.parse::<i64>().expect("a count"));
        (count, entry.contains("mention-mark"))
    };

    let page = browser.get("/help").await.expect(Status::Ok);
    assert_eq!(unread(&page.body, "general"), (2, false));
    let before = app.db().queries();
    let page = browser.get("/help").await.expect(Status::Ok);
    let kept = app.db().queries() - before;
    assert_eq!(unread(&page.body, "general"), (2, false));

    // A new message, a deletion and a mention each show on the next page.
    app.messages(general, bob, vec!["three".into()]).await;
    let before = app.db().queries();
    let page = browser.get("/help").await.expect(Status::Ok);
    let counted = app.db().queries() - before;
    assert_eq!(unread(&page.body, "general"), (3, false));
    assert!(
        kept < counted,
        "where nothing changed, nothing is counted again ({kept} statements, {counted} after a post)"
    );
    let first = posted[0];
    app.write(move |c| {
        chat::messages::delete(c, general, first, bob, false, chat::now())?;
        Ok(())
    })
    .await;
    let page = browser.get("/help").await.expect(Status::Ok);
    assert_eq!(unread(&page.body, "general"), (2, false));
    app.messages(random, bob, vec!["@ann, look".into()]).await;
    let page = browser.get("/help").await.expect(Status::Ok);
    assert_eq!(unread(&page.body, "random"), (1, true));
    assert_eq!(unread(&page.body, "general"), (2, false));

    // Reading a room clears it, before the read marker is written and after.
    browser.get("/rooms/random").await.expect(Status::Ok);
    let page = browser.get("/help").await.expect(Status::Ok);
    assert_eq!(unread(&page.body, "random"), (0, false));
    app.write_reads().await;
    let page = browser.get("/help").await.expect(Status::Ok);
    assert_eq!(unread(&page.body, "random"), (0, false));
    assert_eq!(unread(&page.body, "general"), (2, false));
}

async fn the_sidebar_lists_the_first_open_rooms_and_the_home_page_all(backend: Backend) {
    let Some(app) = TestApp::start(backend).await else {
        return;
    };
    let ann = app.user("ann", false).await;
    app.room("mine", false, &[ann]).await;
    let open = confab::web::view::SIDEBAR_OPEN_ROOMS + 5;
    for n in 0..open {
        app.room(&format!("open-{n:02}"), false, &[]).await;
    }
    let mut browser = app.login("ann").await;
    let page = browser.get("/rooms/mine").await.expect(Status::Ok);
    let side = sidebar(&page.body);
    assert_eq!(
        side.matches(r#"class="joinable""#).count(),
        confab::web::view::SIDEBAR_OPEN_ROOMS,
        "{side}"
    );
    assert!(entry(side, "open-00").is_some() && entry(side, "open-24").is_none());
    assert!(
        side.contains(r#"href="/#open-rooms""#),
        "a link to them all"
    );
    let home = browser.get("/").await.expect(Status::Ok);
    let listed = home
        .body
        .split(r#"id="open-rooms""#)
        .nth(1)
        .expect("open rooms");
    assert_eq!(
        listed.matches("/join").count(),
        open,
        "every open room to join"
    );
}

async fn message_actions_sit_in_a_menu(backend: Backend) {
    let Some(app) = TestApp::start(backend).await else {
        return;
    };
    let ann = app.user("ann", false).await;
    let bob = app.user("bob", false).await;
    let room = app.room("general", false, &[ann, bob]).await;
    let theirs = app.messages(room, bob, vec!["by bob".into()]).await[0];
    let mine = app.messages(room, ann, vec!["by ann".into()]).await[0];
    let mut browser = app.login("ann").await;
    let page = browser.get("/rooms/general").await.expect(Status::Ok);
    let item = |id: i64| {
        let start = page
            .body
            .find(&format!(r#"id="m{id}""#))
            .expect("the message");
        let end = page.body[start..].find("</li>").expect("its end") + start;
        page.body[start..end].to_string()
    };
    let own = item(mine);
    assert!(
        own.contains(r#"<details class="actions">"#)
            && own.contains("Message actions")
            && own.contains(&format!(
                r#"href="/rooms/general/messages/{mine}/edit" data-edit"#
            ))
            && own.contains(&format!(
                r#"href="/rooms/general/messages/{mine}/delete" data-delete"#
            )),
        "my message: edit and delete in a menu: {own}"
    );
    let other = item(theirs);
    assert!(
        other.contains("data-reply>Reply")
            && !other.contains("data-edit")
            && !other.contains("data-delete"),
        "someone else's message: only Reply: {other}"
    );
    // The links lead to the no-JS pages.
    browser
        .get(&format!("/rooms/general/messages/{mine}/edit"))
        .await
        .expect(Status::Ok);
    browser
        .get(&format!("/rooms/general/messages/{theirs}/edit"))
        .await
        .expect(Status::Forbidden);
}

async fn the_help_page_lists_the_shortcuts(backend: Backend) {
    let Some(app) = TestApp::start(backend).await else {
        return;
    };
    app.user("ann", false).await;
    let mut anonymous = app.browser();
    let page = anonymous.get("/help").await;
    assert!(
        page.location
            .as_deref()
            .is_some_and(|l| l.starts_with("/login")),
        "help is for members: {:?} {:?}",
        page.status,
        page.location
    );
    let mut browser = app.login("ann").await;
    let page = browser.get("/help").await.expect(Status::Ok);
    for shortcut in [
        "<kbd>/</kbd>",
        "<kbd>c</kbd>",
        "<kbd>Alt</kbd> + <kbd>Shift</kbd> + <kbd>↓</kbd>",
        "<kbd>Esc</kbd>",
        "<kbd>↑</kbd> in an empty composer",
    ] {
        assert!(page.body.contains(shortcut), "help lists {shortcut}");
    }
    let page = browser.get("/").await.expect(Status::Ok);
    assert!(
        page.body.contains(r#"href="/help""#),
        "linked from the navigation"
    );
}
