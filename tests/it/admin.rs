//! The admin pages: who may use them, and what they do.

use rocket::http::Status;

use crate::both_backends;
use crate::common::{one_time_link, Backend, TestApp};

both_backends!(
    admin_pages_are_for_admins,
    admin_manages_rooms_and_members,
    admin_manages_users
);

async fn admin_pages_are_for_admins(backend: Backend) {
    let Some(app) = TestApp::start(backend).await else {
        return;
    };
    app.user("ann", false).await;
    let admin_id = app.user("admin", true).await;
    app.room("general", false, &[]).await;

    let mut anonymous = app.browser();
    let page = anonymous.get("/admin/rooms").await.expect(Status::SeeOther);
    assert!(page.location.unwrap_or_default().starts_with("/login"));

    let mut ann = app.login("ann").await;
    for path in [
        "/admin/rooms",
        "/admin/users",
        "/admin/rooms/general",
        "/admin/",
    ] {
        let page = ann.get(path).await.expect(Status::Forbidden);
        assert!(page.body.contains("not allowed"), "{path}: {}", page.body);
    }
    ann.get("/").await;
    ann.post(
        "/admin/rooms",
        &[("slug", "mine"), ("name", "Mine"), ("description", "")],
    )
    .await
    .expect(Status::Forbidden);
    ann.post(&format!("/admin/users/{admin_id}/deactivate"), &[])
        .await
        .expect(Status::Forbidden);
    ann.post(&format!("/admin/users/{admin_id}/reset"), &[])
        .await
        .expect(Status::Forbidden);
    let rooms = app.write(confab::chat::rooms::list).await;
    assert_eq!(rooms.len(), 1, "no room was created");
}

