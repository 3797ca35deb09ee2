//! Restart intensity, as Erlang/OTP's supervisors define it: a child may be restarted at most
//! `limit` times within `window`; one restart more and the supervisor gives up on it (OTP's
//! `MaxR` and `MaxT`). Pure: the times come from the caller's clock.

use std::collections::VecDeque;

use chrono::{DateTime, Duration, Utc};

/// At most `limit` restarts within `window`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RestartIntensity {
    pub limit: usize,
    pub window: Duration,
}

impl RestartIntensity {
    /// `limit` restarts in `window_seconds`; a window too large for a duration is "forever".
    pub fn new(limit: usize, window_seconds: u64) -> RestartIntensity {
        let window = i64::try_from(window_seconds)
            .ok()
            .and_then(Duration::try_seconds)
            .unwrap_or(Duration::MAX);
        RestartIntensity { limit, window }
    }
}

/// What the supervisor does after a child failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Within the intensity: start it again.
    Restart,
    /// More than `limit` failures within `window`: stop restarting it (park or escalate).
    GiveUp,
}

/// The recent failures of one child.
#[derive(Clone, Debug, Default)]
pub struct RestartHistory {
    failures: VecDeque<DateTime<Utc>>,
}

impl RestartHistory {
    /// Records a failure at `now` and says whether the child may be restarted.
    pub fn record(&mut self, now: DateTime<Utc>, intensity: RestartIntensity) -> Verdict {
        self.failures.push_back(now);
        let oldest_counted = now.checked_sub_signed(intensity.window);
        while self
            .failures
            .front()
            .is_some_and(|at| oldest_counted.is_some_and(|oldest| *at <= oldest))
        {
            self.failures.pop_front();
        }
        match self.failures.len() > intensity.limit {
            true => Verdict::GiveUp,
            false => Verdict::Restart,
        }
    }

    /// Failures within the window as of the last [`RestartHistory::record`].
    pub fn recent(&self) -> usize {
        self.failures.len()
    }

    /// Forgets the failures: an operator started the child anew.
    pub fn clear(&mut self) {
        self.failures.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + seconds, 0).expect("a valid time")
    }

    #[test]
    fn gives_up_on_the_failure_after_the_limit_within_the_window() {
        let intensity = RestartIntensity::new(3, 10);
        let mut history = RestartHistory::default();
        for second in 0..3 {
            assert_eq!(history.record(at(second), intensity), Verdict::Restart);
        }
        assert_eq!(history.record(at(3), intensity), Verdict::GiveUp);
        assert_eq!(history.recent(), 4);
    }

    #[test]
    fn failures_older_than_the_window_do_not_count() {
        let intensity = RestartIntensity::new(2, 10);
        let mut history = RestartHistory::default();
        assert_eq!(history.record(at(0), intensity), Verdict::Restart);
        assert_eq!(history.record(at(5), intensity), Verdict::Restart);
        // The failure at 0 is exactly one window old at 10: it no longer counts.
        assert_eq!(history.record(at(10), intensity), Verdict::Restart);
        assert_eq!(history.recent(), 2);
        assert_eq!(history.record(at(11), intensity), Verdict::GiveUp);
    }

    #[test]
    fn a_limit_of_zero_gives_up_at_the_first_failure() {
        let mut history = RestartHistory::default();
        assert_eq!(
            history.record(at(0), RestartIntensity::new(0, 60)),
            Verdict::GiveUp
        );
    }

    #[test]
    fn a_huge_window_means_forever() {
        let intensity = RestartIntensity::new(1, u64::MAX);
        let mut history = RestartHistory::default();
        assert_eq!(history.record(at(0), intensity), Verdict::Restart);
        assert_eq!(history.record(at(1_000_000), intensity), Verdict::GiveUp);
        history.clear();
        assert_eq!(history.recent(), 0);
    }
}
