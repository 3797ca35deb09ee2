//! Metrics in the Prometheus text exposition format (version 0.0.4), served at `GET /metrics`.
//!
//! [`Metrics`] is a set of counters and one histogram that the parts of the service bump as they
//! work (one call per counter, no locks on the hot paths but the per-label maps). Gauges that
//! describe the database (accounts and channels by state) are read at scrape time and passed to
//! [`Metrics::families`]. [`render`] turns families into text; it is pure and tested directly.

use std::{
    collections::BTreeMap,
    fmt::Write as _,
    sync::{
        Mutex, PoisonError,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use tgwatch_core::events::EventType;

/// `le` bounds of the database write histogram, in seconds: from a millisecond (a small SQLite
/// batch) to ten seconds (a database that is in trouble).
pub const WRITE_BUCKETS: [f64; 13] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// `le` bounds of the poll lateness histogram, in service seconds: a poll waits for its batch
/// (`batch_delay_seconds` at most) and for the account's previous call.
pub const LATENESS_BUCKETS: [f64; 14] = [
    0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 4.0, 5.0, 7.5, 10.0, 20.0, 30.0, 60.0, 120.0,
];

/// Telegram methods counted in `tgwatch_telegram_calls_total`.
pub const GET_USERS: &str = "users.getUsers";
pub const RESOLVE_USERNAME: &str = "contacts.resolveUsername";

/// A counter per label value (an account label, an event type).
#[derive(Default)]
pub struct LabeledCounter(Mutex<BTreeMap<String, u64>>);

impl LabeledCounter {
    pub fn add(&self, label: &str, by: u64) {
        let mut map = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        match map.get_mut(label) {
            Some(value) => *value = value.saturating_add(by),
            None => {
                map.insert(label.to_owned(), by);
            }
        }
    }

    pub fn inc(&self, label: &str) {
        self.add(label, 1);
    }

    pub fn get(&self, label: &str) -> u64 {
        self.snapshot().get(label).copied().unwrap_or(0)
    }

    pub fn snapshot(&self) -> BTreeMap<String, u64> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// A histogram with fixed bounds. Bucket counts are kept per bucket and made cumulative when
/// rendered; the sum is kept in nanoseconds so that it can be an atomic integer.
pub struct Histogram {
    bounds: &'static [f64],
    /// One per bound, plus the +Inf bucket.
    buckets: Vec<AtomicU64>,
    sum_nanos: AtomicU64,
    count: AtomicU64,
}

impl Histogram {
    pub fn new(bounds: &'static [f64]) -> Histogram {
        Histogram {
            bounds,
            buckets: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum_nanos: AtomicU64::new(0),
            count: AtomicU64::new(0),
        }
    }

    pub fn observe(&self, duration: Duration) {
        let seconds = duration.as_secs_f64();
        let index = self
            .bounds
            .iter()
            .position(|bound| seconds <= *bound)
            .unwrap_or(self.bounds.len());
        if let Some(bucket) = self.buckets.get(index) {
            bucket.fetch_add(1, Ordering::Relaxed);
        }
        let nanos = u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX);
        self.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    /// The bound at or below which the `quantile` (0 to 1) of the samples fall: the upper bound
    /// of the bucket holding that rank, `None` when it is the +Inf bucket or nothing was seen.
    pub fn quantile_bound(&self, quantile: f64) -> Option<f64> {
        let counts: Vec<u64> = self
            .buckets
            .iter()
            .map(|bucket| bucket.load(Ordering::Relaxed))
            .collect();
        let total: u64 = counts.iter().sum();
        if total == 0 {
            return None;
        }
        let rank = (quantile.clamp(0.0, 1.0) * total as f64).ceil().max(1.0) as u64;
        let mut cumulative = 0;
        for (index, count) in counts.iter().enumerate() {
            cumulative += count;
            if cumulative >= rank {
                return self.bounds.get(index).copied();
            }
        }
        None
    }

    /// The samples of the histogram named `name`: cumulative `_bucket{le}`, `_sum`, `_count`.
    fn samples(&self) -> Vec<Sample> {
        let mut samples = Vec::with_capacity(self.buckets.len() + 2);
        let mut cumulative = 0u64;
        for (index, bucket) in self.buckets.iter().enumerate() {
            cumulative += bucket.load(Ordering::Relaxed);
            let le = match self.bounds.get(index) {
                Some(bound) => format_value(*bound),
                None => "+Inf".to_owned(),
            };
            samples.push(Sample::new("_bucket", vec![("le", le)], cumulative as f64));
        }
        // Read after the buckets: a write racing the scrape makes _count at least the +Inf
        // bucket, never below it by more than the racing writes.
        let count = self.count.load(Ordering::Relaxed).max(cumulative);
        let sum = self.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9;
        samples.push(Sample::new("_sum", Vec::new(), sum));
        samples.push(Sample::new("_count", Vec::new(), count as f64));
        samples
    }
}

/// Everything the service counts. Shared as `Arc<Metrics>`; `Metrics::default()` counts into
/// nothing anyone reads (benchmarks, unit tests).
pub struct Metrics {
    /// Outbox events written, by type (counted once committed).
    pub events: LabeledCounter,
    /// Calls to Telegram, by method.
    pub telegram_calls: LabeledCounter,
    /// Users asked about in `users.getUsers` polls.
    pub users_polled: AtomicU64,
    /// FLOOD_WAITs received, and the seconds Telegram asked for, by account label.
    pub flood_waits: LabeledCounter,
    pub flood_wait_seconds: LabeledCounter,
    /// Reconnections scheduled after a lost or failed connection, by account label.
    pub reconnects: LabeledCounter,
    /// Webhook delivery attempts by result (`delivered` / `failed`).
    pub webhook_attempts: LabeledCounter,
    /// Time the storage actor took to write one batch.
    pub db_write_seconds: Histogram,
    /// How long after its schedule a person's poll went out, in service seconds.
    pub poll_lateness_seconds: Histogram,
    /// Accounts the health job found not running or not connected for too long, by label
    /// (counted when an account turns unhealthy), and how many are unhealthy now.
    pub account_health_warnings: LabeledCounter,
    pub accounts_unhealthy: AtomicU64,
    /// Rows removed by the log retention job.
    pub logs_deleted: AtomicU64,
    /// Rows removed by the retention job, by table.
    pub retention_deleted: LabeledCounter,
    /// Configuration reloads by result (`applied` / `rejected`).
    pub config_reloads: LabeledCounter,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            events: LabeledCounter::default(),
            telegram_calls: LabeledCounter::default(),
            users_polled: AtomicU64::new(0),
            flood_waits: LabeledCounter::default(),
            flood_wait_seconds: LabeledCounter::default(),
            reconnects: LabeledCounter::default(),
            webhook_attempts: LabeledCounter::default(),
            db_write_seconds: Histogram::new(&WRITE_BUCKETS),
            poll_lateness_seconds: Histogram::new(&LATENESS_BUCKETS),
            account_health_warnings: LabeledCounter::default(),
            accounts_unhealthy: AtomicU64::new(0),
            logs_deleted: AtomicU64::new(0),
            retention_deleted: LabeledCounter::default(),
            config_reloads: LabeledCounter::default(),
        }
    }
}

/// What the scrape reads from the database and the actors, beside the counters.
#[derive(Debug, Default, Clone)]
pub struct Gauges {
    /// Accounts by status; `None` when the database did not answer.
    pub accounts_by_status: Option<BTreeMap<String, u64>>,
    /// Channels by status; empty before the `channels` table exists.
    pub channels_by_status: BTreeMap<String, u64>,
    pub accounts_running: Option<usize>,
    pub targets_running: Option<usize>,
    /// Whether the database answered the scrape's queries.
    pub database_up: bool,
}

impl Metrics {
    /// Counts events once they are committed to the outbox.
    pub fn events_written(&self, types: impl IntoIterator<Item = EventType>) {
        for event_type in types {
            self.events.inc(event_type.as_str());
        }
    }

    /// One `users.getUsers` poll of `users` users.
    pub fn poll(&self, users: usize) {
        self.telegram_calls.inc(GET_USERS);
        self.users_polled.fetch_add(users as u64, Ordering::Relaxed);
    }

    pub fn flood_wait(&self, account: &str, seconds: u32) {
        self.flood_waits.inc(account);
        self.flood_wait_seconds.add(account, u64::from(seconds));
    }

    /// Every family, in a stable order.
    pub fn families(&self, gauges: &Gauges) -> Vec<Family> {
        let mut events = self.events.snapshot();
        for kind in EventType::SUBSCRIBABLE {
            events.entry(kind.as_str().to_owned()).or_insert(0);
        }
        let mut calls = self.telegram_calls.snapshot();
        for method in [GET_USERS, RESOLVE_USERNAME] {
            calls.entry(method.to_owned()).or_insert(0);
        }
        let mut webhook_attempts = self.webhook_attempts.snapshot();
        for result in ["delivered", "failed"] {
            webhook_attempts.entry(result.to_owned()).or_insert(0);
        }
        let mut retention_deleted = self.retention_deleted.snapshot();
        for (what, _) in tgwatch_store::retention::plan(&Default::default(), false) {
            retention_deleted
                .entry(what.table().to_owned())
                .or_insert(0);
        }
        let mut families = vec![
            Family::counter(
                "tgwatch_events_total",
                "Events written to the outbox, by type.",
                "type",
                &events,
            ),
            Family::counter(
                "tgwatch_telegram_calls_total",
                "Calls made to Telegram, by method.",
                "method",
                &calls,
            ),
            Family::single(
                "tgwatch_users_polled_total",
                "Users asked about in users.getUsers polls.",
                Kind::Counter,
                self.users_polled.load(Ordering::Relaxed) as f64,
            ),
            Family::counter(
                "tgwatch_flood_waits_total",
                "FLOOD_WAIT answers received, by account.",
                "account",
                &self.flood_waits.snapshot(),
            ),
            Family::counter(
                "tgwatch_flood_wait_seconds_total",
                "Seconds of FLOOD_WAIT Telegram imposed, by account.",
                "account",
                &self.flood_wait_seconds.snapshot(),
            ),
            Family::counter(
                "tgwatch_account_reconnects_total",
                "Reconnections after a lost or failed Telegram connection, by account.",
                "account",
                &self.reconnects.snapshot(),
            ),
            Family::counter(
                "tgwatch_webhook_attempts_total",
                "Webhook delivery attempts, by result.",
                "result",
                &webhook_attempts,
            ),
            Family {
                name: "tgwatch_db_write_duration_seconds".to_owned(),
                help: "Time the storage actor took to write one batch of observations, sessions and events.".to_owned(),
                kind: Kind::Histogram,
                samples: self.db_write_seconds.samples(),
            },
            Family {
                name: "tgwatch_poll_lateness_seconds".to_owned(),
                help: "How long after its schedule a tracked user's poll went to Telegram, in service seconds (the batch's wait, a paused account).".to_owned(),
                kind: Kind::Histogram,
                samples: self.poll_lateness_seconds.samples(),
            },
            Family::counter(
                "tgwatch_account_health_warnings_total",
                "Times an account was found not running or not connected for too long, by account.",
                "account",
                &self.account_health_warnings.snapshot(),
            ),
            Family::single(
                "tgwatch_accounts_unhealthy",
                "Accounts the last health check found not running or not connected for too long.",
                Kind::Gauge,
                self.accounts_unhealthy.load(Ordering::Relaxed) as f64,
            ),
            Family::single(
                "tgwatch_logs_deleted_total",
                "Log rows removed by the retention job.",
                Kind::Counter,
                self.logs_deleted.load(Ordering::Relaxed) as f64,
            ),
            Family::counter(
                "tgwatch_retention_deleted_total",
                "Rows removed by the retention job ([retention]), by table.",
                "table",
                &retention_deleted,
            ),
            Family::counter(
                "tgwatch_config_reloads_total",
                "Reloads of the configuration file, by result.",
                "result",
                &self.config_reloads.snapshot(),
            ),
        ];
        if let Some(accounts) = &gauges.accounts_by_status {
            families.push(Family::gauge(
                "tgwatch_accounts",
                "Accounts by status, read from the database at scrape time.",
                "status",
                accounts,
            ));
        }
        families.push(Family::gauge(
            "tgwatch_channels",
            "Channels by status, read from the database at scrape time.",
            "status",
            &gauges.channels_by_status,
        ));
        let mut running = BTreeMap::new();
        if let Some(accounts) = gauges.accounts_running {
            running.insert("account".to_owned(), accounts as u64);
        }
        if let Some(targets) = gauges.targets_running {
            running.insert("target".to_owned(), targets as u64);
        }
        families.push(Family::gauge(
            "tgwatch_actors_running",
            "Actors running, by kind.",
            "kind",
            &running,
        ));
        families.push(Family::single(
            "tgwatch_database_up",
            "Whether the database answered the scrape (1) or not (0).",
            Kind::Gauge,
            if gauges.database_up { 1.0 } else { 0.0 },
        ));
        families
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        }
    }
}