async fn admin_manages_rooms_and_members(backend: Backend) {
    let Some(app) = TestApp::start(backend).await else {
        return;
    };
    app.user("admin", true).await;
    let bob = app.user("bob", false).await;
    let mut admin = app.login("admin").await;
    admin.get("/admin/rooms").await.expect(Status::Ok);

    let bad = admin
        .post(
            "/admin/rooms",
            &[("slug", "no spaces"), ("name", "X"), ("description", "")],
        )
        .await;
    assert_eq!(bad.status, Status::SeeOther);
    let page = admin.get("/admin/rooms").await.expect(Status::Ok);
    assert!(
        page.body.contains("A room address is"),
        "the error is shown"
    );

    let made = admin
        .post(
            "/admin/rooms",
            &[
                ("slug", "plans"),
                ("name", "Plans <b>"),
                ("description", "Where we plan"),
                ("private", "on"),
            ],
        )
        .await
        .expect(Status::SeeOther);
    assert_eq!(made.location.as_deref(), Some("/admin/rooms/plans"));
    // The admin who made the room is in it, private as it is.
    let page = admin.get("/rooms/plans").await.expect(Status::Ok);
    assert!(page.body.contains(r#"class="compose""#), "{}", page.body);
    let dup = admin
        .post(
            "/admin/rooms",
            &[("slug", "plans"), ("name", "Again"), ("description", "")],
        )
        .await;
    assert_eq!(dup.location.as_deref(), Some("/admin/rooms"));
    let page = admin.get("/admin/rooms").await;
    assert!(
        page.body.contains("There is already a room at `plans`."),
        "{}",
        page.body
    );

    let page = admin.get("/admin/rooms/plans").await.expect(Status::Ok);
    assert!(page.body.contains("Plans &lt;b&gt;"), "names are escaped");
    admin
        .post(
            "/admin/rooms/plans",
            &[("name", "Big plans"), ("description", "All of them")],
        )
        .await
        .expect(Status::SeeOther);
    admin
        .post("/admin/rooms/plans/members", &[("username", "nobody")])
        .await
        .expect(Status::SeeOther);
    assert!(admin
        .get("/admin/rooms/plans")
        .await
        .body
        .contains("There is no active user `nobody`."));
    admin
        .post("/admin/rooms/plans/members", &[("username", "bob")])
        .await
        .expect(Status::SeeOther);

    let mut bob_browser = app.login("bob").await;
    let page = bob_browser.get("/rooms/plans").await.expect(Status::Ok);
    assert!(page.body.contains("Big plans") && page.body.contains("All of them"));
    bob_browser
        .post("/rooms/plans/messages", &[("body", "before archive")])
        .await
        .expect(Status::SeeOther);

    admin.get("/admin/rooms/plans").await;
    admin
        .post("/admin/rooms/plans/archive", &[])
        .await
        .expect(Status::SeeOther);
    let page = bob_browser.get("/rooms/plans").await.expect(Status::Ok);
    assert!(page.body.contains("This room is archived") && page.body.contains("before archive"));
    let refused = bob_browser
        .post("/rooms/plans/messages", &[("body", "after archive")])
        .await;
    assert_eq!(refused.status, Status::UnprocessableEntity);
    assert!(refused.body.contains("archived"));
    admin
        .post("/admin/rooms/plans/restore", &[])
        .await
        .expect(Status::SeeOther);
    bob_browser.get("/rooms/plans").await;
    bob_browser
        .post("/rooms/plans/messages", &[("body", "after restore")])
        .await
        .expect(Status::SeeOther);

    admin.get("/admin/rooms/plans").await;
    admin
        .post(&format!("/admin/rooms/plans/members/{bob}/remove"), &[])
        .await
        .expect(Status::SeeOther);
    bob_browser
        .get("/rooms/plans")
        .await
        .expect(Status::NotFound);
}

async fn admin_manages_users(backend: Backend) {
    let Some(app) = TestApp::start(backend).await else {
        return;
    };
    let admin_id = app.user("admin", true).await;
    let ann = app.user("ann", false).await;
    let mut admin = app.login("admin").await;
    admin.get("/admin/users").await.expect(Status::Ok);

    admin
        .post(
            "/admin/users",
            &[
                ("username", "carl"),
                ("email", "carl@example.org"),
                ("password", "carl's password"),
                ("admin", "on"),
            ],
        )
        .await
        .expect(Status::SeeOther);
    let carl = app
        .write(|c| Ok(confab::chat::users::find_by_username(c, "carl")?.expect("carl")))
        .await;
    assert!(carl.is_admin);
    let mut carl_browser = app.browser();
    carl_browser.get("/login").await;
    carl_browser
        .post(
            "/login",
            &[("username", "carl"), ("password", "carl's password")],
        )
        .await
        .expect(Status::SeeOther);

    let taken = admin
        .post(
            "/admin/users",
            &[
                ("username", "Ann"),
                ("email", "x@example.org"),
                ("password", ""),
            ],
        )
        .await;
    assert_eq!(taken.status, Status::SeeOther);
    assert!(admin
        .get("/admin/users")
        .await
        .body
        .contains("The username `ann` is taken."));

    admin
        .post(&format!("/admin/users/{admin_id}/deactivate"), &[])
        .await
        .expect(Status::SeeOther);
    assert!(admin
        .get("/admin/users")
        .await
        .body
        .contains("You cannot deactivate your own account."));

    // A reset link lets ann choose a new password.
    let reset = admin
        .post(&format!("/admin/users/{ann}/reset"), &[])
        .await
        .expect(Status::Ok);
    let link = one_time_link(&reset.body);
    let mut ann_browser = app.browser();
    ann_browser
        .get(&format!("/password/{link}"))
        .await
        .expect(Status::Ok);
    ann_browser
        .post(
            &format!("/password/{link}"),
            &[
                ("password", "brand new pass"),
                ("confirm", "brand new pass"),
            ],
        )
        .await
        .expect(Status::SeeOther);
    let mut fresh = app.browser();
    fresh.get("/login").await;
    fresh
        .post(
            "/login",
            &[("username", "ann"), ("password", "brand new pass")],
        )
        .await
        .expect(Status::SeeOther);
    admin
        .post("/admin/users/99999/reset", &[])
        .await
        .expect(Status::NotFound);
}
