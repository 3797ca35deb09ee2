//! When a tracked user is next due for a poll.
//!
//! Seed 000 polls at a uniformly random interval in [60 s, 120 s] so that the requests do not
//! form a pattern Telegram could flag; the bounds come from config.

use std::time::Duration;

use rand::Rng;

/// A uniformly random interval in `[min, max]` (both inclusive, millisecond resolution).
pub fn next_poll_interval(rng: &mut impl Rng, min: Duration, max: Duration) -> Duration {
    let (low, high) = (min.as_millis() as u64, max.as_millis() as u64);
    if high <= low {
        return min;
    }
    Duration::from_millis(rng.random_range(low..=high))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{SeedableRng, rngs::StdRng};

    #[test]
    fn intervals_stay_within_bounds_and_spread_over_them() {
        let mut rng = StdRng::seed_from_u64(7);
        let (min, max) = (Duration::from_secs(60), Duration::from_secs(120));
        let samples: Vec<Duration> = (0..2000)
            .map(|_| next_poll_interval(&mut rng, min, max))
            .collect();
        assert!(samples.iter().all(|d| *d >= min && *d <= max));
        // Uniform: each third of the range gets roughly a third of the samples.
        let low_third = samples.iter().filter(|d| d.as_secs() < 80).count();
        let high_third = samples.iter().filter(|d| d.as_secs() >= 100).count();
        assert!((550..=780).contains(&low_third), "low third: {low_third}");
        assert!(
            (550..=780).contains(&high_third),
            "high third: {high_third}"
        );
    }

    #[test]
    fn equal_bounds_give_that_interval() {
        let mut rng = StdRng::seed_from_u64(1);
        let fixed = Duration::from_secs(90);
        assert_eq!(next_poll_interval(&mut rng, fixed, fixed), fixed);
    }
}
