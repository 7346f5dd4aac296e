//! Replies and threads: a reply names its thread, shows a quote of the thread's first message,
//! the first message counts its replies, and the thread has a page of its own with a composer,
//! all with plain forms. A reply in a thread I took part in counts like a mention.

use chrono::{Duration, NaiveDateTime};
use rocket::http::Status;

use confab::chat;
use confab::jobs::alerts::{plan, send};

use crate::both_backends;
use crate::common::{message_ids, Backend, TestApp};
use crate::live::{page_cursor, post_json};
use crate::reading::search;
use crate::smtp::SmtpSink;

both_backends!(
    replying_and_reading_a_thread_without_javascript,
    threads_are_for_members_only,
    replies_arrive_through_the_events_feed,
    a_reply_to_me_counts_like_a_mention
);

/// Posts `body` as a reply to `to` with the plain form; returns the reply's id.
async fn reply(browser: &mut crate::common::Browser<'_>, to: i64, body: &str) -> i64 {
    let page = browser
        .post(
            "/rooms/general/messages",
            &[("body", body), ("reply_to", &to.to_string())],
        )
        .await
        .expect(Status::SeeOther);
    let location = page.location.expect("a redirect");
    location
        .rsplit("#m")
        .next()
        .and_then(|id| id.parse().ok())
        .unwrap_or_else(|| panic!("the reply's anchor in {location}"))
}

