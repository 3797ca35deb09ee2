//! Scheduled jobs that run inside the service, on the service clock (seed 001 `jobs/`):
//!
//! - **account health** (`jobs.account_health_interval_seconds`): every account that should be
//!   working (status active or limited) but whose actor is not running or not connected to
//!   Telegram for `jobs.account_unhealthy_after_seconds` is logged with a warning (and once in
//!   `GET /api/logs` when it turns unhealthy) and counted in `/metrics`.
//! - **log cleanup** (`jobs.log_cleanup_interval_seconds`): rows of the `logs` table older than
//!   `logs.retention_days` are deleted, `logs.cleanup_batch_size` rows per statement.
//! - **retention** (`retention.interval_seconds`): old rows of the other tables that grow without
//!   bound (`[retention]`: raw observations, delivered events, finished webhook and bot
//!   messages, channel posts when configured) are deleted, `retention.batch_size` rows per
//!   statement; what they still serve stays (see `tgwatch_store::retention`).
//!
//! All read their settings from the running configuration at every run, so a reload of
//! config.toml changes them. Webhook retries are the dispatcher's own schedule.
//!
//! With several instances on one database, the log cleanup and the retention run on the leader
//! only, and each instance checks the health of the accounts it holds.

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, atomic::Ordering},
    time::Duration,
};

use actix::Addr;
use chrono::{DateTime, Utc};
use sea_orm::DatabaseConnection;
use tokio::sync::watch;
use uuid::Uuid;

use crate::{
    actors::{
        messages::{AccountLink, AccountLinks},
        ownership::Ownership,
        supervisor::FleetSupervisor,
    },
    metrics::Metrics,
};
use tgwatch_core::{clock::Clock, config::Config};
use tgwatch_store::{
    self as storage, LogLevel,
    retention::{self, Prunable},
};

/// The running jobs, for the service's stop.
pub struct JobsRunning(Vec<tokio::task::JoinHandle<()>>);

impl JobsRunning {
    /// Stops every job where it is: each run is whole or not at all (a cleanup cut off deletes
    /// the rest next time), so nothing is lost.
    pub async fn stop(self) {
        for job in self.0 {
            job.abort();
            // Aborted: it ends as cancelled, which is what was asked.
            let _ = job.await;
        }
    }
}

#[derive(Clone)]
pub struct Jobs {
    pub db: DatabaseConnection,
    pub clock: Clock,
    pub supervisor: Addr<FleetSupervisor>,
    pub metrics: Arc<Metrics>,
    pub config: watch::Receiver<Arc<Config>>,
    /// Which accounts this instance holds, and whether it is the leader.
    pub ownership: Ownership,
}

impl Jobs {
    /// Starts every job on the actix runtime.
    pub fn spawn(self) -> JobsRunning {
        let health = self.clone();
        let retention = self.clone();
        JobsRunning(vec![
            actix::spawn(async move { health.account_health_loop().await }),
            actix::spawn(async move { retention.retention_loop().await }),
            actix::spawn(async move { self.log_cleanup_loop().await }),
        ])
    }

    fn settings(&self) -> Arc<Config> {
        self.config.borrow().clone()
    }

    async fn account_health_loop(self) {
        let mut tracker = HealthTracker::default();
        loop {
            let interval = self.settings().jobs.account_health_interval_seconds;
            self.clock.sleep(Duration::from_secs(interval.max(1))).await;
            if let Err(error) = self.check_accounts(&mut tracker).await {
                tracing::error!(job = "account_health", %error, "account health check failed");
            }
        }
    }

