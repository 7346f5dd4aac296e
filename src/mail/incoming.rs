//! Mail that comes in: a reply parsed with `mail-parser`, its new text told apart from the quoted
//! original and the signature, its attachments, and whether a machine sent it.

use mail_parser::{MessageParser, MimeHeaders};

/// A reply as Confab uses it.
#[derive(Debug)]
pub struct Incoming {
    /// The `Message-ID` (without angle brackets); a hash of the whole mail when it has none, so
    /// that a redelivery is still recognised.
    pub message_id: String,
    /// The sender's address (`From`), lower case.
    pub from: Option<String>,
    /// The new text: quotes and signature cut, HTML turned into text.
    pub text: String,
    /// Attached files: name and contents.
    pub attachments: Vec<(String, Vec<u8>)>,
    /// Sent by a machine (an auto-reply, a bounce, a list): never posted, never answered.
    pub automatic: bool,
}

/// Parses a mail; `None` when it is not a mail at all.
pub fn parse(raw: &[u8]) -> Option<Incoming> {
    let message = MessageParser::default().parse(raw)?;
    if message.parts.is_empty() || message.root_part().headers.is_empty() {
        return None;
    }
    let message_id = match message.message_id() {
        Some(id) if !id.trim().is_empty() => id.trim().to_string(),
        _ => {
            use sha2::Digest;
            format!("sha256:{}", hex::encode(sha2::Sha256::digest(raw)))
        }
    };
    let from = message
        .from()
        .and_then(|a| a.first())
        .and_then(|a| a.address())
        .map(str::to_lowercase);
    let header = |name: &str| message.header_raw(name).map(|v| v.trim().to_lowercase());
    let report = message
        .content_type()
        .is_some_and(|t| t.ctype() == "multipart" && t.subtype() == Some("report"));
    let machine_sender = from.as_deref().is_none_or(|f| {
        let local = f.split('@').next().unwrap_or(f);
        ["mailer-daemon", "postmaster"].contains(&local)
    });
    let automatic = header("Auto-Submitted").is_some_and(|v| !v.starts_with("no"))
        || header("X-Autoreply").is_some()
        || header("X-Autorespond").is_some()
        || header("X-Auto-Response-Suppress").is_some_and(|v| v.contains("all"))
        || header("Precedence")
            .is_some_and(|v| ["bulk", "junk", "list", "auto_reply"].contains(&v.as_str()))
        || header("List-Id").is_some()
        || report
        || machine_sender;
    let text = message
        .body_text(0)
        .map(|t| new_text(&t))
        .unwrap_or_default();
    let attachments = message
        .attachments()
        .filter(|part| !part.is_message())
        .map(|part| {
            let name = part.attachment_name().unwrap_or("attachment").to_string();
            (name, part.contents().to_vec())
        })
        .collect();
    Some(Incoming {
        message_id,
        from,
        text,
        attachments,
        automatic,
    })
}

/// The addresses a mail was delivered to, the most telling first: `Delivered-To`,
/// `X-Original-To`, then `To` and `Cc`.
pub fn recipients(raw: &[u8]) -> Vec<String> {
    let Some(message) = MessageParser::default().parse_headers(raw) else {
        return Vec::new();
    };
    let mut found: Vec<String> = Vec::new();
    for name in ["Delivered-To", "X-Original-To"] {
        for value in message.header_values(name) {
            if let Some(text) = value.as_text() {
                found.push(text.trim().trim_matches(['<', '>']).to_string());
            } else if let Some(list) = value.as_address() {
                found.extend(list.iter().filter_map(|a| a.address()).map(str::to_string));
            }
        }
    }
    for list in [message.to(), message.cc()].into_iter().flatten() {
        found.extend(list.iter().filter_map(|a| a.address()).map(str::to_string));
    }
    found
}