/// One sample line: the family name plus `suffix` (`_bucket`, `_sum`, `_count` or nothing).
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    pub suffix: &'static str,
    pub labels: Vec<(&'static str, String)>,
    pub value: f64,
}

impl Sample {
    pub fn new(suffix: &'static str, labels: Vec<(&'static str, String)>, value: f64) -> Sample {
        Sample {
            suffix,
            labels,
            value,
        }
    }
}

/// A metric family: one HELP line, one TYPE line, its samples.
#[derive(Clone, Debug, PartialEq)]
pub struct Family {
    pub name: String,
    pub help: String,
    pub kind: Kind,
    pub samples: Vec<Sample>,
}

impl Family {
    fn labeled(
        name: &str,
        help: &str,
        kind: Kind,
        label: &'static str,
        values: &BTreeMap<String, u64>,
    ) -> Family {
        Family {
            name: name.to_owned(),
            help: help.to_owned(),
            kind,
            samples: values
                .iter()
                .map(|(value, count)| Sample::new("", vec![(label, value.clone())], *count as f64))
                .collect(),
        }
    }

    pub fn counter(
        name: &str,
        help: &str,
        label: &'static str,
        values: &BTreeMap<String, u64>,
    ) -> Family {
        Family::labeled(name, help, Kind::Counter, label, values)
    }