    /// One run of the account health check.
    pub async fn check_accounts(
        &self,
        tracker: &mut HealthTracker,
    ) -> Result<Assessment, storage::StorageError> {
        let threshold = chrono::Duration::seconds(
            i64::try_from(self.settings().jobs.account_unhealthy_after_seconds).unwrap_or(i64::MAX),
        );
        let accounts = storage::accounts::all(&self.db).await?;
        let links = self
            .supervisor
            .send(AccountLinks)
            .await
            .map_err(|_| storage::StorageError::Unavailable)?;
        let observed: Vec<AccountCheck> = accounts
            .iter()
            .filter(|account| account.status.is_usable() && self.ownership.owns(account.id))
            .map(|account| {
                let link = links.get(&account.id).copied();
                AccountCheck {
                    account_id: account.id,
                    label: account.label.clone(),
                    running: link.is_some_and(|link| link.running),
                    connected: link.is_some_and(|link| link.connected == Some(true)),
                }
            })
            .collect();
        let now = self.clock.now();
        let assessment = tracker.assess(&observed, now, threshold);
        for problem in &assessment.unhealthy {
            let minutes = (now - problem.since).num_minutes();
            tracing::warn!(
                job = "account_health",
                account = %problem.label,
                running = problem.running,
                minutes,
                "account is {} for {minutes} min",
                problem.describe()
            );
        }
        for problem in &assessment.newly_unhealthy {
            self.metrics.account_health_warnings.inc(&problem.label);
            let message = format!(
                "account `{}` is {} since {}",
                problem.label,
                problem.describe(),
                problem.since.to_rfc3339()
            );
            storage::logs::write(
                &self.db,
                LogLevel::Warning,
                &message,
                Some(problem.account_id),
                None,
                now,
            )
            .await;
        }
        for label in &assessment.recovered {
            tracing::info!(job = "account_health", account = %label, "account is connected again");
        }
        self.metrics
            .accounts_unhealthy
            .store(assessment.unhealthy.len() as u64, Ordering::Relaxed);
        // A run that found nothing new is routine: at debug, so it does not bury the log.
        if assessment.newly_unhealthy.is_empty() && assessment.recovered.is_empty() {
            tracing::debug!(
                job = "account_health",
                checked = observed.len(),
                unhealthy = assessment.unhealthy.len(),
                "account health checked"
            );
        } else {
            tracing::info!(
                job = "account_health",
                checked = observed.len(),
                unhealthy = assessment.unhealthy.len(),
                "account health checked"
            );
        }
        Ok(assessment)
    }

    async fn log_cleanup_loop(self) {
        loop {
            if !self.ownership.is_leader() {
                tracing::debug!(job = "log_cleanup", "not the leader: the leader cleans up");
            } else if let Err(error) = self.clean_logs().await {
                tracing::error!(job = "log_cleanup", %error, "log cleanup failed");
            }
            let interval = self.settings().jobs.log_cleanup_interval_seconds;
            self.clock.sleep(Duration::from_secs(interval.max(1))).await;
        }
    }

    /// One run of the log cleanup; returns the rows deleted.
    pub async fn clean_logs(&self) -> Result<u64, storage::StorageError> {
        let settings = self.settings();
        let Some(cutoff) = retention_cutoff(self.clock.now(), settings.logs.retention_days) else {
            return Ok(0);
        };
        let deleted = storage::retention::prune_older_than(
            &self.db,
            Prunable::Logs,
            cutoff,
            settings.logs.cleanup_batch_size.max(1),
        )
        .await?;
        self.metrics
            .logs_deleted
            .fetch_add(deleted, Ordering::Relaxed);
        if deleted > 0 {
            tracing::info!(job = "log_cleanup", deleted, cutoff = %cutoff.to_rfc3339(), "old log rows deleted");
        } else {
            tracing::debug!(job = "log_cleanup", cutoff = %cutoff.to_rfc3339(), "no old log rows");
        }
        Ok(deleted)
    }

    async fn retention_loop(self) {
        loop {
            if !self.ownership.is_leader() {
                tracing::debug!(job = "retention", "not the leader: the leader prunes");
            } else if let Err(error) = self.prune_old_rows().await {
                tracing::error!(job = "retention", %error, "retention run failed");
            }
            let interval = self.settings().retention.interval_seconds;
            self.clock.sleep(Duration::from_secs(interval.max(1))).await;
        }
    }

