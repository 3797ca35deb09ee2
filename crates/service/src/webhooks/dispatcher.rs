//! The webhook dispatcher: claims due messages, sends them signed, and records every attempt.
//! The messages are queued with their events, in the transaction that writes them
//! (`tgwatch_store::webhooks::insert_events`).
//!
//! It wakes when events are committed (its worker is told, see `crate::publish`), when an
//! attempt ends (room for the endpoint's next message), and on a timer (retries, other
//! instances' leftovers, events written without their messages by an earlier version). A claim
//! is a lease: a message whose sender died is claimed again when the lease runs out, so delivery
//! is at least once. Attempts are written in batches by one writer task. Each endpoint has at
//! most `max_in_flight_per_endpoint` requests open, and three times as many messages claimed
//! ahead, waiting for room: an attempt that ends starts the next one without a statement, and
//! a claim takes a window or more at once. The lease covers the wait (see `Dispatcher::round`).
//!
//! The service's stop ([`DispatcherSetup::stop`]) ends the claiming, releases the claims of the
//! messages waiting, waits for the attempts in flight, writes every attempt that finished, and
//! releases the claims of those that did not, so
//! the next claim (after a restart, or by another instance) takes them without waiting for the
//! lease.

use std::{
    collections::{HashMap, HashSet, VecDeque},
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use chrono::{DateTime, Utc};
use sea_orm::DatabaseConnection;
use tokio::{
    sync::{Notify, mpsc, oneshot},
    task::{AbortHandle, JoinHandle},
    time::Instant as Deadline,
};
use uuid::Uuid;

use super::address::{self, Destinations, GuardedResolver, SystemLookup};
use tgwatch_core::{clock::Clock, config::WebhooksConfig};
use tgwatch_core::{
    retry::{Outcome, RetryPolicy, classify},
    signing::{SigningSecret, signature_header},
};
use tgwatch_store::{
    self as storage, LogLevel,
    webhooks::{AttemptRecord, Claimed, Claims, DisablePolicy},
};

/// Response bodies are stored up to this many bytes.
const RESPONSE_BYTES_KEPT: usize = 4096;
/// Events written without their messages, queued per statement.
const FAN_OUT_BATCH: u64 = 1000;

/// How many windows of `max_in_flight_per_endpoint` messages an endpoint holds claimed ahead,
/// waiting for room. On PostgreSQL a claim is a round trip and a statement the server works on
/// while requests end; with one window ahead the requests ran dry during the claims (machine
/// 65 % busy; 19,800 deliveries/s in `bench webhooks`, 23,500 with three).
const WINDOWS_CLAIMED_AHEAD: usize = 3;

/// Wakes the dispatcher: with news (its worker when events are committed, the API after a test
/// event, a redelivery or a replay, the attempt writer after an alert), or when an attempt
/// ended and made room for the endpoint's next message.
#[derive(Clone, Default)]
pub struct Wake(Arc<WakeSignals>);

#[derive(Default)]
pub struct WakeSignals {
    notify: Notify,
    /// Set with news: the next round claims whatever the room (a round woken only by room
    /// waits for a quarter of an endpoint's requests to be free).
    news: AtomicBool,
}

impl Wake {
    /// Something new to deliver.
    pub fn wake(&self) {
        self.0.news.store(true, Ordering::Release);
        self.0.notify.notify_one();
    }

    /// An attempt ended: room for its endpoint's next message.
    fn room_freed(&self) {
        self.0.notify.notify_one();
    }

    fn take_news(&self) -> bool {
        self.0.news.swap(false, Ordering::AcqRel)
    }
}

struct Dispatcher {
    db: DatabaseConnection,
    clock: Clock,
    config: WebhooksConfig,
    policy: RetryPolicy,
    client: reqwest::Client,
    wake: Wake,
    /// Requests open per endpoint.
    in_flight: Arc<Mutex<HashMap<Uuid, usize>>>,
    /// Messages claimed ahead, waiting for room, by endpoint, oldest due first.
    waiting: Waiting,
    /// Endpoints whose last claim found fewer due messages than it asked for: a round woken
    /// only by room does not claim for them (news and the timer do).
    drained: HashSet<Uuid>,
    /// The attempts running, by message: what the stop waits for, and cuts off past its deadline.
    attempts_running: Arc<AttemptsRunning>,
    attempts: mpsc::UnboundedSender<AttemptRecord>,
    stop: Arc<Notify>,
}

/// Messages claimed ahead, by endpoint.
type Waiting = Arc<Mutex<HashMap<Uuid, VecDeque<Claimed>>>>;

/// The attempt tasks of the dispatcher, and a signal each time one ends.
#[derive(Default)]
struct AttemptsRunning {
    tasks: Mutex<HashMap<Uuid, AbortHandle>>,
    ended: Notify,
}

impl AttemptsRunning {
    fn count(&self) -> usize {
        self.tasks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// Cuts off every attempt still running and returns their messages.
    fn abort_all(&self) -> Vec<Uuid> {
        let mut tasks = self.tasks.lock().unwrap_or_else(PoisonError::into_inner);
        tasks
            .drain()
            .map(|(message_id, task)| {
                task.abort();
                message_id
            })
            .collect()
    }
}

/// The running dispatcher and its writer, for the service's stop.
struct Dispatch {
    db: DatabaseConnection,
    stop: Arc<Notify>,
    /// The dispatcher's task (its worker holds the `JoinHandle`) and when it has ended.
    dispatcher: AbortHandle,
    dispatcher_ended: oneshot::Receiver<()>,
    writer: JoinHandle<()>,
    attempts_running: Arc<AttemptsRunning>,
    waiting: Waiting,
}

/// What [`Dispatch::stop`] did with the attempts in flight when it began.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct DispatchStopped {
    /// Attempts that were still running at the deadline, cut off; their claims released.
    pub released: usize,
    /// Claims that could not be released (the database failed): those messages wait for their
    /// lease to run out.
    pub unreleased: usize,
    /// Whether every finished attempt was written before the deadline.
    pub attempts_written: bool,
}

impl DispatchStopped {
    /// What the stop could not finish, in words for the log.
    pub fn left_behind(&self) -> Vec<String> {
        let mut left = Vec::new();
        if self.released > 0 {
            left.push(format!(
                "{} webhook attempt(s) in flight, cut off (claims released: sent again after the restart)",
                self.released
            ));
        }
        if self.unreleased > 0 {
            left.push(format!(
                "{} webhook attempt(s) in flight, cut off (claims kept until their lease runs out)",
                self.unreleased
            ));
        }
        if !self.attempts_written {
            left.push("webhook attempts not yet written (sent again after their lease)".into());
        }
        left
    }
}

/// Starts the dispatcher and its writer on the runtime; `wake` wakes it. Fails only when the
/// HTTP client cannot be built.
pub fn spawn(
    db: DatabaseConnection,
    clock: Clock,
    config: WebhooksConfig,
    wake: Wake,
) -> Result<DispatcherSetup, reqwest::Error> {
    let setup = DispatcherSetup::new(db, clock, config, wake, Arc::default())?;
    setup.spawn();
    Ok(setup)
}

/// What the dispatcher is made of, kept so that it can be started again after a crash (its
/// supervisor's worker calls [`DispatcherSetup::spawn`] at every start) and stopped at the end
/// ([`DispatcherSetup::stop`]).
#[derive(Clone)]
pub struct DispatcherSetup {
    db: DatabaseConnection,
    clock: Clock,
    config: WebhooksConfig,
    wake: Wake,
    metrics: Arc<crate::metrics::Metrics>,
    client: reqwest::Client,
    /// The dispatcher started last.
    running: Arc<Mutex<Option<Dispatch>>>,
}

impl DispatcherSetup {
    /// Builds the HTTP client (the only step that can fail); attempts and alert events are
    /// counted in `metrics`.
    pub fn new(
        db: DatabaseConnection,
        clock: Clock,
        config: WebhooksConfig,
        wake: Wake,
        metrics: Arc<crate::metrics::Metrics>,
    ) -> Result<DispatcherSetup, reqwest::Error> {
        let client = reqwest::Client::builder()
            // Every name is resolved again at delivery, and private answers are dropped there.
            .dns_resolver(Arc::new(GuardedResolver::new(
                Arc::new(SystemLookup),
                Destinations::new(&config),
            )))
            .timeout(Duration::from_secs_f64(config.timeout_seconds))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("tgwatch/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(DispatcherSetup {
            db,
            clock,
            config,
            wake,
            metrics,
            client,
            running: Arc::default(),
        })
    }

    /// Starts the dispatcher and its attempt writer; returns the dispatcher's task. Started
    /// again after a crash, the old writer is left to write the attempts of the old one still
    /// in flight, then end; what the old one claimed and never attempted is claimed again when
    /// its lease runs out.
    pub fn spawn(&self) -> JoinHandle<()> {
        let (attempts, attempts_rx) = mpsc::unbounded_channel();
        let disable = DisablePolicy {
            after_failing_for: chrono::Duration::milliseconds(
                (self.config.disable_after_hours * 3_600_000.0) as i64,
            ),
            after_failed_messages: self.config.disable_after_failed_messages,
        };
        let writer = tokio::spawn(write_attempts(
            self.db.clone(),
            self.clock,
            attempts_rx,
            disable,
            self.wake.clone(),
            Arc::clone(&self.metrics),
        ));
        let stop = Arc::new(Notify::new());
        let attempts_running = Arc::new(AttemptsRunning::default());
        let waiting = Waiting::default();
        let dispatcher = Dispatcher {
            policy: self.config.retry_policy(),
            db: self.db.clone(),
            clock: self.clock,
            config: self.config.clone(),
            client: self.client.clone(),
            wake: self.wake.clone(),
            in_flight: Arc::default(),
            waiting: Arc::clone(&waiting),
            drained: HashSet::new(),
            attempts_running: Arc::clone(&attempts_running),
            attempts,
            stop: Arc::clone(&stop),
        };
        let (ended, dispatcher_ended) = oneshot::channel();
        let task = tokio::spawn(async move {
            dispatcher.run().await;
            // Nobody waiting is fine: the stop waits for this only when it runs.
            let _ = ended.send(());
        });
        *self.running.lock().unwrap_or_else(PoisonError::into_inner) = Some(Dispatch {
            db: self.db.clone(),
            stop,
            dispatcher: task.abort_handle(),
            dispatcher_ended,
            writer,
            attempts_running,
            waiting,
        });
        task
    }

    /// Stops the dispatcher started last (see [`Dispatch::stop`]).
    pub async fn stop(&self, attempts_deadline: Deadline, deadline: Deadline) -> DispatchStopped {
        let running = self
            .running
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        match running {
            Some(dispatch) => dispatch.stop(attempts_deadline, deadline).await,
            None => DispatchStopped {
                attempts_written: true,
                ..DispatchStopped::default()
            },
        }
    }
}

