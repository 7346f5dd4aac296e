//! Email alerts against a real SMTP server on loopback: who gets a summary and when, what it says,
//! retries, several planners and senders at once, unsubscribing and password resets.
//!
//! The jobs are driven by hand with an explicit "now", so the tests move through hours and days
//! without waiting.

use chrono::{Duration, NaiveDateTime, TimeZone, Timelike};
use confab::chat::{self, messages, outbox};
use confab::db::schema::{outbox as outbox_table, users};
use confab::jobs::alerts::{plan, send};
use diesel::prelude::*;
use rocket::http::Status;

use crate::both_backends;
use crate::common::{Backend, TestApp};
use crate::smtp::SmtpSink;

both_backends!(
    an_away_member_gets_one_summary_then_at_most_one_a_day,
    reading_in_time_or_being_present_means_no_mail,
    muted_rooms_and_mentions_only,
    a_digest_goes_out_at_the_local_hour,
    refused_mail_is_retried_and_delivered_once,
    two_planners_and_two_senders_send_each_mail_once,
    a_round_writes_at_most_its_limit,
    a_message_that_commits_late_in_another_room_is_still_alerted,
    unsubscribing_takes_a_post_and_a_real_token,
    password_reset_end_to_end,
    without_smtp_mail_is_written_to_files,
    planning_reads_a_bounded_amount_whatever_the_flood,
    only_whole_names_are_mentions,
    an_alert_reads_well,
    the_alert_log_explains_itself,
    the_alert_log_takes_thousands_of_decisions_at_once,
    a_round_with_more_members_than_sqlite_binds,
);

async fn start(backend: Backend) -> Option<(TestApp, SmtpSink)> {
    let sink = SmtpSink::start().await;
    let url = sink.url();
    let app = TestApp::builder(backend)
        .with_settings(move |s| s.mail.smtp_url = Some(url))
        .start()
        .await?;
    Some((app, sink))
}

fn minutes(n: i64) -> NaiveDateTime {
    chat::now() + Duration::minutes(n)
}

async fn plan_at(app: &TestApp, now: NaiveDateTime) -> usize {
    plan(app.db(), &app.mail(), app.settings(), now)
        .await
        .expect("plan")
}

async fn send_at(app: &TestApp, now: NaiveDateTime) -> usize {
    send(app.db(), &app.mail(), app.settings(), now)
        .await
        .expect("send")
}

async fn outbox_rows(app: &TestApp) -> Vec<outbox::OutboxRow> {
    app.write(|c| {
        Ok(outbox_table::table
            .order(outbox_table::id)
            .select(outbox::OutboxRow::as_select())
            .load(c)?)
    })
    .await
}

async fn an_away_member_gets_one_summary_then_at_most_one_a_day(backend: Backend) {
    let Some((app, sink)) = start(backend).await else {
        return;
    };
    let ann = app.user("ann", false).await;
    let bob = app.user("bob", false).await;
    let design = app.room("design", false, &[ann, bob]).await;
    let ops = app.room("ops", false, &[ann, bob]).await;
    let in_design = app
        .messages(
            design,
            bob,
            vec!["first idea".into(), "second idea".into(), "oops".into()],
        )
        .await;
    app.messages(ops, bob, vec!["deploy at 5".into()]).await;
    app.messages(design, ann, vec!["ann's own words".into()])
        .await;
    // Bob keeps his alerts off: this test follows ann's mail.
    app.write(move |c| {
        diesel::update(users::table.find(bob))
            .set(users::alert_mode.eq("off"))
            .execute(c)?;
        Ok(())
    })
    .await;
    let (gone, edited) = (in_design[2], in_design[1]);
    app.write(move |c| messages::delete(c, design, gone, bob, false, chat::now()).map(|_| ()))
        .await;
    app.write(move |c| {
        messages::edit(c, design, edited, bob, "second idea, improved", chat::now())
    })
    .await;

    assert_eq!(
        plan_at(&app, minutes(5)).await,
        0,
        "not due before alert_delay"
    );
    assert_eq!(plan_at(&app, minutes(11)).await, 1);
    assert_eq!(plan_at(&app, minutes(11)).await, 0, "planned once");
    assert_eq!(send_at(&app, minutes(11)).await, 1);
    let mails = sink.mails();
    assert_eq!(mails.len(), 1);
    let mail = &mails[0];
    assert_eq!(mail.to, vec!["ann@example.org".to_string()]);
    assert_eq!(
        mail.header("Subject").as_deref(),
        Some("3 new messages in DESIGN and OPS")
    );
    assert_eq!(
        mail.header("Auto-Submitted").as_deref(),
        Some("auto-generated")
    );
    assert!(mail
        .header("Message-ID")
        .unwrap_or_default()
        .starts_with("<confab-alert-"));
    assert_eq!(
        mail.header("List-Id").as_deref(),
        Some("Confab alerts <alerts.127.0.0.1>")
    );
    assert_eq!(
        mail.header("List-Unsubscribe-Post").as_deref(),
        Some("List-Unsubscribe=One-Click")
    );
    let unsubscribe = mail.header("List-Unsubscribe").expect("unsubscribe header");
    assert!(
        unsubscribe.starts_with("<http://127.0.0.1:8000/unsubscribe/"),
        "{unsubscribe}"
    );
    let text = mail.text();
    let first = in_design[0];
    assert!(
        text.contains(&format!(
            "http://127.0.0.1:8000/rooms/design?around={first}#m{first}"
        )),
        "{text}"
    );
    assert!(
        text.contains("DESIGN: 2 new") && text.contains("OPS: 1 new"),
        "{text}"
    );
    assert!(
        text.contains("second idea, improved")
            && !text.contains("oops")
            && !text.contains("ann's own"),
        "{text}"
    );
    assert!(text.contains("http://127.0.0.1:8000/settings"), "{text}");

    // Still away: newer messages wait for the next day.
    app.messages(ops, bob, vec!["later news".into()]).await;
    assert_eq!(
        plan_at(&app, minutes(60)).await,
        0,
        "at most one more a day while away"
    );
    assert_eq!(
        plan_at(&app, minutes(25 * 60)).await,
        1,
        "a day later, one more"
    );
    send_at(&app, minutes(25 * 60)).await;
    let mails = sink.mails();
    assert_eq!(mails.len(), 2);
    assert_eq!(
        mails[1].header("Subject").as_deref(),
        Some("1 new message in OPS"),
        "only what is new since the last mail"
    );

    // Coming back resets the daily rule.
    let back = minutes(26 * 60);
    app.write(move |c| {
        diesel::update(users::table.find(ann))
            .set(users::last_active_at.eq(back))
            .execute(c)?;
        Ok(())
    })
    .await;
    app.messages(ops, bob, vec!["after you left again".into()])
        .await;
    assert_eq!(plan_at(&app, minutes(26 * 60 + 20)).await, 1);

    // The settings page lists the mails.
    let mut browser = app.login("ann").await;
    let settings = browser.get("/settings").await.expect(Status::Ok);
    assert!(
        settings.body.contains("3 new messages in DESIGN and OPS")
            && settings.body.contains("DESIGN, OPS")
    );
    assert_eq!(send_at(&app, minutes(26 * 60 + 20)).await, 1);
    assert_eq!(sink.mails().len(), 3);
}

