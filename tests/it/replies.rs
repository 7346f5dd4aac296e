//! Replies by email: the inbound SMTP/LMTP listener over real SMTP conversations (lettre as the
//! sending client), the IMAP poller against a real dovecot, and the reply addresses in alert mail.

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};

use chrono::{Duration, NaiveDateTime};
use confab::chat;
use confab::db::schema::{attachments, messages, outbox, users};
use confab::mail::ReplyTarget;
use confab::service::Services;
use diesel::prelude::*;
use lettre::address::Envelope;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use rocket::http::Status;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use crate::common::{Backend, TestApp};

crate::both_backends!(
    replies_are_posted_once_as_the_member,
    bad_replies_are_refused_and_nothing_is_posted,
    lmtp_answers_for_each_recipient,
    alert_mail_invites_replies_only_when_they_can_arrive,
    the_imap_mailbox_is_polled,
);

/// The largest reply the test listener takes.
const MAX_BYTES: usize = 64 * 1024;

/// A Confab with replies by email on, its listener on a free loopback port.
async fn start(backend: Backend) -> Option<(TestApp, SocketAddr)> {
    let app = TestApp::builder(backend)
        .with(&[("max_upload_bytes", 20)])
        .with_settings(|s| {
            s.replies.address = Some("confab+{token}@chat.test".into());
            s.replies.smtp_address = Some("127.0.0.1:0".parse().expect("address"));
            s.replies.max_bytes = MAX_BYTES;
        })
        .start()
        .await?;
    let listener = confab::inbound::smtp::bind("127.0.0.1:0".parse().expect("address"))
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    tokio::spawn(confab::inbound::smtp::serve(
        services(&app),
        listener,
        app.client.rocket().shutdown(),
    ));
    Some((app, address))
}

fn services(app: &TestApp) -> Services {
    app.client
        .rocket()
        .state::<Services>()
        .expect("services")
        .clone()
}

/// A reply address for `user` in `room` (about `message`), as an alert made at `now` carries.
async fn address(
    app: &TestApp,
    user: i64,
    room: i64,
    message: Option<i64>,
    now: NaiveDateTime,
) -> String {
    let epoch = app
        .write(move |c| {
            Ok(users::table
                .find(user)
                .select(users::reply_epoch)
                .first::<i32>(c)?)
        })
        .await;
    let target = ReplyTarget {
        user_id: user,
        room_id: room,
        message_id: message,
    };
    app.mail()
        .reply_address(&target, epoch, now)
        .expect("replies are on")
}

/// A mail as a mail client writes it.
fn mail(from: &str, to: &str, id: &str, headers: &str, body: &str) -> String {
    format!(
        "From: Someone <{from}>\r\nTo: {to}\r\nSubject: Re: 1 new message in general\r\n\
         Message-ID: <{id}>\r\nMIME-Version: 1.0\r\n{headers}Content-Type: text/plain; charset=utf-8\r\n\r\n{body}"
    )
}

/// Sends `raw` over SMTP to the listener, from `from` to `to`.
async fn send(
    listener: SocketAddr,
    from: &str,
    to: &str,
    raw: &str,
) -> Result<(), lettre::transport::smtp::Error> {
    let smtp = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous("127.0.0.1")
        .port(listener.port())
        .build();
    let envelope = Envelope::new(
        Some(from.parse().expect("sender")),
        vec![to.parse().expect("recipient")],
    )
    .expect("envelope");
    smtp.send_raw(&envelope, raw.as_bytes()).await.map(|_| ())
}

/// Every message of the room: (author, body, thread).
async fn room_messages(app: &TestApp, room: i64) -> Vec<(i64, String, Option<i64>)> {
    app.write(move |c| {
        Ok(messages::table
            .filter(messages::room_id.eq(room))
            .filter(messages::deleted_at.is_null())
            .order(messages::id)
            .select((messages::author_id, messages::body, messages::parent_id))
            .load(c)?)
    })
    .await
}

