//! Accessibility in real Chromium: axe-core (the npm package under `tests/a11y`, loaded into the
//! page by the test, never shipped) on the main pages, in light and dark mode, with and without
//! JavaScript: no violation of impact "serious" or "critical".
//!
//! With `CONFAB_SCREENSHOTS=<folder>` the same visit also writes a screenshot of each page (light,
//! with JavaScript) there: `docs/screenshots/` holds the current ones.

use std::path::PathBuf;

use fantoccini::Client;

use super::browser::{login, send_plainly, wait_until, Driver};
use super::process::{Server, PASSWORD};

/// axe-core's source, or `None` (skip) when `npm ci --prefix tests/a11y` has not run, outside CI.
fn axe_source() -> Option<String> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/a11y/node_modules/axe-core/axe.min.js");
    match std::fs::read_to_string(&path) {
        Ok(source) => Some(source),
        Err(_) if std::env::var("CI").as_deref() == Ok("true") => {
            panic!(
                "{} is required under CI=true (npm ci --prefix tests/a11y)",
                path.display()
            )
        }
        Err(_) => {
            eprintln!("skipped: axe-core is not installed (npm ci --prefix tests/a11y)");
            None
        }
    }
}

/// With the page's scripts off, Chromium runs no timers either; axe-core waits on `setTimeout`, so
/// for the test's own script the timers become microtasks.
/// (`queueMicrotask` is off too; a resolved promise's callbacks still run.)
const TIMERS_AS_MICROTASKS: &str = "window.setTimeout = (f, _ms, ...a) => { Promise.resolve().then(() => f(...a)); return 0; };
     window.clearTimeout = () => {};
     window.requestAnimationFrame = (f) => { Promise.resolve().then(() => f(performance.now())); return 0; };";

/// The serious and critical violations axe finds on the page shown, one line each.
async fn violations(browser: &Client, axe: &str, javascript: bool) -> Vec<String> {
    let shim = if javascript { "" } else { TIMERS_AS_MICROTASKS };
    browser
        .execute(&format!("{shim}\n{axe}\nreturn typeof window.axe"), vec![])
        .await
        .expect("load axe-core");
    // A returned promise is awaited by WebDriver.
    let found = browser
        .execute(
            "return axe.run(document, { resultTypes: ['violations'] })
               .then((r) => r.violations
                 .filter((v) => v.impact === 'serious' || v.impact === 'critical')
                 .map((v) => `${v.impact} ${v.id}: ${v.help} at ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`))
               .catch((e) => [`axe failed: ${e}`]);",
            vec![],
        )
        .await
        .expect("run axe-core");
    found
        .as_array()
        .expect("a list")
        .iter()
        .map(|v| v.as_str().unwrap_or_default().to_string())
        .collect()
}

/// The pages checked after logging in (the login page is checked before).
const PAGES: [(&str, &str); 6] = [
    ("home", "/"),
    ("room", "/rooms/general"),
    ("search", "/search?q=hello"),
    ("settings", "/settings"),
    ("admin", "/admin/users"),
    ("help", "/help"),
];

#[rocket::async_test]
async fn the_main_pages_have_no_serious_accessibility_violations() {
    let Some(axe) = axe_source() else {
        return;
    };
    let Some(driver) = Driver::start().await else {
        return;
    };
    let shots = std::env::var_os("CONFAB_SCREENSHOTS").map(PathBuf::from);
    let mut server = Server::new(&[]);
    for args in [
        vec!["user", "add", "root", "root@example.org", "--admin"],
        vec!["room", "member", "add", "general", "root"],
        vec!["room", "add", "random", "Random"],
        vec!["room", "member", "add", "random", "root"],
    ] {
        let out = server.command(&args, &format!("{PASSWORD}\n"));
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    server.start().await;
    // A room with some history: grouped messages, Markdown, a mention.
    let bob = driver.session_with(false, &[]).await;
    login(&bob, &server, "bob").await;
    bob.goto(&server.url("/rooms/general")).await.expect("room");
    for text in [
        "hello everyone, the **handbook** is at https://example.org/handbook",
        "@root could you look at the list?\n\n- one\n- two",
        "> a quote\n\nand `code`",
    ] {
        // The page after the post: a new message's anchor, not the one the last post left.
        let before = bob
            .execute("return location.hash", vec![])
            .await
            .expect("hash");
        send_plainly(&bob, text).await;
        wait_until(
            &bob,
            "posted",
            &format!("return location.hash.startsWith('#m') && location.hash !== {before}"),
        )
        .await;
    }
    bob.close().await.ok();

    let mut found = Vec::new();
    for dark in [false, true] {
        for javascript in [true, false] {
            let mut args = vec!["--window-size=1280,900"];
            if dark {
                args.push("--force-dark-mode");
            }
            let browser = driver.session_with(javascript, &args).await;
            let mode = format!(
                "{}, JavaScript {}",
                if dark { "dark" } else { "light" },
                if javascript { "on" } else { "off" }
            );
            browser
                .goto(&server.url("/login"))
                .await
                .expect("login page");
            let scheme = browser
                .execute(
                    "return matchMedia('(prefers-color-scheme: dark)').matches",
                    vec![],
                )
                .await
                .expect("scheme");
            assert_eq!(
                scheme.as_bool(),
                Some(dark),
                "{mode}: the colour scheme asked for"
            );
            found.extend(
                violations(&browser, &axe, javascript)
                    .await
                    .into_iter()
                    .map(|v| format!("login ({mode}): {v}")),
            );
            login(&browser, &server, "root").await;
            for (name, path) in PAGES {
                browser.goto(&server.url(path)).await.expect("page");
                if javascript && name == "room" {
                    wait_until(
                        &browser,
                        "the live room",
                        "return !document.getElementById('live-status').hidden",
                    )
                    .await;
                }
                found.extend(
                    violations(&browser, &axe, javascript)
                        .await
                        .into_iter()
                        .map(|v| format!("{name} ({mode}): {v}")),
                );
                if let (Some(dir), false, true) = (&shots, dark, javascript) {
                    std::fs::create_dir_all(dir).expect("screenshot folder");
                    let png = browser.screenshot().await.expect("screenshot");
                    std::fs::write(dir.join(format!("{name}.png")), png).expect("write screenshot");
                }
            }
            browser.close().await.ok();
        }
    }
    assert!(
        found.is_empty(),
        "accessibility violations:\n{}",
        found.join("\n")
    );
}
