//! A real SMTP server on loopback for the tests: it speaks enough of RFC 5321 for lettre, keeps
//! every mail it accepts, and can be told to refuse the next few.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use base64::Engine;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

/// One accepted mail.
#[derive(Debug, Clone)]
pub struct Received {
    pub to: Vec<String>,
    pub data: String,
}

impl Received {
    /// A header's (unfolded) value.
    pub fn header(&self, name: &str) -> Option<String> {
        let head = self.data.split("\r\n\r\n").next()?;
        let unfolded = head.replace("\r\n ", " ").replace("\r\n\t", " ");
        unfolded.lines().find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.eq_ignore_ascii_case(name)
                .then(|| value.trim().to_string())
        })
    }

    /// The decoded text of every part (quoted-printable and base64 undone), joined.
    pub fn text(&self) -> String {
        let mut out = String::new();
        let boundary = self
            .data
            .split("boundary=")
            .nth(1)
            .map(|rest| {
                rest.trim_start_matches('"')
                    .split(['"', ';', '\r', '\n'])
                    .next()
                    .unwrap_or("")
                    .to_string()
            })
            .unwrap_or_default();
        let delimiter = format!("\r\n--{boundary}");
        for part in self.data.split(delimiter.as_str()) {
            let Some((head, body)) = part.split_once("\r\n\r\n") else {
                continue;
            };
            let head = head.to_ascii_lowercase();
            if head.contains("content-transfer-encoding: quoted-printable") {
                out.push_str(&quoted_printable(body));
            } else if head.contains("content-transfer-encoding: base64") {
                let joined: String = body.split_whitespace().collect();
                if let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(joined) {
                    out.push_str(&String::from_utf8_lossy(&bytes));
                }
            } else {
                out.push_str(body);
            }
            out.push('\n');
        }
        out
    }
}

fn quoted_printable(body: &str) -> String {
    let joined = body.replace("=\r\n", "");
    let bytes = joined.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'=' && i + 2 < bytes.len() {
            if let Ok(b) = u8::from_str_radix(&joined[i + 1..i + 3], 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The sink.
#[derive(Clone)]
pub struct SmtpSink {
    pub port: u16,
    mails: Arc<Mutex<Vec<Received>>>,
    refuse: Arc<AtomicUsize>,
}

impl SmtpSink {
    /// Starts listening on a free loopback port.
    pub async fn start() -> SmtpSink {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let sink = SmtpSink {
            port,
            mails: Arc::default(),
            refuse: Arc::default(),
        };
        let accepting = sink.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let sink = accepting.clone();
                tokio::spawn(async move {
                    let _ = sink.serve(stream).await;
                });
            }
        });
        sink
    }

    /// `smtp://` URL of the sink.
    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// The mails accepted so far.
    pub fn mails(&self) -> Vec<Received> {
        self.mails.lock().expect("mails").clone()
    }

    /// The decoded text of the first mail received for `name@…`.
    pub fn text_to(&self, name: &str) -> String {
        self.mails()
            .iter()
            .find(|m| {
                m.header("To")
                    .is_some_and(|to| to.contains(&format!("{name}@")))
            })
            .unwrap_or_else(|| panic!("a mail to {name}"))
            .text()
    }

    /// Refuses the next `n` mails with a temporary failure.
    pub fn refuse_next(&self, n: usize) {
        self.refuse.store(n, Ordering::SeqCst);
    }

    async fn serve(&self, stream: tokio::net::TcpStream) -> std::io::Result<()> {
        let (read, mut write) = stream.into_split();
        let mut lines = BufReader::new(read);
        write.write_all(b"220 confab-test-sink ESMTP\r\n").await?;
        let mut to = Vec::new();
        let mut line = String::new();
        loop {
            line.clear();
            if lines.read_line(&mut line).await? == 0 {
                return Ok(());
            }
            let command = line.trim_end().to_ascii_uppercase();
            let reply: &[u8] = if command.starts_with("EHLO") {
                b"250-confab-test-sink\r\n250 8BITMIME\r\n"
            } else if command.starts_with("HELO")
                || command.starts_with("RSET")
                || command.starts_with("NOOP")
            {
                to.clear();
                b"250 OK\r\n"
            } else if command.starts_with("MAIL FROM") {
                let refused = self
                    .refuse
                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                    .is_ok();
                if refused {
                    b"451 4.3.0 Try again later\r\n"
                } else {
                    b"250 OK\r\n"
                }
            } else if command.starts_with("RCPT TO") {
                to.push(
                    line.trim_end()[8..]
                        .trim()
                        .trim_matches(['<', '>', ':'])
                        .to_string(),
                );
                b"250 OK\r\n"
            } else if command == "DATA" {
                write
                    .write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n")
                    .await?;
                let mut data = String::new();
                loop {
                    line.clear();
                    if lines.read_line(&mut line).await? == 0 {
                        return Ok(());
                    }
                    if line == ".\r\n" {
                        break;
                    }
                    data.push_str(
                        line.strip_prefix('.')
                            .filter(|_| line.starts_with(".."))
                            .unwrap_or(&line),
                    );
                }
                self.mails.lock().expect("mails").push(Received {
                    to: std::mem::take(&mut to),
                    data,
                });
                b"250 OK queued\r\n"
            } else if command.starts_with("QUIT") {
                write.write_all(b"221 Bye\r\n").await?;
                return Ok(());
            } else {
                b"502 Command not implemented\r\n"
            };
            write.write_all(reply).await?;
        }
    }
}
