//! Sharing files: the plain upload form, members-only downloads, limits, hostile names and bytes,
//! thumbnails, deletion and the sweep of left-overs.

use std::io::Cursor;
use std::time::{Duration, SystemTime};

use confab::db::schema::{attachments, messages};
use diesel::prelude::*;
use rocket::http::Status;

use crate::both_backends;
use crate::common::{
    files_under, message_ids, multipart, Backend, Browser, Part, TestApp, BOUNDARY,
};

both_backends!(
    upload_and_download_round_trip,
    files_are_for_members_only,
    oversized_uploads_leave_nothing,
    broken_uploads_leave_nothing,
    hostile_names_and_content_are_defused,
    images_get_thumbnails,
    deleting_removes_the_files,
    the_sweep_removes_left_overs,
);

fn uploads_dir(app: &TestApp) -> std::path::PathBuf {
    app.database.dir.path().join("uploads")
}

async fn counts(app: &TestApp) -> (i64, i64) {
    app.write(|c| {
        let files: i64 = attachments::table.count().get_result(c)?;
        let posts: i64 = messages::table.count().get_result(c)?;
        Ok((files, posts))
    })
    .await
}

/// The download link of the newest file on a room page.
fn download_link(body: &str) -> String {
    let link = body
        .rsplit(r#"class="file">"#)
        .nth(1)
        .and_then(|before| before.rsplit(r#"<a href=""#).next())
        .expect("a file link");
    unescape(link.split('"').next().expect("href"))
}

/// Undoes Tera's escaping of an attribute value, as a browser does.
fn unescape(value: &str) -> String {
    value.replace("&#x2F;", "/").replace("&amp;", "&")
}

async fn member_setup(app: &TestApp) -> Browser<'_> {
    let ann = app.user("ann", false).await;
    app.room("general", false, &[ann]).await;
    let mut browser = app.login("ann").await;
    browser.get("/rooms/general").await.expect(Status::Ok);
    browser
}

async fn upload_and_download_round_trip(backend: Backend) {
    let Some(app) = TestApp::start(backend).await else {
        return;
    };
    let mut browser = member_setup(&app).await;
    let content: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    let page = browser
        .upload(
            "/rooms/general/files",
            &[
                Part::text("body", "the numbers"),
                Part::file("data.bin", content.clone()),
            ],
        )
        .await
        .expect(Status::SeeOther);
    assert!(page
        .location
        .unwrap_or_default()
        .starts_with("/rooms/general#m"));

    let room = browser.get("/rooms/general").await.expect(Status::Ok);
    assert!(
        room.body.contains("the numbers")
            && room.body.contains(">data.bin</a>")
            && room.body.contains("97.7 KiB")
    );
    let link = download_link(&room.body);
    assert!(
        link.starts_with("/files/") && link.ends_with("/data.bin"),
        "{link}"
    );

    let (page, bytes) = browser.get_bytes(&link, &[]).await;
    assert_eq!(page.status, Status::Ok);
    assert_eq!(bytes, content, "the bytes come back identical");
    assert_eq!(
        page.header("Content-Type"),
        Some("application/octet-stream")
    );
    assert_eq!(
        page.header("Content-Disposition"),
        Some("attachment; filename=\"data.bin\"; filename*=UTF-8''data.bin")
    );
    assert_eq!(page.header("X-Content-Type-Options"), Some("nosniff"));
    assert_eq!(page.header("Content-Security-Policy"), Some("sandbox"));
    let sha = {
        use sha2::{Digest, Sha256};
        hex::encode(Sha256::digest(&content))
    };
    let etag = page.header("ETag").expect("etag").to_string();
    assert_eq!(etag, format!("\"{sha}\""));

    let (cached, body) = browser.get_bytes(&link, &[("If-None-Match", &etag)]).await;
    assert_eq!(cached.status, Status::NotModified);
    assert!(body.is_empty());
    let (part, body) = browser
        .get_bytes(&link, &[("Range", "bytes=1000-1999")])
        .await;
    assert_eq!(part.status, Status::PartialContent);
    assert_eq!(part.header("Content-Range"), Some("bytes 1000-1999/100000"));
    assert_eq!(body, content[1000..2000].to_vec());
    let (tail, body) = browser.get_bytes(&link, &[("Range", "bytes=-10")]).await;
    assert_eq!(tail.status, Status::PartialContent);
    assert_eq!(body, content[content.len() - 10..].to_vec());
    let (outside, _) = browser
        .get_bytes(&link, &[("Range", "bytes=200000-")])
        .await;
    assert_eq!(outside.status, Status::RangeNotSatisfiable);
    assert_eq!(outside.header("Content-Range"), Some("bytes */100000"));

    // A resubmitted form (same one-time token) stores one message and one file.
    let page = browser.get("/rooms/general").await;
    let token = page
        .body
        .split(r#"name="client_id" value=""#)
        .nth(2)
        .and_then(|r| r.split('"').next())
        .expect("upload token")
        .to_string();
    for _ in 0..2 {
        browser
            .upload(
                "/rooms/general/files",
                &[
                    Part::text("client_id", &token),
                    Part::file("twice.txt", "hello"),
                ],
            )
            .await
            .expect(Status::SeeOther);
    }
    assert_eq!(counts(&app).await, (2, 2));
    let stored: Vec<_> = files_under(&uploads_dir(&app))
        .into_iter()
        .filter(|p| !p.to_string_lossy().contains(".thumb"))
        .collect();
    assert_eq!(stored.len(), 2, "{stored:?}");
}

async fn files_are_for_members_only(backend: Backend) {
    let Some(app) = TestApp::start(backend).await else {
        return;
    };
    let mut ann = member_setup(&app).await;
    app.user("bob", false).await;
    ann.upload(
        "/rooms/general/files",
        &[Part::file("plan.txt", "secret plan")],
    )
    .await
    .expect(Status::SeeOther);
    let link = download_link(&ann.get("/rooms/general").await.body);
    let (page, bytes) = ann.get_bytes(&link, &[]).await;
    assert_eq!((page.status, bytes), (Status::Ok, b"secret plan".to_vec()));
    assert_eq!(
        page.header("Content-Type"),
        Some("text/plain; charset=utf-8")
    );

    let mut bob = app.login("bob").await;
    let (denied, body) = bob.get_bytes(&link, &[]).await;
    assert_eq!(denied.status, Status::NotFound);
    let (missing, missing_body) = bob.get_bytes("/files/999999/plan.txt", &[]).await;
    assert_eq!(missing.status, Status::NotFound);
    assert_eq!(
        body, missing_body,
        "another room's file looks exactly like a missing one"
    );
    let mut anonymous = app.browser();
    let (logged_out, _) = anonymous.get_bytes(&link, &[]).await;
    assert_eq!(logged_out.status, Status::NotFound);

    // Nor can bob upload into a room he is not in.
    bob.get("/").await;
    bob.upload("/rooms/general/files", &[Part::file("spam.txt", "spam")])
        .await
        .expect(Status::NotFound);
    assert_eq!(counts(&app).await, (1, 1));
}

async fn oversized_uploads_leave_nothing(backend: Backend) {
    let Some(app) = TestApp::builder(backend)
        .with(&[("max_upload_bytes", 10_000)])
        .start()
        .await
    else {
        return;
    };
    let mut browser = member_setup(&app).await;
    let page = browser
        .upload(
            "/rooms/general/files",
            &[Part::file("big.bin", vec![7u8; 50_000])],
        )
        .await;
    assert_eq!(page.status, Status::PayloadTooLarge);
    assert!(page.body.contains("too large"), "{}", page.body);
    let exact = browser
        .upload(
            "/rooms/general/files",
            &[Part::file("fits.bin", vec![7u8; 10_000])],
        )
        .await;
    assert_eq!(
        exact.status,
        Status::SeeOther,
        "a file at the limit is fine"
    );
    assert_eq!(counts(&app).await, (1, 1));
    assert_eq!(
        files_under(&uploads_dir(&app)).len(),
        1,
        "only the accepted file is on disk"
    );
}

async fn broken_uploads_leave_nothing(backend: Backend) {
    let Some(app) = TestApp::start(backend).await else {
        return;
    };
    let mut browser = member_setup(&app).await;
    let csrf = browser.csrf.clone().expect("token");

    // Cut off in the middle of the file, as a client that disconnects would leave it.
    let whole = multipart(&[
        Part::text("csrf", &csrf),
        Part::file("cut.bin", vec![1u8; 100_000]),
    ]);
    let truncated = whole[..60_000].to_vec();
    assert_eq!(
        browser
            .post_bytes("/rooms/general/files", truncated)
            .await
            .status,
        Status::BadRequest
    );
    // Garbage instead of multipart framing.
    assert_eq!(
        browser
            .post_bytes("/rooms/general/files", b"not multipart at all".to_vec())
            .await
            .status,
        Status::BadRequest
    );
    // No file field.
    let no_file = browser
        .upload("/rooms/general/files", &[Part::text("body", "where is it")])
        .await;
    assert_eq!(no_file.status, Status::UnprocessableEntity);
    assert!(no_file.body.contains("Choose a file to upload."));
    // A forged form, and a token that comes after the file.
    let forged = multipart(&[Part::text("csrf", "forged"), Part::file("x.txt", "x")]);
    assert_eq!(
        browser
            .post_bytes("/rooms/general/files", forged)
            .await
            .status,
        Status::Forbidden
    );
    let late = multipart(&[Part::file("x.txt", "x"), Part::text("csrf", &csrf)]);
    assert_eq!(
        browser
            .post_bytes("/rooms/general/files", late)
            .await
            .status,
        Status::Forbidden
    );
    // An unknown field.
    let odd = multipart(&[
        Part::text("csrf", &csrf),
        Part::text("evil", "1"),
        Part::file("x.txt", "x"),
    ]);
    assert_eq!(
        browser.post_bytes("/rooms/general/files", odd).await.status,
        Status::BadRequest
    );

    assert_eq!(counts(&app).await, (0, 0), "no rows");
    assert!(
        files_under(&uploads_dir(&app)).is_empty(),
        "no files, not even temporary ones"
    );
    let _ = BOUNDARY;
}

async fn hostile_names_and_content_are_defused(backend: Backend) {
    let Some(app) = TestApp::start(backend).await else {
        return;
    };
    let mut browser = member_setup(&app).await;
    let long = format!("{}.txt", "n".repeat(500));
    let cases: [(&str, &str); 5] = [
        ("../../etc/passwd", "passwd"),
        // Browsers send a newline in a name as %0A; it stays text.
        ("two\nlines.txt", "two%0Alines.txt"),
        // A right-to-left override that would disguise the extension is dropped.
        ("invoice\u{202e}fdp.exe", "invoicefdp.exe"),
        ("..\\..\\windows\\win.ini", "win.ini"),
        (&long, ""),
    ];
    for (name, expected) in cases {
        browser
            .upload("/rooms/general/files", &[Part::file(name, "harmless")])
            .await
            .expect(Status::SeeOther);
        let room = browser.get("/rooms/general").await;
        let link = download_link(&room.body);
        let (page, _) = browser.get_bytes(&link, &[]).await;
        let disposition = page
            .header("Content-Disposition")
            .expect("disposition")
            .to_string();
        assert!(
            !disposition.contains('/')
                && !disposition.contains('\n')
                && !disposition.contains('\0'),
            "{disposition}"
        );
        if expected.is_empty() {
            let stored = room
                .body
                .rsplit(r#"class="file">"#)
                .next()
                .and_then(|r| r.split('<').next())
                .expect("name");
            assert_eq!(
                stored.chars().count(),
                200,
                "long names are cut to 200 characters"
            );
            assert!(stored.ends_with(".txt"));
        } else {
            assert!(
                room.body
                    .contains(&format!(r#"class="file">{expected}</a>"#)),
                "{expected}"
            );
        }
    }
    assert!(
        files_under(&uploads_dir(&app))
            .iter()
            .all(|p| p.starts_with(uploads_dir(&app))),
        "nothing escaped the uploads folder"
    );
    // A raw NUL in the part's headers is malformed: refused, and nothing is kept.
    let before = counts(&app).await;
    let page = browser
        .upload("/rooms/general/files", &[Part::file("nul\u{0}.txt", "x")])
        .await;
    assert_eq!(page.status, Status::BadRequest);
    assert_eq!(counts(&app).await, before);

    // Script-carrying HTML and SVG are never shown inline.
    let html = "<!DOCTYPE html><html><body><script>alert(document.cookie)</script></body></html>";
    let svg = r#"<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>"#;
    for (name, content) in [("page.html", html), ("picture.svg", svg)] {
        browser
            .upload("/rooms/general/files", &[Part::file(name, content)])
            .await
            .expect(Status::SeeOther);
        let link = download_link(&browser.get("/rooms/general").await.body);
        let (page, bytes) = browser.get_bytes(&link, &[]).await;
        assert_eq!(bytes, content.as_bytes());
        assert!(
            page.header("Content-Disposition")
                .expect("disposition")
                .starts_with("attachment;"),
            "{name}"
        );
        assert_eq!(page.header("Content-Security-Policy"), Some("sandbox"));
        assert_eq!(page.header("X-Content-Type-Options"), Some("nosniff"));
        let content_type = page.header("Content-Type").expect("type");
        assert!(!content_type.contains("svg"), "{name}: {content_type}");
    }
}

fn image_bytes(format: image::ImageFormat, width: u32, height: u32) -> Vec<u8> {
    let image = image::RgbImage::from_fn(width, height, |x, y| {
        image::Rgb([(x % 256) as u8, (y % 256) as u8, 128])
    });
    let mut out = Cursor::new(Vec::new());
    image::DynamicImage::ImageRgb8(image)
        .write_to(&mut out, format)
        .expect("encode");
    out.into_inner()
}

/// Waits (a bounded number of rounds) for the room page to show a thumbnail.
async fn thumbnail_link(browser: &mut Browser<'_>, count: usize) -> Vec<String> {
    for _ in 0..200 {
        let page = browser.get("/rooms/general").await;
        let links: Vec<String> = page
            .body
            .split(r#"<img src=""#)
            .skip(1)
            .filter_map(|r| r.split('"').next().map(unescape))
            .collect();
        if links.len() >= count {
            return links;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no thumbnail appeared");
}

async fn images_get_thumbnails(backend: Backend) {
    let Some(app) = TestApp::start(backend).await else {
        return;
    };
    let mut browser = member_setup(&app).await;
    let png = image_bytes(image::ImageFormat::Png, 1600, 1200);
    let jpeg = image_bytes(image::ImageFormat::Jpeg, 1000, 2000);
    browser
        .upload(
            "/rooms/general/files",
            &[Part::file("wide.png", png.clone())],
        )
        .await
        .expect(Status::SeeOther);
    browser
        .upload("/rooms/general/files", &[Part::file("tall.jpg", jpeg)])
        .await
        .expect(Status::SeeOther);
    // Bytes that claim to be a PNG but are not: kept as a plain file, no thumbnail, no error.
    let mut broken = png[..64].to_vec();
    broken.extend_from_slice(&[0u8; 500]);
    browser
        .upload(
            "/rooms/general/files",
            &[Part::file("broken.png", broken.clone())],
        )
        .await
        .expect(Status::SeeOther);

    let thumbs = thumbnail_link(&mut browser, 2).await;
    let expected = [("image/png", (800, 600)), ("image/jpeg", (300, 600))];
    for (link, (content_type, size)) in thumbs.iter().zip(expected) {
        let (page, bytes) = browser.get_bytes(link, &[]).await;
        assert_eq!(page.status, Status::Ok);
        assert_eq!(page.header("Content-Type"), Some(content_type));
        let thumb = image::load_from_memory(&bytes).expect("a real image");
        assert_eq!((thumb.width(), thumb.height()), size);
    }
    let room = browser.get("/rooms/general").await;
    assert!(room.body.contains("1600×1200") && room.body.contains("1000×2000"));
    // Shown at most 360 px wide, in proportion, with the size in the markup so the page does not jump.
    assert!(
        room.body.contains(r#"width="360" height="270""#)
            && room.body.contains(r#"width="360" height="720""#),
        "{}",
        room.body
    );
    let link = download_link(&room.body);
    assert!(link.ends_with("/broken.png"));
    let (page, bytes) = browser.get_bytes(&link, &[]).await;
    assert_eq!((page.status, bytes), (Status::Ok, broken));

    // Originals of raster images may be shown inline.
    let original = room
        .body
        .split(r#"<a href=""#)
        .find(|r| r.contains("wide.png"))
        .and_then(|r| r.split('"').next())
        .map(unescape)
        .expect("link");
    let (page, bytes) = browser.get_bytes(&original, &[]).await;
    assert_eq!(bytes, png);
    assert_eq!(page.header("Content-Type"), Some("image/png"));
    assert!(page
        .header("Content-Disposition")
        .expect("disposition")
        .starts_with("inline;"));
}

async fn deleting_removes_the_files(backend: Backend) {
    let Some(app) = TestApp::start(backend).await else {
        return;
    };
    let mut browser = member_setup(&app).await;
    browser
        .upload(
            "/rooms/general/files",
            &[Part::file(
                "pic.png",
                image_bytes(image::ImageFormat::Png, 900, 900),
            )],
        )
        .await
        .expect(Status::SeeOther);
    thumbnail_link(&mut browser, 1).await;
    assert_eq!(
        files_under(&uploads_dir(&app)).len(),
        2,
        "the file and its thumbnail"
    );
    let page = browser.get("/rooms/general").await;
    let link = download_link(&page.body);
    let id = message_ids(&page.body)[0];
    browser
        .post(&format!("/rooms/general/messages/{id}/delete"), &[])
        .await
        .expect(Status::SeeOther);
    assert!(files_under(&uploads_dir(&app)).is_empty(), "both are gone");
    assert_eq!(
        counts(&app).await,
        (0, 1),
        "the message stays as \"message deleted\""
    );
    let (gone, _) = browser.get_bytes(&link, &[]).await;
    assert_eq!(gone.status, Status::NotFound);
}

async fn the_sweep_removes_left_overs(backend: Backend) {
    let Some(database) = crate::common::TestDatabase::new(backend) else {
        return;
    };
    let tmp = database.dir.path().join("uploads").join("tmp");
    std::fs::create_dir_all(&tmp).expect("tmp");
    let stale = tmp.join(format!("{}.part", "ab".repeat(32)));
    let fresh = tmp.join(format!("{}.part", "cd".repeat(32)));
    let odd = tmp.join("something-else");
    for path in [&stale, &fresh, &odd] {
        std::fs::write(path, b"left over").expect("write");
    }
    let old = SystemTime::now() - Duration::from_secs(7200);
    for path in [&stale, &odd] {
        std::fs::File::options()
            .write(true)
            .open(path)
            .expect("open")
            .set_modified(old)
            .expect("mtime");
    }
    // The background jobs run, as in production (the tests' default turns them off).
    let mut settings = database.settings(&[]);
    settings.jobs_enabled = true;
    let client = rocket::local::asynchronous::Client::untracked(confab::app(settings))
        .await
        .expect("app");
    let mut swept = false;
    for _ in 0..200 {
        if !stale.exists() && !odd.exists() {
            swept = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(swept, "stale temporary files are removed at start-up");
    assert!(fresh.exists(), "an upload still in progress is left alone");
    drop(client);
}