async fn reading_in_time_or_being_present_means_no_mail(backend: Backend) {
    let Some((app, sink)) = start(backend).await else {
        return;
    };
    let ann = app.user("ann", false).await;
    let bob = app.user("bob", false).await;
    let carl = app.user("carl", false).await;
    let room = app.room("general", false, &[ann, bob, carl]).await;
    app.messages(room, bob, vec!["hello all".into()]).await;

    // Ann reads the room before the delay; carl has a page open and is active.
    let mut ann_browser = app.login("ann").await;
    ann_browser.get("/rooms/general").await.expect(Status::Ok);
    let mut carl_browser = app.login("carl").await;
    carl_browser.get("/rooms/general").await.expect(Status::Ok);
    let live = app
        .client
        .rocket()
        .state::<confab::live::Live>()
        .expect("live")
        .clone();
    confab::jobs::presence::flush(app.db(), &live).await;
    // Carl's presence is in the database now. Something new arrives that ann reads in time and
    // carl does not.
    app.messages(room, bob, vec!["for carl".into()]).await;
    ann_browser.get("/rooms/general").await.expect(Status::Ok);
    app.write_reads().await;
    let read_back = app
        .write(move |c| {
            Ok(users::table
                .find(carl)
                .select(users::last_active_at)
                .first::<Option<NaiveDateTime>>(c)?)
        })
        .await;
    assert!(read_back.is_some(), "presence was written in a batch");

    assert_eq!(
        plan_at(&app, minutes(3)).await,
        0,
        "carl is present, ann has read, nothing is due yet"
    );
    // Carl stays present; only when he has been away for away_after does a mail become due.
    let active = chat::now() + Duration::minutes(8);
    app.write(move |c| {
        diesel::update(users::table.find(carl))
            .set(users::last_active_at.eq(active))
            .execute(c)?;
        Ok(())
    })
    .await;
    assert_eq!(
        plan_at(&app, minutes(11)).await,
        0,
        "present members get no mail"
    );
    assert_eq!(
        plan_at(&app, minutes(14)).await,
        1,
        "away for five minutes: carl's mail is due; ann's never is"
    );
    send_at(&app, minutes(14)).await;
    let mails = sink.mails();
    assert_eq!(mails.len(), 1);
    assert_eq!(mails[0].to, vec!["carl@example.org".to_string()]);
}

