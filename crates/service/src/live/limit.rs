//! Broadcasts per person per minute: a token bucket per user id. Pure (the caller passes the
//! time).

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

/// Buckets kept before full ones are forgotten.
const PRUNE_AT: usize = 10_000;

#[derive(Clone, Copy, Debug)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// `per_minute` broadcasts in any minute, refilled evenly (one every `60 / per_minute` s), with a
/// burst of `per_minute`.
#[derive(Debug)]
pub struct RateLimiter {
    per_minute: f64,
    buckets: HashMap<i64, Bucket>,
}

impl RateLimiter {
    pub fn new(per_minute: u32) -> RateLimiter {
        RateLimiter {
            per_minute: f64::from(per_minute.max(1)),
            buckets: HashMap::new(),
        }
    }

    fn refill_per_second(&self) -> f64 {
        self.per_minute / 60.0
    }

    /// Takes one broadcast for `user` at `now`, or says how long to wait for the next.
    pub fn try_take(&mut self, user: i64, now: Instant) -> Result<(), Duration> {
        if self.buckets.len() >= PRUNE_AT {
            self.prune(now);
        }
        let (capacity, rate) = (self.per_minute, self.refill_per_second());
        let bucket = self.buckets.entry(user).or_insert(Bucket {
            tokens: capacity,
            at: now,
        });
        let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * rate).min(capacity);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - bucket.tokens) / rate))
        }
    }

    /// Forgets buckets that have refilled completely (they behave like new ones).
    fn prune(&mut self, now: Instant) {
        let (capacity, rate) = (self.per_minute, self.refill_per_second());
        self.buckets.retain(|_, bucket| {
            let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
            bucket.tokens + elapsed * rate < capacity
        });
    }

    pub fn tracked(&self) -> usize {
        self.buckets.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_then_one_per_interval() {
        let mut limiter = RateLimiter::new(3);
        let start = Instant::now();
        for _ in 0..3 {
            assert_eq!(limiter.try_take(1, start), Ok(()));
        }
        // The fourth in the same minute waits for a token: one every 20 s.
        let wait = limiter.try_take(1, start).expect_err("limited");
        assert!((19.9..=20.1).contains(&wait.as_secs_f64()), "{wait:?}");
        // Another person is not affected.
        assert_eq!(limiter.try_take(2, start), Ok(()));
        // 10 s later: still 10 s to go.
        let wait = limiter
            .try_take(1, start + Duration::from_secs(10))
            .expect_err("limited");
        assert!((9.9..=10.1).contains(&wait.as_secs_f64()), "{wait:?}");
        assert_eq!(limiter.try_take(1, start + Duration::from_secs(20)), Ok(()));
        assert!(
            limiter
                .try_take(1, start + Duration::from_secs(21))
                .is_err()
        );
        // A quiet minute refills the whole burst, no more.
        let later = start + Duration::from_secs(600);
        for _ in 0..3 {
            assert_eq!(limiter.try_take(1, later), Ok(()));
        }
        assert!(limiter.try_take(1, later).is_err());
    }

    #[test]
    fn full_buckets_are_forgotten() {
        let mut limiter = RateLimiter::new(60);
        let start = Instant::now();
        for user in 0..PRUNE_AT as i64 {
            assert_eq!(limiter.try_take(user, start), Ok(()));
        }
        assert_eq!(limiter.tracked(), PRUNE_AT);
        assert_eq!(
            limiter.try_take(-1, start + Duration::from_secs(61)),
            Ok(())
        );
        assert_eq!(limiter.tracked(), 1);
    }
}
