//! Service time, which may run faster than real time.
//!
//! Every timer and timestamp in the service goes through a [`Clock`], so that `demo`, the tests and
//! the benchmark can play hours of Telegram activity in seconds: at speed 600, a 90 s poll
//! interval passes in 150 ms of real time. In production the speed is 1.

use std::time::{Duration, Instant};

use chrono::{DateTime, SubsecRound, Utc};

#[derive(Clone, Copy, Debug)]
pub struct Clock {
    started_real: Instant,
    started_at: DateTime<Utc>,
    /// Wall time when the clock started: maps Telegram's wall-clock timestamps onto service time.
    started_wall: DateTime<Utc>,
    speed: f64,
}

impl Clock {
    /// Real time.
    pub fn real() -> Clock {
        Clock::fast(1.0)
    }

    /// Time that starts now and runs `speed` times faster than real time.
    pub fn fast(speed: f64) -> Clock {
        let now = Utc::now();
        Clock::new(now, now, speed)
    }

    /// Time that starts at `started_at` and runs `speed` times faster than real time.
    pub fn starting_at(started_at: DateTime<Utc>, speed: f64) -> Clock {
        Clock::new(started_at, Utc::now(), speed)
    }

    fn new(started_at: DateTime<Utc>, started_wall: DateTime<Utc>, speed: f64) -> Clock {
        Clock {
            started_real: Instant::now(),
            started_at,
            started_wall,
            speed: if speed.is_finite() && speed > 0.0 {
                speed
            } else {
                1.0
            },
        }
    }

    /// Now, to the microsecond: PostgreSQL keeps no more, and a timestamp must read back equal
    /// to what was written (sessions are keyed by their start).
    pub fn now(&self) -> DateTime<Utc> {
        let elapsed = self.started_real.elapsed().mul_f64(self.speed);
        let now =
            self.started_at + chrono::Duration::from_std(elapsed).unwrap_or(chrono::TimeDelta::MAX);
        now.trunc_subsecs(6)
    }

    pub fn speed(&self) -> f64 {
        self.speed
    }

    /// The service time at which the wall clock showed `wall`: the identity in production
    /// (speed 1); on a fast clock, a wall-clock deadline from Telegram (a QR token's expiry) as
    /// the service shows it beside its own timestamps.
    pub fn from_wall(&self, wall: DateTime<Utc>) -> DateTime<Utc> {
        // In nanoseconds, which f64 holds exactly for spans up to 104 days: speed 1 is exact.
        let since_start = (wall - self.started_wall)
            .num_nanoseconds()
            .map_or(f64::MAX, |nanos| nanos as f64 * self.speed);
        let service = self
            .started_at
            .checked_add_signed(chrono::Duration::nanoseconds(since_start.round() as i64))
            .unwrap_or(DateTime::<Utc>::MAX_UTC);
        service.trunc_subsecs(6)
    }

    /// How long to wait in real time for `duration` of service time to pass.
    pub fn real_duration(&self, duration: Duration) -> Duration {
        duration.div_f64(self.speed)
    }

    /// Sleeps for `duration` of service time.
    pub async fn sleep(&self, duration: Duration) {
        tokio::time::sleep(self.real_duration(duration)).await;
    }

    /// Sleeps until the service time reaches `at` (returns at once if it has passed).
    pub async fn sleep_until(&self, at: DateTime<Utc>) {
        if let Ok(wait) = (at - self.now()).to_std() {
            self.sleep(wait).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_clock_scales_waits_and_elapsed_time() {
        let clock = Clock::fast(600.0);
        assert_eq!(
            clock.real_duration(Duration::from_secs(90)),
            Duration::from_millis(150)
        );
        let before = clock.now();
        std::thread::sleep(Duration::from_millis(20));
        let passed = clock.now() - before;
        // 20 ms real at 600x is at least 12 s of service time.
        assert!(passed >= chrono::Duration::seconds(12), "{passed}");
    }

    #[test]
    fn wall_time_maps_onto_service_time() {
        let real = Clock::fast(1.0);
        let wall = Utc::now() + chrono::Duration::seconds(30);
        assert_eq!(real.from_wall(wall), wall.trunc_subsecs(6));

        let start = DateTime::from_timestamp(1_800_000_000, 0).expect("time");
        let fast = Clock::starting_at(start, 60.0);
        let in_30_s = fast.started_wall + chrono::Duration::seconds(30);
        assert_eq!(
            fast.from_wall(in_30_s),
            start + chrono::Duration::minutes(30)
        );
        let ago_1_s = fast.started_wall - chrono::Duration::seconds(1);
        assert_eq!(
            fast.from_wall(ago_1_s),
            start - chrono::Duration::minutes(1)
        );
    }

    #[test]
    fn nonsense_speed_falls_back_to_real_time() {
        assert_eq!(Clock::fast(0.0).speed(), 1.0);
        assert_eq!(Clock::fast(f64::NAN).speed(), 1.0);
    }
}
