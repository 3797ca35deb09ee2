//! The integration tests' harness (`spawn_app` and friends): the whole service on a random
//! port, with a fresh database (a temporary SQLite file, or a new PostgreSQL database when
//! TGWATCH_TEST_DATABASE_URL is set) and a scripted Telegram on a fast clock, or the real
//! grammers client against the sandbox. Tests drive it over HTTP only. Only with the `harness`
//! feature (the tests' dev-dependency turns it on).

#![allow(clippy::expect_used, clippy::unwrap_used)] // a failing test may panic

pub mod python;
pub mod receiver;
pub mod system;

pub use system::TestSystem;

use std::{sync::Arc, time::Duration};

use crate::scripted::{Scenario, ScriptedTelegram};
use chrono::{DateTime, Utc};
use sea_orm::ConnectionTrait;
use serde_json::Value;
use tgwatch_core::{
    clock::Clock,
    config::{Config, Secret},
};
use tgwatch_service::app::Application;
use tgwatch_telegram::TelegramConnector;

pub const TOKEN: &str = "test-admin-token-0123456789";
/// 600x: a 60-120 s poll interval passes in 100-200 ms.
pub const SPEED: f64 = 600.0;
/// Service seconds between the start of the test and second 0 of its scenario (2.5 s real).
const STARTUP_ALLOWANCE_SECONDS: i64 = 1500;

pub struct TestApp {
    pub api: Api,
    pub telegram: Arc<ScriptedTelegram>,
    pub clock: Clock,
    /// The service's database, for tests that prepare rows the API cannot make (old logs).
    pub database_url: String,
    _dir: tempfile::TempDir,
}

/// The service's HTTP API, as a test talks to it.
pub struct Api {
    pub base: String,
    pub client: reqwest::Client,
}

impl std::ops::Deref for TestApp {
    type Target = Api;
    fn deref(&self) -> &Api {
        &self.api
    }
}

/// Sends the service's logs to the test's output, which nextest shows when the test fails.
/// `RUST_LOG` overrides the level.
fn capture_logs() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,tgwatch=info"));
    // Every test of a binary calls this; the first one installs the subscriber.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false)
        .with_test_writer()
        .try_init();
}

/// A fresh database URL: a new PostgreSQL database if TGWATCH_TEST_DATABASE_URL is set, else a
/// SQLite file in `dir`.
pub async fn fresh_database(dir: &std::path::Path) -> String {
    match std::env::var("TGWATCH_TEST_DATABASE_URL") {
        Ok(url) => {
            let name = format!("tgwatch_test_{}", uuid::Uuid::new_v4().simple());
            let admin = sea_orm::Database::connect(&url)
                .await
                .expect("connect to TGWATCH_TEST_DATABASE_URL");
            admin
                .execute_unprepared(&format!("CREATE DATABASE {name}"))
                .await
                .expect("create test database");
            let base = url.rsplit_once('/').map_or(url.as_str(), |(base, _)| base);
            format!("{base}/{name}")
        }
        Err(_) => format!("sqlite://{}?mode=rwc", dir.join("test.db").display()),
    }
}

/// A fresh database (see [`fresh_database`]) with every migration applied, connected with the
/// store's settings, for tests of the store itself. The directory holds the SQLite file: keep
/// it as long as the connection.
pub async fn migrated_database() -> (sea_orm::DatabaseConnection, tempfile::TempDir) {
    let (db, _url, dir) = migrated_database_and_url().await;
    (db, dir)
}

/// [`migrated_database`] and its URL, for a test that also connects on its own.
pub async fn migrated_database_and_url() -> (sea_orm::DatabaseConnection, String, tempfile::TempDir)
{
    let dir = tempfile::tempdir().expect("temp dir");
    let url = fresh_database(dir.path()).await;
    let db = tgwatch_store::connect(&url, 4).await.expect("connect");
    tgwatch_store::migrate(&db).await.expect("migrate");
    (db, url, dir)
}

/// A tracked person's row as the API makes it (no account yet), for tests of the store itself.
pub async fn insert_tracked_user(db: &sea_orm::DatabaseConnection, username: &str) -> uuid::Uuid {
    use sea_orm::{ActiveValue::Set, EntityTrait};
    use tgwatch_store::entities::tracked_users;
    let now = chrono::SubsecRound::trunc_subsecs(Utc::now(), 6);
    let id = uuid::Uuid::now_v7();
    tracked_users::Entity::insert(tracked_users::ActiveModel {
        id: Set(id),
        telegram_user_id: Set(None),
        username: Set(Some(username.to_owned())),
        first_name: Set(None),
        access_hash: Set(None),
        account_id: Set(None),
        visible_online: Set(true),
        notify: Set(false),
        is_active: Set(true),
        source: Set(tgwatch_core::config::Origin::Api),
        created_at: Set(now),
        updated_at: Set(now),
    })
    .exec_without_returning(db)
    .await
    .expect("insert tracked user");
    id
}

