//! Logging in and out, sessions and their revocation, CSRF, login throttling, first-run setup.

use rocket::http::Status;

use crate::both_backends;
use crate::common::{one_time_link, Backend, TestApp, PASSWORD};

both_backends!(
    login_and_logout,
    sessions_can_be_revoked,
    forged_forms_are_refused,
    failed_logins_are_throttled,
    a_guesser_locks_out_only_itself,
    parallel_guesses_are_all_counted,
    first_run_setup_link,
    one_time_password_link
);

async fn login_and_logout(backend: Backend) {
    let Some(app) = TestApp::start(backend).await else {
        return;
    };
    app.user("ann", false).await;
    let mut browser = app.browser();

    let home = browser.get("/").await.expect(Status::SeeOther);
    assert_eq!(home.location.as_deref(), Some("/login?next=%2F"));

    let login = browser.get("/login").await.expect(Status::Ok);
    assert!(login.body.contains("<h1>Log in</h1>"));
    let wrong = browser
        .post("/login", &[("username", "ann"), ("password", "nope-nope")])
        .await;
    assert_eq!(wrong.status, Status::Unauthorized);
    assert!(wrong.body.contains("Wrong username or password."));
    assert!(
        wrong.body.contains(r#"value="ann""#),
        "the typed username is kept"
    );
    // The person retypes the password, so that field has the focus (the name field had it at first).
    let focused = |body: &str, field: &str| {
        body.split("<input").any(|input| {
            input.contains(&format!(r#"name="{field}""#)) && input.contains("autofocus")
        })
    };
    assert!(focused(&login.body, "username") && !focused(&login.body, "password"));
    assert!(focused(&wrong.body, "password") && !focused(&wrong.body, "username"));
    let unknown = browser
        .post("/login", &[("username", "nobody"), ("password", PASSWORD)])
        .await;
    assert_eq!(unknown.status, Status::Unauthorized);
    assert!(unknown.body.contains("Wrong username or password."));

    let ok = browser
        .post(
            "/login",
            &[
                ("username", "ANN"),
                ("password", PASSWORD),
                ("next", "/settings"),
            ],
        )
        .await;
    assert_eq!(ok.status, Status::SeeOther);
    assert_eq!(ok.location.as_deref(), Some("/settings"));
    let cookie = ok
        .headers
        .iter()
        .filter(|(n, _)| n == "Set-Cookie")
        .map(|(_, v)| v.as_str())
        .find(|v| v.starts_with("confab_session="));
    let cookie = cookie.expect("a session cookie");
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );
    assert!(!cookie.contains("ann"), "the cookie is encrypted: {cookie}");

    let home = browser.get("/").await.expect(Status::Ok);
    assert!(home
        .body
        .contains(r#"Log out<span class="who"> ann</span>"#));

    browser.post("/logout", &[]).await.expect(Status::SeeOther);
    let after = browser.get("/").await.expect(Status::SeeOther);
    assert!(after.location.unwrap_or_default().starts_with("/login"));

    // An open redirect through `next` is not possible.
    browser.get("/login").await.expect(Status::Ok);
    let evil = browser
        .post(
            "/login",
            &[
                ("username", "ann"),
                ("password", PASSWORD),
                ("next", "//evil.example"),
            ],
        )
        .await;
    assert_eq!(evil.location.as_deref(), Some("/"));
}

async fn sessions_can_be_revoked(backend: Backend) {
    let Some(app) = TestApp::start(backend).await else {
        return;
    };
    app.user("admin", true).await;
    app.user("ann", false).await;
    let mut laptop = app.login("ann").await;
    let mut phone = app.login("ann").await;
    phone.get("/").await.expect(Status::Ok);

    // The user ends their other sessions from the settings page.
    let settings = laptop.get("/settings").await.expect(Status::Ok);
    assert!(settings.body.contains("this browser"));
    assert_eq!(
        settings.body.matches("/revoke\"").count(),
        1,
        "one other session listed"
    );
    laptop
        .post("/settings/sessions/revoke-others", &[])
        .await
        .expect(Status::SeeOther);
    phone.get("/").await.expect(Status::SeeOther);
    laptop.get("/").await.expect(Status::Ok);

    // An admin ends all of them.
    let mut admin = app.login("admin").await;
    let ann_id = app
        .write(|c| {
            Ok(confab::chat::users::find_by_username(c, "ann")?
                .expect("ann")
                .id)
        })
        .await;
    admin.get("/admin/users").await.expect(Status::Ok);
    admin
        .post(&format!("/admin/users/{ann_id}/sessions/revoke"), &[])
        .await
        .expect(Status::SeeOther);
    laptop.get("/").await.expect(Status::SeeOther);

    // A deactivated user is logged out and cannot log in.
    let mut again = app.login("ann").await;
    admin.get("/admin/users").await;
    admin
        .post(&format!("/admin/users/{ann_id}/deactivate"), &[])
        .await
        .expect(Status::SeeOther);
    again.get("/").await.expect(Status::SeeOther);
    let mut browser = app.browser();
    browser.get("/login").await;
    let refused = browser
        .post("/login", &[("username", "ann"), ("password", PASSWORD)])
        .await;
    assert_eq!(refused.status, Status::Unauthorized);
    assert!(refused.body.contains("deactivated"));
}

async fn forged_forms_are_refused(backend: Backend) {
    let Some(app) = TestApp::start(backend).await else {
        return;
    };
    let ann = app.user("ann", false).await;
    app.room("general", false, &[ann]).await;
    let mut browser = app.login("ann").await;
    browser.get("/rooms/general").await.expect(Status::Ok);

    let forged = browser
        .post_raw(
            "/rooms/general/messages",
            &[("csrf", "0123"), ("body", "forged")],
        )
        .await;
    assert_eq!(forged.status, Status::Forbidden);
    assert!(
        forged.body.contains("This form has expired"),
        "{}",
        forged.body
    );
    let missing = browser
        .post_raw("/rooms/general/messages", &[("body", "forged")])
        .await;
    assert_eq!(missing.status, Status::Forbidden);
    let logout = browser.post_raw("/logout", &[]).await;
    assert_eq!(logout.status, Status::Forbidden);

    // A token from another browser does not work either.
    let mut other = app.browser();
    other.get("/login").await;
    let stolen = other.csrf.clone().expect("token");
    let cross = browser
        .post_raw(
            "/rooms/general/messages",
            &[("csrf", &stolen), ("body", "forged")],
        )
        .await;
    assert_eq!(cross.status, Status::Forbidden);

    let page = browser.get("/rooms/general").await.expect(Status::Ok);
    assert!(
        !page.body.contains("forged"),
        "no forged message was stored"
    );
    assert!(
        page.body
            .contains(r#"Log out<span class="who"> ann</span>"#),
        "still logged in"
    );
}

async fn failed_logins_are_throttled(backend: Backend) {
    let extra = &[("login_max_failures", 3), ("login_lockout_secs", 600)];
    let Some(app) = TestApp::builder(backend).with(extra).start().await else {
        return;
    };
    app.user("ann", false).await;
    let mut browser = app.browser();
    browser.get("/login").await;
    for _ in 0..2 {
        let page = browser
            .post(
                "/login",
                &[("username", "ann"), ("password", "wrong-password")],
            )
            .await;
        assert_eq!(page.status, Status::Unauthorized);
    }
    let third = browser
        .post(
            "/login",
            &[("username", "ann"), ("password", "wrong-password")],
        )
        .await;
    assert_eq!(third.status, Status::TooManyRequests);
    assert!(
        third.body.contains("Too many failed attempts"),
        "{}",
        third.body
    );
    assert!(third.header("Retry-After").is_some());

    // Even the right password is refused while the account is locked.
    let right = browser
        .post("/login", &[("username", "ann"), ("password", PASSWORD)])
        .await;
    assert_eq!(right.status, Status::TooManyRequests);

    // Refused attempts do not move the window: once it has passed, the right password works and
    // clears the count.
    app.write(|c| {
        use confab::db::schema::login_failures;
        use diesel::prelude::*;
        let long_ago = confab::chat::now() - chrono::Duration::hours(1);
        diesel::update(login_failures::table)
            .set(login_failures::first_failed_at.eq(long_ago))
            .execute(c)?;
        Ok(())
    })
    .await;
    let page = browser
        .post("/login", &[("username", "ann"), ("password", PASSWORD)])
        .await;
    assert_eq!(page.status, Status::SeeOther);
    let left = app.write(|c| name_failures(c, "ann")).await;
    assert_eq!(left, None, "a success clears the name's count");
}

fn name_failures(
    c: &mut confab::db::AnyConnection,
    name: &'static str,
) -> confab::error::Result<Option<i32>> {
    use confab::db::schema::login_failures;
    use diesel::prelude::*;
    Ok(login_failures::table
        .filter(login_failures::subject.eq(name))
        .filter(login_failures::address.ne("*"))
        .select(login_failures::failures)
        .first(c)
        .optional()?)
}

async fn a_guesser_locks_out_only_itself(backend: Backend) {
    let extra = &[
        ("login_max_failures", 3),
        ("login_lockout_secs", 600),
        ("login_max_failures_per_address", 6),
    ];
    let Some(app) = TestApp::builder(backend).with(extra).start().await else {
        return;
    };
    app.user("ann", false).await;
    let mut guesser = app.browser();
    guesser.remote = Some("203.0.113.9:5000".parse().expect("addr"));
    guesser.get("/login").await;
    let mut statuses = Vec::new();
    for _ in 0..5 {
        let page = guesser
            .post("/login", &[("username", "ann"), ("password", "guess")])
            .await;
        statuses.push(page.status);
    }
    assert_eq!(
        statuses,
        [
            Status::Unauthorized,
            Status::Unauthorized,
            Status::TooManyRequests,
            Status::TooManyRequests,
            Status::TooManyRequests
        ]
    );
    let right = guesser
        .post("/login", &[("username", "ann"), ("password", PASSWORD)])
        .await;
    assert_eq!(
        right.status,
        Status::TooManyRequests,
        "locked for the guesser"
    );
    // Refused attempts were counted but did not restart the window.
    let started: Vec<chrono::NaiveDateTime> = app
        .write(|c| {
            use confab::db::schema::login_failures;
            use diesel::prelude::*;
            Ok(login_failures::table
                .filter(login_failures::subject.eq("ann"))
                .filter(login_failures::address.ne("*"))
                .select(login_failures::first_failed_at)
                .load(c)?)
        })
        .await;
    assert_eq!(started.len(), 1);

    // The owner, from home, logs in at once.
    let mut owner = app.browser();
    owner.remote = Some("198.51.100.7:6000".parse().expect("addr"));
    owner.get("/login").await;
    let page = owner
        .post("/login", &[("username", "ann"), ("password", PASSWORD)])
        .await;
    assert_eq!(page.status, Status::SeeOther, "the owner is not locked out");

    // A name that does not exist answers exactly like one that does, and is locked the same way.
    let mut prober = app.browser();
    prober.remote = Some("192.0.2.44:7000".parse().expect("addr"));
    prober.get("/login").await;
    let mut statuses = Vec::new();
    for _ in 0..3 {
        let page = prober
            .post("/login", &[("username", "nobody"), ("password", "guess")])
            .await;
        assert!(!page.body.contains("nobody does not exist"));
        statuses.push(page.status);
    }
    assert_eq!(
        statuses,
        [
            Status::Unauthorized,
            Status::Unauthorized,
            Status::TooManyRequests
        ]
    );
    // Many names from one address hit the address limit: no more password checks from there.
    let mut statuses = Vec::new();
    for i in 0..4 {
        let name = format!("name{i}");
        let page = prober
            .post("/login", &[("username", &name), ("password", "guess")])
            .await;
        statuses.push(page.status);
    }
    assert_eq!(
        statuses.last(),
        Some(&Status::TooManyRequests),
        "{statuses:?}"
    );

    // One IPv6 client holds a whole /64: moving to the next address in it does not start afresh.
    app.user("carl", false).await;
    let mut v6 = app.browser();
    v6.get("/login").await;
    for i in 1..=3 {
        v6.remote = Some(format!("[2001:db8:5:6::{i}]:5000").parse().expect("addr"));
        v6.post("/login", &[("username", "carl"), ("password", "guess")])
            .await;
    }
    v6.remote = Some("[2001:db8:5:6::99]:5000".parse().expect("addr"));
    let page = v6
        .post("/login", &[("username", "carl"), ("password", PASSWORD)])
        .await;
    assert_eq!(page.status, Status::TooManyRequests, "the same /64");
}

async fn first_run_setup_link(backend: Backend) {
    let Some(app) = TestApp::start(backend).await else {
        return;
    };
    let token = app
        .client
        .rocket()
        .state::<confab::web::Setup>()
        .expect("setup")
        .token
        .clone();
    let mut browser = app.browser();
    browser
        .get("/setup/not-the-token")
        .await
        .expect(Status::NotFound);
    let page = browser
        .get(&format!("/setup/{token}"))
        .await
        .expect(Status::Ok);
    assert!(page.body.contains("Create the admin account"));

    let mismatch = browser
        .post(
            &format!("/setup/{token}"),
            &[
                ("username", "boss"),
                ("email", "boss@example.org"),
                ("password", "longenough1"),
                ("confirm", "different1"),
            ],
        )
        .await;
    assert_eq!(mismatch.status, Status::UnprocessableEntity);
    assert!(mismatch.body.contains("do not match") && mismatch.body.contains(r#"value="boss""#));

    browser
        .post(
            &format!("/setup/{token}"),
            &[
                ("username", "boss"),
                ("email", "boss@example.org"),
                ("password", "longenough1"),
                ("confirm", "longenough1"),
            ],
        )
        .await
        .expect(Status::SeeOther);
    let home = browser.get("/").await.expect(Status::Ok);
    assert!(home.body.contains("Admin"), "the first account is an admin");

    // The link works only once, while no account exists.
    let mut late = app.browser();
    late.get(&format!("/setup/{token}"))
        .await
        .expect(Status::NotFound);
    let users = app.write(confab::chat::users::count).await;
    assert_eq!(users, 1);
}

async fn one_time_password_link(backend: Backend) {
    let Some(app) = TestApp::start(backend).await else {
        return;
    };
    app.user("admin", true).await;
    let mut admin = app.login("admin").await;
    admin.get("/admin/users").await.expect(Status::Ok);
    let created = admin
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
    let link = one_time_link(&created.body);
    assert!(
        created.body.contains("It was also mailed to newbie.")
            && created.body.contains(r#"data-copy="one-time-link""#),
        "{}",
        created.body
    );
    let path = format!("/password/{link}");
    // The same link is mailed to the person (quoted-printable wraps long lines with `=`).
    assert_eq!(app.deliver_mail().await, 1);
    let invitation = app.mail().delivered()[0].replace("=\r\n", "");
    assert!(
        invitation.contains("To: newbie@example.org"),
        "{invitation}"
    );
    assert!(invitation.contains(&link), "{invitation}");

    let mut newbie = app.browser();
    let page = newbie.get(&path).await.expect(Status::Ok);
    assert!(page.body.contains("newbie"));
    let short = newbie
        .post(&path, &[("password", "short"), ("confirm", "short")])
        .await;
    assert_eq!(short.status, Status::UnprocessableEntity);
    assert!(short.body.contains("at least 8"));
    newbie
        .post(
            &path,
            &[
                ("password", "a fine password"),
                ("confirm", "a fine password"),
            ],
        )
        .await
        .expect(Status::SeeOther);
    newbie.get("/").await.expect(Status::Ok);

    // Used links are gone.
    app.browser().get(&path).await.expect(Status::NotFound);
    let mut login = app.browser();
    login.get("/login").await;
    login
        .post(
            "/login",
            &[("username", "newbie"), ("password", "a fine password")],
        )
        .await
        .expect(Status::SeeOther);
}

async fn parallel_guesses_are_all_counted(backend: Backend) {
    let Some(app) = TestApp::builder(backend)
        .with(&[("login_max_failures", 3), ("login_lockout_secs", 600)])
        .start()
        .await
    else {
        return;
    };
    app.user("ann", false).await;
    let mut browsers = Vec::new();
    for _ in 0..12 {
        let mut browser = app.browser();
        browser.get("/login").await;
        browsers.push(browser);
    }
    let guesses = browsers.iter_mut().enumerate().map(|(i, browser)| {
        let guess = format!("guess number {i}");
        async move {
            browser
                .post("/login", &[("username", "ann"), ("password", &guess)])
                .await
                .status
        }
    });
    let answers = rocket::futures::future::join_all(guesses).await;
    let checked = answers
        .iter()
        .filter(|s| **s == Status::Unauthorized)
        .count();
    assert!(
        checked <= 2,
        "at most two guesses get a plain answer before the lock: {answers:?}"
    );
    assert_eq!(
        answers
            .iter()
            .filter(|s| **s == Status::TooManyRequests)
            .count(),
        12 - checked
    );
}
