//! Posts that reach a room together are written together (one transaction, one commit), and each
//! poster still gets their own answer.

use confab::chat::messages::Message;
use confab::chat::users::{self, User};
use confab::error::Error;
use confab::service::messages;
use diesel::prelude::*;
use rocket::futures::future::join_all;

use crate::both_backends;
use crate::common::{Backend, TestApp};

both_backends!(
    posts_arriving_together_share_a_commit,
    a_batch_answers_each_poster_alone
);

/// An app without posting limits (the tests post fast on purpose), and its users by name.
async fn app_with(backend: Backend, names: &[&str]) -> Option<(TestApp, Vec<User>)> {
    let app = TestApp::builder(backend)
        .with(&[("post_burst", 1_000_000), ("post_per_minute", 1_000_000)])
        .start()
        .await?;
    let mut people = Vec::new();
    for name in names {
        let id = app.user(name, false).await;
        people.push(app.write(move |c| users::find(c, id)).await);
    }
    Some((app, people))
}

/// Every message of room `room_id`, oldest first.
async fn stored(app: &TestApp, room_id: i64) -> Vec<Message> {
    use confab::db::schema::messages::dsl;
    app.write(move |c| {
        Ok(dsl::messages
            .filter(dsl::room_id.eq(room_id))
            .order(dsl::id)
            .select(Message::as_select())
            .load(c)?)
    })
    .await
}

async fn last_activity(app: &TestApp, room_id: i64) -> Option<chrono::NaiveDateTime> {
    use confab::db::schema::rooms;
    app.write(move |c| {
        Ok(rooms::table
            .find(room_id)
            .select(rooms::last_message_at)
            .first(c)?)
    })
    .await
}

async fn cursor_of(app: &TestApp, room_id: i64) -> i64 {
    app.write(move |c| confab::chat::rooms::cursor(c, room_id))
        .await
}

async fn posts_arriving_together_share_a_commit(backend: Backend) {
    let Some((app, people)) = app_with(backend, &["ann", "bob", "cat", "dan"]).await else {
        return;
    };
    let ids: Vec<i64> = people.iter().map(|p| p.id).collect();
    let room = app.room("general", false, &ids).await;
    let svc = app.services();
    let cursor_before = cursor_of(&app, room).await;
    let queries_before = app.db().queries();

    // 40 posts at once by four members; every fifth is a second send of the form four before it
    // (the same author), as a double click sends it.
    let forms: Vec<String> = (0..40)
        .map(|i| format!("form-{}", if i % 5 == 4 { i - 4 } else { i }))
        .collect();
    let bodies: Vec<String> = (0..40).map(|i| format!("post {i}")).collect();
    let answers = join_all((0..40).map(|i| {
        let author = &people[i % 4];
        messages::post(
            svc,
            "general",
            author,
            &bodies[i],
            Some(forms[i].clone()),
            None,
        )
    }))
    .await;
    let queries = app.db().queries() - queries_before;

    let answers: Vec<_> = answers
        .into_iter()
        .map(|a| a.unwrap_or_else(|e| panic!("a post failed: {e}")))
        .collect();
    for i in (4..40).step_by(5) {
        assert_eq!(
            answers[i].message.id,
            answers[i - 4].message.id,
            "the second send of a form answers with the first send's message"
        );
        assert_eq!(answers[i].message.body, format!("post {}", i - 4));
    }
    let messages = stored(&app, room).await;
    assert_eq!(messages.len(), 32, "each form stores one message");
    let mut revisions: Vec<i64> = messages.iter().map(|m| m.revision).collect();
    revisions.sort_unstable();
    revisions.dedup();
    assert_eq!(
        revisions.len(),
        32,
        "each message its own step of the cursor"
    );
    let cursor = cursor_of(&app, room).await;
    assert!(revisions.iter().all(|&r| r > cursor_before && r <= cursor));
    for (answer, i) in answers.iter().zip(0..) {
        let own = messages
            .iter()
            .find(|m| m.id == answer.message.id)
            .expect("every answer is a stored message");
        assert_eq!(own.author_id, people[i % 4].id);
    }
    // One post at a time costs four statements (begin, the cursor, the insert, commit); posts
    // written together share the begin, the cursor and the commit.
    assert!(
        queries < 2 * 40,
        "{queries} statements for 40 posts: they were not written together"
    );
}

