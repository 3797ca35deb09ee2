//! When to try a webhook message again (Svix's schedule, as data from config).
//!
//! The first attempt goes out at once; attempt `n + 1` waits `schedule[n - 1]` (±jitter). A
//! timeout or 429 waits at least `slow_down`; a `Retry-After` is honoured within [delay, 2×delay].

use std::time::Duration;

use rand::Rng;

#[derive(Clone, Debug)]
pub struct RetryPolicy {
    /// Delays after the 1st, 2nd, ... failed attempt. Its length is the number of retries.
    pub schedule: Vec<Duration>,
    /// Relative jitter, e.g. 0.2 for ±20 %.
    pub jitter: f64,
    /// The least wait after a timeout or a 429.
    pub slow_down: Duration,
}

/// What one attempt's answer means.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Delivered,
    /// Worth another try (connection error, timeout, 5xx, 408, 429).
    Retry {
        slow_down: bool,
        retry_after: Option<Duration>,
    },
    /// A 4xx that another try will not fix.
    Rejected,
    /// 410 Gone: the consumer asks us to stop sending; the endpoint is disabled.
    Gone,
}

/// Classifies an answer: the status code, or `None` when no answer came (`timed_out` tells
/// whether it was a timeout rather than a connection error).
pub fn classify(status: Option<u16>, timed_out: bool, retry_after: Option<Duration>) -> Outcome {
    match status {
        None => Outcome::Retry {
            slow_down: timed_out,
            retry_after: None,
        },
        Some(200..=299) => Outcome::Delivered,
        Some(410) => Outcome::Gone,
        Some(429) => Outcome::Retry {
            slow_down: true,
            retry_after,
        },
        Some(408) | Some(500..=599) => Outcome::Retry {
            slow_down: matches!(status, Some(502) | Some(504)),
            retry_after,
        },
        Some(_) => Outcome::Rejected,
    }
}

impl RetryPolicy {
    /// The wait before the next attempt after `attempts_made` failed attempts, or `None` when
    /// every attempt is used.
    pub fn next_delay(
        &self,
        attempts_made: u32,
        outcome: Outcome,
        rng: &mut impl Rng,
    ) -> Option<Duration> {
        let Outcome::Retry {
            slow_down,
            retry_after,
        } = outcome
        else {
            return None;
        };
        let base = *self.schedule.get(attempts_made.checked_sub(1)? as usize)?;
        let factor = 1.0 + rng.random_range(-self.jitter..=self.jitter);
        let mut delay = base.mul_f64(factor.max(0.0));
        if slow_down {
            delay = delay.max(self.slow_down);
        }
        if let Some(asked) = retry_after {
            delay = asked.clamp(base, base * 2);
        }
        Some(delay)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{SeedableRng, rngs::StdRng};

    fn policy() -> RetryPolicy {
        RetryPolicy {
            schedule: [5, 300, 1800].map(Duration::from_secs).to_vec(),
            jitter: 0.2,
            slow_down: Duration::from_secs(60),
        }
    }

    #[test]
    fn answers_are_classified_as_the_spec_says() {
        assert_eq!(classify(Some(204), false, None), Outcome::Delivered);
        assert_eq!(classify(Some(410), false, None), Outcome::Gone);
        assert_eq!(classify(Some(400), false, None), Outcome::Rejected);
        assert_eq!(classify(Some(404), false, None), Outcome::Rejected);
        assert!(matches!(
            classify(Some(408), false, None),
            Outcome::Retry { .. }
        ));
        assert!(matches!(
            classify(Some(503), false, None),
            Outcome::Retry {
                slow_down: false,
                ..
            }
        ));
        assert!(matches!(
            classify(Some(429), false, None),
            Outcome::Retry {
                slow_down: true,
                ..
            }
        ));
        assert!(matches!(
            classify(None, true, None),
            Outcome::Retry {
                slow_down: true,
                ..
            }
        ));
        assert!(matches!(
            classify(None, false, None),
            Outcome::Retry {
                slow_down: false,
                ..
            }
        ));
    }

    #[test]
    fn delays_follow_the_schedule_with_jitter_then_stop() {
        let mut rng = StdRng::seed_from_u64(3);
        let retry = Outcome::Retry {
            slow_down: false,
            retry_after: None,
        };
        for (attempts, base) in [(1, 5.0), (2, 300.0), (3, 1800.0)] {
            let delay = policy()
                .next_delay(attempts, retry, &mut rng)
                .expect("a retry")
                .as_secs_f64();
            assert!(
                delay >= base * 0.8 && delay <= base * 1.2,
                "{attempts}: {delay}"
            );
        }
        assert_eq!(policy().next_delay(4, retry, &mut rng), None);
        assert_eq!(policy().next_delay(1, Outcome::Rejected, &mut rng), None);
        assert_eq!(policy().next_delay(1, Outcome::Delivered, &mut rng), None);
    }

    #[test]
    fn slow_down_and_retry_after_stretch_the_wait() {
        let mut rng = StdRng::seed_from_u64(3);
        let slow = Outcome::Retry {
            slow_down: true,
            retry_after: None,
        };
        assert!(policy().next_delay(1, slow, &mut rng).expect("retry") >= Duration::from_secs(60));
        let asked = Outcome::Retry {
            slow_down: true,
            retry_after: Some(Duration::from_secs(1000)),
        };
        // Clamped to twice the scheduled 300 s.
        assert_eq!(
            policy().next_delay(2, asked, &mut rng),
            Some(Duration::from_secs(600))
        );
        let short = Outcome::Retry {
            slow_down: false,
            retry_after: Some(Duration::from_secs(1)),
        };
        assert_eq!(
            policy().next_delay(2, short, &mut rng),
            Some(Duration::from_secs(300))
        );
    }
}
