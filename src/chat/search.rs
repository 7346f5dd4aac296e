//! Full-text search over the messages (and file names) of the rooms a member is in. The query
//! language is words, "quoted phrases" and the operators `from:`, `in:`, `has:file`, `has:reaction`, `is:reply`, `is:pinned`, `is:saved`, `before:` and
//! `after:`. Terms are reduced to letters and digits before they reach the database, so no query
//! can be read as search syntax: SQLite FTS5 and PostgreSQL's `websearch_to_tsquery` both see
//! quoted terms only.

use chrono::{NaiveDate, NaiveDateTime, TimeZone};
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool, Nullable, Text, Timestamp};

use crate::db::AnyConnection;
use crate::error::{Error, Result};

/// The most terms a query keeps.
const MAX_TERMS: usize = 20;
/// The longest query that is read; the rest is ignored.
const MAX_QUERY_CHARS: usize = 1000;

/// One thing to look for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Term {
    /// A word.
    Word(String),
    /// Words in this order.
    Phrase(Vec<String>),
}

/// A parsed search.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Query {
    /// Words and phrases, all of which must match.
    pub terms: Vec<Term>,
    /// `from:<username>`.
    pub from: Option<String>,
    /// `in:<room-slug>`.
    pub room: Option<String>,
    /// `has:file`.
    pub has_file: bool,
    /// `is:reply`: only replies.
    pub is_reply: bool,
    /// `has:reaction`: only messages someone reacted to.
    pub has_reaction: bool,
    /// `is:pinned`: only pinned messages.
    pub is_pinned: bool,
    /// `is:saved`: only messages the searcher saved.
    pub is_saved: bool,
    /// `before:YYYY-MM-DD`: messages before that day.
    pub before: Option<NaiveDate>,
    /// `after:YYYY-MM-DD`: messages on or after that day.
    pub after: Option<NaiveDate>,
    /// What could not be understood, in words for the searcher.
    pub problems: Vec<String>,
}

/// The letter-and-digit runs of a piece of text, lower-cased.
fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| w.chars().take(64).collect::<String>().to_lowercase())
        .collect()
}

/// Splits a query into quoted phrases and whitespace-separated tokens.
fn tokens(query: &str) -> Vec<(bool, String)> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    for c in query.chars() {
        match c {
            '"' => {
                if !current.is_empty() {
                    out.push((quoted, std::mem::take(&mut current)));
                }
                quoted = !quoted;
            }
            c if c.is_whitespace() && !quoted => {
                if !current.is_empty() {
                    out.push((false, std::mem::take(&mut current)));
                }
            }
            c => current.push(c),
        }
    }
    if !current.is_empty() {
        out.push((quoted, current));
    }
    out
}

fn date(key: &str, value: &str, problems: &mut Vec<String>) -> Option<NaiveDate> {
    let parsed = NaiveDate::parse_from_str(value, "%Y-%m-%d").ok();
    if parsed.is_none() {
        problems.push(format!("`{key}:` needs a date like 2026-11-23."));
    }
    parsed
}

/// Reads a query as the searcher typed it.
pub fn parse(input: &str) -> Query {
    let input: String = input.chars().take(MAX_QUERY_CHARS).collect();
    let mut query = Query::default();
    for (quoted, token) in tokens(&input) {
        if quoted {
            let phrase = words(&token);
            match phrase.len() {
                0 => {}
                1 => query.terms.extend(phrase.into_iter().map(Term::Word)),
                _ => query.terms.push(Term::Phrase(phrase)),
            }
            continue;
        }
        let operator = token
            .split_once(':')
            .map(|(k, v)| (k.to_ascii_lowercase(), v.to_string()));
        match operator {
            Some((key, value)) if key == "from" && !value.is_empty() => {
                query.from = Some(value.to_lowercase())
            }
            Some((key, value)) if key == "in" && !value.is_empty() => {
                query.room = Some(value.to_lowercase())
            }
            Some((key, value)) if key == "has" && value.eq_ignore_ascii_case("file") => {
                query.has_file = true
            }
            Some((key, value)) if key == "has" && value.eq_ignore_ascii_case("reaction") => {
                query.has_reaction = true
            }
            Some((key, value)) if key == "is" && value.eq_ignore_ascii_case("reply") => {
                query.is_reply = true
            }
            Some((key, value)) if key == "is" && value.eq_ignore_ascii_case("pinned") => {
                query.is_pinned = true
            }
            Some((key, value)) if key == "is" && value.eq_ignore_ascii_case("saved") => {
                query.is_saved = true
            }
            Some((key, value)) if key == "before" => {
                query.before = date("before", &value, &mut query.problems)
            }
            Some((key, value)) if key == "after" => {
                query.after = date("after", &value, &mut query.problems)
            }
            _ => query
                .terms
                .extend(words(&token).into_iter().map(Term::Word)),
        }
    }
    if query.terms.len() > MAX_TERMS {
        query.terms.truncate(MAX_TERMS);
        query
            .problems
            .push(format!("Only the first {MAX_TERMS} words were used."));
    }
    query
}

