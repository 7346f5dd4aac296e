//! Housekeeping on both backends: mail leases that outlast a slow batch, the sweep and uploads in
//! progress, and pruning what no longer does anything.

use chrono::Duration;
use confab::chat::{self, outbox};
use confab::db::schema::{login_failures, outbox as outbox_table, sessions, user_tokens};
use diesel::prelude::*;

use super::common::{Backend, TestApp};

crate::both_backends!(
    a_mail_whose_lease_ran_out_is_sent_by_one_sender_only,
    pruning_removes_only_what_no_longer_works,
);

fn mail(to: &str) -> outbox::NewMail {
    outbox::NewMail {
        kind: "alert",
        user_id: None,
        recipient: to.to_string(),
        rendered: confab::mail::Rendered {
            subject: "news".into(),
            text: String::new(),
            html: String::new(),
        },
        summary: String::new(),
        reply_to: None,
    }
}

/// Sender A claims three mails and works slowly (a slow SMTP server); its lease on the last two runs
/// out and sender B claims them. A renews each mail before sending it, so it skips B's two.
async fn a_mail_whose_lease_ran_out_is_sent_by_one_sender_only(backend: Backend) {
    let Some(app) = TestApp::start(backend).await else {
        return;
    };
    let t = chat::now();
    app.write(move |c| {
        outbox::enqueue_all(
            c,
            &[
                mail("a@example.org"),
                mail("b@example.org"),
                mail("c@example.org"),
            ],
            t,
        )
    })
    .await;
    let lease = Duration::seconds(60);
    let a = app.write(move |c| outbox::claim(c, t, lease, 10)).await;
    assert_eq!(a.len(), 3);
    // A reaches the first mail at t+90 (its server is slow), renewing that mail's lease.
    let (first, held) = (a[0].id, a[0].locked_until);
    let at_first = t + Duration::seconds(90);
    assert!(
        app.write(move |c| outbox::renew(c, first, held, at_first + lease))
            .await
    );
    // Past A's first lease, B claims what is due again: the two A has not reached yet.
    let later = t + Duration::seconds(100);
    let b = app.write(move |c| outbox::claim(c, later, lease, 10)).await;
    let b_ids: Vec<i64> = b.iter().map(|r| r.id).collect();
    assert_eq!(b_ids, vec![a[1].id, a[2].id]);
    // A reaches them and finds them held by B: it sends neither.
    for row in &a[1..] {
        let (id, held) = (row.id, row.locked_until);
        let renewed = app
            .write(move |c| outbox::renew(c, id, held, later + lease))
            .await;
        assert!(!renewed, "mail {id} belongs to sender B now");
    }
    for row in &b {
        let (id, held) = (row.id, row.locked_until);
        assert!(
            app.write(move |c| outbox::renew(c, id, held, later + lease))
                .await
        );
    }
    // Each sender marks what it sent: A the first mail, B the other two.
    for id in [first, b_ids[0], b_ids[1]] {
        app.write(move |c| outbox::mark_sent(c, id, later)).await;
    }
}

async fn pruning_removes_only_what_no_longer_works(backend: Backend) {
    let Some(app) = TestApp::start(backend).await else {
        return;
    };
    let ann = app.user("ann", false).await;
    let now = chat::now();
    let long_ago = now - Duration::days(400);
    app.write(move |c| {
        let fresh = chat::sessions::create(c, ann, "fresh", now)?;
        let stale = chat::sessions::create(c, ann, "stale", long_ago)?;
        let _ = (fresh, stale);
        let used = chat::tokens::issue(c, ann, chat::tokens::RESET, long_ago)?;
        let _ = used;
        chat::tokens::issue(c, ann, chat::tokens::SET_PASSWORD, now)?;
        outbox::enqueue_all(
            c,
            &[mail("old@example.org"), mail("new@example.org")],
            long_ago,
        )?;
        chat::logins::count_attempt(c, "ann", "192.0.2.1", long_ago, long_ago, 50)?;
        chat::logins::count_attempt(c, "bob", "192.0.2.1", now, now - Duration::hours(1), 50)?;
        Ok(())
    })
    .await;
    // One mail was delivered long ago, one is still pending.
    app.write(move |c| {
        let first: i64 = outbox_table::table
            .order(outbox_table::id)
            .select(outbox_table::id)
            .first(c)?;
        outbox::mark_sent(c, first, long_ago)
    })
    .await;
    let pruned = confab::jobs::sweep::prune(app.db(), app.settings(), now)
        .await
        .expect("prune");
    assert_eq!(pruned.sessions, 1);
    assert_eq!(pruned.links, 1);
    assert_eq!(pruned.sent_mail, 1);
    assert!(pruned.login_failures >= 1);
    let left = app
        .write(|c| {
            Ok((
                sessions::table
                    .select(sessions::user_agent)
                    .load::<String>(c)?,
                user_tokens::table
                    .select(user_tokens::purpose)
                    .load::<String>(c)?,
                outbox_table::table
                    .select(outbox_table::recipient)
                    .load::<String>(c)?,
                login_failures::table
                    .select(login_failures::subject)
                    .load::<String>(c)?,
            ))
        })
        .await;
    assert_eq!(left.0, vec!["fresh".to_string()]);
    assert_eq!(left.1, vec![chat::tokens::SET_PASSWORD.to_string()]);
    assert_eq!(
        left.2,
        vec!["new@example.org".to_string()],
        "pending mail stays"
    );
    assert_eq!(app.deliver_mail().await, 1, "and is still sent");
    assert!(app.mail().delivered()[0].contains("new@example.org"));
    let mut subjects = left.3;
    subjects.sort();
    assert_eq!(
        subjects,
        vec!["*".to_string(), "bob".to_string(), "bob".to_string()],
        "the address's window, bob's from there and bob's from anywhere"
    );
}

#[rocket::async_test]
async fn the_sweep_leaves_uploads_in_progress_alone() {
    let dir = tempfile::tempdir().expect("dir");
    let store = confab::files::FileStore::new(dir.path());
    let Some(app) = TestApp::start(Backend::Sqlite).await else {
        return;
    };
    let receiving = confab::files::FileStore::new_stored_name();
    let (_file, guard) = store.create_temp(&receiving).await.expect("temp");
    let abandoned = confab::files::FileStore::new_stored_name();
    std::fs::write(store.temp_path(&abandoned), b"left over").expect("write");
    let swept = confab::jobs::sweep::left_over_uploads(app.db(), &store, std::time::Duration::ZERO)
        .await
        .expect("sweep");
    assert_eq!(swept, 1, "only the abandoned file");
    assert!(
        store.temp_path(&receiving).exists(),
        "a slow upload is not swept"
    );
    assert!(!store.temp_path(&abandoned).exists());
    drop(guard);
    assert!(
        !store.temp_path(&receiving).exists(),
        "a failed upload removes its own file"
    );
}