async fn muted_rooms_and_mentions_only(backend: Backend) {
    let Some((app, sink)) = start(backend).await else {
        return;
    };
    let ann = app.user("ann", false).await;
    let bob = app.user("bob", false).await;
    app.room("design", false, &[ann, bob]).await;
    app.room("ops", false, &[ann, bob]).await;
    app.room("random", false, &[ann, bob]).await;
    let mut browser = app.login("ann").await;
    browser.get("/settings").await.expect(Status::Ok);
    browser
        .post("/settings/rooms/random/alerts", &[("level", "muted")])
        .await
        .expect(Status::SeeOther);
    browser
        .post("/settings/rooms/design/alerts", &[("level", "mentions")])
        .await
        .expect(Status::SeeOther);
    browser
        .post("/settings/rooms/design/alerts", &[("level", "loud")])
        .await
        .expect(Status::SeeOther);
    assert!(browser
        .get("/settings")
        .await
        .body
        .contains("Choose all messages, mentions only, or muted."));

    let ids = |app: &TestApp, slug: &'static str| {
        let db = app.db().clone();
        async move {
            db.run(move |c| {
                Ok::<_, confab::error::Error>(confab::chat::rooms::find_by_slug(c, slug)?.id)
            })
            .await
            .expect("room")
        }
    };
    let (design, random) = (ids(&app, "design").await, ids(&app, "random").await);
    app.messages(random, bob, vec!["cat pictures".into()]).await;
    app.messages(
        design,
        bob,
        vec!["a design thought".into(), "@ann what do you think?".into()],
    )
    .await;

    // The mention is due after mention_alert_delay, before alert_delay.
    assert_eq!(plan_at(&app, minutes(3)).await, 1);
    send_at(&app, minutes(3)).await;
    let mails = sink.mails();
    assert_eq!(mails.len(), 1);
    assert_eq!(
        mails[0].header("Subject").as_deref(),
        Some("1 new message in DESIGN")
    );
    let text = mails[0].text();
    assert!(
        text.contains("@ann what do you think?") && text.contains("mentions you"),
        "{text}"
    );
    assert!(
        !text.contains("a design thought") && !text.contains("cat pictures"),
        "muted and non-mentions are left out"
    );
}

async fn a_digest_goes_out_at_the_local_hour(backend: Backend) {
    let Some((app, sink)) = start(backend).await else {
        return;
    };
    let ann = app.user("ann", false).await;
    let bob = app.user("bob", false).await;
    let room = app.room("general", false, &[ann, bob]).await;
    app.write(move |c| {
        diesel::update(users::table.find(ann))
            .set((
                users::time_zone.eq("Asia/Tokyo"),
                users::last_active_at.eq(chat::now()),
            ))
            .execute(c)?;
        Ok(())
    })
    .await;
    let mut browser = app.login("ann").await;
    browser.get("/settings").await;
    browser
        .post(
            "/settings/alerts",
            &[("mode", "digest"), ("digest_hour", "9")],
        )
        .await
        .expect(Status::SeeOther);
    browser
        .post(
            "/settings/alerts",
            &[("mode", "digest"), ("digest_hour", "25")],
        )
        .await
        .expect(Status::SeeOther);
    assert!(browser
        .get("/settings")
        .await
        .body
        .contains("an hour from 0 to 23"));
    app.messages(room, bob, vec!["news for the digest".into()])
        .await;

    // 09:xx in Tokyo is 00:xx UTC.
    let tokyo: chrono_tz::Tz = "Asia/Tokyo".parse().expect("tz");
    let tomorrow = tokyo.from_utc_datetime(&chat::now()).date_naive() + Duration::days(1);
    let at = |hour: u32, minute: u32| {
        tokyo
            .from_local_datetime(&tomorrow.and_hms_opt(hour, minute, 0).expect("time"))
            .single()
            .expect("time")
            .naive_utc()
    };
    assert_eq!(plan_at(&app, at(8, 59)).await, 0, "not before the hour");
    assert_eq!(
        plan_at(&app, at(10, 5)).await,
        0,
        "not after the hour either"
    );
    assert_eq!(
        plan_at(&app, at(9, 1)).await,
        1,
        "at 9 in Tokyo, even while present"
    );
    assert_eq!(plan_at(&app, at(9, 30)).await, 0, "once a day");
    send_at(&app, at(9, 30)).await;
    assert!(sink.mails()[0].text().contains("Your daily digest"));
}

async fn refused_mail_is_retried_and_delivered_once(backend: Backend) {
    let Some((app, sink)) = start(backend).await else {
        return;
    };
    let ann = app.user("ann", false).await;
    let bob = app.user("bob", false).await;
    let room = app.room("general", false, &[ann, bob]).await;
    app.messages(room, bob, vec!["are you there".into()]).await;
    assert_eq!(plan_at(&app, minutes(11)).await, 1);

    sink.refuse_next(usize::MAX);
    assert_eq!(send_at(&app, minutes(11)).await, 0);
    let row = outbox_rows(&app).await.remove(0);
    assert_eq!((row.status.as_str(), row.attempts), ("pending", 1));
    assert!(
        row.last_error.as_deref().unwrap_or("").contains("451"),
        "{:?}",
        row.last_error
    );
    assert_eq!(
        send_at(&app, minutes(11)).await,
        0,
        "not retried before its backoff"
    );
    assert_eq!(
        send_at(&app, minutes(12)).await,
        0,
        "second attempt refused too"
    );
    assert_eq!(outbox_rows(&app).await[0].attempts, 2);
    sink.refuse_next(0);
    assert_eq!(
        send_at(&app, minutes(12) + Duration::seconds(40)).await,
        0,
        "the backoff doubled"
    );
    assert_eq!(send_at(&app, minutes(15)).await, 1);
    let row = outbox_rows(&app).await.remove(0);
    assert_eq!((row.status.as_str(), row.attempts), ("sent", 3));
    assert_eq!(sink.mails().len(), 1, "exactly one delivered");
    assert_eq!(send_at(&app, minutes(60)).await, 0);

    // A mail that never goes through ends as failed, on the admin page.
    app.write(move |c| {
        diesel::update(users::table.find(ann))
            .set(users::email.eq("not an address"))
            .execute(c)?;
        Ok(())
    })
    .await;
    app.messages(room, bob, vec!["again".into()]).await;
    assert_eq!(plan_at(&app, minutes(26 * 60)).await, 1);
    let mut when = minutes(26 * 60);
    for _ in 0..8 {
        send_at(&app, when).await;
        when += Duration::days(2);
    }
    let failed = outbox_rows(&app).await.pop().expect("row");
    assert_eq!((failed.status.as_str(), failed.attempts), ("failed", 8));
    app.user("admin", true).await;
    let mut admin = app.login("admin").await;
    let page = admin.get("/admin/outbox").await.expect(Status::Ok);
    assert!(page.body.contains("failed") && page.body.contains("not an address"));
}

