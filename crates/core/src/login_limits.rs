//! How long a client must wait after too many wrong codes or passwords. Pure: the caller reads
//! the failure times from `auth_attempts`.

use chrono::{DateTime, Duration, Utc};

/// At most `max_failures` wrong codes or passwords within any `window`, per account and per
/// client address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LoginLimits {
    pub max_failures: usize,
    pub window: Duration,
}

/// When the next try is allowed, given the failure times within the last `window` (oldest
/// first): `None` when it is allowed now. With `max` failures in the window, the next try waits
/// until the oldest of the last `max` leaves the window.
pub fn retry_after(
    failures: &[DateTime<Utc>],
    now: DateTime<Utc>,
    limits: LoginLimits,
) -> Option<Duration> {
    if limits.max_failures == 0 {
        return None;
    }
    let recent: Vec<&DateTime<Utc>> = failures
        .iter()
        .filter(|at| **at > now - limits.window)
        .collect();
    if recent.len() < limits.max_failures {
        return None;
    }
    let oldest_counted = recent[recent.len() - limits.max_failures];
    let free_at = *oldest_counted + limits.window;
    (free_at > now).then(|| free_at - now)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(minute: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000, 0).unwrap_or_default() + Duration::minutes(minute)
    }

    const LIMITS: LoginLimits = LoginLimits {
        max_failures: 3,
        window: Duration::minutes(15),
    };

    #[test]
    fn fewer_failures_than_the_limit_do_not_block() {
        assert_eq!(retry_after(&[], at(0), LIMITS), None);
        assert_eq!(retry_after(&[at(0), at(1)], at(2), LIMITS), None);
    }

    #[test]
    fn the_limit_blocks_until_the_oldest_counted_failure_leaves_the_window() {
        // Failures at 0, 1 and 2 minutes: free again at 15 minutes.
        let failures = [at(0), at(1), at(2)];
        assert_eq!(
            retry_after(&failures, at(3), LIMITS),
            Some(Duration::minutes(12))
        );
        assert_eq!(retry_after(&failures, at(15), LIMITS), None);
    }

    #[test]
    fn only_the_last_max_failures_decide() {
        // Five failures; the third-newest (minute 10) decides: free at 25.
        let failures = [at(6), at(8), at(10), at(11), at(12)];
        assert_eq!(
            retry_after(&failures, at(13), LIMITS),
            Some(Duration::minutes(12))
        );
    }

    #[test]
    fn failures_outside_the_window_are_ignored_and_zero_disables() {
        let failures = [at(0), at(1), at(20)];
        assert_eq!(retry_after(&failures, at(21), LIMITS), None);
        let off = LoginLimits {
            max_failures: 0,
            ..LIMITS
        };
        assert_eq!(retry_after(&[at(0); 10], at(1), off), None);
    }
}
