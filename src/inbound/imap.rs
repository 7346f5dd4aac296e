//! The IMAP poller: for groups without a mail server of their own, replies go to a plus-address of
//! an ordinary mailbox (`imap_url`, `imap_folder`), and Confab fetches the unseen mails every
//! `imap_poll_secs`. A mail is marked seen once handled (posted, or refused with a note to its
//! sender); one that could not be handled now (the database is down) stays unseen for next time.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use crate::error::Error;
use crate::mail::{incoming, Refusal};
use crate::service::replies::{self, Outcome};
use crate::service::Services;

/// How long one connection, command or fetch may take.
const TIMEOUT: Duration = Duration::from_secs(60);

/// The stream under the IMAP client: plain TCP or TLS.
trait Stream: AsyncRead + AsyncWrite + Unpin + Send + std::fmt::Debug {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + std::fmt::Debug> Stream for T {}

/// Where the mailbox is and how to log in, from `imap_url`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mailbox {
    tls: bool,
    host: String,
    port: u16,
    user: String,
    password: String,
}

/// Decodes `%xx` escapes of a URL part (user names are often addresses: `ann%40example.org`).
fn unescape(part: &str) -> String {
    let bytes = part.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl Mailbox {
    /// Reads `imap://user:password@host[:port]` or `imaps://…`.
    pub fn parse(url: &str) -> Result<Mailbox, String> {
        let (tls, rest) = if let Some(rest) = url.strip_prefix("imaps://") {
            (true, rest)
        } else if let Some(rest) = url.strip_prefix("imap://") {
            (false, rest)
        } else {
            return Err("must start with imap:// or imaps://".into());
        };
        let rest = rest.trim_end_matches('/');
        let (credentials, server) = rest
            .rsplit_once('@')
            .ok_or("must name a user and password: imap://user:password@host")?;
        let (user, password) = credentials
            .split_once(':')
            .ok_or("must name a user and password: imap://user:password@host")?;
        let (host, port) = match server.rsplit_once(':') {
            Some((host, port)) => (host, port.parse().map_err(|_| format!("bad port {port}"))?),
            None => (server, if tls { 993 } else { 143 }),
        };
        Ok(Mailbox {
            tls,
            host: host.trim_matches(['[', ']']).to_string(),
            port,
            user: unescape(user),
            password: unescape(password),
        })
    }

    async fn connect(&self) -> Result<Box<dyn Stream>, String> {
        let tcp = TcpStream::connect((self.host.as_str(), self.port))
            .await
            .map_err(|e| format!("connecting to {}:{}: {e}", self.host, self.port))?;
        if !self.tls {
            return Ok(Box::new(tcp));
        }
        let roots = tokio_rustls::rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        let config = tokio_rustls::rustls::ClientConfig::builder_with_provider(Arc::new(
            tokio_rustls::rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
        let name = tokio_rustls::rustls::pki_types::ServerName::try_from(self.host.clone())
            .map_err(|e| format!("{}: {e}", self.host))?;
        let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect(name, tcp)
            .await
            .map_err(|e| format!("TLS with {}: {e}", self.host))?;
        Ok(Box::new(tls))
    }
}

/// How one poll went: mails handled, and mails left for the next poll.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Round {
    /// Posted, dropped or refused: marked seen.
    pub handled: usize,
    /// Left unseen, to be tried again.
    pub deferred: usize,
}

async fn timed<T, E: std::fmt::Display>(
    what: &str,
    future: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T, String> {
    match tokio::time::timeout(TIMEOUT, future).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(format!("{what}: {e}")),
        Err(_) => Err(format!("{what}: no answer in {} s", TIMEOUT.as_secs())),
    }
}

/// Fetches and handles the unseen mails of the folder once.
pub async fn poll(svc: &Services, mailbox: &Mailbox, folder: &str) -> Result<Round, String> {
    let stream = timed("connecting", async { mailbox.connect().await }).await?;
    let mut client = async_imap::Client::new(stream);
    timed("reading the greeting", async {
        client
            .read_response()
            .await
            .and_then(|r| r.ok_or_else(|| std::io::ErrorKind::UnexpectedEof.into()))
    })
    .await?;
    let mut session = timed("logging in", async {
        client
            .login(&mailbox.user, &mailbox.password)
            .await
            .map_err(|(e, _)| e)
    })
    .await?;
    timed("selecting the folder", session.select(folder)).await?;
    let mut uids: Vec<u32> = timed("searching", session.uid_search("UNSEEN"))
        .await?
        .into_iter()
        .collect();
    uids.sort_unstable();
    let mut round = Round::default();
    for uid in uids {
        let raw = timed("fetching", async {
            let mut fetched = session.uid_fetch(uid.to_string(), "BODY.PEEK[]").await?;
            let mut body = None;
            while let Some(fetch) = fetched.next().await {
                if let Some(bytes) = fetch?.body() {
                    body = Some(bytes.to_vec());
                }
            }
            Ok::<_, async_imap::error::Error>(body)
        })
        .await?;
        let handled = match raw {
            Some(raw) => handle(svc, &raw).await,
            None => true,
        };
        if !handled {
            round.deferred += 1;
            continue;
        }
        timed("marking seen", async {
            let mut stored = session
                .uid_store(uid.to_string(), "+FLAGS (\\Seen)")
                .await?;
            while let Some(item) = stored.next().await {
                item?;
            }
            Ok::<_, async_imap::error::Error>(())
        })
        .await?;
        round.handled += 1;
    }
    // The mails are handled; a failed goodbye changes nothing.
    let _ = tokio::time::timeout(TIMEOUT, session.logout()).await;
    Ok(round)
}

/// Handles one mail of the mailbox; `false` when it should be tried again later.
async fn handle(svc: &Services, raw: &[u8]) -> bool {
    let Some(mail) = incoming::parse(raw) else {
        log::info!("IMAP: skipping something that is not a mail");
        return true;
    };
    let mut refused = None;
    for address in incoming::recipients(raw) {
        match replies::check_address(svc, &address).await {
            Ok(Ok(target)) => {
                return match replies::receive(svc, target, raw).await {
                    Ok(
                        Outcome::Posted(_)
                        | Outcome::Automatic
                        | Outcome::WrongSender
                        | Outcome::Empty,
                    ) => true,
                    Err(
                        e @ (Error::Invalid(_)
                        | Error::NotFound
                        | Error::Forbidden
                        | Error::Conflict(_)),
                    ) => tell(svc, &mail, &format!("{e}")).await,
                    Err(e) => {
                        log::warn!("IMAP: posting a reply: {}", e.detail());
                        false
                    }
                };
            }
            Ok(Err(refusal)) => refused = refused.max(Some(refusal == Refusal::Expired)),
            Err(e) => {
                log::warn!("IMAP: checking {address}: {}", e.detail());
                return false;
            }
        }
    }
    match refused {
        // Signed by us, but old: the member is told how to answer.
        Some(true) => {
            tell(
                svc,
                &mail,
                "that reply address has expired. Answer a newer mail, or in the browser.",
            )
            .await
        }
        // Not addressed to a reply address, or a forged one: left alone.
        _ => true,
    }
}

/// Tells the (human) sender why their mail was not posted; `false` if that could not be queued.
async fn tell(svc: &Services, mail: &incoming::Incoming, reason: &str) -> bool {
    let Some(to) = mail.from.as_deref().filter(|_| !mail.automatic) else {
        return true;
    };
    match replies::refuse(svc, to, reason).await {
        Ok(()) => true,
        Err(e) => {
            log::warn!("IMAP: queueing a refusal: {}", e.detail());
            false
        }
    }
}

/// Polls the mailbox every `imap_poll_secs` until `shutdown`.
pub async fn run(svc: Services, mailbox: Mailbox, mut shutdown: rocket::Shutdown) {
    let folder = svc.settings.replies.imap_folder.clone();
    let mut ticks = tokio::time::interval(Duration::from_secs(svc.settings.replies.imap_poll_secs));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            _ = &mut shutdown => return,
        }
        match poll(&svc, &mailbox, &folder).await {
            Ok(round) if round.deferred > 0 => {
                log::warn!("IMAP: {} mails left for the next poll", round.deferred);
            }
            Ok(_) => {}
            Err(e) => log::warn!("IMAP: polling {}: {e}", mailbox.host),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mailbox_urls_are_read() {
        let mailbox = Mailbox::parse("imaps://ann%40example.org:p%3Ass@mail.example.org").unwrap();
        assert_eq!(
            mailbox,
            Mailbox {
                tls: true,
                host: "mail.example.org".into(),
                port: 993,
                user: "ann@example.org".into(),
                password: "p:ss".into(),
            }
        );
        assert_eq!(
            Mailbox::parse("imap://u:p@127.0.0.1:1143").unwrap().port,
            1143
        );
        assert!(Mailbox::parse("imap://127.0.0.1").is_err());
        assert!(Mailbox::parse("http://u:p@x").is_err());
    }
}