async fn two_planners_and_two_senders_send_each_mail_once(backend: Backend) {
    let Some((app, sink)) = start(backend).await else {
        return;
    };
    let bob = app.user("bob", false).await;
    let mut members = vec![bob];
    for i in 0..12 {
        members.push(app.user(&format!("member{i}"), false).await);
    }
    let room = app.room("general", false, &members).await;
    app.messages(room, bob, (0..5).map(|i| format!("news {i}")).collect())
        .await;

    // A second Confab instance on the same database, as behind a load balancer.
    let mut settings = app.database.settings(&[]);
    settings.mail.smtp_url = Some(sink.url());
    let other = rocket::local::asynchronous::Client::untracked(confab::app(settings))
        .await
        .expect("second instance");
    let other_db = other
        .rocket()
        .state::<confab::db::Db>()
        .expect("db")
        .clone();
    let other_mail = other
        .rocket()
        .state::<std::sync::Arc<confab::mail::Mail>>()
        .expect("mail")
        .clone();
    let other_settings = other
        .rocket()
        .state::<confab::Settings>()
        .expect("settings")
        .clone();

    let now = minutes(11);
    let mail = app.mail();
    let (a, b) = tokio::join!(
        plan(app.db(), &mail, app.settings(), now),
        plan(&other_db, &other_mail, &other_settings, now)
    );
    assert_eq!(
        a.expect("plan") + b.expect("plan"),
        12,
        "one mail per away member, whichever instance wrote it"
    );
    assert_eq!(outbox_rows(&app).await.len(), 12);
    let (a, b) = tokio::join!(
        send(app.db(), &mail, app.settings(), now),
        send(&other_db, &other_mail, &other_settings, now)
    );
    assert_eq!(a.expect("send") + b.expect("send"), 12);
    let mut to: Vec<String> = sink.mails().into_iter().flat_map(|m| m.to).collect();
    to.sort();
    let before = to.len();
    to.dedup();
    assert_eq!((before, to.len()), (12, 12), "twelve mails, no one twice");
}

async fn unsubscribing_takes_a_post_and_a_real_token(backend: Backend) {
    let Some((app, _sink)) = start(backend).await else {
        return;
    };
    let ann = app.user("ann", false).await;
    let url = app.mail().unsubscribe_url(ann);
    let path = url.trim_start_matches("http://127.0.0.1:8000").to_string();
    let mode = |app: &TestApp| {
        let db = app.db().clone();
        async move {
            db.run(move |c| {
                Ok::<_, confab::error::Error>(
                    users::table
                        .find(ann)
                        .select(users::alert_mode)
                        .first::<String>(c)?,
                )
            })
            .await
            .expect("mode")
        }
    };

    let mut scanner = app.browser();
    let page = scanner.get(&path).await.expect(Status::Ok);
    assert!(page.body.contains("Stop email alerts"));
    assert_eq!(mode(&app).await, "on", "opening the link changes nothing");

    let (id, signature) = path
        .trim_start_matches("/unsubscribe/")
        .split_once('.')
        .expect("token");
    let other = app.user("bob", false).await;
    for forged in [
        format!("/unsubscribe/{other}.{signature}"),
        format!("/unsubscribe/{id}.{}", "0".repeat(32)),
        "/unsubscribe/garbage".into(),
        format!("/unsubscribe/{id}"),
    ] {
        scanner.get(&forged).await.expect(Status::BadRequest);
        let response = app.client.post(forged.clone()).dispatch().await;
        assert_eq!(response.status(), Status::BadRequest, "{forged}");
    }
    assert_eq!(mode(&app).await, "on");

    // A mail client's one-click POST: no cookies, no form token, just the signed link.
    let response = app
        .client
        .post(path.clone())
        .header(rocket::http::ContentType::Form)
        .body("List-Unsubscribe=One-Click")
        .dispatch()
        .await;
    assert_eq!(response.status(), Status::Ok);
    assert!(response
        .into_string()
        .await
        .unwrap_or_default()
        .contains("You are unsubscribed"));
    assert_eq!(mode(&app).await, "off");
    assert_eq!(mode_of(&app, other).await, "on");
}

