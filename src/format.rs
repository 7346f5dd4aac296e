//! How a message's text becomes HTML (a small, safe Markdown subset) and plain text (for search
//! excerpts, exports and mail). One parser, one sanitiser, so a message reads the same everywhere.
//!
//! Allowed: emphasis, strong, inline code, code blocks, block quotes, lists, and links to http,
//! https and mailto; bare URLs become links; a single newline is a line break. Raw HTML is shown as
//! text, and whatever the parser produces goes through ammonia's allow-list.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::sync::{Arc, OnceLock};

use chrono::{Datelike, NaiveDate, NaiveDateTime, TimeZone, Timelike, Utc};
use chrono_tz::Tz;
use serde::Serialize;

use pulldown_cmark::{CowStr, Event, Options, Parser, Tag, TagEnd};

fn sanitizer() -> &'static ammonia::Builder<'static> {
    static BUILDER: OnceLock<ammonia::Builder<'static>> = OnceLock::new();
    BUILDER.get_or_init(|| {
        let mut builder = ammonia::Builder::empty();
        builder
            .tags(HashSet::from([
                "p",
                "br",
                "em",
                "strong",
                "del",
                "code",
                "pre",
                "blockquote",
                "ul",
                "ol",
                "li",
                "a",
                "span",
            ]))
            .allowed_classes(std::collections::HashMap::from([(
                "span",
                HashSet::from(["mention"]),
            )]))
            .tag_attributes(std::collections::HashMap::from([
                ("a", HashSet::from(["href"])),
                ("ol", HashSet::from(["start"])),
            ]))
            .url_schemes(HashSet::from(["http", "https", "mailto"]))
            .url_relative(ammonia::UrlRelative::Deny)
            .link_rel(Some("noopener noreferrer nofollow"));
        builder
    })
}

fn parser(body: &str) -> Parser<'_> {
    Parser::new_ext(body, Options::ENABLE_STRIKETHROUGH)
}

/// Bare http(s) URLs in text become links (outside code and existing links).
fn linkify(text: CowStr<'_>, out: &mut Vec<Event<'static>>) {
    let mut finder = linkify::LinkFinder::new();
    finder.kinds(&[linkify::LinkKind::Url]);
    for span in finder.spans(&text) {
        let part = span.as_str();
        let lower = part.to_ascii_lowercase();
        if span.kind().is_some() && (lower.starts_with("http://") || lower.starts_with("https://"))
        {
            let url = CowStr::from(part.to_string());
            out.push(Event::Start(Tag::Link {
                link_type: pulldown_cmark::LinkType::Autolink,
                dest_url: url.clone(),
                title: CowStr::from(""),
                id: CowStr::from(""),
            }));
            out.push(Event::Text(url));
            out.push(Event::End(TagEnd::Link));
        } else {
            mentions(part, out);
        }
    }
}

/// `@username` becomes a highlighted mention; everything else stays text.
fn mentions(text: &str, out: &mut Vec<Event<'static>>) {
    let is_name = |c: char| c.is_ascii_alphanumeric() || "_.-".contains(c);
    let mut rest = text;
    while let Some(at) = rest.find('@') {
        let before_ok = rest[..at]
            .chars()
            .next_back()
            .is_none_or(|c| !c.is_alphanumeric());
        let name: String = rest[at + 1..].chars().take_while(|c| is_name(*c)).collect();
        let name = name.trim_end_matches('.');
        if before_ok
            && (2..=32).contains(&name.len())
            && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        {
            out.push(Event::Text(CowStr::from(rest[..at].to_string())));
            out.push(Event::Html(CowStr::from(format!(
                r#"<span class="mention">@{}</span>"#,
                escape(name)
            ))));
            rest = &rest[at + 1 + name.len()..];
        } else {
            out.push(Event::Text(CowStr::from(rest[..=at].to_string())));
            rest = &rest[at + 1..];
        }
    }
    if !rest.is_empty() {
        out.push(Event::Text(CowStr::from(rest.to_string())));
    }
}