impl Dispatch {
    /// Stops in order: no more claims; the attempts in flight finish until `attempts_deadline`
    /// and the rest are cut off with their claims released; every finished attempt is written
    /// (until `deadline`, after which what the writer holds is abandoned, covered by the lease).
    async fn stop(self, attempts_deadline: Deadline, deadline: Deadline) -> DispatchStopped {
        self.stop.notify_one();
        // The round under way (a claim, at most) ends first: what it claims is in flight below.
        if tokio::time::timeout_at(deadline, self.dispatcher_ended)
            .await
            .is_err()
        {
            self.dispatcher.abort();
        }
        let mut stopped = DispatchStopped::default();
        let waiting: Vec<Uuid> = self
            .waiting
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .drain()
            .flat_map(|(_, queue)| queue)
            .map(|claimed| claimed.message.id)
            .collect();
        if !waiting.is_empty() {
            match release(&self.db, &waiting, deadline).await {
                Ok(released) => {
                    tracing::info!(
                        released,
                        "webhook messages claimed ahead and never sent: claims released"
                    );
                }
                Err(error) => {
                    tracing::error!(%error, messages = waiting.len(), "cannot release the claims of webhook messages never sent: they wait for their lease");
                    stopped.unreleased += waiting.len();
                }
            }
        }
        let running = &self.attempts_running;
        while running.count() > 0 {
            let ended = running.ended.notified();
            if running.count() == 0
                || tokio::time::timeout_at(attempts_deadline, ended)
                    .await
                    .is_err()
            {
                break;
            }
        }
        let cut_off = running.abort_all();
        if !cut_off.is_empty() {
            tracing::warn!(
                attempts = cut_off.len(),
                "webhook attempts still in flight at the deadline: cut off, releasing their claims"
            );
            match release(&self.db, &cut_off, deadline).await {
                Ok(released) => stopped.released = released as usize,
                Err(error) => {
                    tracing::error!(%error, attempts = cut_off.len(), "cannot release webhook claims: they wait for their lease");
                    stopped.unreleased += cut_off.len();
                }
            }
        }
        // Every sender is gone now (the dispatcher's and the attempts'), so the writer ends once
        // it has written what it holds.
        stopped.attempts_written = tokio::time::timeout_at(deadline, self.writer).await.is_ok();
        stopped
    }
}