async fn replies_are_posted_once_as_the_member(backend: Backend) {
    let Some((app, listener)) = start(backend).await else {
        return;
    };
    let ann = app.user("ann", false).await;
    let bob = app.user("bob", false).await;
    let room = app.room("general", false, &[ann, bob]).await;
    let [question] = app.messages(room, bob, vec!["lunch at noon?".into()]).await[..] else {
        panic!("one message");
    };
    let to = address(&app, ann, room, Some(question), chat::now()).await;

    // Gmail's style: the answer on top, the original quoted below "On … wrote:".
    let reply = mail(
        "ann@example.org",
        &to,
        "r1@mail.example.org",
        "In-Reply-To: <confab-alert-1@localhost>\r\n",
        "Sounds good, see you there.\r\n\r\nOn Tue, Dec 1, 2026 at 10:02 AM Confab <confab@localhost> wrote:\r\n> bob: lunch at noon?\r\n",
    );
    send(listener, "ann@example.org", &to, &reply)
        .await
        .expect("accepted");
    // The same mail delivered again (a retry of the sender's server) posts nothing more.
    send(listener, "ann@example.org", &to, &reply)
        .await
        .expect("accepted again");
    assert_eq!(
        room_messages(&app, room).await,
        vec![
            (bob, "lunch at noon?".to_string(), None),
            (
                ann,
                "Sounds good, see you there.".to_string(),
                Some(question)
            ),
        ],
        "posted once, as ann, in the thread of the alerted message"
    );

    // An HTML-only mail with an attachment and a signature: text, then the file, both in the thread.
    let html = format!(
        "From: ann@example.org\r\nTo: {to}\r\nSubject: Re: lunch\r\nMessage-ID: <r2@mail.example.org>\r\n\
         MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n\
         --b1\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>Here is the <b>menu</b>.</p><p>-- <br>Ann</p>\r\n\
         --b1\r\nContent-Type: text/plain; name=\"menu.txt\"\r\nContent-Disposition: attachment; filename=\"menu.txt\"\r\n\
         Content-Transfer-Encoding: base64\r\n\r\nU291cCBvZiB0aGUgZGF5\r\n\
         --b1\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=\"big.bin\"\r\n\r\n\
         0123456789012345678901234567890123456789\r\n--b1--\r\n"
    );
    send(listener, "ann@example.org", &to, &html)
        .await
        .expect("accepted");
    let all = room_messages(&app, room).await;
    assert_eq!(all.len(), 4, "{all:?}");
    assert_eq!(all[2].0, ann);
    assert!(all[2].1.contains("Here is the menu."), "{:?}", all[2].1);
    assert!(
        !all[2].1.contains("Ann"),
        "the signature is cut: {:?}",
        all[2].1
    );
    assert_eq!(all[3], (ann, String::new(), Some(question)));
    let files: Vec<(String, i64)> = app
        .write(move |c| {
            Ok(attachments::table
                .filter(attachments::room_id.eq(room))
                .select((attachments::file_name, attachments::size))
                .load(c)?)
        })
        .await;
    assert_eq!(files, vec![("menu.txt".to_string(), 15)]);
    let store = app.database.dir.path().join("uploads");
    assert_eq!(
        crate::common::files_under(&store.join("tmp")),
        Vec::<std::path::PathBuf>::new(),
        "no temporary file is left"
    );
}