async fn mode_of(app: &TestApp, id: i64) -> String {
    app.write(move |c| {
        Ok(users::table
            .find(id)
            .select(users::alert_mode)
            .first::<String>(c)?)
    })
    .await
}

async fn password_reset_end_to_end(backend: Backend) {
    let Some((app, sink)) = start(backend).await else {
        return;
    };
    app.user("ann", false).await;
    let mut browser = app.browser();
    let login = browser.get("/login").await.expect(Status::Ok);
    assert!(login.body.contains("/password/forgot"));
    browser.get("/password/forgot").await.expect(Status::Ok);
    let unknown = browser
        .post("/password/forgot", &[("who", "nobody@example.org")])
        .await
        .expect(Status::Ok);
    let known = browser
        .post("/password/forgot", &[("who", "ann@example.org")])
        .await
        .expect(Status::Ok);
    assert_eq!(
        unknown
            .body
            .replace(&browser.csrf.clone().unwrap_or_default(), ""),
        known
            .body
            .replace(&browser.csrf.clone().unwrap_or_default(), ""),
        "the same answer either way"
    );
    assert_eq!(send_at(&app, minutes(0)).await, 1);
    let mails = sink.mails();
    assert_eq!(mails.len(), 1);
    assert_eq!(
        mails[0].header("Subject").as_deref(),
        Some("Reset your Confab password")
    );
    assert_eq!(
        mails[0].header("List-Unsubscribe"),
        None,
        "no unsubscribe link on account mail"
    );
    let text = mails[0].text();
    let token = text
        .split("/password/")
        .nth(1)
        .and_then(|r| r.split(|c: char| !c.is_ascii_hexdigit()).next())
        .expect("a link")
        .to_string();

    let mut ann = app.browser();
    ann.get(&format!("/password/{token}"))
        .await
        .expect(Status::Ok);
    ann.post(
        &format!("/password/{token}"),
        &[
            ("password", "my new password"),
            ("confirm", "my new password"),
        ],
    )
    .await
    .expect(Status::SeeOther);
    let mut again = app.browser();
    again.get("/login").await;
    again
        .post(
            "/login",
            &[("username", "ann"), ("password", "my new password")],
        )
        .await
        .expect(Status::SeeOther);
}

async fn without_smtp_mail_is_written_to_files(backend: Backend) {
    let app = TestApp::builder(backend).with_settings(|s| s.mail.dir = s.data_dir.join("mail"));
    let Some(app) = app.start().await else {
        return;
    };
    app.user("admin", true).await;
    let mut admin = app.login("admin").await;
    admin.get("/admin/users").await.expect(Status::Ok);
    admin
        .post(
            "/admin/users",
            &[
                ("username", "newbie"),
                ("email", "newbie@example.org"),
                ("password", ""),
            ],
        )
        .await
        .expect(Status::Ok);
    assert_eq!(
        send_at(&app, minutes(0)).await,
        1,
        "the invitation goes through the outbox"
    );
    let dir = app.settings().mail.dir.clone();
    let files: Vec<_> = std::fs::read_dir(&dir)
        .expect("mail folder")
        .flatten()
        .map(|e| e.path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    assert_eq!(files[0].extension().and_then(|e| e.to_str()), Some("eml"));
    let mail = std::fs::read_to_string(&files[0]).expect("read");
    assert!(
        mail.contains("Subject: You are invited to Confab")
            && mail.contains("To: newbie@example.org"),
        "{mail}"
    );
}

async fn a_round_writes_at_most_its_limit(backend: Backend) {
    let Some((app, sink)) = start(backend).await else {
        return;
    };
    let bob = app.user("bob", false).await;
    let mut members = vec![bob];
    for i in 0..5 {
        members.push(app.user(&format!("member{i}"), false).await);
    }
    let room = app.room("general", false, &members).await;
    app.messages(room, bob, vec!["news".into()]).await;

    let rules = confab::jobs::alerts::rules(app.settings());
    let now = minutes(11);
    let mut rounds = Vec::new();
    for _ in 0..4 {
        let written = app
            .db()
            .run(move |c| {
                chat::alerts::plan(c, now, &rules, 2, |due| {
                    Ok(outbox::NewMail {
                        kind: "alert",
                        user_id: Some(due.user.id),
                        recipient: due.user.email.clone(),
                        rendered: confab::mail::Rendered {
                            subject: format!("{} new", due.count()),
                            text: String::new(),
                            html: String::new(),
                        },
                        summary: String::new(),
                        reply_to: None,
                    })
                })
            })
            .await
            .expect("plan");
        rounds.push(written);
    }
    assert_eq!(rounds, vec![2, 2, 1, 0], "five members due, two per round");
    let rows = outbox_rows(&app).await;
    assert_eq!(rows.len(), 5);
    let mut recipients: Vec<_> = rows.iter().map(|r| r.recipient.clone()).collect();
    recipients.sort();
    recipients.dedup();
    assert_eq!(recipients.len(), 5, "each member once");
    assert_eq!(send_at(&app, now).await, 5);
    assert_eq!(sink.mails().len(), 5);
}

/// On PostgreSQL, ids come from one sequence and commit out of order across rooms: a message in
/// one room may become visible after a planner has covered higher ids in another. Marking members
/// alerted per room keeps such a message for a later alert.
async fn a_message_that_commits_late_in_another_room_is_still_alerted(backend: Backend) {
    let Some((app, sink)) = start(backend).await else {
        return;
    };
    let ann = app.user("ann", false).await;
    let bob = app.user("bob", false).await;
    let x = app.room("x", false, &[ann, bob]).await;
    let y = app.room("y", false, &[ann, bob]).await;
    let insert = move |id: i64, room: i64, body: &'static str| {
        move |c: &mut confab::db::AnyConnection| {
            use confab::db::schema::messages as m;
            diesel::insert_into(m::table)
                .values((
                    m::id.eq(id),
                    m::room_id.eq(room),
                    m::author_id.eq(bob),
                    m::body.eq(body),
                    m::revision.eq(id),
                    m::created_at.eq(chat::now()),
                ))
                .execute(c)?;
            diesel::update(users::table.find(bob))
                .set(users::alert_mode.eq("off"))
                .execute(c)?;
            Ok(())
        }
    };
    app.write(insert(10, x, "in x")).await;
    app.write(insert(11, x, "more in x")).await;
    assert_eq!(plan_at(&app, minutes(11)).await, 1);
    // Id 5 was taken before 10 and 11 but its post commits only now.
    app.write(insert(5, y, "late in y")).await;
    let next_day = minutes(11) + Duration::hours(24) + Duration::minutes(11);
    assert_eq!(
        plan_at(&app, next_day).await,
        1,
        "the late message is alerted"
    );
    assert_eq!(send_at(&app, next_day).await, 2);
    let subjects: Vec<_> = sink
        .mails()
        .iter()
        .filter_map(|m| m.header("Subject"))
        .collect();
    assert!(
        subjects.iter().any(|s| s == "1 new message in Y"),
        "{subjects:?}"
    );
}

