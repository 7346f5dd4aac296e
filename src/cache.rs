//! Render once: a bounded memo of pure renderings (a message's Markdown as HTML, a message's `<li>`)
//! keyed by a hash of everything the rendering reads. Two generations: a lookup that hits the older
//! one moves the entry forward, and when the newer one holds its budget of bytes the older one is
//! forgotten, so what pages keep showing stays and the rest goes.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hash, RandomState};
use std::sync::{Arc, Mutex};

/// A bounded memo of rendered text.
pub struct Memo {
    generations: Mutex<Generations>,
    /// Bytes of renderings per generation.
    budget: usize,
    /// Two independent keyings per memo and process (a 128-bit key, compared whole on a hit), so
    /// that nobody can aim for a collision and none happens by chance.
    hashers: (RandomState, RandomState),
}

/// A memo's key: the hash of the inputs under both keyings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Key(u64, u64);

#[derive(Default)]
struct Generations {
    newer: HashMap<u64, (u64, Arc<str>)>,
    newer_bytes: usize,
    older: HashMap<u64, (u64, Arc<str>)>,
}

impl Generations {
    fn insert(&mut self, key: Key, text: Arc<str>, budget: usize) {
        if self.newer_bytes + text.len() > budget {
            self.older = std::mem::take(&mut self.newer);
            self.newer_bytes = 0;
        }
        self.newer_bytes += text.len();
        self.newer.insert(key.0, (key.1, text));
    }
}

impl Memo {
    /// A memo keeping up to `budget` bytes of renderings per generation.
    pub fn new(budget: usize) -> Memo {
        Memo {
            generations: Mutex::new(Generations::default()),
            budget,
            hashers: (RandomState::new(), RandomState::new()),
        }
    }

    /// The key of `inputs` (everything the rendering reads).
    pub fn key(&self, inputs: &impl Hash) -> Key {
        Key(
            self.hashers.0.hash_one(inputs),
            self.hashers.1.hash_one(inputs),
        )
    }

    /// The rendering kept under `key`, or `render`'s, kept for next time (unless it alone is more
    /// than a sixteenth of the budget: one huge message must not push out a page's worth).
    pub fn get_or_render<E>(
        &self,
        key: Key,
        render: impl FnOnce() -> Result<String, E>,
    ) -> Result<Arc<str>, E> {
        if let Some(found) = self.lookup(key) {
            return Ok(found);
        }
        let rendered: Arc<str> = Arc::from(render()?);
        if rendered.len() <= self.budget / 16 {
            if let Ok(mut g) = self.generations.lock() {
                g.insert(key, rendered.clone(), self.budget);
            }
        }
        Ok(rendered)
    }

    fn lookup(&self, key: Key) -> Option<Arc<str>> {
        let mut g = self.generations.lock().ok()?;
        if let Some((check, found)) = g.newer.get(&key.0) {
            return (*check == key.1).then(|| found.clone());
        }
        let (check, found) = g.older.remove(&key.0)?;
        if check != key.1 {
            return None;
        }
        g.insert(key, found.clone(), self.budget);
        Some(found)
    }
}

#[cfg(test)]
mod tests {
    use super::Memo;

    #[test]
    fn renders_once_and_forgets_the_old() {
        // Room for two one-byte renderings per generation (and none over 1/16 of 32 bytes).
        let memo = Memo::new(32);
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
        render("bb").ok();
        render("ccc").ok(); // over 2 bytes: too big to keep
        render("ccc").ok();
        assert_eq!(
            renders.get(),
            4,
            "a rendering over a sixteenth of the budget is not kept"
        );
    }

    #[test]
    fn generations_turn_over_by_bytes() {
        let memo = Memo::new(64); // four-byte renderings, up to 16 per generation
        let renders = std::cell::Cell::new(0);
        let render = |n: u32| {
            let key = memo.key(&n);
            memo.get_or_render(key, || {
                renders.set(renders.get() + 1);
                Ok::<_, ()>(format!("{n:04}"))
            })
            .ok();
        };
        for n in 0..16 {
            render(n);
        }
        render(16); // the newer generation was full: 0..16 are the older one now
        render(0); // found in the older one, moved forward
        assert_eq!(renders.get(), 17);
        for n in 17..32 {
            render(n);
        }
        render(1); // 1 stayed in the older generation until it was forgotten
        assert_eq!(renders.get(), 33, "1 was forgotten and rendered again");
        render(0);
        assert_eq!(renders.get(), 33, "0 was kept: it had been moved forward");
    }
}
