//! tgwatch-bench: the measurements of `tgwatch bench` (README, "Performance"). Each runs the
//! real service in the process (or, for the WebSocket, as a child process) and prints a report.
//!
//! - [`presence`]: tracked users over the scripted Telegram; [`mtproto`]: the same through real
//!   MTProto against the sandbox; [`late_observation`]: out-of-order observations of a long
//!   history.
//! - [`channels`]: channel posts through MTProto into the database, and a ban's recovery time.
//! - [`cluster`](cluster::cluster): several instances of the binary on one PostgreSQL database:
//!   throughput per instance and in total, failover after a SIGKILL.
//! - [`webhooks`]: delivery throughput and latency to a receiver on 127.0.0.1.
//! - [`websocket`] ([`loadtest`]): WebSocket clients on `/ws` and the status broadcast.
//! - [`retention`](retention::retention): the retention job's pruning of 10 million rows, and
//!   how long a writer waits meanwhile.
//! - [`message_writes`]: the write throughput of channel messages (an ignored test runs it);
//!   [`procstat`]: memory and CPU of a process from `/proc`.
//!
//! `bench presence` reports four figures, each with its goal:
//! - Telegram calls per 100 polls (goal: at most 1): batching of due polls into `users.getUsers`.
//! - poll lateness (goal: 99 % within 5 service seconds of the schedule): from the metric
//!   `tgwatch_poll_lateness_seconds`.
//! - observations written per second on SQLite (goal: at least 50,000, and at least 0.9x of the
//!   raw insert ceiling of the same rows measured in the same run): the storage path alone,
//!   batches of 5,000 rows as the storage actor writes them.
//! - resident memory per tracked user (goal: at most 4 KiB): RSS growth when the targets start.

pub mod cluster;
pub mod loadtest;
pub mod message_writes;
pub mod procstat;
pub mod retention;

use std::{fmt, sync::Arc, sync::atomic::Ordering, time::Duration};

use chrono::Utc;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter,
};
use uuid::Uuid;

use tgwatch_core::{
    clock::Clock,
    config::{AccountConfig, Config, Secret},
    events::EventType,
    presence::{Observation, Source, Status},
};
use tgwatch_service::app::{Application, StartupError};
use tgwatch_store::{
    self as storage, Doing, StorageError,
    entities::{status_checks, tracked_users},
    observations::{NewObservation, PendingWrites},
};
use tgwatch_telegram::TelegramConnector;
use tgwatch_testkit::demo::{DemoError, SandboxFleet};
use tgwatch_testkit::{
    sandbox_player,
    scripted::{Scenario, ScenarioUser, ScriptedTelegram},
};