/// One member floods a room: planning reads counts and a few short lines, so its statements and
/// what it holds stay the same whether there are 20 small or 400 ten-kilobyte unread messages.
async fn planning_reads_a_bounded_amount_whatever_the_flood(backend: Backend) {
    let mut rounds = Vec::new();
    for (messages, size) in [(20usize, 10usize), (400, 10_000)] {
        // One connection, so that no pool check of an idle connection adds to the count.
        let sink = SmtpSink::start().await;
        let url = sink.url();
        let Some(app) = TestApp::builder(backend)
            .with(&[("db_pool_size", 1)])
            .with_settings(move |s| s.mail.smtp_url = Some(url))
            .start()
            .await
        else {
            return;
        };
        let flooder = app.user("flooder", false).await;
        let mut away = Vec::new();
        for i in 0..20 {
            away.push(app.user(&format!("away{i}"), false).await);
        }
        let mut members = away.clone();
        members.push(flooder);
        let room = app.room("general", false, &members).await;
        let mut bodies: Vec<String> = (0..messages)
            .map(|i| format!("{i} {}", "x".repeat(size)))
            .collect();
        bodies[0] = format!("@away3 look {}", "y".repeat(size));
        app.messages(room, flooder, bodies).await;
        // The second time, more rooms have something to tell too.
        if messages > 20 {
            for name in ["second", "third"] {
                let other = app.room(name, false, &members).await;
                app.messages(other, flooder, vec![format!("news in {name}")])
                    .await;
            }
        }
        let rules = confab::chat::alerts::Rules {
            away_after: Duration::minutes(5),
            alert_delay: Duration::minutes(10),
            mention_delay: Duration::minutes(2),
        };
        let due = app
            .write(move |c| confab::chat::alerts::due(c, minutes(11), &rules))
            .await;
        assert_eq!(due.len(), 20, "every away member is due");
        for d in &due {
            let room = d
                .rooms
                .iter()
                .find(|r| r.slug == "general")
                .expect("general");
            assert_eq!(room.count, messages, "counted in SQL");
            assert!(room.messages.len() <= confab::chat::alerts::LINES_PER_ROOM);
            assert!(room
                .messages
                .iter()
                .all(|m| m.body.chars().count() <= confab::chat::alerts::LINE_CHARS as usize));
            assert_eq!(room.mentions, usize::from(d.user.username == "away3"));
        }
        assert_eq!(
            plan_at(&app, minutes(1)).await,
            0,
            "a round before anything is due"
        );
        let before = app.db().queries();
        assert_eq!(plan_at(&app, minutes(11)).await, 20);
        rounds.push(app.db().queries() - before);
        assert_eq!(send_at(&app, minutes(11)).await, 20);
        assert_eq!(sink.mails().len(), 20);
    }
    assert_eq!(
        rounds[0], rounds[1],
        "statements per round grow neither with the flood nor with the rooms: {rounds:?}"
    );
}