    /// One run of the retention job: every table of [`retention::plan`] in turn, in batches;
    /// returns the rows deleted per table.
    pub async fn prune_old_rows(&self) -> Result<Vec<(Prunable, u64)>, storage::StorageError> {
        let settings = self.settings();
        let retention = &settings.retention;
        let now = self.clock.now();
        let mut pruned = Vec::new();
        for (what, days) in retention::plan(retention, settings.bot.token.is_some()) {
            let Some(cutoff) = retention_cutoff(now, days) else {
                continue;
            };
            let deleted = storage::retention::prune_older_than(
                &self.db,
                what,
                cutoff,
                retention.batch_size.max(1),
            )
            .await?;
            self.metrics.retention_deleted.add(what.table(), deleted);
            if deleted > 0 {
                tracing::info!(job = "retention", table = what.table(), deleted, cutoff = %cutoff.to_rfc3339(), "old rows deleted");
            } else {
                tracing::debug!(job = "retention", table = what.table(), cutoff = %cutoff.to_rfc3339(), "no old rows");
            }
            pruned.push((what, deleted));
        }
        Ok(pruned)
    }
}

/// Rows older than this are deleted; `None` when retention is off (0 days), or reaches back
/// before the calendar's start (nothing is that old).
pub fn retention_cutoff(now: DateTime<Utc>, retention_days: u32) -> Option<DateTime<Utc>> {
    if retention_days == 0 {
        return None;
    }
    now.checked_sub_signed(chrono::Duration::days(i64::from(retention_days)))
}

/// One account as the health check saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccountCheck {
    pub account_id: Uuid,
    pub label: String,
    /// Its actor runs.
    pub running: bool,
    /// Its actor holds a Telegram connection it may use.
    pub connected: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unhealthy {
    pub account_id: Uuid,
    pub label: String,
    pub running: bool,
    /// First seen not running or not connected.
    pub since: DateTime<Utc>,
}

impl Unhealthy {
    fn describe(&self) -> &'static str {
        if self.running {
            "not connected to Telegram (or not logged in)"
        } else {
            "not running"
        }
    }
}

#[derive(Debug, Default, PartialEq, Eq)]
pub struct Assessment {
    /// Not running or not connected for at least the threshold.
    pub unhealthy: Vec<Unhealthy>,
    /// Those of `unhealthy` that were not reported before.
    pub newly_unhealthy: Vec<Unhealthy>,
    /// Labels of reported accounts that are fine again.
    pub recovered: Vec<String>,
}

/// What the health check remembers between runs: since when each account has been down, and
/// which ones it reported. Pure.
#[derive(Debug, Default)]
pub struct HealthTracker {
    down_since: HashMap<Uuid, DateTime<Utc>>,
    reported: HashSet<Uuid>,
}

impl HealthTracker {
    pub fn assess(
        &mut self,
        observed: &[AccountCheck],
        now: DateTime<Utc>,
        threshold: chrono::Duration,
    ) -> Assessment {
        let mut assessment = Assessment::default();
        let present: HashSet<Uuid> = observed.iter().map(|a| a.account_id).collect();
        self.down_since.retain(|id, _| present.contains(id));
        self.reported.retain(|id| present.contains(id));
        for account in observed {
            if account.running && account.connected {
                self.down_since.remove(&account.account_id);
                if self.reported.remove(&account.account_id) {
                    assessment.recovered.push(account.label.clone());
                }
                continue;
            }
            let since = *self.down_since.entry(account.account_id).or_insert(now);
            if now - since < threshold {
                continue;
            }
            let unhealthy = Unhealthy {
                account_id: account.account_id,
                label: account.label.clone(),
                running: account.running,
                since,
            };
            if self.reported.insert(account.account_id) {
                assessment.newly_unhealthy.push(unhealthy.clone());
            }
            assessment.unhealthy.push(unhealthy);
        }
        assessment
    }
}