async fn bad_replies_are_refused_and_nothing_is_posted(backend: Backend) {
    let Some((app, listener)) = start(backend).await else {
        return;
    };
    let ann = app.user("ann", false).await;
    let bob = app.user("bob", false).await;
    let room = app.room("general", false, &[ann, bob]).await;
    let to = address(&app, ann, room, None, chat::now()).await;
    let refused = |result: Result<(), lettre::transport::smtp::Error>, code: &str| {
        let error = result.expect_err("refused");
        assert!(error.is_permanent(), "{error}");
        assert!(error.to_string().contains(code), "{error}");
    };

    // A forged token (one digit of the signature changed) and one for another room.
    let forged = {
        let (head, last) = to.split_at(to.find('@').expect("@") - 1);
        let flipped = if last.starts_with('0') { "1" } else { "0" };
        format!("{head}{flipped}{}", &last[1..])
    };
    let body = mail("ann@example.org", &forged, "f1@x", "", "forged");
    refused(
        send(listener, "ann@example.org", &forged, &body).await,
        "550",
    );
    let other_room = to.replacen(&format!("-{room}-"), &format!("-{}-", room + 1), 1);
    refused(
        send(listener, "ann@example.org", &other_room, &body).await,
        "550",
    );
    // An address given out 31 days ago has expired.
    let old = address(&app, ann, room, None, chat::now() - Duration::days(31)).await;
    let body = mail("ann@example.org", &old, "e1@x", "", "too late");
    refused(
        send(listener, "ann@example.org", &old, &body).await,
        "expired",
    );
    // Too big: the declared size and the data itself.
    let huge = mail(
        "ann@example.org",
        &to,
        "h1@x",
        "",
        &"x".repeat(MAX_BYTES + 10),
    );
    refused(send(listener, "ann@example.org", &to, &huge).await, "552");

    // A mail from another address is not posted; its sender is told why, without ann's address.
    let body = mail("mallory@example.net", &to, "w1@x", "", "let me in");
    send(listener, "mallory@example.net", &to, &body)
        .await
        .expect("taken, and answered");
    // Auto-replies and bounces are dropped without an answer, so no loop forms.
    let away = mail(
        "ann@example.org",
        &to,
        "a1@x",
        "Auto-Submitted: auto-replied\r\n",
        "I am on holiday.",
    );
    send(listener, "ann@example.org", &to, &away)
        .await
        .expect("taken");
    // Ann stops replies to the mails sent so far (a plain form); her old address is refused.
    let mut browser = app.login("ann").await;
    let settings = browser.get("/settings").await.expect(Status::Ok);
    assert!(settings.body.contains("Stop replies to mails already sent"));
    let done = browser.post("/settings/replies/revoke", &[]).await;
    assert_eq!(done.status, Status::SeeOther);
    let body = mail("ann@example.org", &to, "v1@x", "", "after revoking");
    refused(send(listener, "ann@example.org", &to, &body).await, "550");
    // A new mail carries a new address that works.
    let fresh = address(&app, ann, room, None, chat::now()).await;
    assert_ne!(fresh, to);
    let body = mail(
        "ann@example.org",
        &fresh,
        "n1@x",
        "",
        "the new address works",
    );
    send(listener, "ann@example.org", &fresh, &body)
        .await
        .expect("accepted");

    assert_eq!(
        room_messages(&app, room).await,
        vec![(ann, "the new address works".to_string(), None)],
        "only the good reply was posted"
    );
    let notes: Vec<(String, String)> = app
        .write(|c| {
            Ok(outbox::table
                .filter(outbox::kind.eq("reply_refused"))
                .select((outbox::recipient, outbox::text_body))
                .load(c)?)
        })
        .await;
    assert_eq!(
        notes.len(),
        1,
        "one note, to the wrong sender only: {notes:?}"
    );
    assert_eq!(notes[0].0, "mallory@example.net");
    assert!(notes[0]
        .1
        .contains("accepted only from the address the alert was sent to"));
    assert!(!notes[0].1.contains("ann@example.org"));
    assert_eq!(app.deliver_mail().await, 1);
}

/// Reads one (possibly multi-line) SMTP answer; returns its last line.
async fn answer(input: &mut (impl AsyncBufReadExt + Unpin)) -> String {
    let mut line = String::new();
    loop {
        line.clear();
        input.read_line(&mut line).await.expect("answer");
        if line.as_bytes().get(3) != Some(&b'-') {
            return line.trim_end().to_string();
        }
    }
}

