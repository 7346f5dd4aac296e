//! The live room in a real browser: Debian's headless Chromium, driven through chromedriver,
//! against a Confab process serving on loopback (SQLite; the data layer's own tests cover both
//! databases). Under `CI=true` a missing Chromium fails these tests; elsewhere they are skipped.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use super::process::{free_port, Server, PASSWORD};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

/// Chromium and chromedriver, or `None` (skip) outside CI.
fn chromium() -> Option<(PathBuf, PathBuf)> {
    let browser = ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists());
    let driver = ["/usr/bin/chromedriver"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists());
    match (browser, driver) {
        (Some(browser), Some(driver)) => Some((browser, driver)),
        _ if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("Chromium and chromedriver are required under CI=true")
        }
        _ => {
            eprintln!("skipped: Chromium or chromedriver is not installed");
            None
        }
    }
}

/// A chromedriver process; each browser session it starts is a fresh headless Chromium.
pub(crate) struct Driver {
    child: Child,
    port: u16,
    browser: PathBuf,
    profiles: tempfile::TempDir,
}

impl Driver {
    pub(crate) async fn start() -> Option<Driver> {
        Driver::start_in_zone("UTC").await
    }

    /// A driver whose browsers live in time zone `zone` (an IANA name).
    async fn start_in_zone(zone: &str) -> Option<Driver> {
        let (browser, driver) = chromium()?;
        let port = free_port();
        let child = Command::new(driver)
            .env("TZ", zone)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver");
        // From here on, dropping the driver stops (and waits for) the process.
        let driver = Driver {
            child,
            port,
            browser,
            profiles: tempfile::tempdir().expect("dir"),
        };
        for _ in 0..300 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Some(driver);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("chromedriver did not start");
    }

    async fn session(&self, javascript: bool) -> Client {
        self.session_with(javascript, &[]).await
    }

    /// A session with JavaScript whose viewport is a phone's, emulated (Chromium's windows are at
    /// least 500 px wide).
    pub(crate) async fn phone(&self, width: u32, height: u32) -> Client {
        self.session_sized(true, &[], Some((width, height))).await
    }

    /// A session with JavaScript on a wide screen (1280×900): the sidebar shows.
    async fn wide(&self) -> Client {
        self.session_with(true, &["--window-size=1280,900"]).await
    }

    /// A session with more Chromium arguments.
    pub(crate) async fn session_with(&self, javascript: bool, extra: &[&str]) -> Client {
        self.session_sized(javascript, extra, None).await
    }

    async fn session_sized(
        &self,
        javascript: bool,
        extra: &[&str],
        phone: Option<(u32, u32)>,
    ) -> Client {
        let profile = tempfile::Builder::new()
            .tempdir_in(self.profiles.path())
            .expect("profile")
            .keep();
        let mut options = json!({
            "binary": self.browser,
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
                "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--window-size=1000,800", format!("--user-data-dir={}", profile.display()),
            ],
        });
        if let Some(args) = options["args"].as_array_mut() {
            args.extend(extra.iter().map(|a| json!(a)));
        }
        if !javascript {
            options["prefs"] = json!({ "profile.managed_default_content_settings.javascript": 2 });
        }
        if let Some((width, height)) = phone {
            options["mobileEmulation"] = json!({
                "deviceMetrics": { "width": width, "height": height, "pixelRatio": 3 },
            });
        }
        let mut capabilities = serde_json::Map::new();
        capabilities.insert("goog:chromeOptions".into(), options);
        ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(capabilities)
            .connect(&format!("http://127.0.0.1:{}", self.port))
            .await
            .expect("a browser session")
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) async fn login(browser: &Client, server: &Server, name: &str) {
    browser
        .goto(&server.url("/login"))
        .await
        .expect("login page");
    browser
        .find(Locator::Css("input[name=username]"))
        .await
        .expect("field")
        .send_keys(name)
        .await
        .expect("type");
    browser
        .find(Locator::Css("input[name=password]"))
        .await
        .expect("field")
        .send_keys(PASSWORD)
        .await
        .expect("type");
    browser
        .find(Locator::Css("form[action='/login'] button"))
        .await
        .expect("button")
        .click()
        .await
        .expect("click");
    wait_until(
        browser,
        "logged in",
        "return document.querySelector('header.top form button') !== null",
    )
    .await;
}

/// A browser with JavaScript on, logged in as `name`, showing the room `general`.
async fn in_room(driver: &Driver, server: &Server, name: &str) -> Client {
    let browser = driver.session(true).await;
    login(&browser, server, name).await;
    browser
        .goto(&server.url("/rooms/general"))
        .await
        .expect("room");
    browser
}

