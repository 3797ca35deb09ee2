//! Statistics of online sessions over a time window.
//!
//! Sessions crossing an edge of the window are clipped to it; an open session counts up to `now`
//! at most (its presumed end may lie in the future). Hours of the histogram are UTC hours of the
//! day, summed over every day of the window. Times are counted in whole seconds (boundaries
//! truncated), so every figure adds up exactly.

use chrono::{DateTime, Duration, DurationRound, SubsecRound, Timelike, Utc};
use serde::Serialize;

use super::sessions::Session;

/// The longest window statistics are asked for: one year.
pub const MAX_WINDOW_HOURS: i64 = 8760;

/// A validated time window: `from` strictly before `to`, at most [`MAX_WINDOW_HOURS`] long.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Window {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum WindowError {
    #[error("hours must be between 1 and {MAX_WINDOW_HOURS}, got {0}")]
    HoursOutOfRange(i64),
    #[error("`from` ({from}) must be before `to` ({to})")]
    Reversed {
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    },
    #[error("the window may span at most {MAX_WINDOW_HOURS} hours")]
    TooLong,
}

impl Window {
    /// The last `hours` hours up to `now`.
    pub fn last_hours(hours: i64, now: DateTime<Utc>) -> Result<Window, WindowError> {
        if !(1..=MAX_WINDOW_HOURS).contains(&hours) {
            return Err(WindowError::HoursOutOfRange(hours));
        }
        Ok(Window {
            from: now - Duration::hours(hours),
            to: now,
        })
    }

    pub fn between(from: DateTime<Utc>, to: DateTime<Utc>) -> Result<Window, WindowError> {
        if from >= to {
            return Err(WindowError::Reversed { from, to });
        }
        if to - from > Duration::hours(MAX_WINDOW_HOURS) {
            return Err(WindowError::TooLong);
        }
        Ok(Window { from, to })
    }