async fn lmtp_answers_for_each_recipient(backend: Backend) {
    let Some((app, listener)) = start(backend).await else {
        return;
    };
    let ann = app.user("ann", false).await;
    let bob = app.user("bob", false).await;
    let room = app.room("general", false, &[ann, bob]).await;
    let ann_to = address(&app, ann, room, None, chat::now()).await;
    let bob_to = address(&app, bob, room, None, chat::now()).await;
    let stream = tokio::net::TcpStream::connect(listener)
        .await
        .expect("connect");
    let (read, mut write) = stream.into_split();
    let mut input = BufReader::new(read);
    assert!(answer(&mut input).await.starts_with("220"));
    let mut conversation = Vec::new();
    for line in [
        "LHLO postfix.example.org".to_string(),
        "MAIL FROM:<ann@example.org>".to_string(),
        format!("RCPT TO:<{ann_to}>"),
        "RCPT TO:<confab+nonsense@chat.test>".to_string(),
        // Bob's address with ann as the sender: accepted as a recipient, refused at delivery.
        format!("RCPT TO:<{bob_to}>"),
        "DATA".to_string(),
        // A line that starts with a dot is sent doubled (dot-stuffing).
        format!(
            "{}\r\n.",
            mail(
                "ann@example.org",
                &ann_to,
                "l1@x",
                "",
                "over LMTP\r\n..dotted"
            )
        ),
    ] {
        write
            .write_all(format!("{line}\r\n").as_bytes())
            .await
            .expect("write");
        conversation.push(answer(&mut input).await);
    }
    conversation.push(answer(&mut input).await);
    let codes: Vec<&str> = conversation.iter().map(|a| &a[..3]).collect();
    assert_eq!(
        codes,
        ["250", "250", "250", "550", "250", "354", "250", "250"],
        "{conversation:?}"
    );
    assert!(
        conversation[6].starts_with("250 2.0.0 Posted"),
        "{conversation:?}"
    );
    assert!(
        conversation[7].starts_with("250 2.0.0 Not posted"),
        "{conversation:?}"
    );
    // A bounce (the null sender) is taken and dropped, so no loop forms.
    let mut bounce = Vec::new();
    for line in [
        "MAIL FROM:<>".to_string(),
        format!("RCPT TO:<{ann_to}>"),
        "DATA".to_string(),
        format!(
            "{}\r\n.",
            mail(
                "mailer-daemon@example.org",
                &ann_to,
                "l2@x",
                "",
                "Undelivered"
            )
        ),
    ] {
        write
            .write_all(format!("{line}\r\n").as_bytes())
            .await
            .expect("write");
        bounce.push(answer(&mut input).await);
    }
    assert_eq!(bounce[3], "250 2.0.0 Notice dropped", "{bounce:?}");
    write.write_all(b"QUIT\r\n").await.expect("write");
    assert!(answer(&mut input).await.starts_with("221"));
    assert_eq!(
        room_messages(&app, room).await,
        vec![(ann, "over LMTP\n.dotted".to_string(), None)],
        "dot-stuffing undone, posted for ann only"
    );
    assert_eq!(app.deliver_mail().await, 1, "the note to the wrong sender");
}

async fn alert_mail_invites_replies_only_when_they_can_arrive(backend: Backend) {
    for replies_on in [true, false] {
        let app = if replies_on {
            match start(backend).await {
                Some((app, _)) => app,
                None => return,
            }
        } else {
            match TestApp::start(backend).await {
                Some(app) => app,
                None => return,
            }
        };
        let ann = app.user("ann", false).await;
        let bob = app.user("bob", false).await;
        let room = app.room("general", false, &[ann, bob]).await;
        app.messages(room, bob, vec!["are you coming?".into()])
            .await;
        let later = chat::now() + Duration::minutes(30);
        let planned = confab::jobs::alerts::plan(app.db(), &app.mail(), app.settings(), later)
            .await
            .expect("plan");
        assert_eq!(planned, 1);
        let (reply_to, text): (Option<String>, String) = app
            .write(|c| {
                Ok(outbox::table
                    .select((outbox::reply_to, outbox::text_body))
                    .first(c)?)
            })
            .await;
        let sent = confab::jobs::alerts::send(app.db(), &app.mail(), app.settings(), later)
            .await
            .expect("send");
        assert_eq!(sent, 1);
        let delivered = app.mail().delivered().join("\n");
        if replies_on {
            let reply_to = reply_to.expect("a reply address");
            assert!(reply_to.starts_with("confab+") && reply_to.ends_with("@chat.test"));
            assert!(
                delivered.contains(&format!("Reply-To: {reply_to}")),
                "{delivered}"
            );
            assert!(text.contains("Reply to this mail to post your answer in GENERAL"));
            let svc = services(&app);
            let target = confab::service::replies::check_address(&svc, &reply_to)
                .await
                .expect("checked")
                .expect("valid");
            assert_eq!(target.user_id, ann);
            assert_eq!(target.room_id, room);
            assert!(target.message_id.is_some(), "about one message: its thread");
        } else {
            assert_eq!(reply_to, None);
            assert!(!delivered.contains("\nReply-To:"), "{delivered}");
            assert!(!text.to_lowercase().contains("reply"), "{text}");
        }
    }
}

