//! How fast one member may post: a token bucket per member, in memory (per instance), with limits a
//! real group never reaches, so that one member cannot flood a room with hundreds of messages a second.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use crate::error::{Error, Result};

/// Members' posting buckets.
pub struct PostLimits {
    burst: f64,
    per_second: f64,
    buckets: Mutex<HashMap<i64, (f64, Instant)>>,
}

/// Buckets kept before full ones are forgotten (a full bucket is the same as no bucket).
const MAX_BUCKETS: usize = 10_000;

impl PostLimits {
    /// `burst` posts at once, then `per_minute` a minute.
    pub fn new(burst: u32, per_minute: u32) -> PostLimits {
        PostLimits {
            burst: f64::from(burst),
            per_second: f64::from(per_minute) / 60.0,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one post from `user_id`'s bucket, or says how long to wait.
    pub fn take(&self, user_id: i64) -> Result<()> {
        self.take_at(user_id, Instant::now())
    }

    fn take_at(&self, user_id: i64, now: Instant) -> Result<()> {
        let mut buckets = self
            .buckets
            .lock()
            .map_err(|_| Error::internal("taking a post", "the post limits lock is poisoned"))?;
        if buckets.len() >= MAX_BUCKETS && !buckets.contains_key(&user_id) {
            let (burst, rate) = (self.burst, self.per_second);
            buckets.retain(|_, (tokens, at)| {
                *tokens + now.saturating_duration_since(*at).as_secs_f64() * rate < burst
            });
        }
        let (tokens, at) = buckets.entry(user_id).or_insert((self.burst, now));
        let refilled = (*tokens
            + now.saturating_duration_since(*at).as_secs_f64() * self.per_second)
            .min(self.burst);
        *at = now;
        if refilled < 1.0 {
            *tokens = refilled;
            let wait = ((1.0 - refilled) / self.per_second).ceil() as i64;
            return Err(Error::RateLimited {
                retry_after_secs: wait.max(1),
            });
        }
        *tokens = refilled - 1.0;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_burst_then_the_sustained_rate() {
        let limits = PostLimits::new(3, 60);
        let start = Instant::now();
        for _ in 0..3 {
            assert!(limits.take_at(1, start).is_ok());
        }
        assert!(matches!(
            limits.take_at(1, start),
            Err(Error::RateLimited {
                retry_after_secs: 1
            })
        ));
        assert!(limits.take_at(2, start).is_ok(), "others are not affected");
        assert!(limits
            .take_at(1, start + Duration::from_millis(1100))
            .is_ok());
        assert!(limits
            .take_at(1, start + Duration::from_millis(1200))
            .is_err());
    }
}