/// The deepest nesting of quotes, lists and emphasis a message may produce; deeper markers keep
/// their text but add no level (`> ` repeated thousands of times would otherwise make a tree that
/// takes seconds to sanitise).
pub const MAX_NESTING: usize = 8;

/// Whether a tag opens a level that counts towards [`MAX_NESTING`].
fn nests(tag: &Tag<'_>) -> bool {
    matches!(
        tag,
        Tag::BlockQuote(_)
            | Tag::List(_)
            | Tag::Item
            | Tag::Emphasis
            | Tag::Strong
            | Tag::Strikethrough
    )
}

/// The parser's events with levels past [`MAX_NESTING`] left out (their contents kept).
fn bounded(body: &str) -> impl Iterator<Item = Event<'_>> {
    let mut open: Vec<bool> = Vec::new();
    let mut depth = 0usize;
    parser(body).filter(move |event| match event {
        Event::Start(tag) => {
            let counted = nests(tag);
            let keep = !counted || depth < MAX_NESTING;
            if counted && keep {
                depth += 1;
            }
            open.push(keep && counted);
            keep
        }
        Event::End(_) => {
            let counted_and_kept = open.pop().unwrap_or(false);
            if counted_and_kept {
                depth -= 1;
            }
            counted_and_kept || !matches!(event, Event::End(end) if nests_end(end))
        }
        _ => true,
    })
}

fn nests_end(end: &TagEnd) -> bool {
    matches!(
        end,
        TagEnd::BlockQuote(_)
            | TagEnd::List(_)
            | TagEnd::Item
            | TagEnd::Emphasis
            | TagEnd::Strong
            | TagEnd::Strikethrough
    )
}

/// A message body as safe HTML, rendered once for each distinct body (see [`crate::cache`]) and
/// shared with the memo.
pub fn message_html(body: &str) -> Arc<str> {
    static RENDERED: OnceLock<crate::cache::Memo> = OnceLock::new();
    let memo = RENDERED.get_or_init(|| crate::cache::Memo::new(8 * 1024 * 1024));
    match memo.get_or_render(memo.key(&body), || {
        Ok::<_, std::convert::Infallible>(render_message_html(body))
    }) {
        Ok(html) => html,
        Err(never) => match never {},
    }
}

fn render_message_html(body: &str) -> String {
    let mut events: Vec<Event<'static>> = Vec::new();
    let (mut in_code, mut in_link) = (false, false);
    for event in bounded(body) {
        match event {
            // Raw HTML is text, never markup (its line breaks kept, its URLs linked).
            Event::Html(html) | Event::InlineHtml(html) => {
                for line in html.split_inclusive('\n') {
                    linkify(
                        CowStr::from(line.trim_end_matches('\n').to_string()),
                        &mut events,
                    );
                    if line.ends_with('\n') {
                        events.push(Event::HardBreak);
                    }
                }
            }
            Event::End(TagEnd::HtmlBlock) => {
                if matches!(events.last(), Some(Event::HardBreak)) {
                    events.pop();
                }
            }
            Event::SoftBreak => events.push(Event::HardBreak),
            Event::Text(text) if !in_code && !in_link => linkify(text, &mut events),
            Event::Start(Tag::CodeBlock(_)) => {
                in_code = true;
                events.push(Event::Start(Tag::CodeBlock(
                    pulldown_cmark::CodeBlockKind::Indented,
                )));
            }
            Event::End(TagEnd::CodeBlock) => {
                in_code = false;
                events.push(Event::End(TagEnd::CodeBlock));
            }
            Event::Start(Tag::Link { .. }) => {
                in_link = true;
                events.push(event.into_static());
            }
            Event::End(TagEnd::Link) => {
                in_link = false;
                events.push(event.into_static());
            }
            // Images show as their link; headings and the rest keep only their text.
            Event::Start(Tag::Image { dest_url, .. }) => {
                in_link = true;
                events.push(Event::Start(Tag::Link {
                    link_type: pulldown_cmark::LinkType::Inline,
                    dest_url: CowStr::from(dest_url.to_string()),
                    title: CowStr::from(""),
                    id: CowStr::from(""),
                }));
            }
            Event::End(TagEnd::Image) => {
                in_link = false;
                events.push(Event::End(TagEnd::Link));
            }
            other => events.push(other.into_static()),
        }
    }
    let mut html = String::with_capacity(body.len() * 2);
    pulldown_cmark::html::push_html(&mut html, events.into_iter());
    sanitizer().clean(&html).to_string().trim().to_string()
}