/// Starts the service with `scenario` (TOML) and the given tweaks to the configuration.
pub async fn spawn_app(scenario: &str, tweak: impl FnOnce(&mut Config)) -> TestApp {
    capture_logs();
    let dir = tempfile::tempdir().expect("temp dir");
    let mut config = Config::default();
    config.database.url = fresh_database(dir.path()).await;
    config.http.bind = "127.0.0.1:0".parse().expect("address");
    config.http.admin_token = Some(Secret::new(TOKEN));
    config.telegram.clock_speed = SPEED;
    config.presence.batch_delay_seconds = 5;
    config.presence.flush_interval_ms = 50;
    config.accounts = vec![tgwatch_core::config::AccountConfig {
        label: "main".into(),
        phone: None,
        api_id: None,
        max_targets: 1000,
        max_channels: 100,
    }];
    tweak(&mut config);
    config.validate().expect("test config is valid");
    let database_url = config.database.url.clone();

    let clock = Clock::fast(SPEED);
    let scenario = Scenario::from_toml(scenario).expect("test scenario is valid");
    // Second 0 of the scenario comes after start-up (creating a PostgreSQL database and migrating
    // it takes up to a second or two, which is many minutes of service time at 600x).
    let origin = clock.now() + chrono::Duration::seconds(STARTUP_ALLOWANCE_SECONDS);
    let telegram = ScriptedTelegram::start_at(scenario, clock, origin);
    let connector: Arc<dyn TelegramConnector> = telegram.clone();
    let app = Application::build_with(config, clock, connector)
        .await
        .expect("service starts");
    let base = format!("http://127.0.0.1:{}", app.port());
    if clock.now() >= origin {
        eprintln!("start-up took longer than the allowance: scenario timings may be off");
    }
    actix_rt::spawn(app.run_until_stopped());
    TestApp {
        api: Api {
            base,
            client: api_client(),
        },
        telegram,
        clock,
        database_url,
        _dir: dir,
    }
}

/// Starts the service from a configuration file that it watches (`tgwatch run --config`):
/// `file` gets the database URL and returns the file's text. Returns the file's path; the
/// test edits it.
pub async fn spawn_app_watching(
    scenario: &str,
    file: impl FnOnce(&str) -> String,
) -> (TestApp, std::path::PathBuf) {
    capture_logs();
    let dir = tempfile::tempdir().expect("temp dir");
    let database_url = fresh_database(dir.path()).await;
    let path = dir.path().join("config.toml");
    std::fs::write(&path, file(&database_url)).expect("write config file");
    let config = Config::load(&path).expect("test config file is valid");

    let clock = Clock::fast(SPEED);
    let scenario = Scenario::from_toml(scenario).expect("test scenario is valid");
    let origin = clock.now() + chrono::Duration::seconds(STARTUP_ALLOWANCE_SECONDS);
    let telegram = ScriptedTelegram::start_at(scenario, clock, origin);
    let connector: Arc<dyn TelegramConnector> = telegram.clone();
    let app = Application::build_with(config, clock, connector)
        .await
        .expect("service starts");
    app.watch_config(&path);
    let base = format!("http://127.0.0.1:{}", app.port());
    actix_rt::spawn(app.run_until_stopped());
    let app = TestApp {
        api: Api {
            base,
            client: api_client(),
        },
        telegram,
        clock,
        database_url,
        _dir: dir,
    };
    (app, path)
}

impl Api {
    /// An authorised request to the service's `path`.
    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.client
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(TOKEN)
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        send(self.request(reqwest::Method::GET, path)).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        send(self.request(reqwest::Method::POST, path).json(body)).await
    }

    pub async fn post_raw(&self, path: &str, body: &str) -> (u16, Value) {
        let request = self
            .request(reqwest::Method::POST, path)
            .header("content-type", "application/json")
            .body(body.to_owned());
        send(request).await
    }

    pub async fn patch(&self, path: &str, body: &Value) -> (u16, Value) {
        send(self.request(reqwest::Method::PATCH, path).json(body)).await
    }

    pub async fn put(&self, path: &str, body: &Value) -> (u16, Value) {
        send(self.request(reqwest::Method::PUT, path).json(body)).await
    }

    pub async fn delete(&self, path: &str) -> u16 {
        self.request(reqwest::Method::DELETE, path)
            .send()
            .await
            .expect("request")
            .status()
            .as_u16()
    }
}

