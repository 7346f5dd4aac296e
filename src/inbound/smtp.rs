//! The inbound SMTP/LMTP listener: the operator's mail server forwards the reply domain here (as
//! Postfix forwards to Mailman over LMTP). A recipient is accepted only with a valid reply token
//! (550 otherwise, so the sender's server bounces), a mail only up to `inbound_max_bytes` (552).
//! It speaks plain SMTP (`EHLO`/`HELO`: one answer per mail) and LMTP (`LHLO`: one answer per
//! recipient); no TLS and no authentication, so it belongs on loopback or a private network.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

use crate::error::Error;
use crate::mail::{Refusal, ReplyTarget};
use crate::service::replies::{self, Outcome};
use crate::service::Services;

/// Connections served at once; more wait for the listener. Each may hold one mail of up to
/// `inbound_max_bytes` in memory while it is posted.
const MAX_CONNECTIONS: usize = 16;
/// How long a client may stay silent.
const IDLE: Duration = Duration::from_secs(300);
/// The longest command line (RFC 5321: 512, with room for extensions).
const MAX_LINE: usize = 4096;

/// Binds the listener; an address in use is an error at start, not later.
pub async fn bind(address: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(address).await
}

/// Serves connections until `shutdown`.
pub async fn serve(svc: Services, listener: TcpListener, mut shutdown: rocket::Shutdown) {
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    loop {
        let Ok(permit) = slots.clone().acquire_owned().await else {
            return;
        };
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = &mut shutdown => return,
        };
        match accepted {
            Ok((stream, _)) => {
                let svc = svc.clone();
                tokio::spawn(async move {
                    let (read, write) = stream.into_split();
                    if let Err(e) = Conversation::new(&svc, write).run(read).await {
                        log::debug!("inbound SMTP connection: {e}");
                    }
                    drop(permit);
                });
            }
            Err(e) => {
                log::warn!("inbound SMTP: accepting a connection: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// One client's session: the envelope so far, and where answers go.
struct Conversation<'a, W> {
    svc: &'a Services,
    out: W,
    lmtp: bool,
    /// `Some` after `MAIL FROM`; empty for the null sender of a bounce.
    sender: Option<String>,
    recipients: Vec<ReplyTarget>,
}

/// An SMTP reply: code and text.
type Reply = (u16, String);

fn reply(code: u16, text: &str) -> Reply {
    (code, text.to_string())
}

/// What follows `keyword` (any case) at the start of `text`.
fn after_keyword<'t>(text: &'t str, keyword: &str) -> Option<&'t str> {
    text.get(..keyword.len())
        .filter(|k| k.eq_ignore_ascii_case(keyword))
        .map(|_| &text[keyword.len()..])
}

/// The address inside `<…>` of a `MAIL FROM:`/`RCPT TO:` argument after `keyword`, and what
/// follows it.
fn path_of<'a>(argument: &'a str, keyword: &str) -> Option<(String, &'a str)> {
    let argument = after_keyword(argument, keyword)?;
    let start = argument.find('<')?;
    let end = start + argument[start..].find('>')?;
    Some((
        argument[start + 1..end].trim().to_string(),
        &argument[end + 1..],
    ))
}

impl<'a, W: AsyncWrite + Unpin> Conversation<'a, W> {
    fn new(svc: &'a Services, out: W) -> Self {
        Conversation {
            svc,
            out,
            lmtp: false,
            sender: None,
            recipients: Vec::new(),
        }
    }

    async fn send(&mut self, (code, text): Reply) -> std::io::Result<()> {
        let mut lines = text.lines().peekable();
        let mut out = String::new();
        while let Some(line) = lines.next() {
            let sep = if lines.peek().is_some() { '-' } else { ' ' };
            out.push_str(&format!("{code}{sep}{line}\r\n"));
        }
        self.out.write_all(out.as_bytes()).await?;
        self.out.flush().await
    }

