//! `tgwatch demo`: the whole service on a fresh SQLite file and the built-in sandbox Telegram,
//! with no credentials, so a new user sees it work in a minute.
//!
//! The demo runs the real path: the grammers adapter over MTProto against the sandbox, with
//! each account's session imported and sealed in the database as a user's would be. Beside the
//! people and channels it shows the rest: the bot on the sandbox's Bot API with a demo chat that
//! gets online notifications, a webhook receiver on 127.0.0.1, a week of history, and one
//! logged-out account per login path (test-DC phone code, 2FA password, QR code scanned by the
//! sandbox's "demo phone").

use std::{collections::BTreeMap, path::PathBuf, sync::Arc, time::Duration};

use grammers_session::SessionData;
use sea_orm::DatabaseConnection;
use tgwatch_sandbox::{AccountId, BotApi, Sandbox, SandboxError, bot_api::Person};

use crate::{
    demo_history,
    demo_receiver::DemoReceiver,
    sandbox_newsroom::{self, DEMO_CHANNELS},
    sandbox_player,
    scripted::Scenario,
};
use tgwatch_core::{
    clock::Clock,
    config::{
        AccountConfig, ChannelConfig, ChannelName, Config, Secret, TrackedUserConfig,
        WebhookEndpointConfig,
    },
    signing::SigningSecret,
    vault::{Vault, VaultError},
};
use tgwatch_service::app::{Application, StartupError, load_vault};
use tgwatch_store::{self as storage, StorageError, accounts::NewAccount};
use tgwatch_telegram::{
    logins::{DemoPhone, LoginsError, SessionSource, import_session},
    stored_session::{PersistedSession, SessionStore},
};

/// The demo's accounts that are logged in from the start.
const DEMO_ACCOUNTS: [&str; 3] = ["demo-main", "demo-backup", "demo-spare"];

/// A demo account left logged out, to try one way of logging in.
#[derive(Clone, Copy, Debug)]
pub struct LoginAccount {
    pub label: &'static str,
    /// A phone of Telegram's test-DC form `+99966XYYYY`: the code is `XXXXX`.
    pub phone: Option<&'static str>,
    /// The 2FA password, asked after the code or the QR scan.
    pub password: Option<&'static str>,
}

/// One account per login path: the code of a test-DC phone, the same with a 2FA password, and
/// a QR code that the dashboard's "scan with the demo phone" button scans.
pub const LOGIN_ACCOUNTS: [LoginAccount; 3] = [
    LoginAccount {
        label: "login-by-code",
        phone: Some("+9996621001"),
        password: None,
    },
    LoginAccount {
        label: "login-with-2fa",
        phone: Some("+9996621002"),
        password: Some("demo-2fa-password"),
    },
    LoginAccount {
        label: "login-by-qr",
        phone: None,
        password: None,
    },
];

/// The demo bot's token: fake, known only to the sandbox's Bot API (and printed, so that a Mini
/// App's initData can be signed with it for `/ws`).
pub const DEMO_BOT_TOKEN: &str = "7000000001:demo-bot-token-of-the-sandbox";

/// The person who talks to the demo bot: an admin (`bot.admin_ids`) whose private chat has
/// online notifications on.
pub const DEMO_ADMIN: i64 = 4_242_001;