/// A live server (fast polls), with ann and bob each on the room page in a browser of their own.
async fn live_pair(driver: &Driver) -> (Server, Client, Client) {
    let mut server = Server::new(LIVE);
    server.start().await;
    let ann = in_room(driver, &server, "ann").await;
    let bob = in_room(driver, &server, "bob").await;
    (server, ann, bob)
}

/// Waits, a bounded number of rounds, until a script returns true.
pub(crate) async fn wait_until(browser: &Client, what: &str, script: &str) {
    for _ in 0..300 {
        if let Ok(value) = browser.execute(script, vec![]).await {
            if value.as_bool() == Some(true) {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let html = browser.source().await.unwrap_or_default();
    panic!(
        "timed out waiting for: {what}\n{}",
        &html[..html.len().min(3000)]
    );
}

/// Types `text` into the composer and presses Send: the plain form, as without JavaScript.
pub(crate) async fn send_plainly(browser: &Client, text: &str) {
    browser
        .find(Locator::Css("form.compose textarea"))
        .await
        .expect("box")
        .send_keys(text)
        .await
        .expect("type");
    browser
        .find(Locator::Css("form.compose button[type=submit]"))
        .await
        .expect("send")
        .click()
        .await
        .expect("click");
}

/// Presses `keys` together, as a person does (modifiers first), then lets them go. Special keys
/// are WebDriver's code points: Alt `\u{E00A}`, Shift `\u{E008}`, Escape `\u{E00C}`, ↑ `\u{E013}`,
/// ↓ `\u{E015}`.
async fn press(browser: &Client, keys: &[char]) {
    use fantoccini::actions::{InputSource, KeyAction, KeyActions};
    let mut actions = KeyActions::new("keyboard".into());
    for &value in keys {
        actions = actions.then(KeyAction::Down { value });
    }
    for &value in keys.iter().rev() {
        actions = actions.then(KeyAction::Up { value });
    }
    browser.perform_actions(actions).await.expect("keys");
}

/// A script expression: how many messages on the page have exactly this text.
fn count_of(text: &str) -> String {
    format!("[...document.querySelectorAll('li.message .body')].filter(e => e.textContent.trim() === {text:?}).length")
}

/// A script that is true once exactly one message has this text.
fn shown_once(text: &str) -> String {
    format!("return {} === 1", count_of(text))
}

async fn message_count(browser: &Client, text: &str) -> i64 {
    browser
        .execute(&format!("return {}", count_of(text)), vec![])
        .await
        .expect("script")
        .as_i64()
        .unwrap_or(-1)
}

pub(crate) async fn type_and_send(browser: &Client, text: &str) {
    let box_ = browser
        .find(Locator::Css("form.compose textarea"))
        .await
        .expect("message box");
    box_.send_keys(text).await.expect("type");
    box_.send_keys("\u{E007}").await.expect("enter");
}

const LIVE: &[(&str, &str)] = &[
    ("CONFAB_POLL_MIN", "1"),
    ("CONFAB_POLL_STEP", "1"),
    ("CONFAB_POLL_MAX", "4"),
    ("CONFAB_IDLE_AFTER", "3"),
    ("CONFAB_POLL_WAIT_MAX", "2"),
];

#[rocket::async_test]
async fn two_people_see_each_other_without_reloading() {
    let Some(driver) = Driver::start().await else {
        return;
    };
    let (_server, ann, bob) = live_pair(&driver).await;
    wait_until(
        &ann,
        "the live layer",
        "return !document.getElementById('live-status').hidden",
    )
    .await;

    type_and_send(&bob, "hello from bob").await;
    wait_until(
        &bob,
        "bob's message on his page",
        &shown_once("hello from bob"),
    )
    .await;
    wait_until(
        &ann,
        "bob's message on ann's page",
        &shown_once("hello from bob"),
    )
    .await;
    assert_eq!(
        ann.current_url().await.expect("url").path(),
        "/rooms/general",
        "no reload, no navigation"
    );

    // Shift+Enter is a new line; Enter sends.
    let box_ = ann
        .find(Locator::Css("form.compose textarea"))
        .await
        .expect("box");
    box_.send_keys("line one").await.expect("type");
    box_.send_keys("\u{E008}\u{E007}")
        .await
        .expect("shift+enter");
    box_.send_keys("line two\u{E007}").await.expect("type");
    wait_until(&bob, "ann's two-line message", "return [...document.querySelectorAll('li.message .body')].some(e => e.textContent.includes('line one') && e.textContent.includes('line two'))").await;

    for (browser, text) in [(&ann, "hello from bob"), (&bob, "hello from bob")] {
        assert_eq!(message_count(browser, text).await, 1, "never twice");
    }
    ann.close().await.ok();
    bob.close().await.ok();
}

#[rocket::async_test]
async fn without_javascript_the_page_still_posts_and_pages_back() {
    let Some(driver) = Driver::start().await else {
        return;
    };
    let mut server = Server::new(&[("CONFAB_PAGE_SIZE", "3")]);
    server.start().await;
    let plain = driver.session(false).await;
    login(&plain, &server, "ann").await;
    for i in 1..=7 {
        plain
            .goto(&server.url("/rooms/general"))
            .await
            .expect("room");
        send_plainly(&plain, &format!("plain {i}")).await;
        wait_until(
            &plain,
            "the posted message",
            &shown_once(&format!("plain {i}")),
        )
        .await;
    }
    let hidden = plain
        .execute(
            "return document.getElementById('live-status').hidden",
            vec![],
        )
        .await
        .expect("script");
    assert_eq!(hidden.as_bool(), Some(true), "the script did not run");
    let display = plain
        .execute(
            "return getComputedStyle(document.getElementById('live-status')).display",
            vec![],
        )
        .await
        .expect("script");
    assert_eq!(
        display.as_str(),
        Some("none"),
        "the hidden live strip takes no room and catches no clicks"
    );
    let mut pages = 1;
    while let Ok(older) = plain.find(Locator::Css("nav.pager a[rel=prev]")).await {
        older.click().await.expect("older");
        pages += 1;
        assert!(pages < 10);
    }
    assert_eq!(pages, 3);
    assert_eq!(
        message_count(&plain, "plain 1").await,
        1,
        "the first message is reachable"
    );
    let text = plain
        .find(Locator::Css("nav.pager"))
        .await
        .expect("pager")
        .text()
        .await
        .expect("text");
    assert!(text.contains("beginning"), "{text}");
    plain.close().await.ok();
}

#[rocket::async_test]
async fn an_idle_page_settles_at_poll_max_and_wakes_on_input() {
    let Some(driver) = Driver::start().await else {
        return;
    };
    let mut server = Server::new(LIVE);
    server.start().await;
    let ann = in_room(&driver, &server, "ann").await;
    wait_until(&ann, "an idle page polling at poll_max", "const s = document.getElementById('live-status'); return s.dataset.state === 'idle' && s.dataset.interval === '4'").await;
    ann.find(Locator::Css("form.compose textarea"))
        .await
        .expect("box")
        .send_keys("x")
        .await
        .expect("type");
    wait_until(&ann, "an active page polling at poll_min again", "const s = document.getElementById('live-status'); return s.dataset.state === 'active' && Number(s.dataset.interval) < 4").await;
    ann.close().await.ok();
}

#[rocket::async_test]
async fn a_server_that_goes_away_is_caught_up_without_gaps_or_doubles() {
    let Some(driver) = Driver::start().await else {
        return;
    };
    let (mut server, ann, bob) = live_pair(&driver).await;
    type_and_send(&bob, "before the outage").await;
    wait_until(&ann, "the first message", &shown_once("before the outage")).await;

    server.stop();
    wait_until(
        &ann,
        "the reconnecting notice",
        "return document.getElementById('live-status').classList.contains('offline')",
    )
    .await;
    let notice = ann
        .find(Locator::Id("live-state"))
        .await
        .expect("state")
        .text()
        .await
        .expect("text");
    assert_eq!(notice, "reconnecting…");
    let strip = ann
        .find(Locator::Id("live-status"))
        .await
        .expect("status line")
        .text()
        .await
        .expect("text");
    assert_eq!(
        strip.matches("reconnecting").count(),
        1,
        "the status line says it once: {strip}"
    );

    server.start().await;
    // Bob's page reconnects too; his posts land while ann's page is still backing off.
    wait_until(
        &bob,
        "bob reconnected",
        "return !document.getElementById('live-status').classList.contains('offline')",
    )
    .await;
    type_and_send(&bob, "after the outage 1").await;
    wait_until(&bob, "bob's first", &shown_once("after the outage 1")).await;
    type_and_send(&bob, "after the outage 2").await;
    for text in ["after the outage 1", "after the outage 2"] {
        wait_until(&ann, text, &shown_once(text)).await;
    }
    wait_until(
        &ann,
        "the notice gone",
        "return !document.getElementById('live-status').classList.contains('offline')",
    )
    .await;
    for text in [
        "before the outage",
        "after the outage 1",
        "after the outage 2",
    ] {
        assert_eq!(message_count(&ann, text).await, 1, "{text} exactly once");
    }
    ann.close().await.ok();
    bob.close().await.ok();
}

#[rocket::async_test]
async fn a_hidden_tab_counts_unread_messages_in_its_title() {
    let Some(driver) = Driver::start().await else {
        return;
    };
    let (_server, ann, bob) = live_pair(&driver).await;
    let title = ann.title().await.expect("title");

    // Ann opens another tab and looks at it: the room's tab is now hidden.
    let room_tab = ann.window().await.expect("window");
    ann.execute("window.open('/healthz', 'other')", vec![])
        .await
        .expect("open");
    let other = ann
        .windows()
        .await
        .expect("windows")
        .into_iter()
        .find(|w| *w != room_tab)
        .expect("second tab");
    ann.switch_to_window(other).await.expect("switch");
    wait_until(
        &ann,
        "the room tab hidden",
        "return window.opener.document.visibilityState === 'hidden'",
    )
    .await;

    type_and_send(&bob, "are you there?").await;
    type_and_send(&bob, "hello?").await;
    wait_until(
        &ann,
        "the unread count in the title",
        &format!(
            "return window.opener.document.title === {:?}",
            format!("(2) {title}")
        ),
    )
    .await;
    wait_until(
        &ann,
        "the icon with its unread dot",
        "return window.opener.document.querySelector('link[rel=icon]').getAttribute('href') === '/static/favicon-unread.svg'",
    )
    .await;

    ann.switch_to_window(room_tab).await.expect("switch back");
    ann.execute("window.open('', 'other').close()", vec![])
        .await
        .ok();
    wait_until(
        &ann,
        "the title restored",
        &format!("return document.title === {title:?}"),
    )
    .await;
    wait_until(
        &ann,
        "the icon restored",
        "return document.querySelector('link[rel=icon]').getAttribute('href') === '/static/favicon.svg'",
    )
    .await;
    ann.close().await.ok();
    bob.close().await.ok();
}

/// On a plain-http LAN name (not localhost, not https) the page is not a secure context:
/// `crypto.randomUUID`, notifications and the clipboard are missing there. Posting and uploading
/// several times in a row must still store each one exactly once.
#[rocket::async_test]
async fn posting_and_uploading_work_on_a_plain_http_lan_address() {
    let Some(driver) = Driver::start().await else {
        return;
    };
    let mut server = Server::new(LIVE);
    server.host = "confab.test".into();
    server.start().await;
    let ann = driver
        .session_with(true, &["--host-resolver-rules=MAP confab.test 127.0.0.1"])
        .await;
    login(&ann, &server, "ann").await;
    ann.goto(&server.url("/rooms/general")).await.expect("room");
    let secure = ann
        .execute("return window.isSecureContext", vec![])
        .await
        .expect("script");
    assert_eq!(
        secure.as_bool(),
        Some(false),
        "a non-secure origin, as on a LAN"
    );
    wait_until(
        &ann,
        "the live layer",
        "return !document.getElementById('live-status').hidden",
    )
    .await;
    for text in ["lan one", "lan two", "lan three"] {
        type_and_send(&ann, text).await;
        wait_until(&ann, "the message on the page", &shown_once(text)).await;
        wait_until(
            &ann,
            "the box emptied for the next one",
            "return document.querySelector('form.compose textarea').value === ''",
        )
        .await;
    }
    let files = tempfile::tempdir().expect("dir");
    for name in ["first-notes.txt", "second-notes.txt"] {
        let path = files.path().join(name);
        std::fs::write(&path, format!("contents of {name}")).expect("file");
        ann.find(Locator::Css("form.upload input[type=file]"))
            .await
            .expect("file input")
            .send_keys(&path.display().to_string())
            .await
            .expect("choose file");
        ann.find(Locator::Css("form.upload button[type=submit]"))
            .await
            .expect("upload")
            .click()
            .await
            .expect("click");
        let shown = format!(
            "return [...document.querySelectorAll('li.message')].filter(e => e.textContent.includes({name:?})).length === 1"
        );
        wait_until(&ann, "the file's message", &shown).await;
        wait_until(
            &ann,
            "the upload form reset",
            "return document.querySelector('form.upload input[type=file]').value === ''",
        )
        .await;
    }
    // What the server stored: a reload shows each exactly once.
    ann.refresh().await.expect("reload");
    for text in ["lan one", "lan two", "lan three"] {
        assert_eq!(message_count(&ann, text).await, 1, "{text} stored once");
    }
    for name in ["first-notes.txt", "second-notes.txt"] {
        let count = ann
            .execute(
                &format!("return [...document.querySelectorAll('li.message')].filter(e => e.textContent.includes({name:?})).length"),
                vec![],
            )
            .await
            .expect("script");
        assert_eq!(count.as_i64(), Some(1), "{name} stored once");
    }
    let errors = ann
        .execute(
            "return [...document.querySelectorAll('.error')].map(e => e.textContent).join(' ').trim()",
            vec![],
        )
        .await
        .expect("script");
    assert_eq!(errors.as_str(), Some(""), "no error shown");
    ann.close().await.ok();
}

/// At 390×844, a phone, no page scrolls sideways and the navigation is one row; pages declare
/// both colour schemes, so form controls follow dark mode. (The layout is CSS alone; under phone
/// emulation with scripts off chromedriver hangs on a form submit, so the no-JS half of the layout
/// is the same CSS, and the no-JS test checks that the live strip stays hidden.)
#[rocket::async_test]
async fn pages_fit_a_phone() {
    let Some(driver) = Driver::start().await else {
        return;
    };
    let mut server = Server::new(&[]);
    for args in [
        vec!["user", "add", "root", "root@example.org", "--admin"],
        vec!["room", "member", "add", "general", "root"],
    ] {
        let out = server.command(&args, &format!("{PASSWORD}\n"));
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    server.start().await;
    let phone = driver.phone(390, 844).await;
    login(&phone, &server, "root").await;
    for path in [
        "/",
        "/rooms/general",
        "/search?q=hello",
        "/missed",
        "/settings",
        "/admin/rooms",
        "/admin/rooms/general",
        "/admin/users",
        "/help",
        "/saved",
        "/direct/new",
        "/rooms/general/pinned",
    ] {
        phone.goto(&server.url(path)).await.expect("page");
        let measured = phone
            .execute(
                "return [document.documentElement.scrollWidth, window.innerWidth, \
                     document.querySelector('header.top').offsetHeight, \
                     document.querySelector('header.top').innerText]",
                vec![],
            )
            .await
            .expect("measure");
        let number = |i: usize| measured[i].as_f64().expect("a number");
        let (width, viewport, header) = (number(0), number(1), number(2));
        assert!(viewport <= 400.0, "a phone-sized viewport ({viewport} px)");
        assert!(
            width <= viewport,
            "{path} scrolls sideways: {width} > {viewport}"
        );
        assert!(
            header <= 56.0,
            "{path}: the navigation takes more than one row ({header} px): {}",
            measured[3]
        );
        // `CONFAB_SCREENSHOTS=<folder>`: the phone's view of the home and room pages, for the docs.
        let shot = match path {
            "/" => Some("phone-home"),
            "/rooms/general" => Some("phone-room"),
            _ => None,
        };
        if let (Some(dir), Some(name)) = (std::env::var_os("CONFAB_SCREENSHOTS"), shot) {
            let dir = PathBuf::from(dir);
            std::fs::create_dir_all(&dir).expect("screenshot folder");
            let png = phone.screenshot().await.expect("screenshot");
            std::fs::write(dir.join(format!("{name}.png")), png).expect("write screenshot");
        }
    }
    phone
        .goto(&server.url("/rooms/general"))
        .await
        .expect("room");
    let looks = phone
        .execute(
            "return [getComputedStyle(document.getElementById('live-status')).display, \
                 getComputedStyle(document.documentElement).colorScheme]",
            vec![],
        )
        .await
        .expect("styles");
    assert_ne!(
        looks[0].as_str(),
        Some("none"),
        "the live strip shows with JavaScript"
    );
    assert_eq!(looks[1].as_str(), Some("light dark"));
    // Sessions are listed by browser and system, not by raw user agent.
    phone
        .goto(&server.url("/settings"))
        .await
        .expect("settings");
    wait_until(
        &phone,
        "the session named",
        "return document.body.innerText.includes('Chrome on Linux')",
    )
    .await;
    phone.close().await.ok();
}

/// Deleting asks first: a dialog with JavaScript, a page of its own without; either way the
/// message becomes "message deleted" for everyone.
#[rocket::async_test]
async fn deleting_asks_first_with_and_without_javascript() {
    let Some(driver) = Driver::start().await else {
        return;
    };
    let mut server = Server::new(LIVE);
    server.start().await;
    let ann = in_room(&driver, &server, "ann").await;
    type_and_send(&ann, "delete me live").await;
    wait_until(&ann, "the message", &shown_once("delete me live")).await;
    ann.execute(
        "[...document.querySelectorAll('li.message')].find(li => li.textContent.includes('delete me live')).querySelector('a[data-delete]').click()",
        vec![],
    )
    .await
    .expect("click delete");
    wait_until(
        &ann,
        "the dialog",
        "return document.querySelector('dialog.confirm')?.open === true",
    )
    .await;
    ann.find(Locator::Css("dialog.confirm button[value=delete]"))
        .await
        .expect("the dialog's button")
        .click()
        .await
        .expect("confirm");
    wait_until(
        &ann,
        "the message deleted in place",
        &format!(
            "return {} === 0 && document.body.textContent.includes('message deleted')",
            count_of("delete me live")
        ),
    )
    .await;
    ann.close().await.ok();

    let plain = driver.session(false).await;
    login(&plain, &server, "bob").await;
    plain
        .goto(&server.url("/rooms/general"))
        .await
        .expect("room");
    send_plainly(&plain, "delete me plainly").await;
    wait_until(
        &plain,
        "the posted message",
        &shown_once("delete me plainly"),
    )
    .await;
    // The actions menu opens without a script (a `<details>`), then shows the link.
    plain
        .find(Locator::Css(
            "li.message:last-of-type details.actions summary",
        ))
        .await
        .expect("the actions menu")
        .click()
        .await
        .expect("open the menu");
    plain
        .find(Locator::Css("li.message:last-of-type a[data-delete]"))
        .await
        .expect("the delete link")
        .click()
        .await
        .expect("click");
    wait_until(
        &plain,
        "the confirmation page",
        "return document.querySelector('h1')?.textContent === 'Delete this message?'",
    )
    .await;
    plain
        .find(Locator::Css("main form button[type=submit]"))
        .await
        .expect("the button")
        .click()
        .await
        .expect("confirm");
    wait_until(
        &plain,
        "the room with the message deleted",
        &format!(
            "return location.pathname === '/rooms/general' && {} === 0",
            count_of("delete me plainly")
        ),
    )
    .await;
    plain.close().await.ok();
}

/// Messages that arrive live are placed as the server places a page: under a day heading, and in
/// their author's group; the first message of an empty room brings the "beginning" line.
#[rocket::async_test]
async fn live_messages_are_grouped_under_a_day_heading() {
    let Some(driver) = Driver::start().await else {
        return;
    };
    let (_server, ann, bob) = live_pair(&driver).await;
    type_and_send(&bob, "first of two").await;
    type_and_send(&bob, "second of two").await;
    wait_until(&ann, "both messages", &shown_once("second of two")).await;
    let shape = ann
        .execute(
            "const items = [...document.querySelectorAll('ol.messages > li')]; \
             return [items.map(li => li.className).join('|'), \
                     document.querySelector('nav.pager').textContent.trim()]",
            vec![],
        )
        .await
        .expect("shape");
    assert_eq!(
        shape[0].as_str(),
        Some("day|message|message continued"),
        "a day heading, then one group"
    );
    assert!(
        shape[1]
            .as_str()
            .is_some_and(|t| t.contains("beginning of General")),
        "{shape:?}"
    );
    ann.close().await.ok();
    bob.close().await.ok();
}

/// The composer is pinned to the bottom of the window: after sending, and when a message arrives
/// while the reader is at the bottom, the composer is in view and the newest message is fully
/// visible above it (not under it).
#[rocket::async_test]
async fn the_composer_stays_in_view_above_the_newest_message() {
    let Some(driver) = Driver::start().await else {
        return;
    };
    let (_server, ann, bob) = live_pair(&driver).await;
    for i in 0..30 {
        type_and_send(&bob, &format!("filler {i}")).await;
    }
    wait_until(&ann, "the room filled", &shown_once("filler 29")).await;
    let in_view = "const c = document.getElementById('composer').getBoundingClientRect(); \
        const items = document.querySelectorAll('li.message'); \
        const last = items[items.length - 1].getBoundingClientRect(); \
        return document.documentElement.scrollHeight > innerHeight \
          && c.top >= 0 && c.bottom <= innerHeight + 1 && last.top >= 0 && last.bottom <= c.top + 1";
    type_and_send(&ann, "mine at the end").await;
    wait_until(
        &ann,
        "my message above the composer",
        &format!(
            "return {} === 1 && (() => {{ {in_view} }})()",
            count_of("mine at the end")
        ),
    )
    .await;
    type_and_send(&bob, "a reply arrives").await;
    wait_until(
        &ann,
        "the arriving message above the composer",
        &format!(
            "return {} === 1 && (() => {{ {in_view} }})()",
            count_of("a reply arrives")
        ),
    )
    .await;
    ann.close().await.ok();
    bob.close().await.ok();
}

/// Settings suggests the browser's time zone when it differs from the saved one; "Use it" saves it.
#[rocket::async_test]
async fn settings_suggests_the_browsers_time_zone() {
    let Some(driver) = Driver::start_in_zone("Europe/Berlin").await else {
        return;
    };
    let mut server = Server::new(&[]);
    server.start().await;
    let ann = driver.session(true).await;
    login(&ann, &server, "ann").await;
    ann.goto(&server.url("/settings")).await.expect("settings");
    wait_until(
        &ann,
        "the suggestion",
        "const s = document.getElementById('zone-suggestion'); return !s.hidden && s.textContent.includes('Europe/Berlin')",
    )
    .await;
    ann.find(Locator::Css("#zone-suggestion button"))
        .await
        .expect("Use it")
        .click()
        .await
        .expect("click");
    wait_until(
        &ann,
        "the zone saved",
        "return document.body.textContent.includes('Time zone saved.') \
           && document.querySelector('select[name=time_zone]').value === 'Europe/Berlin' \
           && document.getElementById('zone-suggestion').hidden",
    )
    .await;
    ann.close().await.ok();
}

/// A wide screen shows the sidebar beside every page with nothing scrolling sideways; messages are
/// edited in place (↑ in the empty composer, or the menu), and the shortcuts of /help work.
#[rocket::async_test]
async fn the_sidebar_shortcuts_and_inline_editing() {
    let Some(driver) = Driver::start().await else {
        return;
    };
    let mut server = Server::new(LIVE);
    for args in [
        vec!["user", "add", "root", "root@example.org", "--admin"],
        vec!["room", "member", "add", "general", "root"],
        vec!["room", "add", "random", "Random"],
        vec!["room", "member", "add", "random", "root"],
        vec!["room", "member", "add", "random", "bob"],
    ] {
        let out = server.command(&args, &format!("{PASSWORD}\n"));
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    server.start().await;
    let bob = driver.session(true).await;
    login(&bob, &server, "bob").await;
    bob.goto(&server.url("/rooms/random")).await.expect("room");
    type_and_send(&bob, "news for @root").await;
    wait_until(&bob, "bob's message", &shown_once("news for @root")).await;

    let root = driver.wide().await;
    login(&root, &server, "root").await;
    for path in [
        "/",
        "/rooms/general",
        "/search?q=news",
        "/missed",
        "/settings",
        "/help",
        "/saved",
        "/direct/new",
        "/admin/rooms",
        "/admin/users",
    ] {
        root.goto(&server.url(path)).await.expect("page");
        let measured = root
            .execute(
                "return [document.documentElement.scrollWidth, innerWidth, \
                     getComputedStyle(document.getElementById('sidebar')).display]",
                vec![],
            )
            .await
            .expect("measure");
        let (width, viewport) = (measured[0].as_f64(), measured[1].as_f64());
        assert!(viewport >= Some(1200.0), "a wide viewport ({viewport:?})");
        assert!(
            width <= viewport,
            "{path} scrolls sideways: {width:?} > {viewport:?}"
        );
        assert_eq!(
            measured[2].as_str(),
            Some("block"),
            "{path}: the sidebar shows"
        );
    }
    root.goto(&server.url("/rooms/general"))
        .await
        .expect("room");
    wait_until(
        &root,
        "random marked unread and mentioned in the sidebar",
        "const a = document.querySelector('.sidebar a[data-slug=random]'); \
         return a.classList.contains('unread') && a.querySelector('.mention-mark') !== null \
           && document.querySelector('.sidebar a[data-slug=general]').getAttribute('aria-current') === 'page'",
    )
    .await;

    // ↑ in the empty composer edits my last message in place; Enter saves.
    type_and_send(&root, "my first words").await;
    wait_until(&root, "my message", &shown_once("my first words")).await;
    let composer = root.find(Locator::Css("#body")).await.expect("composer");
    composer.click().await.expect("focus");
    composer.send_keys("\u{E013}").await.expect("up");
    wait_until(
        &root,
        "the editor with my text",
        "const box = document.querySelector('li.message .edit-inline textarea'); \
         return box !== null && document.activeElement === box && box.value === 'my first words'",
    )
    .await;
    let editor = root
        .find(Locator::Css(".edit-inline textarea"))
        .await
        .expect("editor");
    editor.clear().await.expect("clear");
    editor
        .send_keys("my *edited* words\u{E007}")
        .await
        .expect("type");
    wait_until(
        &root,
        "the edit saved without a reload",
        &format!(
            "return {} === 1 && {} === 0 && !document.querySelector('.edit-inline') \
               && document.querySelector('li.message:last-of-type .body em')?.textContent === 'edited'",
            count_of("my edited words"),
            count_of("my first words")
        ),
    )
    .await;
    // The menu's Edit opens the same editor; Esc leaves the message as it was.
    root.find(Locator::Css(
        "li.message:last-of-type details.actions summary",
    ))
    .await
    .expect("menu")
    .click()
    .await
    .expect("open");
    root.find(Locator::Css("li.message:last-of-type a[data-edit]"))
        .await
        .expect("edit")
        .click()
        .await
        .expect("click");
    wait_until(
        &root,
        "the editor",
        "return document.activeElement?.closest('.edit-inline') !== null",
    )
    .await;
    press(&root, &['\u{E00C}']).await;
    wait_until(
        &root,
        "the editor closed, the text unchanged",
        &format!(
            "return !document.querySelector('.edit-inline') && {} === 1",
            count_of("my edited words")
        ),
    )
    .await;

    let unfocus = "document.activeElement?.blur(); return true";
    root.execute(unfocus, vec![]).await.expect("blur");
    press(&root, &['/']).await;
    wait_until(
        &root,
        "`/` focuses search",
        "return document.activeElement === document.querySelector('header.top input[type=search]')",
    )
    .await;
    root.execute(unfocus, vec![]).await.expect("blur");
    press(&root, &['c']).await;
    wait_until(
        &root,
        "`c` focuses the composer",
        "return document.activeElement?.id === 'body'",
    )
    .await;
    root.execute(unfocus, vec![]).await.expect("blur");
    press(&root, &['\u{E00A}', '\u{E008}', '\u{E015}']).await;
    wait_until(
        &root,
        "Alt+Shift+↓ opens the next room with unread messages",
        "return location.pathname === '/rooms/random' && document.querySelector('.sidebar a[aria-current=page]')?.dataset.slug === 'random'",
    )
    .await;

    // Esc marks a room read: root reads an older page of general while bob posts there.
    let mine = root
        .execute(
            "return document.querySelector('.sidebar a[data-slug=general]').href",
            vec![],
        )
        .await
        .expect("link");
    assert!(mine
        .as_str()
        .is_some_and(|href| href.ends_with("/rooms/general")));
    bob.goto(&server.url("/rooms/general")).await.expect("room");
    type_and_send(&bob, "while root reads history").await;
    wait_until(
        &bob,
        "bob's message",
        &shown_once("while root reads history"),
    )
    .await;
    root.goto(&server.url("/rooms/general?before=999999"))
        .await
        .expect("older page");
    wait_until(
        &root,
        "general unread in the sidebar",
        "return document.querySelector('.sidebar a[data-slug=general]').classList.contains('unread')",
    )
    .await;
    root.execute(unfocus, vec![]).await.expect("blur");
    press(&root, &['\u{E00C}']).await;
    wait_until(
        &root,
        "Esc marks the room read",
        "return !document.querySelector('.sidebar a[data-slug=general]').classList.contains('unread')",
    )
    .await;
    root.goto(&server.url("/help")).await.expect("help");
    wait_until(
        &root,
        "read on the server too",
        "return !document.querySelector('.sidebar a[data-slug=general]').classList.contains('unread')",
    )
    .await;

    // An invitation: the page says it was also mailed, and Copy puts the link on the clipboard.
    root.goto(&server.url("/admin/users")).await.expect("users");
    for (field, value) in [("username", "dave"), ("email", "dave@example.org")] {
        root.find(Locator::Css(&format!(
            "form[action='/admin/users'] input[name={field}]"
        )))
        .await
        .expect("field")
        .send_keys(value)
        .await
        .expect("type");
    }
    root.find(Locator::Css(
        "form[action='/admin/users'] button[type=submit]",
    ))
    .await
    .expect("create")
    .click()
    .await
    .expect("click");
    wait_until(
        &root,
        "the invitation page with its Copy button",
        "return document.body.innerText.includes('It was also mailed to dave.') \
           && !document.querySelector('button[data-copy]').hidden",
    )
    .await;
    root.find(Locator::Css("button[data-copy]"))
        .await
        .expect("Copy")
        .click()
        .await
        .expect("click");
    wait_until(
        &root,
        "the link copied",
        "const link = document.getElementById('one-time-link').value; \
         return document.querySelector('button[data-copy]').textContent === 'Copied' \
           && link.includes('/password/') && document.getSelection().toString() === link",
    )
    .await;
    bob.close().await.ok();
    root.close().await.ok();
}

/// Reacting on the live page: the menu's quick reaction shows on the other reader's page without a
/// reload, and a click on the count takes it back.
#[rocket::async_test]
async fn reactions_arrive_live() {
    let Some(driver) = Driver::start().await else {
        return;
    };
    let (_server, ann, bob) = live_pair(&driver).await;
    type_and_send(&bob, "react to me").await;
    wait_until(&ann, "bob's message", &shown_once("react to me")).await;
    ann.find(Locator::Css(
        "li.message:last-of-type details.actions summary",
    ))
    .await
    .expect("menu")
    .click()
    .await
    .expect("open");
    ann.find(Locator::Css(
        "li.message:last-of-type .quick-react button[value='🎉']",
    ))
    .await
    .expect("🎉")
    .click()
    .await
    .expect("react");
    let counted = "const b = document.querySelector('li.message:last-of-type .reactions button[value=\"🎉\"]'); \
        return b !== null && b.textContent.trim().endsWith('1')";
    wait_until(&bob, "ann's reaction, live", counted).await;
    wait_until(
        &ann,
        "mine on ann's page, still without a reload",
        "return document.querySelector('li.message:last-of-type .reaction.mine') !== null && performance.getEntriesByType('navigation').length === 1 && !location.search",
    )
    .await;
    ann.find(Locator::Css(
        "li.message:last-of-type .reactions button.mine",
    ))
    .await
    .expect("my reaction")
    .click()
    .await
    .expect("take back");
    wait_until(
        &bob,
        "the reaction taken back",
        "return document.querySelector('li.message:last-of-type .reactions') === null",
    )
    .await;
    ann.close().await.ok();
    bob.close().await.ok();
}