impl Query {
    /// Every word to highlight in results.
    pub fn highlight_words(&self) -> Vec<String> {
        self.terms
            .iter()
            .flat_map(|t| match t {
                Term::Word(w) => vec![w.clone()],
                Term::Phrase(p) => p.clone(),
            })
            .collect()
    }

    /// The terms as a string both engines read the same way: each a quoted phrase, all required.
    fn match_expression(&self) -> String {
        self.terms
            .iter()
            .map(|t| match t {
                Term::Word(w) => format!("\"{w}\""),
                Term::Phrase(p) => format!("\"{}\"", p.join(" ")),
            })
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// One result.
#[derive(Debug, Clone, QueryableByName)]
pub struct Hit {
    /// The message.
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    /// Its room's slug.
    #[diesel(sql_type = Text)]
    pub room_slug: String,
    /// Its room's name.
    #[diesel(sql_type = Text)]
    pub room_name: String,
    /// Its author.
    #[diesel(sql_type = Text)]
    pub author: String,
    /// Its text.
    #[diesel(sql_type = Text)]
    pub body: String,
    /// When it was posted.
    #[diesel(sql_type = Timestamp)]
    pub created_at: NaiveDateTime,
    /// The file shared with it.
    #[diesel(sql_type = Nullable<Text>)]
    pub file_name: Option<String>,
}

/// The UTC instant a local day starts in `tz`.
pub fn day_start(day: NaiveDate, tz: chrono_tz::Tz) -> NaiveDateTime {
    let midnight = day.and_hms_opt(0, 0, 0).unwrap_or_default();
    tz.from_local_datetime(&midnight)
        .earliest()
        .map_or(midnight, |t| t.naive_utc())
}

/// FTS5 walks its matches newest first (`ORDER BY rowid DESC`, with the keyset bound on the rowid
/// too), at most `?10` of them (the scan budget), and the page is taken from those: a common word
/// with a narrow `in:`, `from:` or date cannot walk the whole index.
const SQLITE: &str = "
SELECT m.id, r.slug AS room_slug, r.name AS room_name, u.username AS author, m.body, m.created_at, a.file_name
FROM (SELECT rowid FROM message_search
      WHERE message_search MATCH ?2 AND rowid < coalesce(?8, 9223372036854775807)
      ORDER BY rowid DESC LIMIT ?10) s
JOIN messages m ON m.id = s.rowid
JOIN memberships mb ON mb.room_id = m.room_id AND mb.user_id = ?1
JOIN rooms r ON r.id = m.room_id
JOIN users u ON u.id = m.author_id
LEFT JOIN attachments a ON a.message_id = m.id
WHERE m.deleted_at IS NULL
  AND (?3 IS NULL OR u.username = ?3)
  AND (?4 IS NULL OR r.slug = ?4)
  AND (?5 = 0 OR a.id IS NOT NULL)
  AND (?6 IS NULL OR m.created_at >= ?6)
  AND (?7 IS NULL OR m.created_at < ?7)
  AND (?11 = 0 OR m.parent_id IS NOT NULL)
  AND (?12 = 0 OR EXISTS (SELECT 1 FROM reactions x WHERE x.message_id = m.id))
  AND (?13 = 0 OR m.pinned_at IS NOT NULL)
  AND (?14 = 0 OR EXISTS (SELECT 1 FROM saved_messages v WHERE v.user_id = ?1 AND v.message_id = m.id))
ORDER BY s.rowid DESC
LIMIT ?9";

/// Two branches, each with its own plan: messages whose text matches and messages whose file name
/// matches, each newest first and limited, then merged. (One `IN (… UNION …)` condition led the
/// planner to join every message with every match for a common word.)
const POSTGRES: &str = "
(SELECT m.id, r.slug AS room_slug, r.name AS room_name, u.username AS author, m.body, m.created_at, a.file_name
 FROM messages m
 JOIN memberships mb ON mb.room_id = m.room_id AND mb.user_id = $1
 JOIN rooms r ON r.id = m.room_id
 JOIN users u ON u.id = m.author_id
 LEFT JOIN attachments a ON a.message_id = m.id
 WHERE to_tsvector('simple', m.body) @@ websearch_to_tsquery('simple', $2)
   AND m.deleted_at IS NULL
   AND ($3::text IS NULL OR u.username = $3)
   AND ($4::text IS NULL OR r.slug = $4)
   AND ($5 = false OR a.id IS NOT NULL)
   AND ($6::timestamp IS NULL OR m.created_at >= $6)
   AND ($7::timestamp IS NULL OR m.created_at < $7)
   AND ($8::bigint IS NULL OR m.id < $8)
   AND ($10 = false OR m.parent_id IS NOT NULL)
   AND ($11 = false OR EXISTS (SELECT 1 FROM reactions x WHERE x.message_id = m.id))
   AND ($12 = false OR m.pinned_at IS NOT NULL)
   AND ($13 = false OR EXISTS (SELECT 1 FROM saved_messages v WHERE v.user_id = $1 AND v.message_id = m.id))
 ORDER BY m.id DESC
 LIMIT $9)
UNION
(SELECT m.id, r.slug, r.name, u.username, m.body, m.created_at, a.file_name
 FROM attachments a
 JOIN messages m ON m.id = a.message_id
 JOIN memberships mb ON mb.room_id = m.room_id AND mb.user_id = $1
 JOIN rooms r ON r.id = m.room_id
 JOIN users u ON u.id = m.author_id
 WHERE to_tsvector('simple', translate(a.file_name, '._-', '   ')) @@ websearch_to_tsquery('simple', $2)
   AND m.deleted_at IS NULL
   AND ($3::text IS NULL OR u.username = $3)
   AND ($4::text IS NULL OR r.slug = $4)
   AND ($6::timestamp IS NULL OR m.created_at >= $6)
   AND ($7::timestamp IS NULL OR m.created_at < $7)
   AND ($8::bigint IS NULL OR m.id < $8)
   AND ($10 = false OR m.parent_id IS NOT NULL)
   AND ($11 = false OR EXISTS (SELECT 1 FROM reactions x WHERE x.message_id = m.id))
   AND ($12 = false OR m.pinned_at IS NOT NULL)
   AND ($13 = false OR EXISTS (SELECT 1 FROM saved_messages v WHERE v.user_id = $1 AND v.message_id = m.id))
 ORDER BY m.id DESC
 LIMIT $9)
ORDER BY id DESC
LIMIT $9";

/// What a search that ran out of time says.
const TOO_BROAD: &str =
    "That search matches too much to finish in time: add a word, `in:room`, `from:name` or a date.";

/// How much one search may cost.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    /// PostgreSQL: the longest the statement may run, in milliseconds.
    pub timeout_ms: u64,
    /// SQLite: the most index matches walked.
    pub scan_rows: i64,
}

/// Searches the rooms `user_id` is a member of, newest first, below `before_id` (keyset paging).
/// Dates in the query are days in `tz`. The query must have at least one term. On PostgreSQL the
/// search may run for at most `budget.timeout_ms` (a `SET LOCAL` in its own transaction: call it
/// outside one); on SQLite it walks at most `budget.scan_rows` matches. A search that runs out of
/// its budget before filling the page is refused as too broad.
pub fn search(
    conn: &mut AnyConnection,
    user_id: i64,
    query: &Query,
    tz: chrono_tz::Tz,
    before_id: Option<i64>,
    limit: i64,
    budget: Budget,
) -> Result<Vec<Hit>> {
    let timeout_ms = budget.timeout_ms;
    // The walk always covers at least one page.
    let scan_rows = budget.scan_rows.max(limit);
    let text = query.match_expression();
    let after = query.after.map(|d| day_start(d, tz));
    let before = query.before.map(|d| day_start(d, tz));
    macro_rules! run {
        ($sql:expr, $conn:expr) => {
            diesel::sql_query($sql)
                .bind::<BigInt, _>(user_id)
                .bind::<Text, _>(&text)
                .bind::<Nullable<Text>, _>(query.from.as_deref())
                .bind::<Nullable<Text>, _>(query.room.as_deref())
                .bind::<Bool, _>(query.has_file)
                .bind::<Nullable<Timestamp>, _>(after)
                .bind::<Nullable<Timestamp>, _>(before)
                .bind::<Nullable<BigInt>, _>(before_id)
                .bind::<BigInt, _>(limit)
        };
    }
    match conn {
        AnyConnection::Sqlite(conn) => {
            let hits = run!(SQLITE, conn)
                .bind::<BigInt, _>(scan_rows)
                .bind::<Bool, _>(query.is_reply)
                .bind::<Bool, _>(query.has_reaction)
                .bind::<Bool, _>(query.is_pinned)
                .bind::<Bool, _>(query.is_saved)
                .load::<Hit>(conn)?;
            if (hits.len() as i64) < limit && scanned_all(conn, &text, before_id, scan_rows)? {
                return Err(Error::Invalid(TOO_BROAD.into()));
            }
            Ok(hits)
        }
        AnyConnection::Postgresql(conn) => conn
            .transaction(|conn| -> diesel::QueryResult<Vec<Hit>> {
                conn.batch_execute(&format!("SET LOCAL statement_timeout = {timeout_ms}"))?;
                run!(POSTGRES, conn)
                    .bind::<Bool, _>(query.is_reply)
                    .bind::<Bool, _>(query.has_reaction)
                    .bind::<Bool, _>(query.is_pinned)
                    .bind::<Bool, _>(query.is_saved)
                    .load::<Hit>(conn)
            })
            .map_err(|e| match e {
                diesel::result::Error::DatabaseError(_, info)
                    if info.message().contains("statement timeout") =>
                {
                    Error::Invalid(TOO_BROAD.into())
                }
                e => e.into(),
            }),
    }
}

/// SQLite: whether the walk stopped at the budget (so more matches may lie beyond it).
fn scanned_all(
    conn: &mut diesel::SqliteConnection,
    text: &str,
    before_id: Option<i64>,
    scan_rows: i64,
) -> Result<bool> {
    #[derive(QueryableByName)]
    struct Walked {
        #[diesel(sql_type = BigInt)]
        n: i64,
    }
    let walked: Walked = diesel::sql_query(
        "SELECT count(*) AS n FROM (SELECT rowid FROM message_search \
         WHERE message_search MATCH ?1 AND rowid < coalesce(?2, 9223372036854775807) \
         ORDER BY rowid DESC LIMIT ?3)",
    )
    .bind::<Text, _>(text)
    .bind::<Nullable<BigInt>, _>(before_id)
    .bind::<BigInt, _>(scan_rows)
    .get_result(conn)?;
    Ok(walked.n >= scan_rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_are_parsed_into_plain_terms() {
        let q = parse(
            r#"Deploy "release notes" from:Ann in:ops has:file before:2026-01-02 after:2025-12-01"#,
        );
        assert_eq!(
            q.terms,
            vec![
                Term::Word("deploy".into()),
                Term::Phrase(vec!["release".into(), "notes".into()])
            ]
        );
        assert_eq!(
            (q.from.as_deref(), q.room.as_deref(), q.has_file),
            (Some("ann"), Some("ops"), true)
        );
        assert_eq!(q.before, NaiveDate::from_ymd_opt(2026, 1, 2));
        assert_eq!(q.after, NaiveDate::from_ymd_opt(2025, 12, 1));
        assert_eq!(q.match_expression(), r#""deploy" "release notes""#);
    }

    #[test]
    fn hostile_queries_become_harmless_terms() {
        let q = parse(r#"a%b_c \" OR 1=1; -- NEAR(x y) "unclosed * ^col:x"#);
        assert!(
            q.match_expression()
                .chars()
                .all(|c| c.is_alphanumeric() || c == ' ' || c == '"'),
            "{}",
            q.match_expression()
        );
        assert!(parse("% _ \\ ' \" ;").terms.is_empty());
        assert_eq!(parse(&"word ".repeat(5000)).terms.len(), MAX_TERMS);
        let bad = parse("before:yesterday cats");
        assert_eq!(bad.before, None);
        assert_eq!(bad.problems.len(), 1);
        assert_eq!(bad.terms, vec![Term::Word("cats".into())]);
    }

    #[test]
    fn days_start_in_the_searchers_zone() {
        let day = NaiveDate::from_ymd_opt(2026, 7, 1).expect("date");
        let paris: chrono_tz::Tz = "Europe/Paris".parse().expect("tz");
        assert_eq!(day_start(day, paris).to_string(), "2026-06-30 22:00:00");
    }
}
