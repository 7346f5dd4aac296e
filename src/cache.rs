//! Render once: a bounded memo of pure renderings (a message's Markdown as HTML, a message's `<li>`)
//! keyed by a hash of everything the rendering reads. Two generations: a lookup that hits the older
//! one moves the entry forward, and when the newer one is full the older one is forgotten, so what
//! pages keep showing stays and the rest goes.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hash, RandomState};
use std::sync::{Arc, Mutex};

/// A bounded memo of rendered text.
pub struct Memo {
    generations: Mutex<Generations>,
    /// Entries per generation.
    limit: usize,
    /// Keyed per memo and per process, so that nobody can aim for a collision.
    hasher: RandomState,
}

#[derive(Default)]
struct Generations {
    newer: HashMap<u64, Arc<str>>,
    older: HashMap<u64, Arc<str>>,
}

impl Memo {
    /// A memo of at most `limit` entries per generation.
    pub fn new(limit: usize) -> Memo {
        Memo {
            generations: Mutex::new(Generations::default()),
            limit,
            hasher: RandomState::new(),
        }
    }

    /// The key of `inputs` (everything the rendering reads).
    pub fn key(&self, inputs: &impl Hash) -> u64 {
        self.hasher.hash_one(inputs)
    }

    /// The rendering kept under `key`, or `render`'s, kept for next time.
    pub fn get_or_render<E>(
        &self,
        key: u64,
        render: impl FnOnce() -> Result<String, E>,
    ) -> Result<Arc<str>, E> {
        if let Some(found) = self.lookup(key) {
            return Ok(found);
        }
        let rendered: Arc<str> = Arc::from(render()?);
        if let Ok(mut g) = self.generations.lock() {
            if g.newer.len() >= self.limit {
                g.older = std::mem::take(&mut g.newer);
            }
            g.newer.insert(key, rendered.clone());
        }
        Ok(rendered)
    }

    fn lookup(&self, key: u64) -> Option<Arc<str>> {
        let mut g = self.generations.lock().ok()?;
        if let Some(found) = g.newer.get(&key) {
            return Some(found.clone());
        }
        let found = g.older.remove(&key)?;
        if g.newer.len() < self.limit {
            g.newer.insert(key, found.clone());
        }
        Some(found)
    }
}

#[cfg(test)]
mod tests {
    use super::Memo;

    #[test]
    fn renders_once_and_forgets_the_old() {
        let memo = Memo::new(2);
        let renders = std::cell::Cell::new(0);
        let render = |text: &str| {
            let key = memo.key(&text);
            memo.get_or_render(key, || {
                renders.set(renders.get() + 1);
                Ok::<_, ()>(text.to_uppercase())
            })
            .map(|s| s.to_string())
        };
        assert_eq!(render("a"), Ok("A".to_string()));
        assert_eq!(render("a"), Ok("A".to_string()));
        assert_eq!(renders.get(), 1, "the second time comes from the memo");
        render("b").ok();
        render("c").ok(); // the newer generation was full: a and b are the older one now
        render("a").ok(); // found in the older generation, moved forward
        assert_eq!(renders.get(), 3);
        render("d").ok();
        render("e").ok(); // c and a move to the older generation; b is forgotten
        render("b").ok();
        assert_eq!(renders.get(), 6, "b was forgotten and rendered again");
    }
}