/// A message body as plain text: the words without the Markdown, one line per block.
pub fn message_text(body: &str) -> String {
    let mut text = String::with_capacity(body.len());
    for event in parser(body) {
        match event {
            Event::Text(t) | Event::Code(t) | Event::Html(t) | Event::InlineHtml(t) => {
                text.push_str(&t)
            }
            Event::SoftBreak | Event::HardBreak => text.push('\n'),
            Event::End(
                TagEnd::Paragraph
                | TagEnd::Item
                | TagEnd::CodeBlock
                | TagEnd::BlockQuote(_)
                | TagEnd::Heading(_),
            ) if !text.ends_with('\n') => text.push('\n'),
            _ => {}
        }
    }
    text.trim().to_string()
}

/// Escapes text for HTML element content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// An excerpt of plain text around the first of `terms`, escaped, with every term wrapped in
/// `<mark>` (case-insensitive). At most about `width` characters.
pub fn excerpt(text: &str, terms: &[String], width: usize) -> String {
    // Lower-case character by character, keeping each character's byte length, so that a byte
    // offset in one string is a character boundary in the other.
    let fold = |s: &str| -> String {
        s.chars()
            .map(|c| {
                c.to_lowercase()
                    .next()
                    .filter(|l| l.len_utf8() == c.len_utf8())
                    .unwrap_or(c)
            })
            .collect()
    };
    let lower = fold(text);
    let terms: Vec<String> = terms
        .iter()
        .map(|t| fold(t))
        .filter(|t| !t.is_empty())
        .collect();
    let first = terms.iter().filter_map(|t| lower.find(t.as_str())).min();
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    let start_char = match first {
        Some(byte) => chars
            .iter()
            .position(|(b, _)| *b >= byte)
            .unwrap_or(0)
            .saturating_sub(width / 3),
        None => 0,
    };
    let end_char = (start_char + width).min(chars.len());
    let start = chars.get(start_char).map_or(text.len(), |(b, _)| *b);
    let end = chars.get(end_char).map_or(text.len(), |(b, _)| *b);
    let mut out = String::new();
    if start > 0 {
        out.push('…');
    }
    let mut at = start;
    while at < end {
        let hit = terms
            .iter()
            .filter(|t| lower[at..end].starts_with(t.as_str()))
            .map(|t| t.len())
            .max();
        let len = hit.unwrap_or_else(|| text[at..].chars().next().map_or(1, char::len_utf8));
        let piece = escape(&text[at..at + len]);
        if hit.is_some() {
            out.push_str("<mark>");
            out.push_str(&piece);
            out.push_str("</mark>");
        } else {
            out.push_str(&piece);
        }
        at += len;
    }
    if end < text.len() {
        out.push('…');
    }
    out
}

/// A time shown to a reader in their zone.
#[derive(Debug, Hash, Serialize)]
pub struct When {
    /// `14:05`.
    pub time: String,
    /// `Monday 23 November 2026`.
    pub day: String,
    /// `2026-11-23 14:05 CET`, for a tooltip.
    pub full: String,
    /// RFC 3339 in UTC, for `<time datetime>`.
    pub iso: String,
    /// Relative to now, for lists: `today 09:01`, `yesterday 17:30`, `Mon 30 Nov`, `30 Nov 2025`.
    pub relative: String,
}