#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error(transparent)]
    Startup(#[from] StartupError),
    #[error(transparent)]
    Stop(#[from] tgwatch_service::app::RunError),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Tracking(#[from] tgwatch_service::tracking::TrackingError),
    #[error("database: {0}")]
    Db(#[from] sea_orm::DbErr),
    #[error(transparent)]
    Fleet(#[from] DemoError),
    #[error(transparent)]
    Channel(#[from] tgwatch_service::channels::ChannelError),
    #[error("only {stored} of {expected} messages were stored within the time limit")]
    Incomplete { expected: u64, stored: u64 },
    #[error("sandbox: {0}")]
    Sandbox(#[from] tgwatch_sandbox::SandboxError),
    #[error("temporary directory: {0}")]
    TempDir(#[from] std::io::Error),
    #[error(transparent)]
    Observation(#[from] tgwatch_service::actors::messages::ManualObservationError),
    #[error("the stored sessions differ from a fold of the whole history")]
    Diverged,
}

pub struct PresenceReport {
    pub users: usize,
    pub accounts: usize,
    pub service_seconds: f64,
    pub get_users_calls: u64,
    pub polls: u64,
    pub observations_stored: u64,
    /// The bounds (service seconds) that 50, 90 and 99 % of the polls' lateness fell within,
    /// `None` past the largest bucket.
    pub lateness_seconds: [Option<f64>; 3],
    pub writes: WriteRates,
    pub rss_growth_bytes: i64,
}

impl PresenceReport {
    pub fn calls_per_100_polls(&self) -> f64 {
        self.get_users_calls as f64 * 100.0 / self.polls.max(1) as f64
    }
    pub fn bytes_per_user(&self) -> f64 {
        self.rss_growth_bytes as f64 / self.users as f64
    }
}

impl fmt::Display for PresenceReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "presence benchmark: {} tracked users on {} accounts",
            self.users, self.accounts
        )?;
        writeln!(
            f,
            "  fleet run: {:.0} s of service time, {} polls in {} users.getUsers calls, {} observations stored",
            self.service_seconds, self.polls, self.get_users_calls, self.observations_stored
        )?;
        writeln!(
            f,
            "  Telegram calls per 100 polls: {:.2} (goal <= 1)",
            self.calls_per_100_polls()
        )?;
        let bound = |bound: Option<f64>| match bound {
            Some(bound) => format!("<= {bound}"),
            None => format!(
                "> {}",
                tgwatch_service::metrics::LATENESS_BUCKETS
                    .last()
                    .copied()
                    .unwrap_or_default()
            ),
        };
        let [p50, p90, p99] = self.lateness_seconds.map(bound);
        writeln!(
            f,
            "  poll lateness in service seconds after the schedule: p50 {p50}, p90 {p90}, p99 {p99} (goal p99 <= 5)"
        )?;
        writeln!(
            f,
            "  observations written per second (SQLite, batches of 5000): {:.0} (goal >= 50000; {} rows in {:.2} s)",
            self.writes.storage_per_second(),
            self.writes.rows,
            self.writes.storage_seconds
        )?;
        writeln!(
            f,
            "  raw insert ceiling of the same rows in the same run: {:.0}/s; the storage path at {:.2}x of it (goal >= 0.9)",
            self.writes.ceiling_per_second(),
            self.writes.share_of_ceiling()
        )?;
        write!(
            f,
            "  resident memory per tracked user: {:.0} bytes (goal <= 4096)",
            self.bytes_per_user()
        )
    }
}

pub async fn presence(
    users: usize,
    accounts: usize,
    run_for: Duration,
    speed: f64,
) -> Result<PresenceReport, BenchError> {
    let dir = tempfile_dir()?;
    let clock = Clock::fast(speed);
    let scenario = Scenario::generated(users, 7);
    let mut config = Config::default();
    config.database.url = format!("sqlite://{}?mode=rwc", dir.join("bench.db").display());
    config.http.bind = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
    config.http.admin_token = Some(Secret::new(Uuid::new_v4().simple().to_string()));
    config.telegram.clock_speed = speed;
    config.presence.flush_interval_ms = 500;
    config.accounts = (0..accounts.max(1))
        .map(|index| AccountConfig {
            label: format!("bench-{index}"),
            phone: None,
            api_id: None,
            max_targets: users as i32,
            max_channels: 100,
        })
        .collect();
    let (database_url, max_connections) =
        (config.database.url.clone(), config.database.max_connections);
    let users_in_scenario = scenario.users.clone();
    let telegram = ScriptedTelegram::start(scenario, clock);
    let connector: Arc<dyn TelegramConnector> = telegram.clone();
    let app = Application::build_with(config, clock, connector).await?;
    let tracking = app.tracking();
    let db = tracking.db.clone();

    insert_tracked_users(&db, &users_in_scenario).await?;

    let rss_before = crate::procstat::resident_bytes("self") as i64;
    tracking.start_targets().await?;
    // Let every target load its state and settle.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let rss_growth_bytes = crate::procstat::resident_bytes("self") as i64 - rss_before;

    let started = clock.now();
    let calls_before = telegram.counts().get_users_calls.load(Ordering::Relaxed);
    let polls_before = telegram.counts().users_requested.load(Ordering::Relaxed);
    tokio::time::sleep(run_for).await;
    let get_users_calls = telegram.counts().get_users_calls.load(Ordering::Relaxed) - calls_before;
    let polls = telegram.counts().users_requested.load(Ordering::Relaxed) - polls_before;
    let service_seconds = (clock.now() - started).num_milliseconds() as f64 / 1000.0;
    let observations_stored = status_checks::Entity::find().count(&db).await?;
    let lateness = &app.metrics().poll_lateness_seconds;
    let lateness_seconds = [0.5, 0.9, 0.99].map(|quantile| lateness.quantile_bound(quantile));

    // The writes are measured on a quiet database: the fleet stopped, a pool of its own with
    // the service's settings.
    app.run_until(std::future::ready(())).await?;
    let db = storage::connect(&database_url, max_connections).await?;
    let writes = measure_writes(&db, &rows_ids(&db).await?).await?;
    Ok(PresenceReport {
        users,
        accounts,
        service_seconds,
        get_users_calls,
        polls,
        observations_stored,
        lateness_seconds,
        writes,
        rss_growth_bytes,
    })
}

/// Tracked users straight into the table (resolving 10,000 usernames one by one is not what is
/// measured), spread over the accounts.
async fn insert_tracked_users(
    db: &sea_orm::DatabaseConnection,
    users: &[ScenarioUser],
) -> Result<(), BenchError> {
    let account_ids: Vec<Uuid> = storage::accounts::all(db)
        .await?
        .iter()
        .map(|a| a.id)
        .collect();
    let now = Utc::now();
    let rows: Vec<tracked_users::ActiveModel> = users
        .iter()
        .enumerate()
        .map(|(index, user)| tracked_users::ActiveModel {
            id: Set(Uuid::now_v7()),
            telegram_user_id: Set(Some(user.id)),
            username: Set(user.username.clone()),
            first_name: Set(user.first_name.clone()),
            access_hash: Set(Some(user.access_hash())),
            account_id: Set(Some(account_ids[index % account_ids.len()])),
            visible_online: Set(true),
            notify: Set(false),
            is_active: Set(true),
            source: Set(tgwatch_core::config::Origin::Api),
            created_at: Set(now),
            updated_at: Set(now),
        })
        .collect();
    for chunk in rows.chunks(1000) {
        tracked_users::Entity::insert_many(chunk.iter().cloned())
            .exec_without_returning(db)
            .await?;
    }
    Ok(())
}

/// The presence pipeline through real MTProto: the grammers adapter polling the sandbox.
pub struct MtprotoReport {
    pub users: usize,
    pub accounts: usize,
    pub real_seconds: f64,
    pub service_seconds: f64,
    pub get_users_calls: u64,
    pub polled: u64,
    pub pushed: u64,
}

impl fmt::Display for MtprotoReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let stored = self.polled + self.pushed;
        let rounds = self.polled as f64 / self.users.max(1) as f64;
        writeln!(
            f,
            "MTProto benchmark: {} tracked users on {} accounts, grammers against the sandbox over TCP",
            self.users, self.accounts
        )?;
        writeln!(
            f,
            "  {:.1} s real ({:.0} s of service time): {} observations stored ({} polled, {} pushed)",
            self.real_seconds, self.service_seconds, stored, self.polled, self.pushed
        )?;
        writeln!(
            f,
            "  observations per second through MTProto into the database: {:.0}",
            stored as f64 / self.real_seconds
        )?;
        write!(
            f,
            "  users.getUsers calls: {} for {:.2} poll rounds (every user once) = {:.1} calls per round, {:.2} per 100 polls",
            self.get_users_calls,
            rounds,
            self.get_users_calls as f64 / rounds.max(f64::EPSILON),
            self.get_users_calls as f64 * 100.0 / self.polled.max(1) as f64
        )
    }
}

/// Runs `users` targets on `accounts` sandbox accounts through the grammers adapter for
/// `run_for` of real time, on a fresh SQLite file.
pub async fn mtproto(
    users: usize,
    accounts: usize,
    run_for: Duration,
    speed: f64,
) -> Result<MtprotoReport, BenchError> {
    let dir = tempfile_dir()?;
    let clock = Clock::fast(speed);
    let scenario = Scenario::generated(users, 11);
    let mut config = sandbox_bench_config(&dir, None, accounts.max(1), users as i32, 100);
    config.telegram.clock_speed = speed;
    config.presence.flush_interval_ms = 500;
    let fleet = SandboxFleet::start(&config, &scenario, clock).await?;
    let users_in_scenario = scenario.users.clone();
    sandbox_player::play(fleet.sandbox.clone(), scenario, clock, clock.now());
    let app = fleet.build_app(config, clock).await?;
    let tracking = app.tracking();
    insert_tracked_users(&fleet.db, &users_in_scenario).await?;

    let started_real = std::time::Instant::now();
    let started = clock.now();
    let calls_before = fleet.sandbox.calls("users.getUsers");
    tracking.start_targets().await?;
    tokio::time::sleep(run_for).await;
    let get_users_calls = fleet.sandbox.calls("users.getUsers") - calls_before;
    let real_seconds = started_real.elapsed().as_secs_f64();
    let service_seconds = (clock.now() - started).num_milliseconds() as f64 / 1000.0;
    let count_source = |source: &'static str| {
        status_checks::Entity::find()
            .filter(status_checks::Column::Source.eq(source))
            .count(&fleet.db)
    };
    let polled = count_source("poll").await?;
    let pushed = count_source("push").await?;
    Ok(MtprotoReport {
        users,
        accounts,
        real_seconds,
        service_seconds,
        get_users_calls,
        polled,
        pushed,
    })
}

/// The service's configuration for a benchmark over the sandbox: a temporary SQLite file (or
/// `database_url`), a random port and token, the sandbox's api_id/api_hash, a key file in `dir`,
/// and `accounts` accounts `bench-0`, `bench-1`, ... with the given limits.
fn sandbox_bench_config(
    dir: &std::path::Path,
    database_url: Option<String>,
    accounts: usize,
    max_targets: i32,
    max_channels: i32,
) -> Config {
    let mut config = Config::default();
    config.database.url = database_url
        .unwrap_or_else(|| format!("sqlite://{}?mode=rwc", dir.join("bench.db").display()));
    config.http.bind = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
    config.http.admin_token = Some(Secret::new(Uuid::new_v4().simple().to_string()));
    config.telegram.api_id = Some(1);
    config.telegram.api_hash = Some(Secret::new("bench-api-hash"));
    config.security.master_key_file = dir.join("bench.key").display().to_string();
    config.accounts = (0..accounts)
        .map(|index| AccountConfig {
            label: format!("bench-{index}"),
            phone: None,
            api_id: None,
            max_targets,
            max_channels,
        })
        .collect();
    config
}

fn tempfile_dir() -> Result<std::path::PathBuf, std::io::Error> {
    let dir = std::env::temp_dir().join(format!("tgwatch-bench-{}", Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

async fn rows_ids(db: &sea_orm::DatabaseConnection) -> Result<Vec<Uuid>, StorageError> {
    Ok(storage::tracked_users::active(db)
        .await?
        .into_iter()
        .map(|u| u.id)
        .collect())
}

/// The write rates of one run: the storage actor's path against the ceiling of the same rows.
pub struct WriteRates {
    /// Rows written by each path.
    pub rows: usize,
    /// Seconds the storage actor's path took: observations as targets hand them over, batched
    /// and written by `observations::write`.
    pub storage_seconds: f64,
    /// Seconds the raw ceiling took: the same rows as prebuilt INSERT statements (the storage
    /// path's own), executed with nothing else (same table, connection settings, transactions).
    pub ceiling_seconds: f64,
}

impl WriteRates {
    pub fn storage_per_second(&self) -> f64 {
        self.rows as f64 / self.storage_seconds
    }
    pub fn ceiling_per_second(&self) -> f64 {
        self.rows as f64 / self.ceiling_seconds
    }
    /// The storage path's rate as a share of the ceiling (goal: at least 0.9).
    pub fn share_of_ceiling(&self) -> f64 {
        self.ceiling_seconds / self.storage_seconds
    }
}

/// Writes 200,000 observations the way the storage actor does and 200,000 more as the raw
/// ceiling, one transaction per 5,000 rows, in alternating rounds so that neither path runs
/// only on the larger table.
async fn measure_writes(
    db: &sea_orm::DatabaseConnection,
    tracked: &[Uuid],
) -> Result<WriteRates, StorageError> {
    const ROUNDS: usize = 8;
    const ROWS_PER_ROUND: usize = 25_000;
    const BATCH: usize = 5_000;
    let now = Utc::now();
    let mut serial = 0usize;
    let mut observations = |count: usize| -> Vec<NewObservation> {
        (0..count)
            .map(|_| {
                serial += 1;
                NewObservation {
                    id: Uuid::now_v7(),
                    tracked_user_id: tracked[serial % tracked.len()],
                    account_id: None,
                    observation: Observation {
                        observed_at: now + chrono::Duration::milliseconds(serial as i64),
                        status: Status::Offline {
                            was_online: Some(now),
                        },
                    },
                    source: Source::Poll,
                    recorded_at: now,
                    sessions: Vec::new(),
                    events: Vec::new(),
                }
            })
            .collect()
    };
    let backend = db.get_database_backend();
    let (mut storage_seconds, mut ceiling_seconds) = (0.0, 0.0);
    for _ in 0..ROUNDS {
        let handed_over = observations(ROWS_PER_ROUND);
        let started = std::time::Instant::now();
        let mut handed_over = handed_over.into_iter();
        for _ in 0..ROWS_PER_ROUND / BATCH {
            let mut writes = PendingWrites::default();
            for observation in handed_over.by_ref().take(BATCH) {
                writes.push(observation);
            }
            storage::observations::write(db, &writes).await?;
        }
        storage_seconds += started.elapsed().as_secs_f64();

        let prebuilt: Vec<Vec<sea_orm::Statement>> = observations(ROWS_PER_ROUND)
            .chunks(BATCH)
            .map(|batch| storage::observations::insert_statements(backend, batch))
            .collect();
        let started = std::time::Instant::now();
        for statements in prebuilt {
            let txn = storage::begin_write(db, "starting the ceiling's write").await?;
            for statement in statements {
                txn.execute_raw(statement)
                    .await
                    .doing("inserting the ceiling's rows")?;
            }
            txn.commit().await.doing("committing the ceiling's rows")?;
        }
        ceiling_seconds += started.elapsed().as_secs_f64();
    }
    Ok(WriteRates {
        rows: ROUNDS * ROWS_PER_ROUND,
        storage_seconds,
        ceiling_seconds,
    })
}

/// Webhook delivery measured end to end: events written to the outbox, the dispatcher, signed
/// HTTP requests to a receiver on 127.0.0.1 (in this process), attempts recorded.
pub struct WebhookReport {
    pub database: String,
    pub burst_events: usize,
    pub burst_seconds: f64,
    /// Of `burst_seconds`, the transaction that wrote the events and queued their messages.
    pub burst_write_seconds: f64,
    pub paced_rate: u32,
    pub paced_events: usize,
    pub latency_ms_p50: f64,
    pub latency_ms_p99: f64,
}

impl fmt::Display for WebhookReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "webhook benchmark on {}", self.database)?;
        writeln!(
            f,
            "  throughput: {} events delivered in {:.2} s = {:.0} deliveries/s (goal >= 5000)",
            self.burst_events,
            self.burst_seconds,
            self.burst_events as f64 / self.burst_seconds
        )?;
        writeln!(
            f,
            "  of which writing them with their messages, one transaction: {:.2} s; delivering: {:.0} deliveries/s",
            self.burst_write_seconds,
            self.burst_events as f64 / (self.burst_seconds - self.burst_write_seconds)
        )?;
        write!(
            f,
            "  latency at {} events/s ({} events): p50 {:.1} ms, p99 {:.1} ms (goal p99 < 50 ms)",
            self.paced_rate, self.paced_events, self.latency_ms_p50, self.latency_ms_p99
        )
    }
}

pub async fn webhooks(
    database_url: Option<String>,
    burst_events: usize,
    paced_rate: u32,
    paced_seconds: u64,
) -> Result<WebhookReport, BenchError> {
    use actix_web::{App, HttpResponse, HttpServer, web};
    use tgwatch_core::events::Event;
    use tgwatch_service::webhooks::dispatcher::{self, Wake};

    let dir = tempfile_dir()?;
    let url = database_url
        .unwrap_or_else(|| format!("sqlite://{}?mode=rwc", dir.join("bench.db").display()));
    let db = storage::connect(&url, 5).await?;
    storage::migrate(&db).await?;

    // The receiver: records when each event arrived relative to when it was made.
    let latencies: Arc<std::sync::Mutex<Vec<f64>>> = Arc::default();
    let received = web::Data::new(latencies.clone());
    let server = HttpServer::new(move || {
        App::new().app_data(received.clone()).route(
            "/hook",
            web::post().to(
                |body: String, seen: web::Data<Arc<std::sync::Mutex<Vec<f64>>>>| async move {
                    let made = serde_json::from_str::<serde_json::Value>(&body)
                        .ok()
                        .and_then(|v| {
                            v["timestamp"]
                                .as_str()
                                .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                        })
                        .map(|t| {
                            (Utc::now() - t.with_timezone(&Utc))
                                .num_microseconds()
                                .unwrap_or(0) as f64
                                / 1000.0
                        })
                        .unwrap_or(f64::NAN);
                    seen.lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .push(made);
                    HttpResponse::NoContent().finish()
                },
            ),
        )
    })
    .workers(1)
    .disable_signals()
    .bind("127.0.0.1:0")?;
    let port = server.addrs().first().map(|a| a.port()).unwrap_or_default();
    actix_rt::spawn(server.run());

    let clock = Clock::real();
    let mut config = tgwatch_core::config::WebhooksConfig {
        allow_private_addresses: true,
        poll_interval_ms: 50,
        ..Default::default()
    };
    config.max_in_flight_per_endpoint = 64;
    storage::webhooks::create(
        &db,
        storage::webhooks::NewWebhook {
            name: None,
            url: format!("http://127.0.0.1:{port}/hook"),
            event_types: vec!["all".into()],
            tracked_user_id: None,
            channel_id: None,
            secret: tgwatch_core::signing::SigningSecret::generate().expose(),
            source: tgwatch_core::config::Origin::Api,
        },
        clock.now(),
    )
    .await?;
    let wake = Wake::default();
    dispatcher::spawn(db.clone(), clock, config, wake.clone())
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    let count = || {
        latencies
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .len()
    };
    let event = || {
        Event::new(
            EventType::Alert,
            Utc::now(),
            serde_json::json!({"bench": true}),
        )
    };

    // Throughput: a burst written at once.
    let burst: Vec<Event> = (0..burst_events).map(|_| event()).collect();
    let started = std::time::Instant::now();
    storage::webhooks::write_events(&db, &burst).await?;
    let burst_write_seconds = started.elapsed().as_secs_f64();
    wake.wake();
    while count() < burst_events {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let burst_seconds = started.elapsed().as_secs_f64();

    // Latency: events written at a steady rate, ten at a time.
    latencies
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clear();
    let per_tick = 10;
    let tick = Duration::from_secs_f64(per_tick as f64 / f64::from(paced_rate.max(1)));
    let paced_events = (u64::from(paced_rate) * paced_seconds) as usize;
    let mut interval = tokio::time::interval(tick);
    for _ in 0..paced_events / per_tick {
        interval.tick().await;
        let batch: Vec<Event> = (0..per_tick).map(|_| event()).collect();
        storage::webhooks::write_events(&db, &batch).await?;
        wake.wake();
    }
    while count() < paced_events {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let mut samples = latencies
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    samples.sort_by(f64::total_cmp);
    Ok(WebhookReport {
        database: if url.starts_with("sqlite") {
            "SQLite".into()
        } else {
            "PostgreSQL".into()
        },
        burst_events,
        burst_seconds,
        burst_write_seconds,
        paced_rate,
        paced_events,
        latency_ms_p50: percentile(&samples, 0.5),
        latency_ms_p99: percentile(&samples, 0.99),
    })
}

/// The `p` quantile (0.0 ..= 1.0) of `sorted` samples; NaN without samples.
fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted
        .get(((sorted.len() as f64 - 1.0) * p) as usize)
        .copied()
        .unwrap_or(f64::NAN)
}

/// Channel monitoring through real MTProto: posts made in the sandbox, pushed to the accounts
/// over TCP, stored by the service.
pub struct ChannelsReport {
    pub database: String,
    pub channels: usize,
    pub accounts: usize,
    pub posts: usize,
    /// How long the sandbox took to make the posts (they are stored meanwhile).
    pub post_seconds: f64,
    pub store_seconds: f64,
    /// CPU used while storing (sandbox and service together), in cores.
    pub cpu_cores: f64,
    /// Channels of the banned account; each gets one post during the ban.
    pub banned_channels: usize,
    pub ban_to_caught_up_seconds: f64,
}

impl fmt::Display for ChannelsReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "channels benchmark ({}): {} channels on {} accounts, grammers against the sandbox over TCP",
            self.database, self.channels, self.accounts
        )?;
        writeln!(
            f,
            "  {} posts stored in {:.2} s: {:.0} message events per second (goal >= 20000 on SQLite)",
            self.posts,
            self.store_seconds,
            self.posts as f64 / self.store_seconds
        )?;
        writeln!(
            f,
            "  the sandbox made the posts in {:.2} s; CPU meanwhile {:.2} cores (sandbox and service share the process)",
            self.post_seconds, self.cpu_cores
        )?;
        write!(
            f,
            "  ban of an account watching {0} channels, {0} posts made meanwhile: every channel reassigned and caught up {1:.2} s after the ban",
            self.banned_channels, self.ban_to_caught_up_seconds
        )
    }
}