/// Mentions are found in SQL by a loose pattern; only whole names count, so `@anna` or
/// `x@ann.example` never alert ann in a room she hears about for mentions only.
async fn only_whole_names_are_mentions(backend: Backend) {
    let Some((app, sink)) = start(backend).await else {
        return;
    };
    let ann = app.user("ann", false).await;
    let bob = app.user("bob", false).await;
    let anna = app.user("anna", false).await;
    let room = app.room("general", false, &[ann, bob, anna]).await;
    app.write(move |c| chat::alerts::set_room_level(c, room, ann, "mentions"))
        .await;
    app.write(move |c| chat::alerts::set_mode(c, anna, "off", 8))
        .await;
    app.write(move |c| chat::alerts::set_mode(c, bob, "off", 8))
        .await;
    app.messages(
        room,
        bob,
        vec!["@anna hi".into(), "mail x@ann.example".into()],
    )
    .await;
    assert_eq!(
        plan_at(&app, minutes(11)).await,
        0,
        "no whole-name mention of ann"
    );
    app.messages(room, bob, vec!["@ann, your turn".into()])
        .await;
    assert_eq!(plan_at(&app, minutes(11)).await, 1);
    assert_eq!(send_at(&app, minutes(11)).await, 1);
    let text = sink.mails()[0].text();
    assert!(text.contains("@ann, your turn"), "{text}");
    assert!(!text.contains("@anna hi"), "{text}");
    assert!(text.contains("1 new"), "{text}");
}

/// The mail as its reader sees it: plural forms right, links as written in the text part, times
/// in the reader's zone (and saying so), messages oldest first as in the room.
async fn an_alert_reads_well(backend: Backend) {
    let Some((app, sink)) = start(backend).await else {
        return;
    };
    let ann = app.user("ann", false).await;
    let bob = app.user("bob", false).await;
    let carol = app.user("carol", false).await;
    let design = app.room("design", false, &[ann, bob]).await;
    let ops = app.room("ops", false, &[bob, carol]).await;
    app.write(move |c| {
        diesel::update(confab::db::schema::users::table.find(ann))
            .set(confab::db::schema::users::time_zone.eq("Asia/Kolkata"))
            .execute(c)?;
        Ok(())
    })
    .await;
    app.messages(
        design,
        bob,
        vec!["see https://example.org/a/b?x=1&y=2 first".into()],
    )
    .await;
    app.messages(design, bob, vec!["and then this".into()])
        .await;
    app.messages(ops, bob, vec!["one for carol".into()]).await;

    assert_eq!(plan_at(&app, minutes(60 * 3)).await, 2);
    send_at(&app, minutes(60 * 3)).await;
    let ann_mail = sink.text_to("ann");
    let text_part = ann_mail.split("<!doctype html>").next().unwrap_or_default();
    assert!(
        text_part.contains("see https://example.org/a/b?x=1&y=2 first")
            && !text_part.contains("&#x2F;")
            && !text_part.contains("&amp;"),
        "the text part has the link as written: {text_part}"
    );
    assert!(
        ann_mail.contains("Times are in your time zone, Asia/Kolkata."),
        "{ann_mail}"
    );
    let (first, then) = (
        ann_mail.find("see https://example.org").expect("first"),
        ann_mail.find("and then this").expect("second"),
    );
    assert!(first < then, "oldest first: {ann_mail}");
    assert!(ann_mail.contains("<title>2 new messages</title>"));
    let carol_mail = sink.text_to("carol");
    assert!(
        carol_mail.contains("<title>1 new message</title>"),
        "{carol_mail}"
    );
    assert!(
        carol_mail.contains("1 new message arrived in OPS"),
        "{carol_mail}"
    );
}

async fn the_alert_log_explains_itself(backend: Backend) {
    let Some(app) = TestApp::start(backend).await else {
        return;
    };
    let ann = app.user("ann", false).await;
    let bob = app.user("bob", false).await;
    let carl = app.user("carl", false).await;
    let dora = app.user("dora", false).await;
    let general = app.room("general", false, &[ann, bob, carl, dora]).await;
    let quiet = app.room("quiet", false, &[ann, bob]).await;
    // Carl is active now, dora reads digests twelve hours from now (whatever the time of day the
    // test runs at), ann has muted "quiet".
    let active = minutes(15);
    let digest_hour = (minutes(16).hour() + 12) % 24;
    app.write(move |c| {
        diesel::update(users::table.find(carl))
            .set(users::last_active_at.eq(active))
            .execute(c)?;
        diesel::update(users::table.find(dora))
            .set((
                users::alert_mode.eq("digest"),
                users::digest_hour.eq(digest_hour as i32),
            ))
            .execute(c)?;
        Ok(())
    })
    .await;
    let mut ann_browser = app.login("ann").await;
    ann_browser.get("/settings").await.expect(Status::Ok);
    let muted = ann_browser
        .post("/settings/rooms/quiet/alerts", &[("level", "muted")])
        .await;
    assert_eq!(muted.status, Status::SeeOther);
    app.messages(general, bob, vec!["meeting moved".into()])
        .await;
    app.messages(quiet, bob, vec!["psst".into()]).await;

    for _ in 0..3 {
        // Planned again and again, each decision is logged once.
        plan_at(&app, minutes(16)).await;
    }
    let log = |user: i64| {
        app.write(move |c| {
            Ok(chat::alert_log::recent(c, user, minutes(16), 50)?
                .into_iter()
                .map(|l| l.decision)
                .collect::<Vec<_>>())
        })
    };
    let mut ann_log = log(ann).await;
    ann_log.sort();
    assert_eq!(
        ann_log,
        vec![
            "not sent: muted (1 unread in muted rooms)".to_string(),
            "sent: 1 new in GENERAL".to_string(),
        ]
    );
    let carl_log = log(carl).await;
    assert_eq!(carl_log.len(), 1, "{carl_log:?}");
    assert!(
        carl_log[0].starts_with("not sent: you were active at ")
            && carl_log[0].ends_with("(1 unread)"),
        "{carl_log:?}"
    );
    assert_eq!(
        log(dora).await,
        vec![format!(
            "held until the daily digest at {digest_hour:02}:00 (1 unread)"
        )]
    );
    assert_eq!(log(bob).await, Vec::<String>::new(), "bob wrote everything");
    // Ann was alerted and stays away: the next news waits for the daily limit, and says so.
    app.messages(general, bob, vec!["agenda attached".into()])
        .await;
    assert_eq!(plan_at(&app, minutes(40)).await, 1, "carl, away by now");
    let held = app
        .write(move |c| chat::alert_log::recent(c, ann, minutes(40), 1))
        .await;
    assert!(
        held[0]
            .decision
            .starts_with("held: one alert a day until you are back; the next after "),
        "{held:?}"
    );

    // Settings → Email shows them.
    let page = ann_browser.get("/settings").await.expect(Status::Ok);
    assert!(page.body.contains("Why mails were or were not sent"));
    assert!(page.body.contains("sent: 1 new in GENERAL"));
    assert!(page
        .body
        .contains("not sent: muted (1 unread in muted rooms)"));
    assert_eq!(send_at(&app, minutes(40)).await, 2);
}