    async fn run(mut self, read: impl AsyncRead + Unpin) -> std::io::Result<()> {
        let mut input = BufReader::new(read);
        self.send(reply(220, "Confab replies by email ready"))
            .await?;
        let mut line = Vec::new();
        loop {
            line.clear();
            let n = read_line(&mut input, &mut line, MAX_LINE).await?;
            if n == 0 {
                return Ok(());
            }
            if line.len() > MAX_LINE {
                self.send(reply(500, "5.5.2 Line too long")).await?;
                continue;
            }
            let text = String::from_utf8_lossy(&line);
            let text = text.trim_end_matches(['\r', '\n']);
            let (verb, argument) = text.split_once(' ').unwrap_or((text, ""));
            let answer = match verb.to_ascii_uppercase().as_str() {
                "EHLO" | "LHLO" | "HELO" => {
                    self.lmtp = verb.eq_ignore_ascii_case("LHLO");
                    self.sender = None;
                    self.recipients.clear();
                    if verb.eq_ignore_ascii_case("HELO") {
                        reply(250, "confab")
                    } else {
                        let max = self.svc.settings.replies.max_bytes;
                        (
                            250,
                            format!("confab\nSIZE {max}\n8BITMIME\nENHANCEDSTATUSCODES"),
                        )
                    }
                }
                "MAIL" => self.mail_from(argument),
                "RCPT" => self.rcpt_to(argument).await,
                "DATA" if self.recipients.is_empty() => reply(503, "5.5.1 No valid recipients"),
                "DATA" => {
                    self.send(reply(354, "End data with <CR><LF>.<CR><LF>"))
                        .await?;
                    let max = self.svc.settings.replies.max_bytes;
                    match read_data(&mut input, max).await? {
                        Some(raw) => {
                            for answer in self.deliver(&raw).await {
                                self.send(answer).await?;
                            }
                            continue;
                        }
                        None => {
                            // LMTP answers once per recipient.
                            let answers = if self.lmtp { self.recipients.len() } else { 1 };
                            self.sender = None;
                            self.recipients.clear();
                            for _ in 1..answers {
                                self.send(reply(552, "5.3.4 Message too big for Confab"))
                                    .await?;
                            }
                            reply(552, "5.3.4 Message too big for Confab")
                        }
                    }
                }
                "RSET" => {
                    self.sender = None;
                    self.recipients.clear();
                    reply(250, "2.0.0 OK")
                }
                "NOOP" => reply(250, "2.0.0 OK"),
                "VRFY" => reply(252, "2.5.0 Send some mail and see"),
                "QUIT" => {
                    self.send(reply(221, "2.0.0 Bye")).await?;
                    return Ok(());
                }
                _ => reply(502, "5.5.1 Command not recognised"),
            };
            self.send(answer).await?;
        }
    }

    fn mail_from(&mut self, argument: &str) -> Reply {
        let Some((sender, parameters)) = path_of(argument, "FROM:") else {
            return reply(501, "5.5.4 Syntax: MAIL FROM:<address>");
        };
        let max = self.svc.settings.replies.max_bytes;
        let declared = parameters
            .split_whitespace()
            .find_map(|p| after_keyword(p, "SIZE=")?.parse::<usize>().ok());
        if declared.is_some_and(|size| size > max) {
            return reply(552, "5.3.4 Message too big for Confab");
        }
        self.sender = Some(sender);
        self.recipients.clear();
        reply(250, "2.1.0 OK")
    }

    async fn rcpt_to(&mut self, argument: &str) -> Reply {
        if self.sender.is_none() {
            return reply(503, "5.5.1 MAIL first");
        }
        let Some((address, _)) = path_of(argument, "TO:") else {
            return reply(501, "5.5.4 Syntax: RCPT TO:<address>");
        };
        match replies::check_address(self.svc, &address).await {
            Ok(Ok(target)) => {
                self.recipients.push(target);
                reply(250, "2.1.5 OK")
            }
            Ok(Err(Refusal::Forged)) => reply(550, "5.1.1 No such reply address here"),
            Ok(Err(Refusal::Expired)) => reply(
                550,
                "5.1.1 This reply address has expired: answer a newer mail, or in the browser",
            ),
            Err(e) => {
                log::warn!("inbound SMTP: checking {address}: {}", e.detail());
                reply(
                    451,
                    "4.3.0 Confab cannot check that address now; try again later",
                )
            }
        }
    }