/// Formats a stored UTC time in a reader's zone.
pub fn when(at: NaiveDateTime, tz: Tz) -> When {
    when_seen_at(at, tz, Utc::now().naive_utc())
}

/// [`when`], as seen at `now` (UTC). Written out by hand rather than through `strftime` patterns,
/// which would be parsed again for every message of every page.
pub fn when_seen_at(at: NaiveDateTime, tz: Tz, now: NaiveDateTime) -> When {
    when_on(at, tz, today(tz, now))
}

/// The day it is in zone `tz` at `now` (UTC): what [`when_on`] counts days from.
pub fn today(tz: Tz, now: NaiveDateTime) -> NaiveDate {
    Utc.from_utc_datetime(&now).with_timezone(&tz).date_naive()
}

/// [`when_seen_at`] on the reader's day `today` (see [`today`]), for a page of times seen at once.
/// Each field is written digit by digit: a page writes five per message.
pub fn when_on(at: NaiveDateTime, tz: Tz, today: NaiveDate) -> When {
    let utc = Utc.from_utc_datetime(&at);
    let local = utc.with_timezone(&tz);
    let day = local.date_naive();
    let (hour, minute) = (local.hour(), local.minute());
    let (weekday, month) = (
        WEEKDAYS[local.weekday().num_days_from_monday() as usize],
        MONTHS[local.month0() as usize],
    );
    let year = year(day.year());
    let clock = |out: &mut String| {
        push2(out, hour);
        out.push(':');
        push2(out, minute);
    };
    let mut relative = String::with_capacity(16);
    if day == today {
        relative.push_str("today ");
        clock(&mut relative);
    } else if today.pred_opt() == Some(day) {
        relative.push_str("yesterday ");
        clock(&mut relative);
    } else if day.year() == today.year() {
        relative.push_str(&weekday[..3]);
        relative.push(' ');
        push_number(&mut relative, day.day());
        relative.push(' ');
        relative.push_str(&month[..3]);
    } else {
        push_number(&mut relative, day.day());
        relative.push(' ');
        relative.push_str(&month[..3]);
        relative.push(' ');
        relative.push_str(&year);
    }
    let mut time = String::with_capacity(5);
    clock(&mut time);
    let mut long_day = String::with_capacity(32);
    long_day.push_str(weekday);
    long_day.push(' ');
    push_number(&mut long_day, day.day());
    long_day.push(' ');
    long_day.push_str(month);
    long_day.push(' ');
    long_day.push_str(&year);
    let mut full = String::with_capacity(24);
    full.push_str(&year);
    full.push('-');
    push2(&mut full, day.month());
    full.push('-');
    push2(&mut full, day.day());
    full.push(' ');
    clock(&mut full);
    full.push(' ');
    // The zone's abbreviation (`CET`) or offset: a few characters, through `Display`.
    let _ = write!(full, "{}", local.offset());
    When {
        time,
        day: long_day,
        full,
        iso: iso(at),
        relative,
    }
}

/// `at` (UTC) in RFC 3339 to the second, as `<time datetime>` takes it: `2026-12-06T14:05:09Z`.
fn iso(at: NaiveDateTime) -> String {
    if !(0..=9999).contains(&at.year()) {
        return Utc
            .from_utc_datetime(&at)
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    }
    let mut out = String::with_capacity(20);
    out.push_str(&year(at.year()));
    out.push('-');
    push2(&mut out, at.month());
    out.push('-');
    push2(&mut out, at.day());
    out.push('T');
    push2(&mut out, at.hour());
    out.push(':');
    push2(&mut out, at.minute());
    out.push(':');
    push2(&mut out, at.second());
    out.push('Z');
    out
}

/// Appends `n` (below 100) as two digits: `05`.
fn push2(out: &mut String, n: u32) {
    out.push(char::from(b'0' + (n / 10 % 10) as u8));
    out.push(char::from(b'0' + (n % 10) as u8));
}