/// The name of the demo's webhook endpoint (to its receiver on 127.0.0.1).
pub const DEMO_WEBHOOK: &str = "demo-receiver";

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
    #[error("the demo's webhook receiver: {0}")]
    Receiver(#[from] std::io::Error),
    #[error("setting the 2FA password of a demo account: {0}")]
    Password(#[from] tokio::task::JoinError),
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
    /// The logged-out accounts, added to the configuration once the sandbox has them.
    pub login_accounts: Vec<LoginAccount>,
}

/// What runs beside the service in the demo.
pub struct DemoWorld {
    pub sandbox: Sandbox,
    /// The sandbox's Bot API, where the demo bot polls and sends.
    pub bot: BotApi,
    pub receiver: DemoReceiver,
    /// The receiver's signing secret (`whsec_...`).
    pub webhook_secret: String,
    /// Sessions of the simulated people's past week written at start.
    pub past_sessions: usize,
    /// The logged-out accounts and their ids in the service.
    pub login_accounts: Vec<(LoginAccount, uuid::Uuid)>,
}

/// What `tgwatch demo` prints once it runs: where to look (the dashboard with its token, the
/// API, the bot, the webhook receiver), how to log each spare account in, and `curl` lines.
pub fn banner(base: &str, token: &str, speed: f64, world: &DemoWorld) -> String {
    let auth = format!("-H 'Authorization: Bearer {token}'");
    let post = format!("curl -X POST {auth} -H 'Content-Type: application/json'");
    let mut text = format!(
        "\ntgwatch demo: {DEMO_USERS} simulated people with a week of history ({past} past \
         sessions), {accounts} accounts over MTProto (sandbox Telegram at {sandbox}), clock x{speed}\n\
         dashboard:  {base}/#token={token}\n\
         admin API:  {base}/api (token: {token})\n\
         API docs:   {base}/api/docs/ (the contract: {base}/api/openapi.json)\n\
         bot:        token {DEMO_BOT_TOKEN} (fake: the sandbox Bot API at {bot}); the demo chat \
         {DEMO_ADMIN} gets online notifications and the dashboard's broadcasts (logged below); \
         sign a Mini App initData with the token to open /ws as Telegram user {DEMO_ADMIN}\n\
         webhooks:   `{DEMO_WEBHOOK}` delivers every event to {hook}, which checks the \
         signatures (secret {secret}); see them arrive at {page}; webhooks reach 127.0.0.1 and \
         ::1 only (webhooks.allowed_destinations)\n\
         \nlog in (accounts left logged out, one per way; or the dashboard's Accounts card):\n",
        past = world.past_sessions,
        accounts = DEMO_ACCOUNTS.len(),
        sandbox = world.sandbox.addr(),
        bot = world.bot.url(),
        hook = world.receiver.hook_url,
        page = world.receiver.page_url,
        secret = world.webhook_secret,
    );
    for (account, id) in &world.login_accounts {
        let login = format!("{base}/api/accounts/{id}/login");
        match account.phone {
            Some(phone) => {
                let code = tgwatch_sandbox::test_dc_code(phone).unwrap_or_default();
                text.push_str(&format!(
                    "  {label}: phone {phone}, code {code} (a test-DC phone +99966XYYYY gets the code XXXXX){password}\n    \
                     {post} -d '{{}}' {login}/phone\n    \
                     {post} -d '{{\"code\": \"{code}\"}}' {login}/code\n",
                    label = account.label,
                    password = account
                        .password
                        .map(|password| format!(", then the 2FA password {password}"))
                        .unwrap_or_default(),
                ));
                if let Some(password) = account.password {
                    text.push_str(&format!(
                        "    {post} -d '{{\"password\": \"{password}\"}}' {login}/password\n"
                    ));
                }
            }
            None => text.push_str(&format!(
                "  {label}: QR code: the dashboard's Accounts card, \"QR login\", then \"Scan with the demo phone\"; or\n    \
                 curl {auth} {login}/qr\n    \
                 curl -X POST {auth} {login}/qr/demo-scan\n",
                label = account.label,
            )),
        }
    }
    text.push_str(&format!(
        "\ntry:\n  curl {base}/api/health\n  \
         curl {auth} {base}/api/tracked-users\n  \
         curl {auth} '{base}/api/tracked-users?online=true'\n  \
         curl {auth} '{base}/api/tracked-users/<id>/stats?hours=168'\n  \
         curl {auth} {base}/api/channels\n  \
         curl {auth} {base}/api/channels/<id>/messages\n  \
         curl {auth} {base}/api/webhooks\n"
    ));
    text
}

/// Logs what the bot writes in the demo chat, as it arrives, until the task is aborted.
fn log_demo_chat(bot: BotApi) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut shown = 0;
        loop {
            let sent = bot
                .wait_for(Duration::from_secs(3600), |sent| {
                    sent.iter().filter(|s| s.chat_id == DEMO_ADMIN).count() > shown
                })
                .await;
            for message in sent.iter().filter(|s| s.chat_id == DEMO_ADMIN).skip(shown) {
                shown += 1;
                tracing::info!(
                    chat = DEMO_ADMIN,
                    text = message.text.as_deref().unwrap_or_default(),
                    "the bot wrote in the demo chat"
                );
            }
        }
    })
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
        login_accounts: LOGIN_ACCOUNTS.to_vec(),
    }
}