/// Gives back the claims on `messages` at the stop, trying again after a failure until
/// `deadline`.
async fn release(
    db: &DatabaseConnection,
    messages: &[Uuid],
    deadline: Deadline,
) -> Result<u64, storage::StorageError> {
    storage::again_until(deadline, || storage::webhooks::release_claims(db, messages)).await
}

impl Dispatcher {
    async fn run(mut self) {
        let interval = Duration::from_millis(self.config.poll_interval_ms);
        // The first round also looks for events left without their messages.
        let mut timed_out = true;
        loop {
            let news = self.wake.take_news() || timed_out;
            if let Err(error) = self.round(news, timed_out).await {
                tracing::error!(%error, "webhook dispatch round failed; retrying");
            }
            timed_out = tokio::select! {
                _ = self.wake.0.notify.notified() => false,
                _ = tokio::time::sleep(interval) => true,
                _ = self.stop.notified() => return,
            };
        }
    }

    /// Starts the messages waiting while their endpoints have room, and claims more: each
    /// endpoint holds at most a window of requests in flight and [`WINDOWS_CLAIMED_AHEAD`]
    /// windows claimed ahead. With `news` it claims whatever the room; woken only by room, once
    /// a window is free and the endpoint's last claim found all it asked for. The timer's round
    /// (`timed_out`) also queues the messages of events written without them, by an earlier
    /// version of tgwatch.
    ///
    /// The lease covers a message claimed ahead: the requests of a window each end within the
    /// timeout, so the last waiting message starts within [`WINDOWS_CLAIMED_AHEAD`] timeouts of
    /// its claim and ends within the next; 5 s more for the claim and the writing.
    async fn round(&mut self, news: bool, timed_out: bool) -> Result<(), storage::StorageError> {
        let now = self.clock.now();
        if timed_out {
            while storage::webhooks::fan_out(&self.db, FAN_OUT_BATCH, now).await? as u64
                == FAN_OUT_BATCH
            {}
        }
        if news {
            self.drained.clear();
        }
        self.start_waiting();
        let limit = self.config.max_in_flight_per_endpoint;
        let held = self.held_counts();
        let room = |endpoint: Uuid| {
            ((1 + WINDOWS_CLAIMED_AHEAD) * limit)
                .saturating_sub(held.get(&endpoint).copied().unwrap_or(0)) as u64
        };
        let worth_claiming = news
            || held.keys().any(|endpoint| {
                !self.drained.contains(endpoint) && room(*endpoint) >= limit.max(1) as u64
            });
        if !worth_claiming {
            return Ok(());
        }
        let lease = self.clock_span(Duration::from_secs_f64(
            self.config.timeout_seconds * (1 + WINDOWS_CLAIMED_AHEAD) as f64 + 5.0,
        ));
        let Claims { active, claimed } =
            storage::webhooks::claim(&self.db, now, now + lease, room).await?;
        let mut found: HashMap<Uuid, u64> = HashMap::new();
        for message in &claimed {
            *found.entry(message.message.webhook_id).or_default() += 1;
        }
        for endpoint in &active {
            match found.get(endpoint).copied().unwrap_or(0) < room(*endpoint) {
                true => self.drained.insert(*endpoint),
                false => self.drained.remove(endpoint),
            };
        }
        let given_back: Vec<Uuid> = {
            let mut waiting = self.waiting.lock().unwrap_or_else(PoisonError::into_inner);
            for message in claimed {
                waiting
                    .entry(message.message.webhook_id)
                    .or_default()
                    .push_back(message);
            }
            // Endpoints disabled or deleted meanwhile: their waiting messages are not sent.
            let gone: Vec<Uuid> = waiting
                .keys()
                .filter(|endpoint| !active.contains(endpoint))
                .copied()
                .collect();
            gone.iter()
                .filter_map(|endpoint| waiting.remove(endpoint))
                .flatten()
                .map(|claimed| claimed.message.id)
                .collect()
        };
        self.start_waiting();
        if !given_back.is_empty() {
            storage::webhooks::release_claims(&self.db, &given_back).await?;
        }
        Ok(())
    }

