//! The service's stop, the same for SIGTERM, SIGINT and `demo --seconds`: in order, each step
//! logged as it happens, the whole bounded by `[supervision] shutdown_timeout_seconds`.
//!
//! 1. HTTP and WebSocket take no new work: `/readyz` answers 503, every live WebSocket is closed
//!    with 1001 "going away", and the server stops accepting (requests in flight finish).
//! 2. The fleet stops: each account lets go of its Telegram connection and hands on what the
//!    connection had received; then every person's actor stops. Nothing new enters the buffers
//!    after this.
//! 3. What the actors buffer is written: observations (StorageActor), channel posts
//!    (ChannelsActor).
//! 4. Webhooks: no more claims; attempts in flight finish and are written, and those still
//!    running near the deadline are cut off and their claims released.
//! 5. The bot stops polling and notifying; the scheduled jobs stop.
//! 6. The leases are released: the other instances on the database take the accounts over at
//!    their next heartbeat, not after the lease time.
//! 7. The database pool is closed, on the runtime.
//!
//! Past the deadline the steps left are abandoned: they are logged and the process exits with
//! [`EXIT_STOP_UNFINISHED`] instead of 0.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use actix::{Addr, MailboxError};
use actix_web::dev::Server;
use sea_orm::DatabaseConnection;
use tgwatch_store as storage;
use tokio::time::Instant;

use crate::{
    actors::{
        channels::{ChannelsActor, FlushChannels},
        messages::Flush,
        storage::StorageActor,
        supervisor::{FleetSupervisor, StopFleet},
    },
    cluster::ClusterRunning,
    jobs::JobsRunning,
    live::Live,
    supervision::worker::{Retire, Worker},
    webhooks::dispatcher::DispatcherSetup,
};

/// The exit code of a stop that did not finish its work within
/// `supervision.shutdown_timeout_seconds` (or whose steps failed).
pub const EXIT_STOP_UNFINISHED: i32 = 3;

/// The longest time kept, at the end of the stop, for what comes after the webhook attempts
/// (writing them, releasing claims, the bot, closing the pool).
const RESERVE_AFTER_ATTEMPTS: Duration = Duration::from_secs(2);

#[derive(Debug, thiserror::Error)]
pub enum StopError {
    /// The deadline passed, or a step failed: what is named was not done.
    #[error(
        "the stop did not finish its work within {timeout_seconds} s (supervision.shutdown_timeout_seconds); abandoned: {}",
        .abandoned.join("; ")
    )]
    Unfinished {
        timeout_seconds: u64,
        abandoned: Vec<String>,
    },
}

impl StopError {
    /// The process's exit code for this error.
    pub fn exit_code(&self) -> i32 {
        match self {
            StopError::Unfinished { .. } => EXIT_STOP_UNFINISHED,
        }
    }
}

/// How long the attempts in flight may run of a stop of `timeout`: all of it but a reserve for
/// the steps after them (a quarter of it, at most [`RESERVE_AFTER_ATTEMPTS`]).
pub fn attempts_budget(timeout: Duration) -> Duration {
    timeout.saturating_sub((timeout / 4).min(RESERVE_AFTER_ATTEMPTS))
}

/// The steps of the stop, in order, named as the log and the abandoned list say them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Step {
    Http,
    Fleet,
    Observations,
    ChannelPosts,
    Webhooks,
    Bot,
    Jobs,
    Leases,
    Database,
}

impl Step {
    const ALL: [Step; 9] = [
        Step::Http,
        Step::Fleet,
        Step::Observations,
        Step::ChannelPosts,
        Step::Webhooks,
        Step::Bot,
        Step::Jobs,
        Step::Leases,
        Step::Database,
    ];

    fn name(self) -> &'static str {
        match self {
            Step::Http => "stopping HTTP and WebSocket work",
            Step::Fleet => "stopping the accounts and people",
            Step::Observations => "writing buffered observations",
            Step::ChannelPosts => "writing buffered channel posts",
            Step::Webhooks => "finishing webhook attempts in flight",
            Step::Bot => "stopping the bot",
            Step::Jobs => "stopping the scheduled jobs",
            Step::Leases => "handing the accounts over",
            Step::Database => "closing the database pool",
        }
    }

    /// This step and every one after it.
    fn and_after(self) -> impl Iterator<Item = Step> {
        Step::ALL.into_iter().skip_while(move |step| *step != self)
    }
}

