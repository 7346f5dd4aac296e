//! Mentions: whether a text names `@username`, for alerts and the rooms' unread markers; and the
//! SQL text functions both backends share (`lower`, `substr`).

/// Whether `body` mentions `@username` (case-insensitive, as a whole name).
pub fn mentions(body: &str, username: &str) -> bool {
    let needle = format!("@{}", username.to_lowercase());
    let lower = body.to_lowercase();
    let is_name = |c: char| c.is_ascii_alphanumeric() || "_.-".contains(c);
    lower.match_indices(&needle).any(|(at, _)| {
        let before_ok = !lower[..at]
            .chars()
            .next_back()
            .is_some_and(|c| c.is_alphanumeric());
        let rest = &lower[at + needle.len()..];
        let mut following = rest.chars();
        let after_ok = match following.next() {
            None => true,
            // A full stop ends the name unless the name goes on after it (`@ann.bob`).
            Some('.') => !following.next().is_some_and(is_name),
            Some(c) => !is_name(c),
        };
        before_ok && after_ok
    })
}

diesel::define_sql_function! {
    /// Lower case (ASCII on SQLite): mentions are found case-insensitively.
    fn lower(text: diesel::sql_types::Text) -> diesel::sql_types::Text;
}

diesel::define_sql_function! {
    /// The first `length` characters of `text` from `start` (1-based).
    fn substr(text: diesel::sql_types::Text, start: diesel::sql_types::Integer, length: diesel::sql_types::Integer) -> diesel::sql_types::Text;
}

#[cfg(test)]
mod tests {
    use super::mentions;

    #[test]
    fn mentions_are_whole_names() {
        assert!(mentions("hi @ann!", "ann"));
        assert!(mentions("@ANN, look", "ann"));
        assert!(mentions("thanks @ann.", "ann"));
        assert!(!mentions("hi @anna", "ann"));
        assert!(!mentions("mail ann@example.org", "ann"));
        assert!(!mentions("hi ann", "ann"));
        assert!(mentions("cc @ann.b", "ann.b"));
        assert!(!mentions("hi @ann.bob", "ann"));
        assert!(!mentions("x@ann.", "ann"));
    }
}
