//! Slack's message markup ("mrkdwn") as Confab's Markdown: `*bold*` → `**bold**`, `_it_` → `*it*`,
//! `~strike~` → `~~strike~~`, `<https://x|label>` → `[label](https://x)`, `<#C1|name>` → `#name`,
//! `<!here>` → `@here`, entities decoded; code is left as it is. A mention `<@U123>` stays in
//! that form (with any `|name` dropped), for the writer to turn into `@username` once it knows who
//! U123 became.

/// `text` in Slack's markup, as Markdown.
pub fn to_markdown(text: &str) -> String {
    let text: String = text.chars().filter(|c| !is_slot_mark(*c)).collect();
    let parts: Vec<&str> = text.split("```").collect();
    // With an odd number of fences, the last one is literal (Slack shows it so too).
    let unclosed = parts.len() % 2 == 0;
    let mut out = String::with_capacity(text.len() + 16);
    for (i, part) in parts.iter().enumerate() {
        let last = i + 1 == parts.len();
        if i % 2 == 1 && !(unclosed && last) {
            let code = part.trim_matches('\n');
            if !out.is_empty() && !out.ends_with('\n') {
                out.push('\n');
            }
            out.push_str("```\n");
            out.push_str(&decode_entities(code));
            out.push_str("\n```\n");
        } else {
            if i % 2 == 1 {
                out.push_str("```");
            }
            let part = if i > 0 && !(unclosed && last) {
                part.strip_prefix('\n').unwrap_or(part)
            } else {
                part
            };
            inline(part, &mut out);
        }
    }
    out.trim_end_matches('\n').to_string()
}

/// Text outside code blocks: inline code kept, everything else converted.
fn inline(text: &str, out: &mut String) {
    let parts: Vec<&str> = text.split('`').collect();
    // With an odd number of backticks, the last one is literal.
    let unclosed = parts.len() % 2 == 0;
    for (i, part) in parts.iter().enumerate() {
        let last = i + 1 == parts.len();
        if i % 2 == 1 && !(unclosed && last) {
            out.push('`');
            out.push_str(&decode_entities(part));
            out.push('`');
        } else {
            if i % 2 == 1 {
                out.push('`');
            }
            out.push_str(&plain(part));
        }
    }
}

/// The marks around a placeholder for a `<…>` form while emphasis is converted (from Unicode's
/// private use area; removed from the input first).
const SLOT_OPEN: char = '\u{E000}';
const SLOT_CLOSE: char = '\u{E001}';

fn is_slot_mark(c: char) -> bool {
    c == SLOT_OPEN || c == SLOT_CLOSE
}

/// Text outside code: the `<…>` forms converted and set aside, so that emphasis is converted
/// around them but never inside an address.
fn plain(text: &str) -> String {
    let mut forms: Vec<String> = Vec::new();
    let mut slotted = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find('<') {
        let Some(len) = rest[start..].find('>') else {
            break;
        };
        slotted.push_str(&rest[..start]);
        slotted.push(SLOT_OPEN);
        slotted.push_str(&forms.len().to_string());
        slotted.push(SLOT_CLOSE);
        forms.push(decode_entities(&form(&rest[start + 1..start + len])));
        rest = &rest[start + len + 1..];
    }
    slotted.push_str(rest);
    let converted = emphasis(&decode_entities(&slotted));
    let mut out = String::with_capacity(converted.len());
    let mut rest = converted.as_str();
    while let Some(start) = rest.find(SLOT_OPEN) {
        out.push_str(&rest[..start]);
        let after = &rest[start + SLOT_OPEN.len_utf8()..];
        let Some(end) = after.find(SLOT_CLOSE) else {
            rest = after;
            continue;
        };
        if let Some(form) = after[..end]
            .parse::<usize>()
            .ok()
            .and_then(|i| forms.get(i))
        {
            out.push_str(form);
        }
        rest = &after[end + SLOT_CLOSE.len_utf8()..];
    }
    out.push_str(rest);
    out
}

