//! Mail: one `Mail` service built from settings. It renders mail from Tera templates under
//! `templates/email/` (a Tera of its own, so jobs render without a request), signs unsubscribe
//! links, and delivers through lettre: SMTP when `smtp_url` is set, else `.eml` files in `mail_dir`.

use std::path::PathBuf;
use std::time::Duration;

use hmac::{Hmac, Mac};
use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart};
use lettre::{AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use rocket_dyn_templates::tera::{Context, Tera};
use sha2::Sha256;

use crate::chat::outbox::{NewMail, OutboxRow};
use crate::settings::Settings;

enum Transport {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    Files(AsyncFileTransport<Tokio1Executor>, PathBuf),
}

/// A rendered mail: subject, plain text and HTML.
#[derive(Debug, Clone)]
pub struct Rendered {
    /// One line.
    pub subject: String,
    /// The text part.
    pub text: String,
    /// The HTML part.
    pub html: String,
}

/// Renders, signs and delivers Confab's mail.
pub struct Mail {
    transport: Transport,
    from: Mailbox,
    host: String,
    tera: Tera,
    key: Vec<u8>,
    /// Where links in mail point.
    pub public_url: String,
}

impl Mail {
    /// Builds the mail service from settings; a bad `smtp_url` or template is an error.
    pub fn from_settings(settings: &Settings) -> Result<Mail, String> {
        let transport = match &settings.smtp_url {
            Some(url) => {
                let builder = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
                    .map_err(|e| format!("invalid setting `smtp_url`: {e}"))?;
                Transport::Smtp(
                    builder
                        .timeout(Some(Duration::from_secs(settings.smtp_timeout_secs)))
                        .build(),
                )
            }
            None => Transport::Files(
                AsyncFileTransport::<Tokio1Executor>::new(&settings.mail_dir),
                settings.mail_dir.clone(),
            ),
        };
        let from: Mailbox = settings
            .mail_from
            .parse()
            .map_err(|e| format!("invalid setting `mail_from`: {e}"))?;
        let templates: PathBuf = settings
            .figment
            .extract_inner("template_dir")
            .unwrap_or_else(|_| "templates".into());
        let pattern = templates.join("email").join("*.tera");
        let mut tera = Tera::new(&pattern.to_string_lossy())
            .map_err(|e| format!("mail templates in {}: {e}", templates.display()))?;
        // Only the HTML parts are escaped (user text in them is HTML-escaped; the text parts stay text).
        tera.autoescape_on(vec![".html.tera"]);
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
            public_url: settings.public_url.clone(),
        })
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

    fn signature(&self, user_id: i64) -> String {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes keys of any length");
        mac.update(format!("unsubscribe:{user_id}").as_bytes());
        hex::encode(&mac.finalize().into_bytes()[..16])
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
        crate::web::session::constant_time_eq(signature.as_bytes(), self.signature(id).as_bytes())
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
            unsubscribe_url: None,
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
        if let Some(url) = &row.unsubscribe_url {
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
        match &self.transport {
            Transport::Smtp(smtp) => smtp
                .send(message)
                .await
                .map(|_| ())
                .map_err(|e| e.to_string()),
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