async fn stored_messages(db: &sea_orm::DatabaseConnection) -> Result<u64, BenchError> {
    Ok(tgwatch_store::entities::messages::Entity::find()
        .count(db)
        .await?)
}

/// Waits until the service has committed `expected` new messages, by its own count (the
/// `new_message` events it wrote, as `/metrics` shows them): a `COUNT(*)` every few
/// milliseconds would cost the database more than the writes it waits for. Returns false after
/// `timeout`.
async fn wait_for_new_messages(
    metrics: &tgwatch_service::metrics::Metrics,
    expected: u64,
    timeout: Duration,
) -> bool {
    let deadline = std::time::Instant::now() + timeout;
    while metrics.events.get(EventType::NewMessage.as_str()) < expected {
        if std::time::Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    true
}

pub async fn channels(
    database_url: Option<String>,
    channel_count: usize,
    accounts: usize,
    posts: usize,
) -> Result<ChannelsReport, BenchError> {
    let dir = tempfile_dir()?;
    let clock = Clock::real();
    let accounts = accounts.max(2);
    let mut config = sandbox_bench_config(
        &dir,
        database_url.clone(),
        accounts,
        1000,
        channel_count as i32,
    );
    config.telegram.watchdog_seconds = 0.5;
    config.presence.flush_interval_ms = 100;
    let fleet = SandboxFleet::start(&config, &Scenario::default(), clock).await?;
    for index in 0..channel_count {
        let id = 10_000 + index as i64;
        fleet.sandbox.add_channel(
            id,
            id * 7,
            Some(&format!("bench_channel_{index}")),
            &format!("Bench channel {index}"),
            "",
        )?;
    }
    let app = fleet.build_app(config, clock).await?;
    let channels = app.channels();
    // Spread evenly: the least-loaded account takes each next channel.
    for index in 0..channel_count {
        let input =
            tgwatch_service::channels::ChannelInput::parse(&format!("@bench_channel_{index}"))?;
        channels
            .add(
                tgwatch_service::channels::AddChannel {
                    channel: input,
                    account_id: None,
                    tags: Vec::new(),
                },
                tgwatch_core::config::Origin::Api,
            )
            .await?;
    }

    // Throughput: posts round-robin over every channel, as fast as the sandbox makes them.
    let started = std::time::Instant::now();
    let ticks_before = crate::procstat::cpu_ticks("self");
    for post in 0..posts {
        let channel = 10_000 + (post % channel_count) as i64;
        fleet.sandbox.post(channel, &format!("post {post}"))?;
    }
    let post_seconds = started.elapsed().as_secs_f64();
    let all_stored =
        wait_for_new_messages(&app.metrics(), posts as u64, Duration::from_secs(120)).await;
    let store_seconds = started.elapsed().as_secs_f64();
    let stored = stored_messages(&fleet.db).await?;
    if !all_stored || stored != posts as u64 {
        return Err(BenchError::Incomplete {
            expected: posts as u64,
            stored,
        });
    }
    let cpu_cores = crate::procstat::cpu_ticks("self").saturating_sub(ticks_before) as f64
        / crate::procstat::TICKS_PER_SECOND
        / store_seconds;

    // A ban in the middle of posting: time until every channel of the banned account is
    // watched by another account and the posts of the gap are stored.
    let banned_account = storage::accounts::find_by_label(&fleet.db, "bench-0")
        .await?
        .ok_or_else(|| StorageError::Corrupt("bench-0 is missing".into()))?;
    let watched: Vec<i64> = storage::channels::of_account(&fleet.db, banned_account.id)
        .await?
        .iter()
        .filter_map(|channel| channel.telegram_channel_id)
        .collect();
    let sandbox_account = fleet.sandbox_accounts[0];
    let ban_started = std::time::Instant::now();
    fleet
        .sandbox
        .ban(sandbox_account, tgwatch_sandbox::Ban::UserDeactivatedBan)?;
    for channel in &watched {
        fleet.sandbox.post(*channel, "posted during the ban")?;
    }
    let expected = (posts + watched.len()) as u64;
    let deadline = std::time::Instant::now() + Duration::from_secs(600);
    loop {
        let still_there = storage::channels::of_account(&fleet.db, banned_account.id)
            .await?
            .len();
        if still_there == 0 && stored_messages(&fleet.db).await? >= expected {
            break;
        }
        if std::time::Instant::now() > deadline {
            return Err(BenchError::Incomplete {
                expected,
                stored: stored_messages(&fleet.db).await?,
            });
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(ChannelsReport {
        database: if database_url.is_some() {
            "PostgreSQL".into()
        } else {
            "SQLite".into()
        },
        channels: channel_count,
        accounts,
        posts,
        post_seconds,
        store_seconds,
        cpu_cores,
        banned_channels: watched.len(),
        ban_to_caught_up_seconds: ban_started.elapsed().as_secs_f64(),
    })
}

/// `tgwatch bench websocket`: `clients` WebSocket clients on `/ws` of a service running as a
/// child process, the status tick every `interval_ms`, measured for `seconds` (see
/// [`crate::loadtest`]).
pub async fn websocket(
    clients: usize,
    seconds: u64,
    interval_ms: u64,
) -> Result<crate::loadtest::LoadReport, crate::loadtest::LoadError> {
    crate::loadtest::run(clients, seconds, interval_ms).await
}

/// `tgwatch bench late-observation`: what one out-of-order observation costs when the user's
/// history is long.
pub struct LateObservationReport {
    pub database: String,
    pub history: usize,
    pub sessions: usize,
    pub late: usize,
    pub ms_p50: f64,
    pub ms_p99: f64,
    pub ms_max: f64,
    pub full_fold_ms: f64,
}

impl fmt::Display for LateObservationReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "late-observation benchmark on {}: one tracked user with {} observations ({} sessions) of history",
            self.database, self.history, self.sessions
        )?;
        writeln!(
            f,
            "  {} late observations (each within the last {} hours of the history) through the target and storage actors: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms per observation (goal <= 5 ms)",
            self.late, LATE_WITHIN_HOURS, self.ms_p50, self.ms_p99, self.ms_max
        )?;
        writeln!(
            f,
            "  the whole history loaded and folded once: {:.0} ms (the cost of folding everything again)",
            self.full_fold_ms
        )?;
        write!(f, "  stored sessions equal a full fold of the history: yes")
    }
}