impl TestApp {
    /// Waits (in real time) until the service clock is `seconds` past the scenario's start.
    pub async fn wait_until_second(&self, seconds: i64) {
        let at = self.telegram.started_at() + chrono::Duration::seconds(seconds);
        self.clock.sleep_until(at).await;
    }

    /// The scenario's second `seconds` as a timestamp.
    pub fn at(&self, seconds: i64) -> DateTime<Utc> {
        self.telegram.started_at() + chrono::Duration::seconds(seconds)
    }
}

impl Api {
    /// Starts tracking `username` and returns the tracked user's id.
    pub async fn track(&self, username: &str) -> String {
        let (status, body) = self
            .post(
                "/api/tracked-users",
                &serde_json::json!({ "username": username }),
            )
            .await;
        assert_eq!(status, 201, "tracking {username}: {body}");
        body["id"].as_str().expect("id").to_owned()
    }

    /// Makes `actor` panic (`POST /api/faults/panic`, the service runs with
    /// `[testing] fault_injection`) and waits until `GET /api/supervision` shows it running
    /// again after one restart more; returns how long that took. Fails past `within`.
    pub async fn panic_and_wait_for_restart(
        &self,
        actor: &str,
        id: Option<&str>,
        within: Duration,
    ) -> Duration {
        fn node<'a>(tree: &'a Value, actor: &str, id: Option<&str>) -> &'a Value {
            supervision_node(tree, actor, id)
                .unwrap_or_else(|| panic!("no `{actor}` {id:?} in the supervision tree: {tree}"))
        }
        let (_, tree) = self.get("/api/supervision").await;
        let before = node(&tree, actor, id)["restarts"]
            .as_u64()
            .expect("restarts");
        let started = tokio::time::Instant::now();
        let (status, body) = self
            .post(
                "/api/faults/panic",
                &serde_json::json!({ "actor": actor, "id": id }),
            )
            .await;
        assert_eq!(status, 202, "{body}");
        loop {
            let (_, tree) = self.get("/api/supervision").await;
            let node = node(&tree, actor, id);
            if node["restarts"].as_u64() == Some(before + 1) && node["state"] != "restarting" {
                return started.elapsed();
            }
            assert!(
                started.elapsed() < within,
                "`{actor}` not running again within {within:?}: {node}"
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    /// Polls `path` until `done` holds for its body, or fails after `timeout` of real time.
    pub async fn eventually(
        &self,
        path: &str,
        timeout: Duration,
        done: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let (status, body) = self.get(path).await;
            if status == 200 && done(&body) {
                return body;
            }
            if tokio::time::Instant::now() > deadline {
                panic!("{path} never satisfied the condition; last answer {status}: {body}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// The tests' HTTP client. Idle connections are dropped well before the service's keep-alive
/// (actix-web's 5 s) closes them: a request sent on a connection the server is closing at that
/// moment fails with `IncompleteMessage`, which a test reads as the service failing.
fn api_client() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_idle_timeout(Duration::from_secs(2))
        .build()
        .expect("an HTTP client")
}

async fn send(request: reqwest::RequestBuilder) -> (u16, Value) {
    let response = request.send().await.expect("request");
    let status = response.status().as_u16();
    let text = response.text().await.expect("body");
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    (status, body)
}

/// The node of `kind` (with `id`, for accounts and people) in a `GET /api/supervision` tree.
pub fn supervision_node<'a>(tree: &'a Value, kind: &str, id: Option<&str>) -> Option<&'a Value> {
    if tree["kind"] == kind && id.is_none_or(|id| tree["id"] == id) {
        return Some(tree);
    }
    tree["children"]
        .as_array()?
        .iter()
        .find_map(|child| supervision_node(child, kind, id))
}

pub fn timestamp(value: &Value) -> DateTime<Utc> {
    value
        .as_str()
        .and_then(|text| DateTime::parse_from_rfc3339(text).ok())
        .map(|at| at.with_timezone(&Utc))
        .unwrap_or_else(|| panic!("not a timestamp: {value}"))
}

/// The service over MTProto: the real grammers adapter against a sandbox, sessions sealed in
/// the database with a master key file in `dir`.
pub struct MtprotoApp {
    pub api: Api,
    pub config: Config,
    /// The auth keys of the fresh sessions this service asked the sandbox for (one per login
    /// started), so that tests can look for them in the database.
    pub issued_keys: Arc<std::sync::Mutex<Vec<[u8; 256]>>>,
    pub server: actix_web::dev::ServerHandle,
    pub dir: Arc<tempfile::TempDir>,
}

impl std::ops::Deref for MtprotoApp {
    type Target = Api;
    fn deref(&self) -> &Api {
        &self.api
    }
}

/// Starts the service over MTProto against `sandbox`: api_id 1, api_hash `test-api-hash`, a
/// fresh database, no accounts unless `tweak` adds some.
pub async fn spawn_mtproto_app(
    sandbox: &tgwatch_sandbox::Sandbox,
    tweak: impl FnOnce(&mut Config),
) -> MtprotoApp {
    let dir = Arc::new(tempfile::tempdir().expect("temp dir"));
    let mut config = Config::default();
    config.database.url = fresh_database(dir.path()).await;
    config.http.bind = "127.0.0.1:0".parse().expect("address");
    config.http.admin_token = Some(Secret::new(TOKEN));
    config.telegram.clock_speed = SPEED;
    config.telegram.api_id = Some(1);
    config.telegram.api_hash = Some(Secret::new("test-api-hash"));
    // Bans and dropped connections are noticed at the next request: check often.
    config.telegram.watchdog_seconds = 0.2;
    config.security.master_key_file = dir.path().join("tgwatch.key").display().to_string();
    config.presence.batch_delay_seconds = 5;
    config.presence.flush_interval_ms = 50;
    tweak(&mut config);
    config.validate().expect("test config is valid");
    start_mtproto_app(sandbox, config, dir).await
}

/// Starts (or starts again) the service with `config`, keeping `dir` (database, key file).
pub async fn start_mtproto_app(
    sandbox: &tgwatch_sandbox::Sandbox,
    config: Config,
    dir: Arc<tempfile::TempDir>,
) -> MtprotoApp {
    start_mtproto_app_watching(sandbox, config, dir, None).await
}

/// The service over MTProto configured by a file it watches, as `tgwatch run` does. The file
/// holds the test settings and then `extra` (TOML); rewrite it with [`mtproto_config_text`].
pub async fn spawn_mtproto_app_watching(
    sandbox: &tgwatch_sandbox::Sandbox,
    extra: &str,
) -> (MtprotoApp, std::path::PathBuf) {
    let dir = Arc::new(tempfile::tempdir().expect("temp dir"));
    let database_url = fresh_database(dir.path()).await;
    let path = dir.path().join("config.toml");
    std::fs::write(&path, mtproto_config_text(&database_url, dir.path(), extra))
        .expect("write config file");
    let config = Config::load(&path).expect("test config file is valid");
    let app = start_mtproto_app_watching(sandbox, config, dir, Some(path.clone())).await;
    (app, path)
}

/// The settings of a watched MTProto test service, then `extra`.
pub fn mtproto_config_text(database_url: &str, dir: &std::path::Path, extra: &str) -> String {
    format!(
        "[database]\nurl = \"{database_url}\"\n\
         [http]\nbind = \"127.0.0.1:0\"\nadmin_token = \"{TOKEN}\"\n\
         [telegram]\nclock_speed = {SPEED}\napi_id = 1\napi_hash = \"test-api-hash\"\nwatchdog_seconds = 0.2\n\
         [security]\nmaster_key_file = \"{key}\"\n\
         [reload]\ninterval_ms = 100\n\
         {extra}\n",
        key = dir.join("tgwatch.key").display(),
    )
}

async fn start_mtproto_app_watching(
    sandbox: &tgwatch_sandbox::Sandbox,
    config: Config,
    dir: Arc<tempfile::TempDir>,
    watch: Option<std::path::PathBuf>,
) -> MtprotoApp {
    capture_logs();
    let vault = Arc::new(tgwatch_service::app::load_vault(&config).expect("master key"));
    let issued_keys = Arc::new(std::sync::Mutex::new(Vec::new()));
    let fresh = {
        let sandbox = sandbox.clone();
        let issued_keys = Arc::clone(&issued_keys);
        Arc::new(move || {
            let data = sandbox.fresh_session_data();
            if let Some(key) = data.dc_options.values().find_map(|option| option.auth_key) {
                issued_keys.lock().unwrap().push(key);
            }
            data
        }) as tgwatch_telegram::logins::FreshSession
    };
    let app = Application::build_mtproto(config.clone(), Clock::fast(SPEED), vault, fresh)
        .await
        .expect("service starts");
    if let Some(path) = watch {
        app.watch_config(path);
    }
    let base = format!("http://127.0.0.1:{}", app.port());
    let server = app.server_handle();
    actix_rt::spawn(app.run_until_stopped());
    MtprotoApp {
        api: Api {
            base,
            client: api_client(),
        },
        config,
        issued_keys,
        server,
        dir,
    }
}

/// Creates the account `label` and logs it in as `account` of the sandbox by importing the
/// account's pre-shared session as a Telethon string (the quickest real login). Returns its id.
pub async fn add_logged_in_account(
    app: &MtprotoApp,
    sandbox: &tgwatch_sandbox::Sandbox,
    account: tgwatch_sandbox::AccountId,
    label: &str,
    max_channels: i32,
) -> String {
    let (status, body) = app
        .post(
            "/api/accounts",
            &serde_json::json!({ "label": label, "max_channels": max_channels }),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let id = body["id"].as_str().expect("id").to_owned();
    let telethon = telethon_string(sandbox, account);
    let (status, body) = app
        .post(
            &format!("/api/accounts/{id}/session/import"),
            &serde_json::json!({ "telethon": telethon }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    // Connected: its chats can be read.
    app.eventually(
        &format!("/api/accounts/{id}/chats"),
        Duration::from_secs(20),
        |_| true,
    )
    .await;
    id
}

/// The sandbox account's pre-shared session as a Telethon StringSession, packed byte by byte as
/// Telethon's `StringSession.save` does: `1` + base64url(dc id, IPv4, port, auth key).
pub fn telethon_string(
    sandbox: &tgwatch_sandbox::Sandbox,
    account: tgwatch_sandbox::AccountId,
) -> String {
    use base64::Engine;
    let std::net::IpAddr::V4(ip) = sandbox.addr().ip() else {
        panic!("the sandbox listens on IPv4");
    };
    let mut packed = vec![tgwatch_sandbox::HOME_DC as u8];
    packed.extend_from_slice(&ip.octets());
    packed.extend_from_slice(&sandbox.addr().port().to_be_bytes());
    packed.extend_from_slice(&sandbox.auth_key(account).expect("auth key"));
    format!(
        "1{}",
        base64::engine::general_purpose::URL_SAFE.encode(&packed)
    )
}

/// The `hash` of Telegram Mini App init data, computed as Telegram documents it ("Validating
/// data received via the Mini App") and independently of the service's own signer: the secret
/// is HMAC-SHA256 of the bot token keyed with `WebAppData`; the hash is the hex HMAC-SHA256, keyed
/// with that secret, of the fields sorted by key as `key=value` lines joined by `\n`.
pub fn telegram_init_data_hash(fields: &[(&str, &str)], bot_token: &str) -> String {
    use hmac::Mac;
    type HmacSha256 = hmac::Hmac<sha2::Sha256>;
    let mut secret = HmacSha256::new_from_slice(b"WebAppData").expect("any key length");
    secret.update(bot_token.as_bytes());
    let secret = secret.finalize().into_bytes();
    let mut sorted = fields.to_vec();
    sorted.sort();
    let check: Vec<String> = sorted.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let mut hash = HmacSha256::new_from_slice(&secret).expect("any key length");
    hash.update(check.join("\n").as_bytes());
    hash.finalize()
        .into_bytes()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// Init data as a Mini App receives it from Telegram: the fields and their `hash`, as a query
/// string (see [`telegram_init_data_hash`]).
pub fn telegram_init_data(fields: &[(&str, &str)], bot_token: &str) -> String {
    let hash = telegram_init_data_hash(fields, bot_token);
    let mut query = form_urlencoded::Serializer::new(String::new());
    for (key, value) in fields {
        query.append_pair(key, value);
    }
    query.append_pair("hash", &hash);
    query.finish()
}

/// Cargo's target directory (`CARGO_TARGET_DIR`, else `target/` of the workspace): where tests
/// keep artifacts and the tools they install.
pub fn target_dir() -> std::path::PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"))
}

/// Whether a `webhook-signature` header (signatures separated by spaces) holds a valid Standard
/// Webhooks signature by `secret` (`whsec_` and the base64 key): `v1,` and the base64
/// HMAC-SHA256, keyed with the key, of `{id}.{timestamp}.{body}`. Written from the
/// specification, independently of the service's signer.
pub fn standard_webhooks_signed(
    secret: &str,
    id: &str,
    timestamp: i64,
    body: &str,
    header: &str,
) -> bool {
    use base64::Engine;
    use hmac::Mac;
    let key = base64::engine::general_purpose::STANDARD
        .decode(secret.strip_prefix("whsec_").expect("a whsec_ secret"))
        .expect("a base64 key");
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&key).expect("any key length");
    mac.update(format!("{id}.{timestamp}.{body}").as_bytes());
    let expected = format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    );
    header.split(' ').any(|signature| signature == expected)
}