/// Whether an account link counts as connected (for the health output).
pub fn is_connected(link: Option<&AccountLink>) -> bool {
    link.is_some_and(|link| link.running && link.connected == Some(true))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tgwatch_core::config::RetentionConfig;

    fn check(id: Uuid, running: bool, connected: bool) -> AccountCheck {
        AccountCheck {
            account_id: id,
            label: format!("a{}", id.as_u128() % 100),
            running,
            connected,
        }
    }

    #[test]
    fn an_account_is_unhealthy_only_after_the_threshold_and_reported_once() {
        let id = Uuid::new_v4();
        let t0 = Utc::now();
        let threshold = chrono::Duration::seconds(300);
        let mut tracker = HealthTracker::default();
        let down = [check(id, true, false)];

        let first = tracker.assess(&down, t0, threshold);
        assert!(first.unhealthy.is_empty(), "not for long yet");

        let later = tracker.assess(&down, t0 + chrono::Duration::seconds(300), threshold);
        assert_eq!(later.unhealthy.len(), 1);
        assert_eq!(later.unhealthy[0].since, t0);
        assert_eq!(later.newly_unhealthy.len(), 1);

        let again = tracker.assess(&down, t0 + chrono::Duration::seconds(400), threshold);
        assert_eq!(again.unhealthy.len(), 1);
        assert!(again.newly_unhealthy.is_empty(), "reported once");

        let up = tracker.assess(
            &[check(id, true, true)],
            t0 + chrono::Duration::seconds(500),
            threshold,
        );
        assert!(up.unhealthy.is_empty());
        assert_eq!(up.recovered.len(), 1);

        // Down again: the clock starts over.
        let down_again = tracker.assess(&down, t0 + chrono::Duration::seconds(600), threshold);
        assert!(down_again.unhealthy.is_empty());
    }

    #[test]
    fn an_account_not_running_counts_and_a_vanished_one_is_forgotten() {
        let id = Uuid::new_v4();
        let t0 = Utc::now();
        let mut tracker = HealthTracker::default();
        let assessed = tracker.assess(&[check(id, false, false)], t0, chrono::Duration::zero());
        assert_eq!(assessed.newly_unhealthy.len(), 1);
        assert!(!assessed.unhealthy[0].running);
        // Removed (or banned) since: nothing left to report, and it starts over if it returns.
        assert_eq!(
            tracker.assess(&[], t0, chrono::Duration::zero()),
            Assessment::default()
        );
        let back = tracker.assess(&[check(id, false, false)], t0, chrono::Duration::zero());
        assert_eq!(back.newly_unhealthy.len(), 1);
    }

    #[test]
    fn retention_of_zero_days_keeps_everything() {
        let now = Utc::now();
        assert_eq!(retention_cutoff(now, 0), None);
        assert_eq!(
            retention_cutoff(now, 30),
            Some(now - chrono::Duration::days(30))
        );
        assert_eq!(
            retention_cutoff(now, 1),
            Some(now - chrono::Duration::seconds(86_400))
        );
        // Beyond the calendar: nothing is that old, nothing goes (and nothing panics).
        assert_eq!(retention_cutoff(now, u32::MAX), None);
    }

    #[test]
    fn the_retention_plan_prunes_attempts_then_messages_then_events_with_each_tables_days() {
        let retention = RetentionConfig {
            status_checks_days: 1,
            events_days: 2,
            webhook_messages_days: 3,
            bot_messages_days: 4,
            channel_messages_days: 0,
            ..RetentionConfig::default()
        };
        let plan = retention::plan(&retention, false);
        let order: Vec<&str> = plan.iter().map(|(what, _)| what.table()).collect();
        assert_eq!(
            order,
            [
                "status_checks",
                "webhook_deliveries",
                "webhook_messages",
                "events",
                "bot_messages",
                "messages"
            ]
        );
        let days: Vec<u32> = plan.iter().map(|(_, days)| *days).collect();
        assert_eq!(days, [1, 3, 3, 2, 4, 0]);
        assert_eq!(plan[3].0, Prunable::Events { bot_enabled: false });
        assert_eq!(
            retention::plan(&retention, true)[3].0,
            Prunable::Events { bot_enabled: true }
        );
        // Channel posts are kept unless configured.
        assert_eq!(
            retention_cutoff(Utc::now(), RetentionConfig::default().channel_messages_days),
            None
        );
    }
}
