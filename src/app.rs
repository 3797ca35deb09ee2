//! Wires the service together: database, actors, configuration items, HTTP server.

use std::{net::TcpListener, sync::Arc, time::Instant};

use actix::prelude::*;
use actix_web::{App, HttpServer, dev::Server, web};
use sea_orm::DatabaseConnection;

use crate::{
    actors::{messages::Flush, storage::StorageActor, supervisor::FleetSupervisor},
    clock::Clock,
    config::{Config, Secret, WebhooksConfig},
    http,
    logins::{FreshSession, Logins},
    storage::{
        self, StorageError,
        accounts::{AccountPatch, NewAccount},
    },
    telegram::{
        TelegramConnector, Username,
        grammers::GrammersConnector,
        scripted::{Scenario, ScenarioError, ScriptedTelegram},
        stored_session::{SessionStore, StoredSession},
    },
    tracking::{TrackRequest, Tracking, TrackingError},
    vault::{MASTER_KEY_ENV, Vault, VaultError},
    webhooks::{self, dispatcher::Wake},
};

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Scenario(#[from] ScenarioError),
    #[error("cannot build the webhook HTTP client: {0}")]
    HttpClient(reqwest::Error),
    #[error("starting the fleet: {0}")]
    Fleet(#[from] TrackingError),
    #[error(transparent)]
    Vault(#[from] VaultError),
    #[error("`http.admin_token` is not set (use TGWATCH_HTTP__ADMIN_TOKEN)")]
    NoAdminToken,
    #[error("cannot listen on {address}: {source}")]
    Bind {
        address: std::net::SocketAddr,
        source: std::io::Error,
    },
}

/// What every HTTP handler can reach. Created once, outside `HttpServer::new`, so all workers
/// share the same actors.
pub struct AppState {
    pub db: DatabaseConnection,
    pub supervisor: Addr<FleetSupervisor>,
    pub storage: Addr<StorageActor>,
    pub clock: Clock,
    pub admin_token: Secret,
    pub started: Instant,
    pub webhooks: WebhooksConfig,
    /// Wakes the webhook dispatcher (after a test event, a redelivery or a replay).
    pub wake: Wake,
    /// Logins, when the service talks MTProto (not with a scripted Telegram).
    pub logins: Option<Arc<Logins>>,
}

impl AppState {
    pub fn tracking(&self) -> Tracking {
        Tracking {
            db: self.db.clone(),
            supervisor: self.supervisor.clone(),
        }
    }
}

pub struct Application {
    port: u16,
    server: Server,
    storage: Addr<StorageActor>,
    tracking: Tracking,
}

impl Application {
    /// Builds the service from its configuration: a scripted Telegram when `telegram.scenario`
    /// names a scenario file, else real Telegram over MTProto with the sessions in the database.
    pub async fn build(config: Config) -> Result<Application, StartupError> {
        let clock = Clock::fast(config.telegram.clock_speed);
        match &config.telegram.scenario {
            Some(scenario_path) => {
                let scenario = Scenario::load(std::path::Path::new(scenario_path))?;
                let connector: Arc<dyn TelegramConnector> =
                    Arc::new(ScriptedTelegram::start(scenario, clock));
                Application::build_with(config, clock, connector).await
            }
            None => {
                let vault = Arc::new(load_vault(&config)?);
                let fresh_session: FreshSession = Arc::new(grammers_session::SessionData::default);
                Application::build_mtproto(config, clock, vault, fresh_session).await
            }
        }
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
        let db = storage::connect(&config.database.url, config.database.max_connections).await?;
        storage::migrate(&db).await?;

        let (connector, mtproto): (Arc<dyn TelegramConnector>, _) = match telegram {
            Telegram::Connector(connector) => (connector, None),
            Telegram::Mtproto {
                vault,
                fresh_session,
            } => {
                let grammers = Arc::new(GrammersConnector::new::<StoredSession>(
                    config.telegram.api_id.unwrap_or(0),
                    std::collections::HashMap::new(),
                ));
                register_stored_sessions(&db, &vault, clock, &grammers).await?;
                (
                    Arc::clone(&grammers) as Arc<dyn TelegramConnector>,
                    Some((grammers, vault, fresh_session)),
                )
            }
        };

        let wake = Wake::default();
        let storage = StorageActor::new(
            db.clone(),
            config.presence.gap(),
            config.presence.flush_interval(),
            wake.clone(),
        )
        .start();
        let supervisor = FleetSupervisor::new(
            db.clone(),
            clock,
            config.presence.clone(),
            config.telegram.clone(),
            connector,
            storage.clone(),
        )
        .start();
        let tracking = Tracking {
            db: db.clone(),
            supervisor: supervisor.clone(),
        };
        let logins = mtproto.map(|(grammers, vault, fresh_session)| {
            Logins::new(
                db.clone(),
                vault,
                clock,
                grammers,
                tracking.clone(),
                fresh_session,
                config
                    .telegram
                    .api_hash
                    .as_ref()
                    .map(|hash| hash.expose().to_owned()),
                config.logins.limits(),
            )
        });
        apply_config_accounts(&tracking, &config, clock).await?;
        // Endpoints first, so that no event is fanned out before its consumers exist.
        webhooks::endpoints::reconcile(&db, &config.webhooks, clock.now()).await?;
        webhooks::dispatcher::spawn(db.clone(), clock, config.webhooks.clone(), wake.clone())
            .map_err(StartupError::HttpClient)?;
        tracking.start_all().await?;
        // Resolving many new users takes a while (one Telegram call each): do it in the
        // background so the API answers meanwhile; then endpoints filtered by those users apply.
        {
            let (tracking, config, db) = (tracking.clone(), config.clone(), db.clone());
            actix::spawn(async move {
                let applied = match apply_config_tracked_users(&tracking, &config, clock).await {
                    Ok(()) => {
                        webhooks::endpoints::reconcile(&db, &config.webhooks, clock.now()).await
                    }
                    Err(error) => Err(error),
                };
                if let Err(error) = applied {
                    tracing::error!(%error, "applying the configuration's tracked users failed");
                }
            });
        }

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
        });
        let server =
            HttpServer::new(move || App::new().app_data(state.clone()).configure(http::routes))
                .workers(2)
                .disable_signals()
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
            storage,
            tracking,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Stops the HTTP server from outside (tests that restart the service).
    pub fn server_handle(&self) -> actix_web::dev::ServerHandle {
        self.server.handle()
    }

    /// The operations on the fleet, for callers inside the process (the benchmark).
    pub fn tracking(&self) -> Tracking {
        self.tracking.clone()
    }

    /// Serves until Ctrl-C (or the server stops), then writes what is still buffered.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let handle = self.server.handle();
        let server = self.server;
        tokio::select! {
            result = server => result?,
            _ = tokio::signal::ctrl_c() => {
                tracing::info!("shutting down");
                handle.stop(true).await;
            }
        }
        if let Ok(Err(error)) = self.storage.send(Flush).await {
            tracing::error!(%error, "could not write the last observations");
        }
        Ok(())
    }
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

/// Creates the accounts of `[[accounts]]` that are not in the database yet and brings the
/// existing ones in line with the file (matched by label).
async fn apply_config_accounts(
    tracking: &Tracking,
    config: &Config,
    clock: Clock,
) -> Result<(), StorageError> {
    for account in &config.accounts {
        let existing = storage::accounts::find_by_label(&tracking.db, &account.label).await?;
        let result = match existing {
            // Started with the others by `start_all`.
            None => storage::accounts::create(
                &tracking.db,
                NewAccount {
                    label: account.label.clone(),
                    phone: account.phone.clone(),
                    username: None,
                    telegram_user_id: None,
                    api_id: account.api_id,
                    max_targets: Some(account.max_targets),
                    max_channels: Some(account.max_channels),
                    status: None,
                },
                clock.now(),
            )
            .await
            .map(|_| ()),
            Some(existing) => storage::accounts::update(
                &tracking.db,
                existing,
                AccountPatch {
                    phone: account.phone.clone(),
                    api_id: account.api_id,
                    max_targets: Some(account.max_targets),
                    max_channels: Some(account.max_channels),
                    ..AccountPatch::default()
                },
                clock.now(),
            )
            .await
            .map(|_| ()),
        };
        if let Err(error) = result {
            let message = format!("config account `{}`: {error}", account.label);
            storage::logs::config_problem(&tracking.db, &message, clock.now()).await;
        }
    }
    Ok(())
}

/// Starts tracking the users of `[[tracked_users]]` not tracked yet. A user that cannot be
/// tracked (unknown username, no account) is reported and skipped: the rest of the service runs.
async fn apply_config_tracked_users(
    tracking: &Tracking,
    config: &Config,
    clock: Clock,
) -> Result<(), StorageError> {
    for user in &config.tracked_users {
        let username = user
            .username
            .as_deref()
            .and_then(|u| Username::parse(u).ok());
        let existing = storage::tracked_users::find_existing(
            &tracking.db,
            username.as_ref(),
            user.telegram_user_id,
        )
        .await?;
        if existing.is_some_and(|existing| existing.is_active) {
            continue;
        }
        let account_id = match &user.account {
            Some(label) => storage::accounts::find_by_label(&tracking.db, label)
                .await?
                .map(|account| account.id),
            None => None,
        };
        let request = TrackRequest {
            username,
            telegram_user_id: user.telegram_user_id,
            access_hash: None,
            account_id,
            notify: user.notify,
            visible_online: true,
        };
        if let Err(error) = tracking.track(request, clock.now()).await {
            let message = format!("config tracked user: {error}");
            storage::logs::config_problem(&tracking.db, &message, clock.now()).await;
        }
    }
    Ok(())
}