/// One `<…>` form (without its brackets): a link, a room name, a mention or a `<!…>` command.
fn form(inner: &str) -> String {
    let (target, label) = match inner.split_once('|') {
        Some((target, label)) => (target, Some(label)),
        None => (inner, None),
    };
    if let Some(user) = target.strip_prefix('@') {
        return format!("<@{user}>");
    }
    if let Some(room) = target.strip_prefix('#') {
        return format!("#{}", label.unwrap_or(room));
    }
    if let Some(command) = target.strip_prefix('!') {
        return match (command, label) {
            (_, Some(label)) => label.to_string(),
            ("here" | "channel" | "everyone", None) => format!("@{command}"),
            (other, None) => other.to_string(),
        };
    }
    let shown = target.strip_prefix("mailto:").unwrap_or(target);
    match label {
        Some(label) if label != shown && label != target => format!("[{label}]({target})"),
        _ => shown.to_string(),
    }
}

/// Slack's `&lt;`, `&gt;` and `&amp;` as the characters.
fn decode_entities(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// `*bold*`, `_italic_` and `~strike~`, each on one line and at word edges, as Markdown.
fn emphasis(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len() + 8);
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let replacement = match c {
            '*' => Some("**"),
            '_' => Some("*"),
            '~' => Some("~~"),
            _ => None,
        };
        if let Some(marker) = replacement {
            let opens = (i == 0 || is_edge(chars[i - 1]))
                && chars
                    .get(i + 1)
                    .is_some_and(|n| !n.is_whitespace() && *n != c);
            if opens {
                let close = (i + 2..chars.len())
                    .take_while(|&j| chars[j] != '\n')
                    .find(|&j| {
                        chars[j] == c
                            && !chars[j - 1].is_whitespace()
                            && chars.get(j + 1).is_none_or(|n| is_edge(*n))
                    });
                if let Some(j) = close {
                    let inner: String = chars[i + 1..j].iter().collect();
                    out.push_str(marker);
                    out.push_str(&emphasis(&inner));
                    out.push_str(marker);
                    i = j + 1;
                    continue;
                }
            }
        }
        out.push(c);
        i += 1;
    }
    out
}

/// Whether `c` may stand beside an emphasis marker: space or punctuation, not a letter or digit.
fn is_edge(c: char) -> bool {
    !c.is_alphanumeric()
}

#[cfg(test)]
mod tests {
    use super::to_markdown;

    #[test]
    fn every_slack_form_becomes_markdown() {
        let cases = [
            (
                "*bold* and _it_ and ~gone~",
                "**bold** and *it* and ~~gone~~",
            ),
            ("hi <@U123> and <@U9|bob>", "hi <@U123> and <@U9>"),
            ("see <#C1|general>", "see #general"),
            ("<!here> lunch", "@here lunch"),
            (
                "<https://x.org/a?b=1&amp;c=2|the docs>",
                "[the docs](https://x.org/a?b=1&c=2)",
            ),
            ("<https://x.org>", "https://x.org"),
            ("<mailto:a@b.org|a@b.org>", "a@b.org"),
            ("a &lt;b&gt; &amp; c", "a <b> & c"),
            ("&gt; quoted", "> quoted"),
            ("`*not bold*` but *bold*", "`*not bold*` but **bold**"),
            ("snake_case_name stays", "snake_case_name stays"),
            ("2*3*4 stays", "2*3*4 stays"),
            ("*_both_*", "***both***"),
            ("```let *x* = 1;```", "```\nlet *x* = 1;\n```"),
            (
                "before\n```\ncode\n```\nafter *b*",
                "before\n```\ncode\n```\nafter **b**",
            ),
            ("one ` tick", "one ` tick"),
            ("<!subteam^S1|@devs> ship", "@devs ship"),
            (
                "<https://x.org/_media/file_.pdf|doc>",
                "[doc](https://x.org/_media/file_.pdf)",
            ),
            ("<https://x.org/_a_>", "https://x.org/_a_"),
            (
                "*see <https://x.org|this>*",
                "**see [this](https://x.org)**",
            ),
            ("_über_ *日本*", "*über* **日本**"),
            ("unclosed ```fence *b*", "unclosed ```fence **b**"),
        ];
        for (slack, markdown) in cases {
            assert_eq!(to_markdown(slack), markdown, "from {slack:?}");
        }
    }
}