/// A dovecot of the test's own: configuration, mail and logs in a temporary folder, one user
/// `confab` with the password `secret`, IMAP on a free loopback port. Stopped when dropped.
struct Dovecot {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Dovecot {
    /// Starts it, or `None` where dovecot is not installed and this is not CI.
    async fn start() -> Option<Dovecot> {
        if !std::path::Path::new("/usr/sbin/dovecot").exists() {
            assert!(
                std::env::var("CI").is_err(),
                "dovecot-imapd must be installed under CI"
            );
            eprintln!("skipping: dovecot is not installed");
            return None;
        }
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path();
        let port = crate::process::free_port();
        for sub in ["mail", "home"] {
            std::fs::create_dir(root.join(sub)).expect("folder");
            Command::new("chmod")
                .arg("777")
                .arg(root.join(sub))
                .status()
                .expect("chmod");
        }
        Command::new("chmod")
            .arg("755")
            .arg(root)
            .status()
            .expect("chmod");
        std::fs::write(root.join("passwd"), "confab:{PLAIN}secret\n").expect("passwd");
        let r = root.display();
        std::fs::write(
            root.join("dovecot.conf"),
            format!(
                "base_dir = {r}/run\nstate_dir = {r}/state\nlog_path = {r}/dovecot.log\n\
                 protocols = imap\nlisten = 127.0.0.1\nssl = no\ndisable_plaintext_auth = no\n\
                 first_valid_uid = 1\nmail_location = maildir:{r}/mail/%u\n\
                 passdb {{\n  driver = passwd-file\n  args = scheme=PLAIN username_format=%u {r}/passwd\n}}\n\
                 userdb {{\n  driver = static\n  args = uid=dovecot gid=dovecot home={r}/home/%u\n}}\n\
                 service imap-login {{\n  chroot =\n  inet_listener imap {{\n    port = {port}\n  }}\n  inet_listener imaps {{\n    port = 0\n  }}\n}}\n\
                 service anvil {{\n  chroot =\n}}\n"
            ),
        )
        .expect("config");
        let child = Command::new("/usr/sbin/dovecot")
            .arg("-F")
            .arg("-c")
            .arg(root.join("dovecot.conf"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("dovecot starts");
        let log = root.join("dovecot.log");
        // From here on, dropping it (also when the test fails) stops the process.
        let dovecot = Dovecot {
            child,
            port,
            _dir: dir,
        };
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return Some(dovecot);
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        let log = std::fs::read_to_string(log).unwrap_or_default();
        panic!("dovecot did not start: {log}");
    }

    fn url(&self) -> String {
        format!("imap://confab:secret@127.0.0.1:{}", self.port)
    }

    /// Delivers a mail into the inbox (IMAP APPEND, as a delivery agent would).
    async fn deliver(&self, raw: &str) {
        let tcp = tokio::net::TcpStream::connect(("127.0.0.1", self.port))
            .await
            .expect("connect");
        let mut client = async_imap::Client::new(tcp);
        client.read_response().await.expect("greeting");
        let mut session = client
            .login("confab", "secret")
            .await
            .map_err(|(e, _)| e)
            .expect("login");
        session
            .append("INBOX", None, None, raw.as_bytes())
            .await
            .expect("append");
        session.logout().await.expect("logout");
    }
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}

async fn the_imap_mailbox_is_polled(backend: Backend) {
    let Some(dovecot) = Dovecot::start().await else {
        return;
    };
    let url = dovecot.url();
    let Some(app) = TestApp::builder(backend)
        .with_settings(move |s| {
            s.replies.address = Some("team+{token}@mail.example.org".into());
            s.replies.imap_url = Some(url);
        })
        .start()
        .await
    else {
        return;
    };
    let ann = app.user("ann", false).await;
    let bob = app.user("bob", false).await;
    let room = app.room("general", false, &[ann, bob]).await;
    let to = address(&app, ann, room, None, chat::now()).await;
    assert!(to.starts_with("team+"));
    // Outlook's style, delivered to the plus-address of an ordinary mailbox.
    dovecot
        .deliver(&mail(
            "ann@example.org",
            &to,
            "i1@x",
            &format!("Delivered-To: {to}\r\n"),
            "Agreed.\r\n\r\nFrom: Confab <confab@localhost>\r\nSent: Tuesday, December 1, 2026 10:02\r\nTo: ann@example.org\r\nSubject: 1 new message\r\n\r\nbob: lunch?\r\n",
        ))
        .await;
    // A mail to the mailbox that is not a reply, and an expired reply address.
    dovecot
        .deliver(&mail(
            "news@example.com",
            "team@mail.example.org",
            "i2@x",
            "",
            "Newsletter",
        ))
        .await;
    let old = address(&app, ann, room, None, chat::now() - Duration::days(40)).await;
    dovecot
        .deliver(&mail("ann@example.org", &old, "i3@x", "", "late reply"))
        .await;

    let svc = services(&app);
    let mailbox = confab::inbound::imap::Mailbox::parse(&dovecot.url()).expect("url");
    let round = confab::inbound::imap::poll(&svc, &mailbox, "INBOX")
        .await
        .expect("poll");
    assert_eq!(round.handled, 3, "{round:?}");
    assert_eq!(
        room_messages(&app, room).await,
        vec![(ann, "Agreed.".to_string(), None)]
    );
    // Handled mails are seen: the next poll finds nothing.
    let again = confab::inbound::imap::poll(&svc, &mailbox, "INBOX")
        .await
        .expect("poll");
    assert_eq!(again.handled, 0);
    assert_eq!(room_messages(&app, room).await.len(), 1);
    // The expired reply got a note saying how to answer.
    let notes: Vec<String> = app
        .write(|c| {
            Ok(outbox::table
                .filter(outbox::kind.eq("reply_refused"))
                .select(outbox::recipient)
                .load(c)?)
        })
        .await;
    assert_eq!(notes, vec!["ann@example.org".to_string()]);
    assert_eq!(app.deliver_mail().await, 1);
    // A mailbox that does not answer is an error, not a panic.
    let down = confab::inbound::imap::Mailbox::parse(&format!(
        "imap://confab:secret@127.0.0.1:{}",
        crate::process::free_port()
    ))
    .expect("url");
    assert!(confab::inbound::imap::poll(&svc, &down, "INBOX")
        .await
        .is_err());
}

/// With the database gone, the listener answers 451 (the sender's server tries again later) and
/// the IMAP poller leaves the mail unseen for the next poll: nothing is lost.
#[rocket::async_test]
async fn replies_wait_while_the_database_is_down() {
    let Some(dovecot) = Dovecot::start().await else {
        return;
    };
    let url = dovecot.url();
    let Some(app) = TestApp::builder(Backend::Postgres)
        .with_settings(move |s| {
            s.replies.address = Some("confab+{token}@chat.test".into());
            s.replies.smtp_address = Some("127.0.0.1:0".parse().expect("address"));
            s.replies.imap_url = Some(url);
        })
        .start()
        .await
    else {
        return;
    };
    let listener = confab::inbound::smtp::bind("127.0.0.1:0".parse().expect("address"))
        .await
        .expect("bind");
    let port = listener.local_addr().expect("address");
    tokio::spawn(confab::inbound::smtp::serve(
        services(&app),
        listener,
        app.client.rocket().shutdown(),
    ));
    let ann = app.user("ann", false).await;
    let room = app.room("general", false, &[ann]).await;
    let to = address(&app, ann, room, None, chat::now()).await;
    let body = mail("ann@example.org", &to, "d1@x", "", "are we down?");
    dovecot.deliver(&body).await;

    app.drop_database();

    let error = send(port, "ann@example.org", &to, &body)
        .await
        .expect_err("not taken now");
    assert!(error.is_transient(), "{error}");
    assert!(error.to_string().contains("451"), "{error}");
    let mailbox = confab::inbound::imap::Mailbox::parse(&dovecot.url()).expect("url");
    let round = confab::inbound::imap::poll(&services(&app), &mailbox, "INBOX")
        .await
        .expect("the mailbox answers");
    assert_eq!(
        round,
        confab::inbound::imap::Round {
            handled: 0,
            deferred: 1
        }
    );
}
