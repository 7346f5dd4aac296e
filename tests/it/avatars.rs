//! Members' own pictures: uploaded in Settings with a plain form, cut square, shown beside their
//! messages, seen only by the people who share a room with them; bad uploads change nothing.

use std::io::Cursor;

use rocket::http::Status;

use crate::both_backends;
use crate::common::{multipart, Backend, Part, TestApp};

both_backends!(
    a_picture_shows_beside_my_messages_to_my_rooms,
    bad_pictures_change_nothing
);

fn png(width: u32, height: u32) -> Vec<u8> {
    let image = image::RgbImage::from_fn(width, height, |x, y| {
        image::Rgb([(x % 256) as u8, (y % 256) as u8, 90])
    });
    let mut out = Cursor::new(Vec::new());
    image::DynamicImage::ImageRgb8(image)
        .write_to(&mut out, image::ImageFormat::Png)
        .expect("encode");
    out.into_inner()
}

/// The picture address on a page for user `id`, if any (Tera writes `/` as `&#x2F;`).
fn picture_url(body: &str, id: i64) -> Option<String> {
    let body = body.replace("&#x2F;", "/");
    let start = body.find(&format!("src=\"/avatars/{id}?v="))? + 5;
    let end = body[start..].find('"')? + start;
    Some(body[start..end].to_string())
}

async fn a_picture_shows_beside_my_messages_to_my_rooms(backend: Backend) {
    let Some(app) = TestApp::start(backend).await else {
        return;
    };
    let ann = app.user("ann", false).await;
    let bob = app.user("bob", false).await;
    app.user("carol", false).await;
    let general = app.room("general", false, &[ann, bob]).await;
    app.messages(general, ann, vec!["hello from ann".into()])
        .await;

    let mut ann_browser = app.login("ann").await;
    ann_browser.get("/settings").await.expect(Status::Ok);
    let saved = ann_browser
        .upload("/settings/avatar", &[Part::file("me.png", png(300, 200))])
        .await
        .expect(Status::SeeOther);
    assert_eq!(saved.location.as_deref(), Some("/settings#picture"));
    let settings = ann_browser.get("/settings").await.expect(Status::Ok);
    assert!(settings.body.contains("Picture saved."));
    let url = picture_url(&settings.body, ann).expect("my picture on the settings page");

    // Bob, in a room with ann, sees it beside her message and may fetch it: a 128 px square.
    let mut bob_browser = app.login("bob").await;
    let room = bob_browser.get("/rooms/general").await.expect(Status::Ok);
    assert_eq!(picture_url(&room.body, ann).as_deref(), Some(url.as_str()));
    assert!(
        room.body.contains(r#"<img class="avatar""#) && room.body.contains(r#"alt="""#),
        "a decorative image (the name is beside it)"
    );
    let (page, bytes) = bob_browser.get_bytes(&url, &[]).await;
    assert_eq!(page.status, Status::Ok);
    assert_eq!(page.header("Content-Type"), Some("image/png"));
    assert!(page
        .header("Cache-Control")
        .is_some_and(|c| c.contains("immutable")));
    let decoded = image::load_from_memory(&bytes).expect("a PNG");
    assert_eq!((decoded.width(), decoded.height()), (128, 128));

    // Carol shares no room with ann: not found, as for anyone logged out.
    let mut carol_browser = app.login("carol").await;
    let (page, _) = carol_browser.get_bytes(&url, &[]).await;
    assert_eq!(page.status, Status::NotFound);
    let (page, bytes) = app.browser().get_bytes(&url, &[]).await;
    assert_ne!(page.status, Status::Ok);
    assert!(
        image::load_from_memory(&bytes).is_err(),
        "no picture for a stranger"
    );

    // Removing it brings the initials back everywhere.
    ann_browser
        .post("/settings/avatar/remove", &[])
        .await
        .expect(Status::SeeOther);
    let room = bob_browser.get("/rooms/general").await.expect(Status::Ok);
    assert!(picture_url(&room.body, ann).is_none());
    assert!(
        room.body.contains(">AN</span>"),
        "the generated avatar again"
    );
    let (page, _) = bob_browser.get_bytes(&url, &[]).await;
    assert_eq!(page.status, Status::NotFound);
}

async fn bad_pictures_change_nothing(backend: Backend) {
    let Some(app) = TestApp::builder(backend)
        .with(&[("max_upload_bytes", 100_000)])
        .start()
        .await
    else {
        return;
    };
    let ann = app.user("ann", false).await;
    let mut browser = app.login("ann").await;
    browser.get("/settings").await.expect(Status::Ok);
    browser
        .upload("/settings/avatar", &[Part::file("me.png", png(64, 64))])
        .await
        .expect(Status::SeeOther);
    let before = picture_url(&browser.get("/settings").await.body, ann).expect("a picture");

    let not_an_image = browser
        .upload(
            "/settings/avatar",
            &[Part::file("me.png", "<svg onload=alert(1)>")],
        )
        .await;
    assert_eq!(not_an_image.status, Status::UnprocessableEntity);
    assert!(not_an_image.body.contains("not an image Confab can read"));
    let too_big = browser
        .upload(
            "/settings/avatar",
            &[Part::file("big.png", vec![7u8; 300_000])],
        )
        .await;
    assert_eq!(too_big.status, Status::PayloadTooLarge);
    let no_file = browser.upload("/settings/avatar", &[]).await;
    assert_eq!(no_file.status, Status::UnprocessableEntity);
    let forged = multipart(&[
        Part::text("csrf", "forged"),
        Part::file("me.png", png(32, 32)),
    ]);
    assert_eq!(
        browser.post_bytes("/settings/avatar", forged).await.status,
        Status::Forbidden
    );
    assert_eq!(
        picture_url(&browser.get("/settings").await.body, ann),
        Some(before),
        "the first picture stays"
    );
}