    /// Posts the mail for each recipient; the answers (one per recipient for LMTP, one for SMTP).
    async fn deliver(&mut self, raw: &[u8]) -> Vec<Reply> {
        let recipients = std::mem::take(&mut self.recipients);
        let bounce = self.sender.take().is_some_and(|s| s.is_empty());
        let mut answers = Vec::new();
        for target in recipients {
            answers.push(if bounce {
                // The null sender: a bounce or another machine's notice. Taken, and dropped.
                reply(250, "2.0.0 Notice dropped")
            } else {
                outcome_reply(replies::receive(self.svc, target, raw).await)
            });
        }
        if self.lmtp {
            return answers;
        }
        // SMTP has one answer for all recipients: the worst.
        answers
            .into_iter()
            .max_by_key(|(code, _)| *code)
            .into_iter()
            .collect()
    }
}

fn outcome_reply(outcome: crate::error::Result<Outcome>) -> Reply {
    match outcome {
        Ok(Outcome::Posted(_)) => reply(250, "2.0.0 Posted"),
        Ok(Outcome::Automatic) => reply(250, "2.0.0 Automatic mail dropped"),
        Ok(Outcome::WrongSender) => reply(250, "2.0.0 Not posted; the sender was told why"),
        Ok(Outcome::Empty) => reply(250, "2.0.0 Nothing to post"),
        Err(e @ (Error::Invalid(_) | Error::NotFound | Error::Forbidden | Error::Conflict(_))) => {
            let text = format!("5.7.1 Not posted: {e}");
            (550, text.replace(['\r', '\n'], " "))
        }
        Err(e) => {
            log::warn!("inbound SMTP: posting a reply: {}", e.detail());
            reply(451, "4.3.0 Confab cannot post this now; try again later")
        }
    }
}

/// Reads one line (up to and including `\n`), keeping at most `max + 1` bytes of it.
async fn read_line(
    input: &mut (impl AsyncBufReadExt + Unpin),
    line: &mut Vec<u8>,
    max: usize,
) -> std::io::Result<usize> {
    let mut total = 0;
    loop {
        let chunk = tokio::time::timeout(IDLE, input.fill_buf())
            .await
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "idle client"))??;
        if chunk.is_empty() {
            return Ok(total);
        }
        let (take, done) = match chunk.iter().position(|b| *b == b'\n') {
            Some(i) => (i + 1, true),
            None => (chunk.len(), false),
        };
        if line.len() <= max {
            line.extend_from_slice(&chunk[..take.min(max + 1 - line.len())]);
        }
        input.consume(take);
        total += take;
        if done {
            return Ok(total);
        }
    }
}

/// Reads the mail after `DATA` up to the lone `.`, undoing dot-stuffing; `None` when it is longer
/// than `max` (the rest is read and dropped, so the conversation can go on).
async fn read_data(
    input: &mut (impl AsyncBufReadExt + Unpin),
    max: usize,
) -> std::io::Result<Option<Vec<u8>>> {
    let mut mail = Vec::new();
    let mut too_big = false;
    let mut line = Vec::new();
    loop {
        line.clear();
        if read_line(input, &mut line, MAX_LINE.max(max)).await? == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "the client left during DATA",
            ));
        }
        if line == b".\r\n" || line == b".\n" {
            return Ok((!too_big).then_some(mail));
        }
        let content = line.strip_prefix(b".").unwrap_or(&line);
        if mail.len() + content.len() > max {
            too_big = true;
            mail.clear();
        }
        if !too_big {
            mail.extend_from_slice(content);
        }
    }
}