    pub fn length(&self) -> Duration {
        self.to - self.from
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Statistics {
    pub window: Window,
    pub online_seconds: i64,
    /// Online time as a share of the window, 0.0 ..= 1.0.
    pub online_share: f64,
    pub session_count: usize,
    pub average_session_seconds: i64,
    pub longest_session_seconds: i64,
    pub first_online: Option<DateTime<Utc>>,
    pub last_online: Option<DateTime<Utc>>,
    /// Seconds online in each UTC hour of the day (index 0 = 00:00–00:59).
    pub hourly_online_seconds: [i64; 24],
}

/// Computes the statistics of `sessions` within `window`, as known at `now`.
pub fn statistics(sessions: &[Session], window: Window, now: DateTime<Utc>) -> Statistics {
    let clipped: Vec<(DateTime<Utc>, DateTime<Utc>)> = sessions
        .iter()
        .filter_map(|session| {
            let end = session.end_at(now);
            // Whole seconds, so that the total, the sessions and the histogram add up exactly.
            let from = session.started_at.max(window.from).trunc_subsecs(0);
            let to = end.min(window.to).trunc_subsecs(0);
            (from <= to && session.started_at <= window.to && end >= window.from)
                .then_some((from, to))
        })
        .collect();

    let durations: Vec<i64> = clipped
        .iter()
        .map(|(from, to)| (*to - *from).num_seconds())
        .collect();
    let online_seconds: i64 = durations.iter().sum();
    let session_count = clipped.len();
    let mut hourly_online_seconds = [0_i64; 24];
    for (from, to) in &clipped {
        add_to_hours(*from, *to, &mut hourly_online_seconds);
    }

    Statistics {
        window,
        online_seconds,
        online_share: online_seconds as f64 / window.length().num_seconds() as f64,
        session_count,
        average_session_seconds: match session_count {
            0 => 0,
            count => online_seconds / count as i64,
        },
        longest_session_seconds: durations.iter().copied().max().unwrap_or(0),
        first_online: clipped.iter().map(|(from, _)| *from).min(),
        last_online: clipped.iter().map(|(_, to)| *to).max(),
        hourly_online_seconds,
    }
}

/// Spreads the span `from..to` over the hours of the day it covers.
fn add_to_hours(from: DateTime<Utc>, to: DateTime<Utc>, hours: &mut [i64; 24]) {
    let mut cursor = from;
    while cursor < to {
        let hour_start = cursor.duration_trunc(Duration::hours(1)).unwrap_or(cursor);
        let next_hour = (hour_start + Duration::hours(1)).min(to);
        hours[cursor.hour() as usize] += (next_hour - cursor).num_seconds();
        cursor = next_hour;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    /// 2026-01-01 00:00:00 UTC plus `seconds`.
    fn at(seconds: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
            .single()
            .expect("valid date")
            + Duration::seconds(seconds)
    }

    fn closed(start: i64, end: i64) -> Session {
        Session {
            started_at: at(start),
            last_online_at: at(end),
            ended_at: Some(at(end)),
        }
    }

    const HOUR: i64 = 3600;

    #[test]
    fn sums_sessions_inside_the_window() {
        let sessions = [closed(HOUR, HOUR + 600), closed(5 * HOUR, 5 * HOUR + 1800)];
        let window = Window::between(at(0), at(24 * HOUR)).expect("window");
        let stats = statistics(&sessions, window, at(24 * HOUR));
        assert_eq!(stats.online_seconds, 2400);
        assert_eq!(stats.session_count, 2);
        assert_eq!(stats.average_session_seconds, 1200);
        assert_eq!(stats.longest_session_seconds, 1800);
        assert_eq!(stats.first_online, Some(at(HOUR)));
        assert_eq!(stats.last_online, Some(at(5 * HOUR + 1800)));
        assert!((stats.online_share - 2400.0 / 86400.0).abs() < 1e-12);
        let mut expected_hours = [0; 24];
        expected_hours[1] = 600;
        expected_hours[5] = 1800;
        assert_eq!(stats.hourly_online_seconds, expected_hours);
    }

    #[test]
    fn clips_sessions_crossing_the_window_edges() {
        // 23:30 the day before until 00:30, and 23:45 until 00:15 the day after.
        let sessions = [
            closed(-1800, 1800),
            closed(24 * HOUR - 900, 24 * HOUR + 900),
            closed(-5 * HOUR, -4 * HOUR),
        ];
        let window = Window::between(at(0), at(24 * HOUR)).expect("window");
        let stats = statistics(&sessions, window, at(30 * HOUR));
        assert_eq!(stats.online_seconds, 1800 + 900);
        assert_eq!(stats.session_count, 2);
        assert_eq!(stats.longest_session_seconds, 1800);
        assert_eq!(stats.first_online, Some(at(0)));
        assert_eq!(stats.last_online, Some(at(24 * HOUR)));
        assert_eq!(stats.hourly_online_seconds[0], 1800);
        assert_eq!(stats.hourly_online_seconds[23], 900);
    }

    #[test]
    fn spreads_a_long_session_over_the_hours_it_covers() {
        // 00:50 to 03:10.
        let sessions = [closed(50 * 60, 3 * HOUR + 600)];
        let window = Window::between(at(0), at(24 * HOUR)).expect("window");
        let stats = statistics(&sessions, window, at(24 * HOUR));
        assert_eq!(&stats.hourly_online_seconds[..4], &[600, 3600, 3600, 600]);
        assert_eq!(stats.online_seconds, 600 + 7200 + 600);
    }

    #[test]
    fn an_open_session_counts_up_to_now() {
        // Open since 10:00, presumed online until 10:05 (expires), asked at 10:02.
        let open = Session {
            started_at: at(10 * HOUR),
            last_online_at: at(10 * HOUR + 300),
            ended_at: None,
        };
        let now = at(10 * HOUR + 120);
        let window = Window::last_hours(24, now).expect("window");
        let stats = statistics(&[open], window, now);
        assert_eq!(stats.online_seconds, 120);
        assert_eq!(stats.session_count, 1);
        assert_eq!(stats.last_online, Some(now));
    }

    #[test]
    fn empty_history_gives_zeros() {
        let window = Window::last_hours(48, at(0)).expect("window");
        let stats = statistics(&[], window, at(0));
        assert_eq!(stats.online_seconds, 0);
        assert_eq!(stats.session_count, 0);
        assert_eq!(stats.average_session_seconds, 0);
        assert_eq!(stats.first_online, None);
        assert_eq!(stats.online_share, 0.0);
    }

    #[test]
    fn a_zero_length_visit_counts_as_a_session_of_no_time() {
        let window = Window::between(at(0), at(HOUR)).expect("window");
        let stats = statistics(&[closed(600, 600)], window, at(HOUR));
        assert_eq!(stats.session_count, 1);
        assert_eq!(stats.online_seconds, 0);
    }

    #[test]
    fn rejects_bad_windows() {
        assert_eq!(
            Window::last_hours(0, at(0)),
            Err(WindowError::HoursOutOfRange(0))
        );
        assert_eq!(
            Window::last_hours(100_000, at(0)),
            Err(WindowError::HoursOutOfRange(100_000))
        );
        assert!(Window::last_hours(8760, at(0)).is_ok());
        assert!(matches!(
            Window::between(at(10), at(0)),
            Err(WindowError::Reversed { .. })
        ));
        assert!(matches!(
            Window::between(at(0), at(0)),
            Err(WindowError::Reversed { .. })
        ));
        assert_eq!(
            Window::between(at(0), at(8761 * HOUR)),
            Err(WindowError::TooLong)
        );
    }
}