    pub fn gauge(
        name: &str,
        help: &str,
        label: &'static str,
        values: &BTreeMap<String, u64>,
    ) -> Family {
        Family::labeled(name, help, Kind::Gauge, label, values)
    }

    pub fn single(name: &str, help: &str, kind: Kind, value: f64) -> Family {
        Family {
            name: name.to_owned(),
            help: help.to_owned(),
            kind,
            samples: vec![Sample::new("", Vec::new(), value)],
        }
    }
}

/// The text exposition format: `# HELP`, `# TYPE`, then `name{label="value",...} value` lines,
/// each ending in `\n`.
pub fn render(families: &[Family]) -> String {
    let mut out = String::new();
    for family in families {
        let _ = writeln!(out, "# HELP {} {}", family.name, escape_help(&family.help));
        let _ = writeln!(out, "# TYPE {} {}", family.name, family.kind.as_str());
        for sample in &family.samples {
            out.push_str(&family.name);
            out.push_str(sample.suffix);
            if !sample.labels.is_empty() {
                out.push('{');
                for (index, (name, value)) in sample.labels.iter().enumerate() {
                    if index > 0 {
                        out.push(',');
                    }
                    let _ = write!(out, "{name}=\"{}\"", escape_label_value(value));
                }
                out.push('}');
            }
            out.push(' ');
            out.push_str(&format_value(sample.value));
            out.push('\n');
        }
    }
    out
}