    /// Starts waiting messages while their endpoints have room.
    fn start_waiting(&self) {
        let limit = self.config.max_in_flight_per_endpoint;
        let in_flight = self.in_flight_counts();
        let starting: Vec<Claimed> = {
            let mut waiting = self.waiting.lock().unwrap_or_else(PoisonError::into_inner);
            let starting = waiting
                .iter_mut()
                .flat_map(|(endpoint, queue)| {
                    let open = in_flight.get(endpoint).copied().unwrap_or(0);
                    let room = limit.saturating_sub(open).min(queue.len());
                    queue.drain(..room)
                })
                .collect();
            waiting.retain(|_, queue| !queue.is_empty());
            starting
        };
        for claimed in starting {
            self.start_attempt(claimed);
        }
    }

    /// Messages in flight and waiting, per endpoint.
    fn held_counts(&self) -> HashMap<Uuid, usize> {
        let mut held = self.in_flight_counts();
        let waiting = self.waiting.lock().unwrap_or_else(PoisonError::into_inner);
        for (endpoint, queue) in waiting.iter() {
            *held.entry(*endpoint).or_default() += queue.len();
        }
        held
    }

    /// A real-time span expressed on the service clock.
    fn clock_span(&self, real: Duration) -> chrono::Duration {
        chrono::Duration::from_std(real.mul_f64(self.clock.speed()))
            .unwrap_or(chrono::Duration::MAX)
    }