/// Everything the stop acts on, gathered when the service is built.
pub(crate) struct StopParts {
    pub stopping: Arc<AtomicBool>,
    pub live: Live,
    pub fleet: Addr<FleetSupervisor>,
    pub storage: Addr<StorageActor>,
    pub channels: Addr<ChannelsActor>,
    pub webhooks: Option<DispatcherSetup>,
    /// The bot's worker: retired, it stops polling and notifying where it is. Nothing is lost:
    /// an update fetched but not yet handled is fetched again at the next start (getUpdates
    /// confirms an update only with the next call's offset), and a notification cut off while
    /// it was sent stays claimed until its lease (`[cluster] lease_seconds`) runs out, then is
    /// sent again by whichever instance leads.
    pub bot: Option<Addr<Worker>>,
    pub jobs: Option<JobsRunning>,
    pub cluster: Option<ClusterRunning>,
    /// The lock on the SQLite file (see `crate::cluster::lock_sqlite_file`), let go with the
    /// database.
    pub sqlite_lock: Option<std::fs::File>,
    pub db: DatabaseConnection,
    pub timeout: Duration,
}

impl StopParts {
    /// Runs the stop (see the module documentation); `server` is the HTTP server, unless it
    /// already stopped.
    pub(crate) async fn stop(mut self, mut server: Option<Server>) -> Result<(), StopError> {
        let started = Instant::now();
        let deadline = started + self.timeout;
        tracing::info!(
            timeout_seconds = self.timeout.as_secs(),
            "stopping: HTTP and WebSocket take no new work"
        );
        let mut abandoned = Vec::new();
        for step in Step::ALL {
            let run = self.run(step, &mut server, started, deadline);
            match tokio::time::timeout_at(deadline, run).await {
                Ok(mut left_behind) => {
                    tracing::info!(
                        step = step.name(),
                        elapsed_ms = started.elapsed().as_millis() as u64,
                        "stopping: step done"
                    );
                    abandoned.append(&mut left_behind);
                }
                Err(_) => {
                    abandoned.extend(step.and_after().map(|step| step.name().to_owned()));
                    break;
                }
            }
        }
        if abandoned.is_empty() {
            tracing::info!(
                elapsed_ms = started.elapsed().as_millis() as u64,
                "stopped cleanly"
            );
            return Ok(());
        }
        let error = StopError::Unfinished {
            timeout_seconds: self.timeout.as_secs(),
            abandoned,
        };
        tracing::error!(%error, "the stop was cut short");
        Err(error)
    }

