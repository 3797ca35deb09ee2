//! Wires the service together: database, actors, configuration items, HTTP server.

use std::{
    net::TcpListener,
    sync::{Arc, atomic::AtomicBool},
    time::Instant,
};

use actix::prelude::*;
use actix_web::{App, HttpServer, dev::Server, web};
use sea_orm::DatabaseConnection;

use crate::{
    actors::{
        channels::ChannelsActor, ownership::Ownership, storage::StorageActor,
        supervisor::FleetSupervisor,
    },
    bot,
    channels::{Channels, look_after_accounts},
    cluster::{Cluster, ClusterError, lock_sqlite_file, while_leader},
    feed::Feed,
    http,
    jobs::Jobs,
    metrics::Metrics,
    publish::Publisher,
    relay::Relay,
    reload::{
        Reloader,
        reconcile::{AccountsReconciler, ConfigReconciler, ReconcileContext},
    },
    shutdown::{StopError, StopParts},
    state::AppState,
    supervision::{
        Child, ChildKind, Supervision, start_child,
        worker::{OnCommitted, StartTasks, Worker},
    },
    tracking::{Tracking, TrackingError},
    webhooks::{
        self,
        dispatcher::{DispatcherSetup, Wake},
    },
};
use tgwatch_core::{
    clock::Clock,
    config::Config,
    vault::{MASTER_KEY_ENV, Vault, VaultError},
};
use tgwatch_store::{self as storage, StorageError};
use tgwatch_telegram::{
    TelegramConnector,
    grammers::GrammersConnector,
    logins::{FreshSession, Logins},
    stored_session::{SessionStore, StoredSession},
};

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("cannot build the webhook HTTP client: {0}")]
    HttpClient(reqwest::Error),
    #[error("starting the fleet: {0}")]
    Fleet(#[from] TrackingError),
    #[error(transparent)]
    Vault(#[from] VaultError),
    #[error(transparent)]
    Bot(#[from] bot::BotError),
    #[error(transparent)]
    Live(#[from] crate::live::LiveError),
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    #[error("`http.admin_token` is not set (use TGWATCH_HTTP__ADMIN_TOKEN)")]
    NoAdminToken,
    #[error("cannot listen on {address}: {source}")]
    Bind {
        address: std::net::SocketAddr,
        source: std::io::Error,
    },
}

pub struct Application {
    port: u16,
    server: Server,
    supervision: Supervision,
    /// The workers (webhooks, bot, live): held, so that they are restarted as long as the
    /// service runs.
    _workers: Vec<Addr<Worker>>,
    tracking: Tracking,
    channels: Channels,
    reloader: Reloader,
    stop: StopParts,
    metrics: Arc<Metrics>,
}

impl Application {
    /// Builds the service over real Telegram (MTProto, the grammers adapter) with the sessions
    /// stored in the database. Any other Telegram (the scripted one of `demo` and the tests)
    /// comes in through [`Application::build_with`].
    pub async fn build(config: Config) -> Result<Application, StartupError> {
        let clock = Clock::fast(config.telegram.clock_speed);
        let vault = Arc::new(load_vault(&config)?);
        let fresh_session: FreshSession = Arc::new(grammers_session::SessionData::default);
        Application::build_mtproto(config, clock, vault, fresh_session).await
    }

    /// Builds the service with a given clock and Telegram (tests and benchmarks keep a handle on
    /// the scripted Telegram to count calls).
    pub async fn build_with(
        config: Config,
        clock: Clock,
        connector: Arc<dyn TelegramConnector>,
    ) -> Result<Application, StartupError> {
        Application::assemble(config, clock, Telegram::Connector(connector)).await
    }

    /// Builds the service over MTProto: the grammers adapter with every stored session, and
    /// logins whose new sessions start from `fresh_session` (Telegram's DCs, or the sandbox's).
    pub async fn build_mtproto(
        config: Config,
        clock: Clock,
        vault: Arc<Vault>,
        fresh_session: FreshSession,
    ) -> Result<Application, StartupError> {
        Application::assemble(
            config,
            clock,
            Telegram::Mtproto {
                vault,
                fresh_session,
            },
        )
        .await
    }

    async fn assemble(
        config: Config,
        clock: Clock,
        telegram: Telegram,
    ) -> Result<Application, StartupError> {
        let admin_token = config
            .http
            .admin_token
            .clone()
            .ok_or(StartupError::NoAdminToken)?;
        // Before anything is written: a second instance on one SQLite file is refused here.
        let sqlite_lock = match config.database.sqlite_file() {
            Some(file) => Some(lock_sqlite_file(&file).await?),
            None => None,
        };
        let db = storage::connect(&config.database.url, config.database.max_connections).await?;
        storage::migrate(&db).await?;
        let ownership = Ownership::new(db.clone(), uuid::Uuid::new_v4(), config.cluster.lease());

        let (connector, mtproto): (Arc<dyn TelegramConnector>, _) = match telegram {
            Telegram::Connector(connector) => (connector, None),
            Telegram::Mtproto {
                vault,
                fresh_session,
            } => {
                let grammers = Arc::new(
                    GrammersConnector::new::<StoredSession>(
                        config.telegram.api_id.unwrap_or(0),
                        std::collections::HashMap::new(),
                    )
                    .with_watchdog_interval(
                        std::time::Duration::from_secs_f64(
                            config.telegram.watchdog_seconds.max(0.01),
                        ),
                    ),
                );
                register_stored_sessions(&db, &vault, clock, &grammers).await?;
                (
                    Arc::clone(&grammers) as Arc<dyn TelegramConnector>,
                    Some((grammers, vault, fresh_session)),
                )
            }
        };

        let wake = Wake::default();
        let metrics = Arc::new(Metrics::default());
        let publisher = Publisher::default();
        let supervision = Supervision::new(clock);
        let singleton = |kind| supervision.singleton(kind, config.supervision.intensity());
        let storage = start_child(
            singleton(ChildKind::Storage),
            StorageActor::new(
                db.clone(),
                config.presence.gap(),
                config.presence.flush_interval(),
                publisher.clone(),
            )
            .with_metrics(Arc::clone(&metrics)),
        );
        let channel_router = start_child(
            singleton(ChildKind::Channels),
            ChannelsActor::new(
                db.clone(),
                clock,
                config.presence.flush_interval(),
                publisher.clone(),
                storage::channels::monitored(&db).await?,
                crate::actors::channels::writer_count(
                    db.get_database_backend(),
                    config.database.max_connections,
                ),
            )
            .with_metrics(Arc::clone(&metrics)),
        );
        let (failover_tx, failover_rx) = tokio::sync::mpsc::unbounded_channel();
        let supervisor = FleetSupervisor::new(
            db.clone(),
            clock,
            config.presence.clone(),
            config.telegram.clone(),
            connector,
            storage.clone(),
            supervision.clone(),
        )
        .with_target_intensity(config.supervision.intensity())
        .with_metrics(Arc::clone(&metrics))
        .with_fleet_links(failover_tx, channel_router.clone().recipient())
        .with_ownership(ownership.clone())
        .start();
        let tracking = Tracking {
            db: db.clone(),
            supervisor: supervisor.clone(),
        };
        let channels = Channels {
            db: db.clone(),
            supervisor: supervisor.clone(),
            router: channel_router.clone(),
            tracking: tracking.clone(),
            clock,
            publisher: publisher.clone(),
            adding: Arc::default(),
        };
        tokio::spawn(look_after_accounts(channels.clone(), failover_rx));
        let logins = mtproto.map(|(grammers, vault, fresh_session)| {
            Logins::new(
                db.clone(),
                vault,
                clock,
                grammers,
                Arc::new(tracking.clone()),
                fresh_session,
                config
                    .telegram
                    .api_hash
                    .as_ref()
                    .map(|hash| hash.expose().to_owned()),
                config.logins.limits(),
            )
        });
        // The accounts of the file exist before the fleet starts (the cluster's first round starts
        // those this instance holds).
        let reconcile = ReconcileContext {
            db: db.clone(),
            tracking: tracking.clone(),
            channels: channels.clone(),
            clock,
            live: false,
            problems: Default::default(),
        };
        // One instance at a time applies the file (the others find it applied).
        let config_lock = storage::cluster::lock_config(&db).await?;
        AccountsReconciler.reconcile(&reconcile, &config).await?;
        // Endpoints first, so that no event is fanned out before its consumers exist.
        webhooks::endpoints::reconcile(&db, &config.webhooks, clock.now()).await?;
        config_lock.release().await?;
        let dispatcher = DispatcherSetup::new(
            db.clone(),
            clock,
            config.webhooks.clone(),
            wake.clone(),
            Arc::clone(&metrics),
        )
        .map_err(StartupError::HttpClient)?;
        let dispatcher_control = dispatcher.clone();
        let dispatcher_wake = wake.clone();
        let mut workers = vec![start_consumer(
            singleton(ChildKind::Webhooks),
            Box::new(move || vec![dispatcher.spawn()]),
            Box::new(move |_| dispatcher_wake.wake()),
            &publisher,
        )];
        // The fleet: the accounts this instance holds a lease on, their people and channels.
        let cluster = Cluster::join(
            db.clone(),
            ownership.clone(),
            supervisor.clone(),
            channels.clone(),
        )
        .await?
        .start()
        .await?;
        // After the fleet: the bot's commands track and query through it.
        let bot = bot::prepare(bot::BotDeps {
            db: db.clone(),
            clock,
            tracking: tracking.clone(),
            config: config.bot.clone(),
            claim_lease: config.cluster.lease(),
        })?;
        let bot_worker = match bot.map(Arc::new) {
            Some(bot) => {
                let notifier = Arc::clone(&bot);
                let leader = ownership.clone();
                // Telegram allows one poller per token: the bot runs on the leader only.
                let worker = start_consumer(
                    singleton(ChildKind::Bot),
                    Box::new(move || {
                        let bot = Arc::clone(&bot);
                        vec![while_leader(&leader, move || bot.spawn())]
                    }),
                    Box::new(move |_| notifier.events_committed()),
                    &publisher,
                );
                workers.push(worker.clone());
                Some(worker)
            }
            None => {
                tracing::info!("no bot.token: the Telegram bot is off");
                None
            }
        };
        // The whole file as desired state: tracked users (one Telegram call each to resolve,
        // so in the background while the API answers), then the endpoints filtered by them.
        // The same reconcilers run again after every edit of a watched file.
        let reloader = Reloader::new(
            ReconcileContext {
                live: true,
                ..reconcile
            },
            config.clone(),
            supervisor.clone(),
            Arc::clone(&metrics),
        );
        reloader.apply_at_start();
        let jobs = Jobs {
            db: db.clone(),
            clock,
            supervisor: supervisor.clone(),
            metrics: Arc::clone(&metrics),
            config: reloader.running(),
            ownership: ownership.clone(),
        }
        .spawn();

        let listener =
            TcpListener::bind(config.http.bind).map_err(|source| StartupError::Bind {
                address: config.http.bind,
                source,
            })?;
        let port = listener
            .local_addr()
            .map_err(|source| StartupError::Bind {
                address: config.http.bind,
                source,
            })?
            .port();
        let channels_for_callers = channels.clone();
        // The live hub's queue of committed events: its worker fills it, its forwarder (a task
        // that survives nothing but reads on where the last one stopped) empties it.
        let feed = Feed::default();
        let live = crate::live::Live::new(crate::live::LiveDeps {
            config: config.live.clone(),
            bot: config.bot.clone(),
            admin_token: admin_token.clone(),
            db: db.clone(),
            clock,
            feed: feed.clone(),
            metrics: Arc::clone(&metrics),
        })?;
        let hub = live.clone();
        // With several instances, the events committed here reach the others' feeds, and theirs
        // this one's (PostgreSQL LISTEN/NOTIFY).
        let relay = Relay::new(
            db.clone(),
            &config.database.url,
            ownership.instance_id(),
            feed.clone(),
        );
        let relay_listener = relay.clone();
        workers.push(start_consumer(
            singleton(ChildKind::Live),
            Box::new(move || {
                let mut tasks = hub.spawn_tasks();
                tasks.extend(relay_listener.as_ref().map(Relay::spawn_listener));
                tasks
            }),
            Box::new(move |events| {
                for event in events {
                    feed.publish(event);
                }
                if let Some(relay) = &relay {
                    relay.announce(events);
                }
            }),
            &publisher,
        ));
        let stopping = Arc::new(AtomicBool::new(false));
        let switches = http::Switches {
            fault_injection: config.testing.fault_injection,
            demo_phone: logins
                .as_ref()
                .is_some_and(|logins| logins.has_demo_phone()),
        };
        let stop = StopParts {
            stopping: stopping.clone(),
            live: live.clone(),
            fleet: supervisor.clone(),
            storage: storage.clone(),
            channels: channels.router.clone(),
            webhooks: Some(dispatcher_control),
            bot: bot_worker,
            jobs: Some(jobs),
            cluster: Some(cluster),
            sqlite_lock,
            db: db.clone(),
            timeout: config.supervision.shutdown_timeout(),
        };
        let state = web::Data::new(AppState {
            db,
            supervisor,
            storage: storage.clone(),
            clock,
            admin_token,
            started: Instant::now(),
            webhooks: config.webhooks.clone(),
            wake,
            logins,
            bot_admin_ids: config.bot.admin_ids.clone(),
            channels,
            metrics: Arc::clone(&metrics),
            metrics_public: config.http.metrics_public,
            config: reloader.state(),
            running: reloader.running(),
            live,
            stopping: stopping.clone(),
            supervision: supervision.clone(),
            ownership,
        });
        let server = HttpServer::new(move || {
            App::new()
                .wrap(actix_web::middleware::from_fn(
                    http::trailing_slash::accept_trailing_slash,
                ))
                .wrap(actix_web::middleware::from_fn(http::refuse_long_uri))
                // Outermost, so every answer (a 414 too) carries the request's id.
                .wrap(actix_web::middleware::from_fn(http::request_id::middleware))
                .app_data(state.clone())
                .configure(http::routes(switches))
        })
        .workers(2)
        .disable_signals()
        // Requests in flight get the whole stop at most; the stop's own deadline bounds it too.
        .shutdown_timeout(config.supervision.shutdown_timeout_seconds)
        .listen(listener)
        .map_err(|source| StartupError::Bind {
            address: config.http.bind,
            source,
        })?
        .run();
        tracing::info!(port, "admin API listening");
        Ok(Application {
            port,
            server,
            supervision,
            _workers: workers,
            tracking,
            channels: channels_for_callers,
            reloader,
            stop,
            metrics,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Watches the configuration file at `path` (`tgwatch run --config PATH`) and applies every
    /// edit while the service runs (see README, "Configuration: live reload"). The file is read
    /// once at once: what differs from the configuration the service was built with applies.
    pub fn watch_config(&self, path: impl Into<std::path::PathBuf>) {
        self.reloader.watch(path.into());
    }

    /// Stops the HTTP server from outside (tests that restart the service).
    pub fn server_handle(&self) -> actix_web::dev::ServerHandle {
        self.server.handle()
    }

    /// The operations on the fleet (track users, add accounts), for callers in the same process.
    pub fn tracking(&self) -> Tracking {
        self.tracking.clone()
    }

    /// What the service counts (`GET /metrics`), for callers in the same process.
    pub fn metrics(&self) -> Arc<Metrics> {
        Arc::clone(&self.metrics)
    }

    /// The operations on channels, for callers in the same process.
    pub fn channels(&self) -> Channels {
        self.channels.clone()
    }

    /// Serves until SIGTERM or SIGINT (or the server stops), then stops cleanly (see
    /// [`Application::run_until`]).
    pub async fn run_until_stopped(self) -> Result<(), RunError> {
        self.run_until(shutdown_signal()).await
    }

    /// Serves until `stop` completes (or the server stops), then stops in order within
    /// `[supervision] shutdown_timeout_seconds` (see [`crate::shutdown`]): no new HTTP or
    /// WebSocket work, the actors' buffers written, webhook attempts in flight recorded or
    /// released, the bot stopped, the database pool closed.
    pub async fn run_until(
        self,
        stop: impl std::future::Future<Output = ()>,
    ) -> Result<(), RunError> {
        let mut server = self.server;
        let supervision = self.supervision.clone();
        // The server is borrowed, not moved: dropping it would cut every connection at once.
        let (serving, gave_up) = tokio::select! {
            result = &mut server => {
                result.map_err(RunError::Server)?;
                tracing::warn!("the HTTP server stopped by itself: stopping the service");
                (None, None)
            }
            () = stop => (Some(server), None),
            reason = supervision.given_up() => {
                tracing::error!(reason, "a part the service cannot do without keeps failing: stopping the service");
                (Some(server), Some(reason))
            }
        };
        self.stop.stop(serving).await?;
        match gave_up {
            Some(reason) => Err(RunError::GaveUp(reason)),
            None => Ok(()),
        }
    }
}

/// Why serving ended other than by a clean stop.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("the HTTP server failed: {0}")]
    Server(std::io::Error),
    #[error(transparent)]
    Stop(#[from] StopError),
    /// A child the service cannot do without (storage, channels, webhooks, bot, live) failed
    /// more often than `[supervision]` allows; the service stopped cleanly.
    #[error("gave up: {0}")]
    GaveUp(String),
}

impl RunError {
    /// The process's exit code for this error.
    pub fn exit_code(&self) -> i32 {
        match self {
            RunError::Server(_) | RunError::GaveUp(_) => 1,
            RunError::Stop(error) => error.exit_code(),
        }
    }
}

/// Completes on the first SIGTERM (what systemd, Docker and Kubernetes send) or SIGINT (Ctrl-C).
pub async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (mut terminate, mut interrupt) = match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(terminate), Ok(interrupt)) => (terminate, interrupt),
        (Err(error), _) | (_, Err(error)) => {
            // Without signal handlers the default action (exit without a flush) stays:
            // serve on rather than stop at once.
            tracing::error!(%error, "cannot listen for SIGTERM/SIGINT");
            return std::future::pending().await;
        }
    };
    let name = tokio::select! {
        _ = terminate.recv() => "SIGTERM",
        _ = interrupt.recv() => "SIGINT",
    };
    tracing::info!(signal = name, "stop requested");
}

/// Starts a worker (tasks on the runtime's threads) under `child`, told of every commit that
/// `publisher` publishes (`hand_over` passes the events to its tasks).
fn start_consumer(
    child: Child,
    start: StartTasks,
    hand_over: OnCommitted,
    publisher: &Publisher,
) -> Addr<Worker> {
    let worker = start_child(
        child.clone(),
        Worker::new(child, start).consuming(hand_over),
    );
    publisher.subscribe(worker.clone().recipient());
    worker
}

/// Where the service's Telegram comes from.
enum Telegram {
    /// A ready connector (the scripted Telegram of the tests and benchmarks).
    Connector(Arc<dyn TelegramConnector>),
    /// MTProto with grammers: sessions from the database, logins.
    Mtproto {
        vault: Arc<Vault>,
        fresh_session: FreshSession,
    },
}

/// The master key of `[security]` (or `TGWATCH_MASTER_KEY`), as a vault.
pub fn load_vault(config: &Config) -> Result<Vault, VaultError> {
    let env_key = std::env::var(MASTER_KEY_ENV).ok();
    Vault::load(
        env_key.as_deref(),
        std::path::Path::new(&config.security.master_key_file),
    )
}

/// Hands every logged-in account's stored session to the connector. A session that cannot be
/// opened (wrong master key, damaged row) is reported; its account stays logged out.
async fn register_stored_sessions(
    db: &DatabaseConnection,
    vault: &Arc<Vault>,
    clock: Clock,
    connector: &GrammersConnector,
) -> Result<(), StorageError> {
    for account_id in storage::account_sessions::authorized_account_ids(db).await? {
        let Some(account) = storage::accounts::get(db, account_id).await? else {
            continue;
        };
        let store = SessionStore {
            db: db.clone(),
            vault: Arc::clone(vault),
            clock,
        };
        match StoredSession::load(account_id, store).await {
            Ok(Some(session)) => connector.register(account.label.clone(), Arc::new(session)),
            Ok(None) => {}
            Err(error) => {
                let message = format!(
                    "the session of account `{}` cannot be used: {error}",
                    account.label
                );
                tracing::error!(account = %account.label, %error, "cannot load a stored session");
                storage::logs::write(
                    db,
                    storage::LogLevel::Critical,
                    &message,
                    Some(account_id),
                    None,
                    clock.now(),
                )
                .await;
            }
        }
    }
    Ok(())
}
