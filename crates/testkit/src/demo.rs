//! `tgwatch demo`: the whole service on a fresh SQLite file and the built-in sandbox Telegram,
//! with no credentials, so a new user sees it work in a minute.
//!
//! The demo runs the real path: the grammers adapter over MTProto against the sandbox, with
//! each account's session imported and sealed in the database as a user's would be.

use std::{path::PathBuf, sync::Arc, time::Duration};

use sea_orm::DatabaseConnection;
use tgwatch_sandbox::{Sandbox, SandboxError};

use crate::{
    sandbox_newsroom::{self, DEMO_CHANNELS},
    sandbox_player,
    scripted::Scenario,
};
use tgwatch_core::{
    clock::Clock,
    config::{AccountConfig, ChannelConfig, ChannelName, Config, Secret, TrackedUserConfig},
    vault::{Vault, VaultError},
};
use tgwatch_service::app::{Application, StartupError, load_vault};
use tgwatch_store::{self as storage, StorageError, accounts::NewAccount};
use tgwatch_telegram::{
    logins::{FreshSession, LoginsError, import_session},
    stored_session::{PersistedSession, SessionStore},
};

/// The demo's accounts.
const DEMO_ACCOUNTS: [&str; 3] = ["demo-main", "demo-backup", "demo-spare"];

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("sandbox: {0}")]
    Sandbox(#[from] SandboxError),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Vault(#[from] VaultError),
    #[error("importing a demo session: {0}")]
    Logins(#[from] LoginsError),
    #[error(transparent)]
    Startup(#[from] StartupError),
}

/// How many simulated people the demo tracks.
pub const DEMO_USERS: usize = 24;

/// How often something happens in the demo's channels (real time).
const NEWSROOM_BEAT: Duration = Duration::from_secs(3);

/// The demo's configuration, its scenario, and where its database lives.
pub struct Demo {
    pub config: Config,
    pub scenario: Scenario,
    pub database_path: PathBuf,
    /// How often the demo's channels get a post, an edit or a deletion.
    pub newsroom_beat: Duration,
}

impl Demo {
    /// Every file the demo may leave: the database with SQLite's companions (WAL, shared memory,
    /// journal) and the master key file.
    pub fn files(&self) -> Vec<PathBuf> {
        let database = self.database_path.display().to_string();
        let mut files: Vec<PathBuf> = ["", "-wal", "-shm", "-journal"]
            .into_iter()
            .map(|suffix| PathBuf::from(format!("{database}{suffix}")))
            .collect();
        files.push(PathBuf::from(&self.config.security.master_key_file));
        files
    }
}

/// Removes the demo's files (those that exist); one that cannot be removed is reported.
pub fn remove_files(files: &[PathBuf]) {
    for file in files {
        match std::fs::remove_file(file) {
            Ok(()) => {}
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => eprintln!("tgwatch demo: cannot remove {}: {error}", file.display()),
        }
    }
}

/// Builds the demo: three accounts, a generated day of activity for [`DEMO_USERS`] people, a
/// clock 60 times faster than real time (a poll round every one or two seconds), a new admin
/// token and a new database file under `dir`.
pub fn demo(dir: &std::path::Path, bind: std::net::SocketAddr, clock_speed: f64) -> Demo {
    let database_path = dir.join(format!("tgwatch-demo-{}.db", uuid::Uuid::new_v4().simple()));
    let scenario = Scenario::generated(DEMO_USERS, 2026);
    let mut config = Config::default();
    config.database.url = format!("sqlite://{}?mode=rwc", database_path.display());
    config.http.bind = bind;
    config.http.admin_token = Some(Secret::new(uuid::Uuid::new_v4().simple().to_string()));
    config.telegram.clock_speed = clock_speed;
    config.presence.batch_delay_seconds = 10;
    config.telegram.api_id = Some(1);
    config.telegram.api_hash = Some(Secret::new("demo-api-hash"));
    // Webhooks may be tried on this machine (a receiver on 127.0.0.1), and nowhere else: the
    // demo never sends anything beyond it.
    config.webhooks.allowed_destinations = vec!["127.0.0.0/8".into(), "::1/128".into()];
    config.security.master_key_file = dir
        .join(format!(
            "tgwatch-demo-{}.key",
            uuid::Uuid::new_v4().simple()
        ))
        .display()
        .to_string();
    config.accounts = DEMO_ACCOUNTS
        .into_iter()
        .map(|label| AccountConfig {
            label: label.to_owned(),
            phone: None,
            api_id: None,
            max_targets: 1000,
            max_channels: 100,
        })
        .collect();
    config.tracked_users = scenario
        .users
        .iter()
        .map(|user| TrackedUserConfig {
            username: user.username.clone(),
            telegram_user_id: None,
            account: None,
            notify: user.push,
        })
        .collect();
    config.channels = DEMO_CHANNELS
        .iter()
        .map(|channel| ChannelConfig {
            channel: ChannelName::Text(format!("@{}", channel.username)),
            account: None,
            tags: vec!["demo".into()],
        })
        .collect();
    Demo {
        config,
        scenario,
        database_path,
        newsroom_beat: NEWSROOM_BEAT,
    }
}

/// Starts the sandbox with the demo's accounts and people, imports each account's session into
/// the database (sealed), plays the scenario, keeps the demo channels busy, and builds the
/// service over MTProto.
pub async fn start(demo: Demo, clock: Clock) -> Result<(Application, Sandbox), DemoError> {
    let fleet = SandboxFleet::start(&demo.config, &demo.scenario, clock).await?;
    // The sandbox plays the demo's world: posts are dated on the clock the people's statuses
    // follow, so every time the service shows is service time.
    fleet
        .sandbox
        .set_message_clock(std::sync::Arc::new(move || {
            i32::try_from(clock.now().timestamp()).unwrap_or(i32::MAX)
        }));
    sandbox_newsroom::add_channels(&fleet.sandbox)?;
    sandbox_player::play(fleet.sandbox.clone(), demo.scenario, clock, clock.now());
    sandbox_newsroom::run(fleet.sandbox.clone(), demo.newsroom_beat);
    let app = fleet.build_app(demo.config, clock).await?;
    Ok((app, fleet.sandbox))
}

/// A sandbox holding the accounts of a configuration (each logged in, its session imported and
/// sealed in the configuration's database) and the people of a scenario. `demo` and
/// `bench mtproto` run the service over it.
pub struct SandboxFleet {
    pub sandbox: Sandbox,
    /// The sandbox accounts, in the order of the configuration's accounts.
    pub sandbox_accounts: Vec<tgwatch_sandbox::AccountId>,
    pub vault: Arc<Vault>,
    pub db: DatabaseConnection,
}

impl SandboxFleet {
    pub async fn start(
        config: &Config,
        scenario: &Scenario,
        clock: Clock,
    ) -> Result<SandboxFleet, DemoError> {
        let sandbox = Sandbox::start().await?;
        let db = storage::connect(&config.database.url, config.database.max_connections).await?;
        storage::migrate(&db).await?;
        let vault = Arc::new(load_vault(config)?);
        let store = SessionStore {
            db: db.clone(),
            vault: Arc::clone(&vault),
            clock,
        };
        let api_hash = config
            .telegram
            .api_hash
            .as_ref()
            .map(|hash| hash.expose().to_owned());
        let mut sandbox_accounts = Vec::new();
        for (index, configured) in config.accounts.iter().enumerate() {
            let user_id = 9_000_001 + index as i64;
            let sandbox_account =
                sandbox.add_account(user_id, user_id ^ 0x5eed, None, &configured.label)?;
            sandbox_accounts.push(sandbox_account);
            let account = storage::accounts::create(
                &db,
                NewAccount {
                    label: configured.label.clone(),
                    phone: None,
                    username: None,
                    telegram_user_id: None,
                    api_id: configured.api_id,
                    max_targets: Some(configured.max_targets),
                    max_channels: Some(configured.max_channels),
                    status: None,
                },
                clock.now(),
            )
            .await?;
            let session = PersistedSession::from_data(&sandbox.session_data_for(sandbox_account)?);
            import_session(
                &store,
                &account,
                session,
                api_hash.clone(),
                config.telegram.api_id.unwrap_or(1),
                Duration::from_secs(30),
            )
            .await?;
        }
        sandbox_player::populate(&sandbox, scenario, &sandbox_accounts, clock.now())?;
        Ok(SandboxFleet {
            sandbox,
            sandbox_accounts,
            vault,
            db,
        })
    }

    /// The service over MTProto against this sandbox; new logins get sandbox keys.
    pub async fn build_app(&self, config: Config, clock: Clock) -> Result<Application, DemoError> {
        let fresh_session: FreshSession = {
            let sandbox = self.sandbox.clone();
            Arc::new(move || sandbox.fresh_session_data())
        };
        Ok(
            Application::build_mtproto(config, clock, Arc::clone(&self.vault), fresh_session)
                .await?,
        )
    }
}