    /// One step; returns what it had to leave behind.
    async fn run(
        &mut self,
        step: Step,
        server: &mut Option<Server>,
        started: Instant,
        deadline: Instant,
    ) -> Vec<String> {
        let mut left_behind = Vec::new();
        match step {
            Step::Http => {
                // Not ready any more, so that balancers send nothing new; the WebSockets close
                // first, or the server would wait for them.
                self.stopping.store(true, Ordering::SeqCst);
                self.live.going_away();
                if let Some(server) = server.take() {
                    // The server runs inside its future: it is driven until it has stopped.
                    let (_, served) = tokio::join!(server.handle().stop(true), server);
                    if let Err(error) = served {
                        tracing::error!(%error, "the HTTP server failed while stopping");
                    }
                }
            }
            Step::Fleet => {
                if self.fleet.send(StopFleet).await.is_err() {
                    tracing::error!(
                        "the fleet supervisor is gone: its accounts stop with the process"
                    );
                }
            }
            Step::Observations => {
                let flush = || self.storage.send(Flush);
                left_behind.extend(flush_buffer(deadline, "observations", "storage", flush).await);
            }
            Step::ChannelPosts => {
                let flush = || self.channels.send(FlushChannels);
                left_behind
                    .extend(flush_buffer(deadline, "channel posts", "channels", flush).await);
            }
            Step::Webhooks => {
                if let Some(webhooks) = self.webhooks.take() {
                    let attempts_deadline = started + attempts_budget(self.timeout);
                    let stopped = webhooks.stop(attempts_deadline, deadline).await;
                    tracing::info!(
                        released = stopped.released,
                        unreleased = stopped.unreleased,
                        attempts_written = stopped.attempts_written,
                        "webhook dispatcher stopped"
                    );
                    left_behind.extend(stopped.left_behind());
                }
            }
            Step::Bot => {
                if let Some(bot) = self.bot.take() {
                    // Gone already (it failed beyond its intensity) is stopped too.
                    let _ = bot.send(Retire).await;
                }
            }
            Step::Jobs => {
                if let Some(jobs) = self.jobs.take() {
                    jobs.stop().await;
                }
            }
            Step::Leases => {
                if let Some(cluster) = self.cluster.take()
                    && let Err(error) = cluster.leave().await
                {
                    tracing::error!(%error, "could not release the leases: they run out by themselves");
                    left_behind.push(format!("releasing the leases ({error})"));
                }
            }
            Step::Database => {
                // On the runtime, while it runs: closing hands every connection back properly
                // (dropped later, outside it, sqlx needs a runtime it no longer has).
                if let Err(error) = self.db.clone().close().await {
                    tracing::error!(%error, "closing the database pool failed");
                }
                self.sqlite_lock.take();
            }
        }
        left_behind
    }
}

/// Asks an actor to write the `buffered` changes it holds, again after a failed write until
/// `deadline` (a failed write keeps its batch, so asking again tries it again); what is left
/// behind, if anything, in words for the log.
async fn flush_buffer<F>(
    deadline: Instant,
    buffered: &str,
    actor: &str,
    mut flush: impl FnMut() -> F,
) -> Option<String>
where
    F: std::future::Future<Output = Result<Result<(), storage::StorageError>, MailboxError>>,
{
    // `Ok(false)`: the actor is gone.
    let flushed = storage::again_until(deadline, || {
        let flushing = flush();
        async move {
            flushing
                .await
                .map_or(Ok(false), |written| written.map(|()| true))
        }
    })
    .await;
    match flushed {
        Ok(true) => None,
        Err(error) => {
            tracing::error!(%error, "could not write the last {buffered}");
            Some(format!("buffered {buffered} ({error})"))
        }
        Ok(false) => {
            tracing::error!("the {actor} actor is gone: the {buffered} it held are lost");
            Some(format!("buffered {buffered} (the {actor} actor is gone)"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attempts_keep_a_reserve_for_the_steps_after_them() {
        assert_eq!(
            attempts_budget(Duration::from_secs(10)),
            Duration::from_secs(8)
        );
        assert_eq!(
            attempts_budget(Duration::from_secs(2)),
            Duration::from_millis(1500)
        );
        assert_eq!(
            attempts_budget(Duration::from_secs(3600)),
            Duration::from_secs(3598)
        );
    }

    #[test]
    fn a_step_cut_off_abandons_it_and_every_one_after_it() {
        let after: Vec<Step> = Step::Webhooks.and_after().collect();
        assert_eq!(
            after,
            vec![
                Step::Webhooks,
                Step::Bot,
                Step::Jobs,
                Step::Leases,
                Step::Database
            ]
        );
        assert_eq!(Step::Http.and_after().count(), Step::ALL.len());
    }

    #[test]
    fn an_unfinished_stop_names_what_it_abandoned_and_exits_non_zero() {
        let error = StopError::Unfinished {
            timeout_seconds: 1,
            abandoned: vec![
                "1 webhook attempt(s) in flight".into(),
                "closing the database pool".into(),
            ],
        };
        assert_eq!(error.exit_code(), EXIT_STOP_UNFINISHED);
        assert_ne!(EXIT_STOP_UNFINISHED, 0);
        let text = error.to_string();
        assert!(
            text.contains("supervision.shutdown_timeout_seconds"),
            "{text}"
        );
        assert!(
            text.contains("1 webhook attempt(s) in flight; closing the database pool"),
            "{text}"
        );
    }
}
