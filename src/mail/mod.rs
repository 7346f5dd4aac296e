//! Mail: one `Mail` service built from settings. It renders mail from Tera templates under
//! `templates/email/` (a Tera of its own, so jobs render without a request), signs unsubscribe
//! links, and delivers through lettre: SMTP when `smtp_url` is set, else `.eml` files in `mail_dir`.

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

use hmac::{Hmac, Mac};
use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart};
use lettre::{AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use rocket_dyn_templates::tera::{Context, Tera};
use sha2::Sha256;

mod alert;
pub mod incoming;
mod replies;

pub use replies::{Refusal, ReplyTarget, ReplyToken};

use crate::assets::Theme;
pub use crate::chat::outbox::Rendered;
use crate::chat::outbox::{NewMail, OutboxRow};
use crate::settings::Settings;

enum Transport {
    /// An SMTP server. lettre's pooled transport spawns a task when it is built, so it is built on
    /// first use, inside the runtime (building it before Rocket's runtime exists aborts the process).
    Smtp {
        url: String,
        timeout: Duration,
        transport: OnceLock<AsyncSmtpTransport<Tokio1Executor>>,
    },
    Files(AsyncFileTransport<Tokio1Executor>, PathBuf),
    /// Kept in memory (`mail_dir = ":memory:"`), for tests that read mail without a server.
    Memory(std::sync::Mutex<Vec<String>>),
}

/// The `mail_dir` that keeps mail in memory instead of writing files.
pub const IN_MEMORY: &str = ":memory:";

/// Renders, signs and delivers Confab's mail.
pub struct Mail {
    transport: Transport,
    from: Mailbox,
    host: String,
    tera: Tera,
    key: Vec<u8>,
    replies: Option<replies::ReplyConfig>,
    /// Where links in mail point.
    pub public_url: String,
}

impl Mail {
    /// Builds the mail service from settings and the theme's mail templates; a bad `smtp_url` or
    /// template is an error. Nothing connects until the first mail is sent.
    pub fn from_settings(settings: &Settings, theme: &Theme) -> Result<Mail, String> {
        let transport = match &settings.mail.smtp_url {
            Some(url) => {
                AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
                    .map_err(|e| format!("invalid setting `smtp_url`: {e}"))?;
                Transport::Smtp {
                    url: url.clone(),
                    timeout: Duration::from_secs(settings.mail.smtp_timeout_secs),
                    transport: OnceLock::new(),
                }
            }
            None if settings.mail.dir.as_os_str() == IN_MEMORY => {
                Transport::Memory(std::sync::Mutex::new(Vec::new()))
            }
            None => Transport::Files(
                AsyncFileTransport::<Tokio1Executor>::new(&settings.mail.dir),
                settings.mail.dir.clone(),
            ),
        };
        let from: Mailbox = settings
            .mail
            .from
            .parse()
            .map_err(|e| format!("invalid setting `mail_from`: {e}"))?;
        let tera = theme.mail_templates()?;
        let key: String = settings
            .figment
            .extract_inner("secret_key")
            .map_err(|_| "the secret_key must be a string".to_string())?;
        let host = settings
            .public_url
            .split("://")
            .nth(1)
            .unwrap_or("localhost")
            .split(['/', ':'])
            .next()
            .unwrap_or("localhost")
            .to_string();
        Ok(Mail {
            transport,
            from,
            host,
            tera,
            key: key.into_bytes(),
            replies: replies::ReplyConfig::from_settings(&settings.replies),
            public_url: settings.public_url.clone(),
        })
    }

    /// The mails delivered so far by the in-memory transport, as sent (empty for the others).
    pub fn delivered(&self) -> Vec<String> {
        match &self.transport {
            Transport::Memory(sent) => sent.lock().map(|s| s.clone()).unwrap_or_default(),
            _ => Vec::new(),
        }
    }

    /// Renders `<kind>-subject.txt.tera`, `<kind>-text.txt.tera` and `<kind>-html.html.tera`.
    pub fn render(&self, kind: &str, context: &Context) -> Result<Rendered, String> {
        let render = |part: &str| {
            self.tera
                .render(&format!("{kind}-{part}.tera"), context)
                .map_err(|e| format!("mail template {kind}-{part}: {e:?}"))
        };
        Ok(Rendered {
            subject: render("subject.txt")?.trim().replace(['\r', '\n'], " "),
            text: render("text.txt")?,
            html: render("html.html")?,
        })
    }

    /// HMAC-SHA-256 of `text` with the secret key, hex.
    fn mac(&self, text: &str) -> String {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes keys of any length");
        mac.update(text.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }

    fn signature(&self, user_id: i64) -> String {
        self.mac(&format!("unsubscribe:{user_id}"))[..32].to_string()
    }

    /// The signed one-click unsubscribe link for a user.
    pub fn unsubscribe_url(&self, user_id: i64) -> String {
        format!(
            "{}/unsubscribe/{user_id}.{}",
            self.public_url,
            self.signature(user_id)
        )
    }

    /// The user an unsubscribe token was signed for; `None` for anything forged, altered or malformed.
    pub fn verify_unsubscribe(&self, token: &str) -> Option<i64> {
        let (id, signature) = token.split_once('.')?;
        let id: i64 = id.parse().ok()?;
        crate::secrets::constant_time_eq(signature.as_bytes(), self.signature(id).as_bytes())
            .then_some(id)
    }

    /// A mail carrying a one-time "set your password" link: `reset` or `invite`.
    pub fn link_mail(
        &self,
        kind: &'static str,
        user: &crate::chat::users::User,
        token: &str,
    ) -> Result<NewMail, String> {
        let mut context = Context::new();
        context.insert("username", &user.username);
        context.insert("link", &format!("{}/password/{token}", self.public_url));
        Ok(NewMail {
            kind,
            user_id: Some(user.id),
            recipient: user.email.clone(),
            rendered: self.render(kind, &context)?,
            summary: String::new(),
            reply_to: None,
        })
    }

    /// A short note to `to` that their mail was not posted, and why.
    pub fn refusal_mail(&self, to: &str, reason: &str) -> Result<NewMail, String> {
        let mut context = Context::new();
        context.insert("reason", reason);
        context.insert("public_url", &self.public_url);
        Ok(NewMail {
            kind: "reply_refused",
            user_id: None,
            recipient: to.to_string(),
            rendered: self.render("reply_refused", &context)?,
            summary: String::new(),
            reply_to: None,
        })
    }

    /// Delivers one outbox row.
    pub async fn deliver(&self, row: &OutboxRow) -> Result<(), String> {
        let header = |name: &str, value: String| {
            HeaderName::new_from_ascii(name.to_string())
                .map(|name| HeaderValue::new(name, value))
                .map_err(|e| e.to_string())
        };
        let to: Mailbox = row
            .recipient
            .parse()
            .map_err(|e| format!("recipient {}: {e}", row.recipient))?;
        let mut builder = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(&row.subject)
            .message_id(Some(format!(
                "<confab-{}-{}@{}>",
                row.kind, row.id, self.host
            )))
            .raw_header(header("Auto-Submitted", "auto-generated".into())?);
        if let (Some(user_id), "alert") = (row.user_id, row.kind.as_str()) {
            // One thread per recipient and set of rooms, so mail clients group the alerts.
            let thread = format!(
                "<confab-alerts-{user_id}-{:016x}@{}>",
                fnv1a(row.summary.as_bytes()),
                self.host
            );
            builder = builder
                .raw_header(header("In-Reply-To", thread.clone())?)
                .raw_header(header("References", thread)?);
        }
        if let Some(address) = &row.reply_to {
            let reply_to: Mailbox = address
                .parse()
                .map_err(|e| format!("reply address {address}: {e}"))?;
            builder = builder.reply_to(reply_to);
        }
        if let (Some(user_id), "alert") = (row.user_id, row.kind.as_str()) {
            let url = self.unsubscribe_url(user_id);
            builder = builder
                .raw_header(header(
                    "List-Id",
                    format!("Confab alerts <alerts.{}>", self.host),
                )?)
                .raw_header(header("List-Unsubscribe", format!("<{url}>"))?)
                .raw_header(header(
                    "List-Unsubscribe-Post",
                    "List-Unsubscribe=One-Click".into(),
                )?);
        }
        let message = builder
            .multipart(MultiPart::alternative_plain_html(
                row.text_body.clone(),
                row.html_body.clone(),
            ))
            .map_err(|e| e.to_string())?;
        self.send(message).await.map(|_| ())
    }

    /// Sends one test mail to `to` straight through the transport (not the outbox), and says where it went.
    pub async fn send_test(&self, to: &str) -> Result<String, String> {
        let to: Mailbox = to.parse().map_err(|e| format!("recipient {to}: {e}"))?;
        let message = Message::builder()
            .from(self.from.clone())
            .to(to.clone())
            .subject("Confab test mail")
            .message_id(Some(format!(
                "<confab-test-{}@{}>",
                crate::secrets::random_token(),
                self.host
            )))
            .body(format!(
                "This is a test mail from Confab at {}. Mail delivery works.\n",
                self.public_url
            ))
            .map_err(|e| e.to_string())?;
        self.send(message).await?;
        Ok(match &self.transport {
            Transport::Smtp { url, .. } => {
                format!("sent a test mail to {to} through {}", redact(url))
            }
            Transport::Files(_, dir) => format!(
                "wrote a test mail to {to} into {} (smtp_url is not set)",
                dir.display()
            ),
            Transport::Memory(_) => format!("kept a test mail to {to} in memory"),
        })
    }

    async fn send(&self, message: Message) -> Result<(), String> {
        match &self.transport {
            Transport::Smtp {
                url,
                timeout,
                transport,
            } => {
                let smtp = match transport.get() {
                    Some(smtp) => smtp,
                    None => {
                        let built = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
                            .map_err(|e| format!("invalid setting `smtp_url`: {e}"))?
                            .timeout(Some(*timeout))
                            .build();
                        transport.get_or_init(|| built)
                    }
                };
                smtp.send(message)
                    .await
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            }
            Transport::Memory(sent) => {
                let text = String::from_utf8_lossy(&message.formatted()).into_owned();
                sent.lock()
                    .map_err(|_| "the in-memory mailbox is poisoned".to_string())?
                    .push(text);
                Ok(())
            }
            Transport::Files(files, dir) => {
                tokio::fs::create_dir_all(dir)
                    .await
                    .map_err(|e| format!("creating {}: {e}", dir.display()))?;
                files
                    .send(message)
                    .await
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            }
        }
    }
}

/// An SMTP URL without its password, for messages.
fn redact(url: &str) -> String {
    match url
        .split_once("://")
        .and_then(|(scheme, rest)| Some((scheme, rest.rsplit_once('@')?)))
    {
        Some((scheme, (credentials, host))) => {
            let user = credentials.split(':').next().unwrap_or("");
            format!("{scheme}://{user}:…@{host}")
        }
        None => url.to_string(),
    }
}

/// A stable 64-bit hash (FNV-1a): the same across builds and machines, for header ids.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf29ce484222325, |hash, b| {
        (hash ^ u64::from(*b)).wrapping_mul(0x100000001b3)
    })
}