/// SQLite binds at most 32,766 values per statement and PostgreSQL 65,535: a round deciding for
/// thousands of members at five values each once failed, and no alert went out.
async fn the_alert_log_takes_thousands_of_decisions_at_once(backend: Backend) {
    let Some(app) = TestApp::start(backend).await else {
        return;
    };
    let ann = app.user("ann", false).await;
    let entries = |ids: std::ops::RangeInclusive<i64>| -> Vec<chat::alert_log::Entry> {
        ids.map(|message_id| chat::alert_log::Entry {
            user_id: ann,
            kind: "active",
            message_id,
            decision: format!("not sent: \"{message_id}\" it's <b>ünread</b>\u{7}"),
        })
        .collect()
    };
    let now = minutes(0);
    let (first, again, overlapping) = (
        entries(1..=14_000),
        entries(1..=14_000),
        entries(7_001..=21_000),
    );
    let written = app
        .write(move |c| {
            Ok((
                chat::alert_log::record(c, &first, now)?,
                chat::alert_log::record(c, &again, now)?,
                chat::alert_log::record(c, &overlapping, now)?,
            ))
        })
        .await;
    assert_eq!(written, (14_000, 0, 7_000), "each decision logged once");
    let logged = app
        .write(move |c| {
            use confab::db::schema::alert_log;
            Ok(alert_log::table
                .filter(alert_log::message_id.eq_any([1, 21_000]))
                .order(alert_log::message_id)
                .select((alert_log::at, alert_log::decision))
                .load::<(NaiveDateTime, String)>(c)?)
        })
        .await;
    assert_eq!(
        logged,
        vec![
            (now, "not sent: \"1\" it's <b>ünread</b>\u{7}".to_string()),
            (
                now,
                "not sent: \"21000\" it's <b>ünread</b>\u{7}".to_string()
            ),
        ],
        "the text and time as given"
    );
}

/// A round binds the ids of the members who may be due, and of those who were not alerted: on
/// SQLite, one value each, so 33,000 away members were more than it binds in one statement until
/// they went in groups.
async fn a_round_with_more_members_than_sqlite_binds(backend: Backend) {
    let Some((app, sink)) = start(backend).await else {
        return;
    };
    let ann = app.user("ann", false).await;
    let bob = app.user("bob", false).await;
    let room = app.room("general", false, &[ann, bob]).await;
    app.messages(room, bob, vec!["news".into()]).await;
    let crowd = match backend {
        Backend::Postgres => {
            "INSERT INTO users (username, email, created_at, alert_mode) \
             SELECT 'crowd' || n, 'crowd' || n || '@example.com', now(), 'on' \
             FROM generate_series(1, 33000) AS n"
        }
        Backend::Sqlite => {
            "WITH RECURSIVE n (i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 33000) \
             INSERT INTO users (username, email, created_at, alert_mode) \
             SELECT 'crowd' || i, 'crowd' || i || '@example.com', datetime('now'), 'on' FROM n"
        }
    };
    let added = app
        .write(move |c| {
            diesel::update(users::table.find(bob))
                .set(users::alert_mode.eq("off"))
                .execute(c)?;
            Ok(diesel::sql_query(crowd).execute(c)?)
        })
        .await;
    assert_eq!(added, 33_000);
    assert_eq!(plan_at(&app, minutes(11)).await, 1, "ann, away, is due");
    assert_eq!(send_at(&app, minutes(11)).await, 1);
    let mails = sink.mails();
    assert_eq!(mails.len(), 1);
    assert_eq!(mails[0].to, vec!["ann@example.org".to_string()]);
    assert!(mails[0].text().contains("news"), "{}", mails[0].text());
}