/// HELP text: backslash and line feed are escaped.
fn escape_help(text: &str) -> String {
    text.replace('\\', "\\\\").replace('\n', "\\n")
}

/// Label values: backslash, double quote and line feed are escaped.
fn escape_label_value(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// A sample value as Prometheus reads it: integers without a fraction, `+Inf`, `-Inf`, `NaN`.
pub fn format_value(value: f64) -> String {
    if value.is_nan() {
        "NaN".to_owned()
    } else if value == f64::INFINITY {
        "+Inf".to_owned()
    } else if value == f64::NEG_INFINITY {
        "-Inf".to_owned()
    } else {
        // Rust's shortest round-trip form: "3", "0.005", "1e-7".
        format!("{value}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_writes_help_type_and_escaped_labels() {
        let mut values = BTreeMap::new();
        values.insert("a\"b\\c\nd".to_owned(), 3);
        values.insert("plain".to_owned(), 0);
        let families = vec![
            Family::counter("x_total", "Help with \\ and\nnewline.", "account", &values),
            Family::single("up", "Up.", Kind::Gauge, 1.0),
        ];
        assert_eq!(
            render(&families),
            "# HELP x_total Help with \\\\ and\\nnewline.\n\
             # TYPE x_total counter\n\
             x_total{account=\"a\\\"b\\\\c\\nd\"} 3\n\
             x_total{account=\"plain\"} 0\n\
             # HELP up Up.\n\
             # TYPE up gauge\n\
             up 1\n"
        );
    }

    #[test]
    fn a_family_without_samples_still_has_help_and_type() {
        let text = render(&[Family::gauge(
            "tgwatch_channels",
            "Channels.",
            "status",
            &BTreeMap::new(),
        )]);
        assert_eq!(
            text,
            "# HELP tgwatch_channels Channels.\n# TYPE tgwatch_channels gauge\n"
        );
    }

    #[test]
    fn the_quantile_bound_is_the_bucket_holding_that_rank() {
        const BOUNDS: [f64; 3] = [1.0, 5.0, 10.0];
        let histogram = Histogram::new(&BOUNDS);
        assert_eq!(histogram.quantile_bound(0.99), None);
        for _ in 0..99 {
            histogram.observe(Duration::from_millis(500));
        }
        histogram.observe(Duration::from_secs(3));
        assert_eq!(histogram.quantile_bound(0.99), Some(1.0));
        histogram.observe(Duration::from_secs(4));
        assert_eq!(histogram.quantile_bound(0.99), Some(5.0));
        assert_eq!(histogram.quantile_bound(0.5), Some(1.0));
        histogram.observe(Duration::from_secs(60));
        histogram.observe(Duration::from_secs(60));
        assert_eq!(histogram.quantile_bound(1.0), None, "in the +Inf bucket");
    }

    #[test]
    fn histogram_buckets_are_cumulative_and_end_with_inf() {
        static BOUNDS: [f64; 3] = [0.01, 0.1, 1.0];
        let histogram = Histogram::new(&BOUNDS);
        histogram.observe(Duration::from_millis(5)); // <= 0.01
        histogram.observe(Duration::from_millis(10)); // == 0.01: inclusive bound
        histogram.observe(Duration::from_millis(50)); // <= 0.1
        histogram.observe(Duration::from_secs(3)); // +Inf only
        let family = Family {
            name: "w_seconds".to_owned(),
            help: "W.".to_owned(),
            kind: Kind::Histogram,
            samples: histogram.samples(),
        };
        assert_eq!(
            render(&[family]),
            "# HELP w_seconds W.\n\
             # TYPE w_seconds histogram\n\
             w_seconds_bucket{le=\"0.01\"} 2\n\
             w_seconds_bucket{le=\"0.1\"} 3\n\
             w_seconds_bucket{le=\"1\"} 3\n\
             w_seconds_bucket{le=\"+Inf\"} 4\n\
             w_seconds_sum 3.065\n\
             w_seconds_count 4\n"
        );
    }

    #[test]
    fn values_are_written_as_prometheus_reads_them() {
        assert_eq!(format_value(3.0), "3");
        assert_eq!(format_value(0.0025), "0.0025");
        assert_eq!(format_value(f64::INFINITY), "+Inf");
        assert_eq!(format_value(f64::NEG_INFINITY), "-Inf");
        assert_eq!(format_value(f64::NAN), "NaN");
    }

    #[test]
    fn counters_count_and_every_event_type_is_listed() {
        let metrics = Metrics::default();
        metrics.events_written([EventType::UserOnline, EventType::UserOnline]);
        metrics.poll(150);
        metrics.poll(50);
        metrics.flood_wait("main", 30);
        metrics.flood_wait("main", 12);
        let text = render(&metrics.families(&Gauges::default()));
        assert!(
            text.contains("tgwatch_events_total{type=\"user_online\"} 2\n"),
            "{text}"
        );
        assert!(
            text.contains("tgwatch_events_total{type=\"new_message\"} 0\n"),
            "{text}"
        );
        assert!(text.contains("tgwatch_telegram_calls_total{method=\"users.getUsers\"} 2\n"));
        assert!(text.contains("tgwatch_users_polled_total 200\n"));
        assert!(text.contains("tgwatch_flood_waits_total{account=\"main\"} 2\n"));
        assert!(text.contains("tgwatch_flood_wait_seconds_total{account=\"main\"} 42\n"));
        assert!(text.contains("tgwatch_db_write_duration_seconds_bucket{le=\"+Inf\"} 0\n"));
        // No database figures: no accounts family, an empty channels family.
        assert!(!text.contains("tgwatch_accounts{"));
        assert!(text.contains("# TYPE tgwatch_channels gauge\n"));
    }
}