    fn in_flight_counts(&self) -> HashMap<Uuid, usize> {
        self.in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn start_attempt(&self, claimed: Claimed) {
        let webhook_id = claimed.message.webhook_id;
        *self
            .in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(webhook_id)
            .or_default() += 1;
        let client = self.client.clone();
        let clock = self.clock;
        let policy = self.policy.clone();
        let destinations = Destinations::new(&self.config);
        let in_flight = self.in_flight.clone();
        let attempts = self.attempts.clone();
        let wake = self.wake.clone();
        let message_id = claimed.message.id;
        let running = Arc::clone(&self.attempts_running);
        // Registered before it can end, so that its removal below never comes first.
        let mut tasks = running.tasks.lock().unwrap_or_else(PoisonError::into_inner);
        let task = tokio::spawn({
            let running = Arc::clone(&running);
            async move {
                let record = attempt(&client, clock, &policy, &destinations, claimed).await;
                let mut counts = in_flight.lock().unwrap_or_else(PoisonError::into_inner);
                if let Some(count) = counts.get_mut(&webhook_id) {
                    *count = count.saturating_sub(1);
                }
                drop(counts);
                wake.room_freed();
                // The writer runs until the stop, which waits for this send (or cuts the attempt
                // off before it, and releases its claim).
                let _ = attempts.send(record);
                running
                    .tasks
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .remove(&message_id);
                running.ended.notify_one();
            }
        });
        tasks.insert(message_id, task.abort_handle());
    }
}

/// Sends one message and says what should happen next.
async fn attempt(
    client: &reqwest::Client,
    clock: Clock,
    policy: &RetryPolicy,
    destinations: &Destinations,
    claimed: Claimed,
) -> AttemptRecord {
    let Claimed {
        message,
        body,
        url,
        secrets,
    } = claimed;
    let attempt_number = message.attempts + 1;
    let triggered_at = clock.now();
    // Wall-clock time, whatever the service clock's speed: consumers check it against their own
    // clock to refuse replayed requests.
    let timestamp = Utc::now().timestamp();
    let secrets: Vec<SigningSecret> = secrets
        .iter()
        .filter_map(|s| SigningSecret::parse(s).ok())
        .collect();
    let signature = signature_header(
        &secrets.iter().collect::<Vec<_>>(),
        &message.event_id,
        timestamp,
        &body,
    );
    let record = |error: Option<String>,
                  status_code: Option<i32>,
                  response_body: Option<String>,
                  outcome: Outcome,
                  started: Instant| {
        let latency_ms = started.elapsed().as_millis().min(i32::MAX as u128) as i32;
        let completed_at = clock.now();
        let next_attempt_at: Option<DateTime<Utc>> = policy
            .next_delay(attempt_number as u32, outcome, &mut rand::rng())
            .map(|delay| {
                completed_at + chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::MAX)
            });
        AttemptRecord {
            message_id: message.id,
            webhook_id: message.webhook_id,
            event_id: message.event_id.clone(),
            attempt: attempt_number,
            request_body: body.clone(),
            status_code,
            response_body,
            latency_ms,
            error,
            success: outcome == Outcome::Delivered,
            triggered_at,
            completed_at,
            next_attempt_at,
            gone: outcome == Outcome::Gone,
        }
    };
    let started = Instant::now();
    if let Err(refused) = address::check_literal_host(&url, destinations) {
        // Refused before any connection: a failure like a refused connection, retried on the
        // schedule (the configuration may allow the address again).
        let outcome = classify(None, false, None);
        return record(Some(refused.to_string()), None, None, outcome, started);
    }
    let sent = client
        .post(&url)
        .header("content-type", "application/json")
        .header("webhook-id", &message.event_id)
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", signature)
        .body(body.clone())
        .send()
        .await;
    let (status_code, response_body, error, outcome) = match sent {
        Ok(response) => {
            let status = response.status().as_u16();
            let retry_after = response
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs);
            let text = response.text().await.unwrap_or_default();
            let kept: String = text.chars().take(RESPONSE_BYTES_KEPT).collect();
            (
                Some(i32::from(status)),
                Some(kept),
                None,
                classify(Some(status), false, retry_after),
            )
        }
        Err(error) => {
            let outcome = classify(None, error.is_timeout(), None);
            (None, None, Some(cause_chain(&error)), outcome)
        }
    };
    record(error, status_code, response_body, outcome, started)
}