/// How long the demo waits at start for the service to track its people before it writes their
/// past (they are resolved over MTProto in the background).
const HISTORY_PATIENCE: Duration = Duration::from_secs(20);

/// Starts the sandbox with the demo's accounts and people, imports each account's session into
/// the database (sealed), adds the logged-out accounts, the bot's Bot API and the webhook
/// receiver, plays the scenario, keeps the demo channels busy, builds the service over MTProto,
/// and writes the people's past week.
pub async fn start(mut demo: Demo, clock: Clock) -> Result<(Application, DemoWorld), DemoError> {
    let origin = clock.now();
    let mut fleet = SandboxFleet::start(&demo.config, &demo.scenario, clock).await?;
    for account in &demo.login_accounts {
        fleet.add_login_account(account).await?;
        demo.config.accounts.push(AccountConfig {
            label: account.label.to_owned(),
            phone: account.phone.map(str::to_owned),
            api_id: None,
            max_targets: 1000,
            max_channels: 100,
        });
    }
    let bot = BotApi::start(DEMO_BOT_TOKEN).await?;
    demo.config.bot.token = Some(Secret::new(DEMO_BOT_TOKEN));
    demo.config.bot.api_url = bot.url();
    demo.config.bot.admin_ids = vec![DEMO_ADMIN];
    demo.config.bot.polling_timeout_seconds = 5;
    demo.config.bot.poll_interval_ms = 200;
    // The dashboard's broadcast panel (and the Mini App's) sends to the demo chat.
    demo.config.live.broadcast_chat_id = Some(DEMO_ADMIN);
    // The admin opens the bot and turns online notifications on in the demo chat.
    let admin = Person {
        id: DEMO_ADMIN,
        first_name: "Demo admin".into(),
        username: Some("demo_admin".into()),
    };
    bot.send_message(&admin, DEMO_ADMIN, None, "/start");
    bot.send_message(&admin, DEMO_ADMIN, None, "/notify on");
    let secret = SigningSecret::generate();
    let receiver = DemoReceiver::start(secret.clone())?;
    demo.config.webhooks.endpoints.push(WebhookEndpointConfig {
        name: DEMO_WEBHOOK.to_owned(),
        url: receiver.hook_url.clone(),
        events: vec!["all".to_owned()],
        secret: Secret::new(secret.expose()),
        tracked_user: None,
    });
    // The sandbox plays the demo's world: posts are dated on the clock the people's statuses
    // follow, so every time the service shows is service time.
    fleet
        .sandbox
        .set_message_clock(std::sync::Arc::new(move || {
            i32::try_from(clock.now().timestamp()).unwrap_or(i32::MAX)
        }));
    sandbox_newsroom::add_channels(&fleet.sandbox)?;
    sandbox_player::play(fleet.sandbox.clone(), demo.scenario.clone(), clock, origin);
    sandbox_newsroom::run(fleet.sandbox.clone(), demo.newsroom_beat);
    let gap = demo.config.presence.gap();
    let app = fleet.build_app(demo.config, clock).await?;
    let past_sessions =
        demo_history::prefill(&fleet.db, &demo.scenario, gap, origin, HISTORY_PATIENCE).await?;
    let mut login_accounts = Vec::new();
    for account in &demo.login_accounts {
        if let Some(row) = storage::accounts::find_by_label(&fleet.db, account.label).await? {
            login_accounts.push((*account, row.id));
        }
    }
    log_demo_chat(bot.clone());
    Ok((
        app,
        DemoWorld {
            sandbox: fleet.sandbox,
            bot,
            receiver,
            webhook_secret: secret.expose(),
            past_sessions,
            login_accounts,
        },
    ))
}