/// Appends a day of the month (1 to 31) without padding, as `%-d` writes it.
fn push_number(out: &mut String, n: u32) {
    if n >= 10 {
        out.push(char::from(b'0' + (n / 10 % 10) as u8));
    }
    out.push(char::from(b'0' + (n % 10) as u8));
}

/// A year as `%Y` writes it: four digits, or more with a sign.
fn year(year: i32) -> String {
    if (0..=9999).contains(&year) {
        format!("{year:04}")
    } else {
        format!("{year:+}")
    }
}

/// Day names, Monday first, as `%A` writes them.
const WEEKDAYS: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];

/// Month names, as `%B` writes them.
const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

/// A byte count for people, in the binary units the README and settings use: `512 B`, `1.5 MiB`.
pub fn size(bytes: i64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rendered(body: &str) -> String {
        message_html(body).to_string()
    }

    #[test]
    fn times_in_lists_read_relative_to_the_readers_day() {
        let tz: Tz = "Europe/Berlin".parse().expect("zone");
        let at = |s: &str| NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").expect("time");
        // 23:30 UTC on the 1st is already the 2nd in Berlin.
        let now = at("2026-12-01 23:30");
        let seen = |t: &str| when_seen_at(at(t), tz, now).relative;
        assert_eq!(seen("2026-12-01 23:10"), "today 00:10");
        assert_eq!(seen("2026-12-01 08:01"), "yesterday 09:01");
        assert_eq!(seen("2026-11-30 08:01"), "Mon 30 Nov");
        assert_eq!(seen("2025-11-30 08:01"), "30 Nov 2025");
    }

    /// How times were written before [`when_seen_at`] wrote them by hand.
    fn by_strftime(at: NaiveDateTime, tz: Tz, now: NaiveDateTime) -> [String; 5] {
        let local = Utc.from_utc_datetime(&at).with_timezone(&tz);
        let today = Utc.from_utc_datetime(&now).with_timezone(&tz).date_naive();
        let day = local.date_naive();
        let relative = if day == today {
            local.format("today %H:%M")
        } else if today.pred_opt() == Some(day) {
            local.format("yesterday %H:%M")
        } else if day.year() == today.year() {
            local.format("%a %-d %b")
        } else {
            local.format("%-d %b %Y")
        };
        [
            local.format("%H:%M").to_string(),
            local.format("%A %-d %B %Y").to_string(),
            local.format("%Y-%m-%d %H:%M %Z").to_string(),
            relative.to_string(),
            Utc.from_utc_datetime(&at)
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        ]
    }

    #[test]
    fn times_read_as_strftime_writes_them() {
        let at = |s: &str| NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").expect("time");
        let now = at("2026-12-06 12:00");
        for zone in ["UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata"] {
            let tz: Tz = zone.parse().expect("zone");
            let mut t = at("2025-01-01 00:05");
            for early in ["0099-03-01 10:00", "0999-12-31 23:59", "1999-06-15 12:00"] {
                let early = at(early);
                let when = when_seen_at(early, tz, now);
                assert_eq!(
                    [when.time, when.day, when.full, when.relative, when.iso],
                    by_strftime(early, tz, now)
                );
            }
            while t < now {
                let when = when_seen_at(t, tz, now);
                assert_eq!(
                    [when.time, when.day, when.full, when.relative, when.iso],
                    by_strftime(t, tz, now)
                );
                t += chrono::Duration::hours(7)
                    + chrono::Duration::minutes(13)
                    + chrono::Duration::seconds(17);
            }
        }
    }

    #[test]
    fn nesting_is_bounded() {
        let deep = format!("{}deep", "> ".repeat(5000));
        let html = rendered(&deep);
        assert_eq!(html.matches("<blockquote>").count(), MAX_NESTING);
        assert_eq!(html.matches("</blockquote>").count(), MAX_NESTING);
        assert!(html.contains("deep"));
        let lists = format!("{}item", "- ".repeat(3000));
        let html = rendered(&lists);
        assert!(html.matches("<ul>").count() <= MAX_NESTING);
        assert!(html.contains("item"));
        let shallow = rendered("> one\n>> two");
        assert_eq!(shallow.matches("<blockquote>").count(), 2);
    }

    #[test]
    fn markdown_subset() {
        assert_eq!(
            rendered("*a* **b** `c`"),
            "<p><em>a</em> <strong>b</strong> <code>c</code></p>"
        );
        assert_eq!(
            rendered("> quoted"),
            "<blockquote>\n<p>quoted</p>\n</blockquote>"
        );
        assert_eq!(
            rendered("- one\n- two"),
            "<ul>\n<li>one</li>\n<li>two</li>\n</ul>"
        );
        assert_eq!(
            rendered("```\nlet x = <y>;\n```"),
            "<pre><code>let x = &lt;y&gt;;\n</code></pre>"
        );
        assert_eq!(
            rendered("line one\nline two"),
            "<p>line one<br>\nline two</p>"
        );
        assert_eq!(
            rendered("***nested* emphasis**"),
            "<p><strong><em>nested</em> emphasis</strong></p>"
        );
    }

    #[test]
    fn links_are_safe() {
        assert_eq!(
            rendered("see https://example.org/a?b=1&c=2"),
            r#"<p>see <a href="https://example.org/a?b=1&amp;c=2" rel="noopener noreferrer nofollow">https://example.org/a?b=1&amp;c=2</a></p>"#
        );
        assert_eq!(
            rendered("[x](javascript:alert(1))"),
            "<p><a rel=\"noopener noreferrer nofollow\">x</a></p>"
        );
        assert_eq!(
            rendered("[mail](mailto:a@example.org)"),
            r#"<p><a href="mailto:a@example.org" rel="noopener noreferrer nofollow">mail</a></p>"#
        );
        assert!(!rendered("<script>alert(1)</script>").contains("<script"));
        assert_eq!(rendered("<b>hi</b>"), "<p>&lt;b&gt;hi&lt;/b&gt;</p>");
        assert_eq!(
            rendered("<div>\nhttps://example.org\n</div>"),
            "&lt;div&gt;<br>\n<a href=\"https://example.org\" rel=\"noopener noreferrer nofollow\">https://example.org</a><br>\n&lt;/div&gt;"
        );
        assert!(!rendered("<img src=x onerror=alert(1)>").contains("<img"));
        assert!(!rendered("![pic](javascript:alert(1))").contains("javascript"));
        assert_eq!(
            rendered("`https://example.org`"),
            "<p><code>https://example.org</code></p>"
        );
        assert!(!rendered("# Title").contains("<h1"));
    }

    #[test]
    fn mentions_are_highlighted() {
        assert_eq!(
            rendered("hi @ann, see this"),
            r#"<p>hi <span class="mention">@ann</span>, see this</p>"#
        );
        assert_eq!(
            rendered("mail ann@example.org"),
            "<p>mail ann@example.org</p>"
        );
        assert_eq!(
            rendered("thanks @bob."),
            r#"<p>thanks <span class="mention">@bob</span>.</p>"#
        );
        assert_eq!(rendered("`@ann`"), "<p><code>@ann</code></p>");
    }

    #[test]
    fn plain_text_and_excerpts() {
        assert_eq!(
            message_text("**bold** and `code`\n\n> quote"),
            "bold and code\nquote"
        );
        let terms = vec!["fox".to_string()];
        assert_eq!(
            excerpt("The quick <brown> fox", &terms, 100),
            "The quick &lt;brown&gt; <mark>fox</mark>"
        );
        let long = format!("{} needle {}", "a".repeat(300), "b".repeat(300));
        let cut = excerpt(&long, &["NEEDLE".to_string()], 60);
        assert!(
            cut.starts_with('…') && cut.ends_with('…') && cut.contains("<mark>needle</mark>"),
            "{cut}"
        );
        assert_eq!(
            excerpt("ÄÖÜ straße", &["STRASSE".to_string()], 50),
            "ÄÖÜ straße"
        );
    }
}