async fn a_batch_answers_each_poster_alone(backend: Backend) {
    let Some((app, people)) = app_with(backend, &["ann", "bob", "eve"]).await else {
        return;
    };
    let (ann, bob, eve) = (&people[0], &people[1], &people[2]);
    let room = app.room("general", false, &[ann.id, bob.id]).await;
    let other = app.room("other", false, &[ann.id]).await;
    let svc = app.services();
    messages::post(svc, "other", ann, "first", Some("used-form".into()), None)
        .await
        .expect("post in the other room");

    // Together: two good posts, one by somebody who is not a member, one with a form already used
    // in another room.
    let answers = join_all([
        messages::post(svc, "general", ann, "one", Some("ann-1".into()), None),
        messages::post(svc, "general", eve, "intruder", None, None),
        messages::post(svc, "general", bob, "two", Some("bob-1".into()), None),
        messages::post(
            svc,
            "general",
            ann,
            "elsewhere",
            Some("used-form".into()),
            None,
        ),
    ])
    .await;
    let mut answers = answers.into_iter();
    assert_eq!(
        answers.next().expect("1").expect("ann's post").message.body,
        "one"
    );
    assert!(matches!(answers.next(), Some(Err(Error::NotFound))));
    assert_eq!(
        answers.next().expect("3").expect("bob's post").message.body,
        "two"
    );
    match answers.next() {
        Some(Err(Error::Invalid(why))) => assert!(why.contains("another room"), "{why}"),
        other => panic!(
            "a form used in another room: {:?}",
            other.map(|a| a.map(|p| p.message))
        ),
    }
    let bodies: Vec<String> = stored(&app, room)
        .await
        .into_iter()
        .map(|m| m.body)
        .collect();
    assert_eq!(bodies, ["one", "two"]);
    // A form sent again alone is answered with its message and moves nothing: the room's cursor
    // and last activity stay (nobody is woken, the room does not rise in anyone's list).
    let (cursor, active) = (cursor_of(&app, room).await, last_activity(&app, room).await);
    let again = messages::post(svc, "general", ann, "one", Some("ann-1".into()), None)
        .await
        .expect("the same form again");
    assert_eq!(again.message.body, "one");
    assert_eq!(cursor_of(&app, room).await, cursor);
    assert_eq!(last_activity(&app, room).await, active);
    let elsewhere: Vec<String> = stored(&app, other)
        .await
        .into_iter()
        .map(|m| m.body)
        .collect();
    assert_eq!(
        elsewhere,
        ["first"],
        "the other room's message is left as it was"
    );

    // An archived room takes nothing from anyone in the batch, and says why to each.
    app.write(move |c| confab::chat::rooms::set_archived(c, room, Some(confab::chat::now())))
        .await;
    let cursor = cursor_of(&app, room).await;
    let answers = join_all([
        messages::post(svc, "general", ann, "late", None, None),
        messages::post(svc, "general", bob, "later", None, None),
    ])
    .await;
    for answer in answers {
        match answer {
            Err(Error::Invalid(why)) => assert!(why.contains("archived"), "{why}"),
            other => panic!("a post to an archived room: {:?}", other.map(|p| p.message)),
        }
    }
    assert_eq!(stored(&app, room).await.len(), 2);
    assert_eq!(
        cursor_of(&app, room).await,
        cursor,
        "the cursor did not move"
    );
}

/// Posts waiting together when the database goes away are each told so, at once.
#[rocket::async_test]
async fn posts_together_while_the_database_is_away_each_get_503() {
    let Some((app, people)) = app_with(Backend::Postgres, &["ann", "bob"]).await else {
        return;
    };
    app.room("general", false, &[people[0].id, people[1].id])
        .await;
    app.drop_database();
    let svc = app.services();
    let answers = join_all([
        messages::post(svc, "general", &people[0], "one", None, None),
        messages::post(svc, "general", &people[1], "two", None, None),
    ])
    .await;
    for answer in answers {
        assert!(
            matches!(answer, Err(Error::Unavailable(_))),
            "{:?}",
            answer.map(|p| p.message)
        );
    }
}