async fn replying_and_reading_a_thread_without_javascript(backend: Backend) {
    let Some(app) = TestApp::builder(backend)
        .with(&[("page_size", 3)])
        .start()
        .await
    else {
        return;
    };
    let ann = app.user("ann", false).await;
    let bob = app.user("bob", false).await;
    let general = app.room("general", false, &[ann, bob]).await;
    let question = app
        .messages(general, bob, vec!["Where is the <b>handbook</b>?".into()])
        .await[0];

    let mut ann_browser = app.login("ann").await;
    ann_browser.get("/rooms/general").await.expect(Status::Ok);
    let first = reply(&mut ann_browser, question, "In the wiki.").await;
    let mut bob_browser = app.login("bob").await;
    bob_browser.get("/rooms/general").await.expect(Status::Ok);
    // A reply to a reply joins the same thread.
    let second = reply(&mut bob_browser, first, "Thanks!").await;
    let thread_of = |id: i64| {
        let db = app.db().clone();
        async move {
            db.run(move |c| {
                let room = chat::rooms::find_by_slug(c, "general")?;
                Ok::<_, confab::error::Error>(chat::messages::get(c, room.id, id)?.message)
            })
            .await
            .expect("message")
        }
    };
    assert_eq!(thread_of(first).await.parent_id, Some(question));
    assert_eq!(thread_of(second).await.parent_id, Some(question));
    assert_eq!(thread_of(question).await.reply_count, 2);

    // In the room: each reply quotes the first message (escaped), which counts its replies.
    let room = ann_browser.get("/rooms/general").await.expect(Status::Ok);
    let item = |id: i64| {
        let start = room.body.find(&format!(r#"id="m{id}""#)).expect("message");
        let end = room.body[start..].find("</li>").expect("end") + start;
        room.body[start..end].to_string()
    };
    let quoted = item(first);
    assert!(
        quoted.contains(r#"class="quote-line""#)
            && quoted.contains(&format!("?around={question}#m{question}"))
            && quoted
                .contains("<strong>bob</strong> Where is the &lt;b&gt;handbook&lt;&#x2F;b&gt;?"),
        "{quoted}"
    );
    let parent = item(question);
    assert!(
        parent.contains(&format!("/rooms/general/messages/{question}/thread"))
            && parent.contains("2 replies · last"),
        "{parent}"
    );
    assert!(
        item(second).contains(&format!(
            "/messages/{question}/thread#compose\" data-reply>Reply"
        )),
        "Reply in the menu leads to the thread"
    );

    // The thread page: the first message, then the replies, and a composer that replies.
    for n in 3..=5 {
        reply(&mut ann_browser, question, &format!("reply {n}")).await;
    }
    let thread = ann_browser
        .get(&format!("/rooms/general/messages/{question}/thread"))
        .await
        .expect(Status::Ok);
    let ids = message_ids(&thread.body);
    assert_eq!(ids[0], question, "the first message first");
    assert_eq!(ids.len(), 4, "then a page of 3 replies: {ids:?}");
    assert!(thread.body.contains("reply 5") && !thread.body.contains("In the wiki."));
    assert!(thread
        .body
        .contains(&format!(r#"name="reply_to" value="{question}""#)));
    let older = thread
        .body
        .split("?before=")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("an older page");
    let page = ann_browser
        .get(&format!(
            "/rooms/general/messages/{question}/thread?before={older}"
        ))
        .await
        .expect(Status::Ok);
    assert_eq!(message_ids(&page.body), vec![question, first, second]);

    // `is:reply` finds replies only.
    let found = search(&mut ann_browser, "is:reply wiki").await.0;
    assert_eq!(found, vec![first]);
    let found = search(&mut ann_browser, "is:reply handbook").await.0;
    assert!(found.is_empty(), "the question is no reply");

    // The JSON export keeps the thread: a reply names its first message.
    let export = ann_browser
        .get("/rooms/general/export.json")
        .await
        .expect(Status::Ok);
    let first_line = export
        .body
        .lines()
        .find(|l| l.contains(&format!(r#""id":{first},"#)))
        .expect("the reply in the export");
    assert!(
        first_line.contains(&format!(r#""parent_id":{question}"#)),
        "{first_line}"
    );

    // A refused reply keeps its text on the thread page.
    let empty = ann_browser
        .post(
            "/rooms/general/messages",
            &[("body", "   "), ("reply_to", &question.to_string())],
        )
        .await;
    assert_eq!(empty.status, Status::UnprocessableEntity);
    assert!(
        empty.body.contains(r#"name="reply_to""#),
        "the thread page again"
    );
    // A deleted message takes no replies.
    bob_browser
        .post(&format!("/rooms/general/messages/{second}/delete"), &[])
        .await
        .expect(Status::SeeOther);
    let late = ann_browser
        .post(
            "/rooms/general/messages",
            &[("body", "too late"), ("reply_to", &second.to_string())],
        )
        .await;
    assert_eq!(late.status, Status::UnprocessableEntity);
    assert!(late.body.contains("it takes no replies"), "{}", late.body);
    assert_eq!(
        thread_of(question).await.reply_count,
        4,
        "the deleted reply left the count"
    );
}

async fn threads_are_for_members_only(backend: Backend) {
    let Some(app) = TestApp::start(backend).await else {
        return;
    };
    let ann = app.user("ann", false).await;
    let bob = app.user("bob", false).await;
    let carol = app.user("carol", false).await;
    let general = app.room("general", false, &[ann, bob]).await;
    let secret = app.room("secret", true, &[bob, carol]).await;
    let open = app.messages(general, bob, vec!["open".into()]).await[0];
    let hidden = app.messages(secret, bob, vec!["hidden".into()]).await[0];
    let mut ann_browser = app.login("ann").await;
    ann_browser.get("/rooms/general").await.expect(Status::Ok);
    let first = reply(&mut ann_browser, open, "a reply").await;

    // Another room's message: not found, as a thread and as something to reply to.
    ann_browser
        .get(&format!("/rooms/secret/messages/{hidden}/thread"))
        .await
        .expect(Status::NotFound);
    ann_browser
        .get(&format!("/rooms/general/messages/{hidden}/thread"))
        .await
        .expect(Status::NotFound);
    let crossed = ann_browser
        .post(
            "/rooms/general/messages",
            &[("body", "sneaky"), ("reply_to", &hidden.to_string())],
        )
        .await;
    assert_eq!(crossed.status, Status::NotFound);
    // A reply's thread is the one it replies in; a made-up id is nothing.
    let thread = ann_browser
        .get(&format!("/rooms/general/messages/{first}/thread"))
        .await
        .expect(Status::Ok);
    assert_eq!(message_ids(&thread.body), vec![open, first]);
    ann_browser
        .get("/rooms/general/messages/99999/thread")
        .await
        .expect(Status::NotFound);
    // Carol is no member of general: nothing of its threads.
    let mut carol_browser = app.login("carol").await;
    carol_browser
        .get(&format!("/rooms/general/messages/{open}/thread"))
        .await
        .expect(Status::NotFound);
    carol_browser.get("/rooms/secret").await.expect(Status::Ok);
    let outsider = carol_browser
        .post(
            "/rooms/general/messages",
            &[("body", "let me in"), ("reply_to", &open.to_string())],
        )
        .await;
    assert_eq!(outsider.status, Status::NotFound);
    let replies: i32 = app
        .write(move |c| {
            let room = chat::rooms::find_by_slug(c, "general")?;
            Ok(chat::messages::get(c, room.id, open)?.message.reply_count)
        })
        .await;
    assert_eq!(replies, 1, "nothing refused was counted");
}

async fn replies_arrive_through_the_events_feed(backend: Backend) {
    let Some(app) = TestApp::start(backend).await else {
        return;
    };
    let ann = app.user("ann", false).await;
    let bob = app.user("bob", false).await;
    let general = app.room("general", false, &[ann, bob]).await;
    let question = app.messages(general, bob, vec!["question".into()]).await[0];
    let mut bob_browser = app.login("bob").await;
    let page = bob_browser.get("/rooms/general").await.expect(Status::Ok);
    let cursor = page_cursor(&page.body);

    // Ann replies from the live page (JSON).
    let mut ann_browser = app.login("ann").await;
    ann_browser.get("/rooms/general").await.expect(Status::Ok);
    let csrf = ann_browser.csrf.clone().expect("token");
    let body = serde_json::json!({ "body": "an answer", "reply_to": question }).to_string();
    let (status, answer) = post_json(
        &mut ann_browser,
        &app,
        "/api/rooms/general/messages",
        &body,
        Some(&csrf),
    )
    .await;
    assert_eq!(status, Status::Created, "{answer}");
    assert_eq!(answer["parent_id"], question);
    assert!(answer["html"]
        .as_str()
        .is_some_and(|h| h.contains("quote-line")));

    let events = bob_browser
        .get(&format!("/api/rooms/general/events?after={cursor}"))
        .await
        .expect(Status::Ok);
    let events: serde_json::Value = serde_json::from_str(&events.body).expect("json");
    let messages = events["messages"].as_array().expect("messages");
    let of = |id: i64| {
        messages
            .iter()
            .find(|m| m["id"] == id)
            .unwrap_or_else(|| panic!("message {id} in {messages:?}"))
    };
    assert_eq!(
        of(answer["id"].as_i64().expect("id"))["parent_id"],
        question
    );
    let parent = of(question);
    assert_eq!(
        parent["reply_count"], 1,
        "the first message changed with it"
    );
    assert!(parent["html"]
        .as_str()
        .is_some_and(|h| h.contains("1 reply")));
}

fn minutes(n: i64) -> NaiveDateTime {
    chat::now() + Duration::minutes(n)
}

async fn a_reply_to_me_counts_like_a_mention(backend: Backend) {
    let sink = SmtpSink::start().await;
    let url = sink.url();
    let Some(app) = TestApp::builder(backend)
        .with_settings(move |s| s.mail.smtp_url = Some(url))
        .start()
        .await
    else {
        return;
    };
    let ann = app.user("ann", false).await;
    let bob = app.user("bob", false).await;
    let carol = app.user("carol", false).await;
    let general = app.room("general", false, &[ann, bob, carol]).await;
    let question = app
        .messages(general, ann, vec!["who has the keys?".into()])
        .await[0];
    let mut carol_browser = app.login("carol").await;
    carol_browser.get("/rooms/general").await.expect(Status::Ok);
    reply(&mut carol_browser, question, "not me").await;

    // Ann's sidebar marks the room: a reply to her message, with no @ in it.
    let mut ann_browser = app.login("ann").await;
    let help = ann_browser.get("/help").await.expect(Status::Ok);
    assert!(
        help.body.contains("mention-mark"),
        "a reply to me marks the room"
    );
    let bob_help = app.login("bob").await.get("/help").await.expect(Status::Ok);
    assert!(
        !bob_help.body.contains("mention-mark"),
        "bob took no part in the thread"
    );

    // Bob joins the thread; a later reply is a mention for him too, and ann and bob are mailed
    // after the mention delay, before the general one.
    let mut bob_browser = app.login("bob").await;
    bob_browser.get("/rooms/general").await.expect(Status::Ok);
    reply(&mut bob_browser, question, "maybe in the drawer").await;
    reply(&mut carol_browser, question, "found them").await;
    let settings = app.settings().clone();
    let planned = plan(app.db(), &app.mail(), &settings, minutes(3))
        .await
        .expect("plan");
    send(app.db(), &app.mail(), &settings, minutes(3))
        .await
        .expect("send");
    assert_eq!(
        planned, 3,
        "ann (her thread), bob (he replied) and carol (she replied before bob did)"
    );
    let ann_mail = sink.text_to("ann");
    assert!(
        ann_mail.contains("found them") && ann_mail.contains("mentions you"),
        "{ann_mail}"
    );
    assert!(sink.text_to("bob").contains("found them"));
}