/// Where the late observations of `bench late-observation` fall: a delayed push or a manual
/// correction, not a rewrite of last year.
const LATE_WITHIN_HOURS: i64 = 2;

/// One tracked user with `history` observations (polls every 60-120 s, sessions of 5-60 min
/// between breaks of 10 min to 8 h), written the way the storage actor writes them; then `late`
/// out-of-order observations sent one at a time through the same path as a manual POST, each
/// timed until its sessions are folded again. Finally the stored sessions are checked against a
/// fold of the whole history.
pub async fn late_observation(
    database_url: Option<String>,
    history: usize,
    late: usize,
) -> Result<LateObservationReport, BenchError> {
    use chrono::{DurationRound, TimeDelta};
    use rand::{Rng, SeedableRng, rngs::StdRng};
    use tgwatch_core::presence::sessions::{Applied, SessionChange, SessionFolder, fold};
    use tgwatch_service::actors::messages::ManualObservation;

    let dir = tempfile_dir()?;
    let mut config = Config::default();
    config.database.url = database_url
        .unwrap_or_else(|| format!("sqlite://{}?mode=rwc", dir.join("bench.db").display()));
    config.http.bind = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
    config.http.admin_token = Some(Secret::new(Uuid::new_v4().simple().to_string()));
    // No poll during the measurement: only the late observations reach the target.
    config.presence.poll_min_seconds = 86_400 * 365;
    config.presence.poll_max_seconds = 86_400 * 365;
    config.accounts = vec![AccountConfig {
        label: "bench".into(),
        phone: None,
        api_id: None,
        max_targets: 1,
        max_channels: 1,
    }];
    let gap = config.presence.gap();
    let database = if config.database.url.starts_with("sqlite") {
        "SQLite"
    } else {
        "PostgreSQL"
    };
    let scenario = Scenario::generated(1, 7);
    let users = scenario.users.clone();
    let clock = Clock::real();
    let connector: Arc<dyn TelegramConnector> = ScriptedTelegram::start(scenario, clock);
    let app = Application::build_with(config, clock, connector).await?;
    let tracking = app.tracking();
    let db = tracking.db.clone();
    insert_tracked_users(&db, &users).await?;
    let tracked_user_id = rows_ids(&db)
        .await?
        .first()
        .copied()
        .ok_or(BenchError::Incomplete {
            expected: 1,
            stored: 0,
        })?;

    // The history, ending a minute ago, written in the storage actor's batches with the session
    // changes the live fold made.
    let mut rng = StdRng::seed_from_u64(11);
    let mut offsets = Vec::with_capacity(history);
    let mut t = 0_i64;
    for _ in 0..history {
        t += rng.random_range(60..=120);
        offsets.push(t);
    }
    let start = Utc::now()
        .duration_trunc(TimeDelta::seconds(1))
        .unwrap_or_else(|_| Utc::now())
        - chrono::Duration::seconds(t + 60);
    let at = |offset: i64| start + chrono::Duration::seconds(offset);
    let (mut online_from, mut online_until) = (0_i64, rng.random_range(300..=3600));
    let mut left_at = -3600;
    let mut folder = SessionFolder::new(gap);
    let mut sessions = 0;
    for chunk in offsets.chunks(5000) {
        let mut writes = PendingWrites::default();
        for &offset in chunk {
            while offset >= online_until {
                left_at = online_until;
                online_from = online_until + rng.random_range(600..=8 * 3600);
                online_until = online_from + rng.random_range(300..=3600);
            }
            let status = if offset >= online_from {
                Status::Online {
                    expires: at(offset + 300),
                }
            } else {
                Status::Offline {
                    was_online: Some(at(left_at)),
                }
            };
            let observation = Observation {
                observed_at: at(offset),
                status,
            };
            let changes = match folder.apply(observation) {
                Applied::Changes(changes) => changes,
                Applied::Duplicate | Applied::OutOfOrder => Vec::new(),
            };
            sessions += changes
                .iter()
                .filter(|change| matches!(change, SessionChange::Opened(_)))
                .count();
            writes.push(NewObservation {
                id: Uuid::now_v7(),
                tracked_user_id,
                account_id: None,
                observation,
                source: Source::Poll,
                recorded_at: observation.observed_at,
                sessions: changes.iter().map(|change| *change.session()).collect(),
                events: Vec::new(),
            });
        }
        storage::observations::write(&db, &writes).await?;
    }

    tracking.start_targets().await?;
    let newest = t;
    let mut samples = Vec::with_capacity(late);
    for _ in 0..late {
        let offset_ms = newest * 1000 - rng.random_range(1..LATE_WITHIN_HOURS * 3_600_000);
        let observed_at = start + chrono::Duration::milliseconds(offset_ms);
        let status = match rng.random_range(0..3) {
            0 => Status::Online {
                expires: observed_at + chrono::Duration::seconds(300),
            },
            1 => Status::Offline {
                was_online: Some(observed_at - chrono::Duration::seconds(rng.random_range(0..600))),
            },
            _ => Status::Recently,
        };
        let started = std::time::Instant::now();
        tracking
            .supervisor
            .send(ManualObservation {
                tracked_user_id,
                observation: Observation {
                    observed_at,
                    status,
                },
            })
            .await
            .map_err(tgwatch_service::actors::messages::ManualObservationError::from)??;
        samples.push(started.elapsed().as_secs_f64() * 1000.0);
    }

    let started = std::time::Instant::now();
    let whole = storage::observations::all_of(&db, tracked_user_id).await?;
    let (expected, _) = fold(whole, gap);
    let full_fold_ms = started.elapsed().as_secs_f64() * 1000.0;
    if storage::sessions::all_of(&db, tracked_user_id).await? != expected {
        return Err(BenchError::Diverged);
    }

    samples.sort_by(f64::total_cmp);
    Ok(LateObservationReport {
        database: database.into(),
        history,
        sessions,
        late,
        ms_p50: percentile(&samples, 0.5),
        ms_p99: percentile(&samples, 0.99),
        ms_max: samples.last().copied().unwrap_or(f64::NAN),
        full_fold_ms,
    })
}