/// The error and every cause under it, outermost first: reqwest's own message ("error sending
/// request for url (...)") says nothing about what went wrong; the causes say connection
/// refused, timed out, certificate invalid, name not resolved. Causes that only repeat their
/// predecessor's words are left out.
fn cause_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut chain = error.to_string();
    let mut last = chain.clone();
    let mut source = error.source();
    while let Some(cause) = source {
        let message = cause.to_string();
        if !message.is_empty() && !last.contains(&message) {
            chain.push_str(": ");
            chain.push_str(&message);
        }
        last = message;
        source = cause.source();
    }
    chain
}

/// Writes attempts in batches; a failed write is retried with the same batch, so no attempt's
/// outcome is lost while the database is away (the lease also covers a crash here).
async fn write_attempts(
    db: DatabaseConnection,
    clock: Clock,
    mut attempts: mpsc::UnboundedReceiver<AttemptRecord>,
    policy: DisablePolicy,
    wake: Wake,
    metrics: Arc<crate::metrics::Metrics>,
) {
    let mut batch = Vec::new();
    while let Some(first) = attempts.recv().await {
        batch.push(first);
        while batch.len() < 1000 {
            match attempts.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        let alerts_written = loop {
            match storage::webhooks::record_attempts(&db, &batch, policy, clock.now()).await {
                Ok(disabled) => {
                    let alerts_written = !disabled.is_empty();
                    let delivered = batch.iter().filter(|a| a.success).count() as u64;
                    metrics.webhook_attempts.add("delivered", delivered);
                    metrics
                        .webhook_attempts
                        .add("failed", batch.len() as u64 - delivered);
                    metrics.events_written(
                        disabled
                            .iter()
                            .map(|_| tgwatch_core::events::EventType::Alert),
                    );
                    for endpoint in disabled {
                        let message = format!(
                            "webhook {} ({}) disabled: {}",
                            endpoint.id,
                            endpoint.url,
                            endpoint.status_reason.unwrap_or_default()
                        );
                        tracing::error!(webhook_id = %endpoint.id, "{message}");
                        storage::logs::write(
                            &db,
                            LogLevel::Critical,
                            &message,
                            None,
                            None,
                            clock.now(),
                        )
                        .await;
                    }
                    break alerts_written;
                }
                Err(error) => {
                    tracing::error!(%error, attempts = batch.len(), "cannot record webhook attempts; retrying");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
        };
        batch.clear();
        // Retries due now (the room round claims them), and the alert events just written.
        match alerts_written {
            true => wake.wake(),
            false => wake.room_freed(),
        }
    }
}