/// The sandbox's side of logins: fresh sessions with keys it knows, and a logged-in app of
/// every account (its "demo phone") to scan QR codes with.
struct SandboxLogins {
    sandbox: Sandbox,
    /// Account label -> the sandbox account.
    accounts: BTreeMap<String, AccountId>,
}

impl SessionSource for SandboxLogins {
    fn fresh(&self) -> SessionData {
        self.sandbox.fresh_session_data()
    }

    fn demo_phone(&self) -> Option<&dyn DemoPhone> {
        Some(self)
    }
}

impl DemoPhone for SandboxLogins {
    fn scan(&self, account: &str, token: &[u8]) -> Result<(), String> {
        let id = self
            .accounts
            .get(account)
            .ok_or_else(|| format!("the sandbox has no account `{account}`"))?;
        self.sandbox
            .accept_login_token(token, *id)
            .map_err(|error| error.to_string())
    }
}

/// A sandbox holding the accounts of a configuration (each logged in, its session imported and
/// sealed in the configuration's database) and the people of a scenario. `demo` and
/// `bench mtproto` run the service over it.
pub struct SandboxFleet {
    pub sandbox: Sandbox,
    /// The sandbox accounts, in the order of the configuration's accounts.
    pub sandbox_accounts: Vec<tgwatch_sandbox::AccountId>,
    /// Every sandbox account by label, the logged-out ones too.
    accounts: BTreeMap<String, AccountId>,
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
        let mut accounts = BTreeMap::new();
        for (index, configured) in config.accounts.iter().enumerate() {
            let user_id = FIRST_ACCOUNT_USER_ID + index as i64;
            let sandbox_account =
                sandbox.add_account(user_id, user_id ^ 0x5eed, None, &configured.label)?;
            sandbox_accounts.push(sandbox_account);
            accounts.insert(configured.label.clone(), sandbox_account);
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
            accounts,
            vault,
            db,
        })
    }

    /// A sandbox account that the service does not hold a session of: it logs in through the
    /// API (with its phone's code, its 2FA password, or a QR code scanned by the demo phone).
    /// Setting a password derives its SRP verifier, slow enough (a second in a debug build) to
    /// run off the async threads.
    pub async fn add_login_account(&mut self, account: &LoginAccount) -> Result<(), DemoError> {
        let user_id = FIRST_ACCOUNT_USER_ID + self.accounts.len() as i64;
        let id = self
            .sandbox
            .add_account(user_id, user_id ^ 0x5eed, None, account.label)?;
        if let Some(phone) = account.phone {
            self.sandbox.set_phone(id, phone)?;
        }
        if let Some(password) = account.password {
            let sandbox = self.sandbox.clone();
            let password = password.to_owned();
            tokio::task::spawn_blocking(move || {
                sandbox.set_password(id, Some(&password), Some("printed by tgwatch demo"))
            })
            .await??;
        }
        self.accounts.insert(account.label.to_owned(), id);
        Ok(())
    }

    /// The service over MTProto against this sandbox; new logins get sandbox keys, and QR
    /// codes can be scanned with the sandbox's demo phone.
    pub async fn build_app(&self, config: Config, clock: Clock) -> Result<Application, DemoError> {
        let logins = Arc::new(SandboxLogins {
            sandbox: self.sandbox.clone(),
            accounts: self.accounts.clone(),
        });
        Ok(Application::build_mtproto(config, clock, Arc::clone(&self.vault), logins).await?)
    }
}

/// The Telegram user id of the fleet's first sandbox account; the next ones follow.
const FIRST_ACCOUNT_USER_ID: i64 = 9_000_001;