/// What the sender wrote: the text above the quoted original (`On … wrote:`, Outlook's
/// `From:`/`Sent:` block, `-----Original Message-----`, a line of underscores), without `>` lines
/// and without the signature (`-- `) or a "Sent from my phone" line.
pub fn new_text(text: &str) -> String {
    let text = text.replace("\r\n", "\n");
    let lines: Vec<&str> = text.lines().collect();
    let mut kept: Vec<&str> = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let trimmed = line.trim();
        let next = lines.get(i + 1).map_or("", |l| l.trim());
        let quote_intro = |l: &str| {
            (l.starts_with("On ") && l.ends_with("wrote:"))
                || (l.starts_with("Le ") && l.ends_with("a écrit :"))
                || (l.starts_with("Am ") && l.ends_with("schrieb:"))
        };
        // Some clients wrap the "On … wrote:" line in two.
        let split_intro = trimmed.starts_with("On ")
            && !trimmed.ends_with("wrote:")
            && next.ends_with("wrote:")
            && lines
                .get(i + 2)
                .is_some_and(|l| l.trim().is_empty() || l.starts_with('>'));
        let outlook_block = trimmed.starts_with("From: ")
            && lines[i + 1..]
                .iter()
                .take(4)
                .any(|l| l.starts_with("Sent: ") || l.starts_with("Date: "));
        if quote_intro(trimmed)
            || split_intro
            || outlook_block
            || trimmed.starts_with("-----Original Message-----")
            || (trimmed.len() >= 20 && trimmed.chars().all(|c| c == '_'))
            || *line == "-- "
            || trimmed == "--"
        {
            break;
        }
        if trimmed.starts_with('>') {
            continue;
        }
        kept.push(line.trim_end());
    }
    while kept
        .last()
        .is_some_and(|l| l.is_empty() || l.starts_with("Sent from my "))
    {
        kept.pop();
    }
    let start = kept.iter().take_while(|l| l.is_empty()).count();
    kept[start..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_originals_and_signatures_are_cut() {
        let gmail = "Sounds good, see you there.\n\nOn Tue, Dec 1, 2026 at 10:02 AM Confab <confab@x.org> wrote:\n> bob: lunch?\n";
        assert_eq!(new_text(gmail), "Sounds good, see you there.");
        let wrapped =
            "Yes.\n\nOn Tue, Dec 1, 2026 at 10:02 AM Confab\n<confab@x.org> wrote:\n\n> lunch?\n";
        assert_eq!(new_text(wrapped), "Yes.");
        let outlook = "Agreed.\r\n\r\nFrom: Confab <confab@x.org>\r\nSent: Tuesday, December 1, 2026 10:02\r\nTo: ann@x.org\r\nSubject: 1 new message\r\n\r\nbob: lunch?\r\n";
        assert_eq!(new_text(outlook), "Agreed.");
        let original = "Fine by me\n-----Original Message-----\nbob: lunch?";
        assert_eq!(new_text(original), "Fine by me");
        let signed = "Ok!\n\n-- \nAnn, treasurer\n";
        assert_eq!(new_text(signed), "Ok!");
        let inline = "> lunch?\nYes, at noon.\n> where?\nThe usual place.\n\nSent from my phone";
        assert_eq!(new_text(inline), "Yes, at noon.\nThe usual place.");
        let french = "D'accord.\n\nLe mar. 1 déc. 2026 à 10:02, Confab a écrit :\n> lunch?";
        assert_eq!(new_text(french), "D'accord.");
    }

    #[test]
    fn machines_are_recognised() {
        let auto = b"From: ann@x.org\r\nAuto-Submitted: auto-replied\r\nMessage-ID: <a@x>\r\n\r\nI am away.\r\n";
        assert!(parse(auto).is_some_and(|m| m.automatic));
        let human =
            b"From: Ann <Ann@X.org>\r\nAuto-Submitted: no\r\nMessage-ID: <b@x>\r\n\r\nHello\r\n";
        let parsed = parse(human).expect("a mail");
        assert!(!parsed.automatic);
        assert_eq!(parsed.from.as_deref(), Some("ann@x.org"));
        assert_eq!(parsed.message_id, "b@x");
        let bounce = b"From: MAILER-DAEMON@x.org\r\nMessage-ID: <c@x>\r\n\r\nUndeliverable\r\n";
        assert!(parse(bounce).is_some_and(|m| m.automatic));
    }

    #[test]
    fn html_only_mail_becomes_text() {
        let html = b"From: ann@x.org\r\nMessage-ID: <d@x>\r\nContent-Type: text/html\r\n\r\n<p>Yes <b>please</b></p><blockquote>old</blockquote>\r\n";
        let parsed = parse(html).expect("a mail");
        assert!(parsed.text.contains("Yes please"), "{:?}", parsed.text);
    }
}
