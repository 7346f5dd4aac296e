//! Validation and clean-up of what people type: names, slugs, message bodies.

use crate::error::{Error, Result};

/// Removes control characters other than newline and tab, and turns `\r\n` and lone `\r` into `\n`.
pub fn clean(input: &str) -> String {
    input
        .replace("\r\n", "\n")
        .replace('\r', "\n")
        .chars()
        .filter(|c| !c.is_control() || *c == '\n' || *c == '\t')
        .filter(|c| !matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'))
        .collect()
}

/// A message body as it is stored: cleaned, trimmed, not empty, at most `max_chars` characters.
pub fn message_body(input: &str, max_chars: usize) -> Result<String> {
    let body = clean(input);
    let body = body.trim_matches(|c: char| c.is_whitespace());
    if body.is_empty() {
        return Err(Error::Invalid("A message can't be empty.".into()));
    }
    let count = body.chars().count();
    if count > max_chars {
        return Err(Error::Invalid(format!(
            "This message is {count} characters long; the limit is {max_chars}. Please shorten it or split it in two."
        )));
    }
    Ok(body.to_string())
}

/// A single-line name (room name, description): cleaned, one line, trimmed, length-limited.
pub fn line(input: &str, what: &str, min: usize, max: usize) -> Result<String> {
    let cleaned = clean(input).replace(['\n', '\t'], " ");
    let value = cleaned.trim();
    let count = value.chars().count();
    if count < min {
        return Err(Error::Invalid(format!("The {what} can't be empty.")));
    }
    if count > max {
        return Err(Error::Invalid(format!(
            "The {what} can be at most {max} characters long."
        )));
    }
    Ok(value.to_string())
}

/// A file name as shown and offered for download: no folders, no control characters, at most
/// 200 characters (the extension kept), never empty.
pub fn file_name(input: &str) -> String {
    let last = input.rsplit(['/', '\\']).next().unwrap_or("");
    let cleaned: String = clean(last).replace(['\n', '\t'], " ");
    let name = cleaned.trim().trim_start_matches('.').trim();
    if name.is_empty() {
        return "file".to_string();
    }
    if name.chars().count() <= 200 {
        return name.to_string();
    }
    let (stem, ext) = match name.rsplit_once('.') {
        Some((stem, ext)) if !ext.is_empty() && ext.chars().count() <= 16 => {
            (stem, format!(".{ext}"))
        }
        _ => (name, String::new()),
    };
    let keep = 200 - ext.chars().count();
    format!("{}{ext}", stem.chars().take(keep).collect::<String>())
}

/// A caption: cleaned and trimmed like a message, but it may be empty.
pub fn caption(input: &str, max_chars: usize) -> Result<String> {
    if input.trim().is_empty() {
        return Ok(String::new());
    }
    message_body(input, max_chars)
}

/// A username: 2 to 32 characters of `a-z`, `0-9`, `_`, `.` and `-`, starting with a letter or digit.
/// Stored in lower case, so that `Ann` and `ann` are the same person.
pub fn username(input: &str) -> Result<String> {
    let name = input.trim().to_lowercase();
    let ok = (2..=32).contains(&name.chars().count())
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
    if ok {
        Ok(name)
    } else {
        Err(Error::Invalid(
            "A username is 2 to 32 characters: letters a-z, digits, '_', '.' or '-', starting with a letter or digit."
                .into(),
        ))
    }
}

/// A room slug (the room's address): 1 to 40 characters of `a-z`, `0-9` and `-`, starting with a letter or digit.
pub fn slug(input: &str) -> Result<String> {
    let slug = input.trim().to_lowercase();
    let ok = (1..=40).contains(&slug.len())
        && slug.starts_with(|c: char| c.is_ascii_alphanumeric())
        && slug.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    if ok {
        Ok(slug)
    } else {
        Err(Error::Invalid(
            "A room address is 1 to 40 characters: letters a-z, digits or '-', starting with a letter or digit."
                .into(),
        ))
    }
}

/// An email address, checked loosely: one `@`, something on both sides, no spaces.
pub fn email(input: &str) -> Result<String> {
    let email = input.trim();
    let ok = email.len() <= 254
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
        && matches!(email.split_once('@'), Some((local, domain)) if !local.is_empty() && domain.contains('.') && !domain.contains('@'));
    if ok {
        Ok(email.to_string())
    } else {
        Err(Error::Invalid("Please give a valid email address.".into()))
    }
}

/// A new password: 8 to 1024 characters.
pub fn password(input: &str) -> Result<&str> {
    match input.chars().count() {
        0..=7 => Err(Error::Invalid(
            "A password needs at least 8 characters.".into(),
        )),
        8..=1024 => Ok(input),
        _ => Err(Error::Invalid(
            "A password can be at most 1024 characters long.".into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_keeps_newlines_and_drops_controls() {
        assert_eq!(clean("a\r\nb\rc\u{0}d\u{7}e\tf\u{202e}g"), "a\nb\ncde\tfg");
    }

    #[test]
    fn message_body_rules() {
        assert!(message_body(" \n\t ", 10).is_err());
        assert!(message_body("\u{0}\u{1}", 10).is_err());
        assert_eq!(message_body("  hi\n", 10).unwrap(), "hi");
        assert!(message_body("ééééééééééé", 10).is_err());
        assert_eq!(message_body("éééééééééé", 10).unwrap().chars().count(), 10);
    }

    #[test]
    fn file_names_are_made_safe() {
        assert_eq!(file_name("../../etc/passwd"), "passwd");
        assert_eq!(file_name("C:\\Users\\ann\\report.pdf"), "report.pdf");
        assert_eq!(file_name("a\u{0}b\nc.txt"), "ab c.txt");
        assert_eq!(file_name(".."), "file");
        assert_eq!(file_name(""), "file");
        assert_eq!(file_name(".htaccess"), "htaccess");
        let long = format!("{}.jpeg", "x".repeat(500));
        let safe = file_name(&long);
        assert_eq!(safe.chars().count(), 200);
        assert!(safe.ends_with("x.jpeg"));
    }

    #[test]
    fn names_and_slugs() {
        assert_eq!(username("Ann").unwrap(), "ann");
        assert!(username("a").is_err());
        assert!(username("-ann").is_err());
        assert!(username("ann smith").is_err());
        assert_eq!(slug("Design-2").unwrap(), "design-2");
        assert!(slug("../etc").is_err());
        assert!(slug("").is_err());
        assert!(email("ann@example.org").is_ok());
        assert!(email("ann@localhost").is_err());
        assert!(email("a b@example.org").is_err());
    }
}
