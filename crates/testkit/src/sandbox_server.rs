//! The sandbox as a server of its own (`tgwatch-sandbox`): a fake Telegram on 127.0.0.1 that
//! several tgwatch instances, Telethon or any other MTProto client can share, driven over HTTP.
//!
//! It plays a scenario's people (statuses at their times, on a clock of the chosen speed) and
//! its FLOOD_WAITs, holds accounts by label and channels by username, and answers a control API
//! on its own port:
//!
//! | request | does |
//! |---|---|
//! | `GET /control` | DC addresses, accounts, channels, people |
//! | `POST /control/channels/{username}/posts` `{"count", "text"}` | posts (the channel is made on first use) |
//! | `POST /control/channels/{username}/messages/{id}/edit` `{"text"}` | edits a post |
//! | `POST /control/channels/{username}/messages/{id}/delete` | deletes a post |
//! | `POST /control/people/{username}/status` `{"online"}` | sets and pushes a status |
//! | `POST /control/accounts/{label}/ban` `{"reason"}` | bans (default `USER_DEACTIVATED_BAN`) |
//! | `POST /control/accounts/{label}/unban` | lifts a ban |
//! | `POST /control/accounts/{label}/flood_wait` `{"method", "seconds", "calls"}` | FLOOD_WAIT |
//! | `GET /control/accounts/{label}/session?format=tgw1\|telethon` | a session to log in with |
//!
//! Errors are JSON `{"error": "..."}` naming what to fix: 404 for an unknown account, channel,
//! person or message, 400 for a body or parameter that does not fit.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};

use actix_web::{HttpResponse, ResponseError, web};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::json;
use tgwatch_core::clock::Clock;
use tgwatch_sandbox::{AccountId, Ban, Sandbox, SandboxError, UserStatus};
use tgwatch_telegram::stored_session::PersistedSession;

use crate::sandbox_player;
use crate::scripted::Scenario;

/// How the server is set up (the command line of `tgwatch-sandbox`).
#[derive(Clone, Debug)]
pub struct ServerOptions {
    pub scenario: Scenario,
    /// The control API's port on 127.0.0.1 (0: any free one).
    pub port: u16,
    /// Account labels; each gets a sandbox account and its sessions.
    pub accounts: Vec<String>,
    /// Channel usernames made at start (more are made by their first post).
    pub channels: Vec<String>,
    /// How fast the scenario plays.
    pub speed: f64,
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error(transparent)]
    Sandbox(#[from] SandboxError),
    #[error("the control API cannot listen on 127.0.0.1:{port}: {source}")]
    Bind {
        port: u16,
        #[source]
        source: std::io::Error,
    },
    #[error("account label {0:?} is given twice")]
    DuplicateAccount(String),
    #[error("channel @{username}: {reason}")]
    Channel { username: String, reason: String },
}

/// What the control API refuses, with the status it answers.
#[derive(Debug, thiserror::Error)]
enum ControlError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    BadRequest(String),
}

impl ResponseError for ControlError {
    fn status_code(&self) -> actix_web::http::StatusCode {
        match self {
            ControlError::NotFound(_) => actix_web::http::StatusCode::NOT_FOUND,
            ControlError::BadRequest(_) => actix_web::http::StatusCode::BAD_REQUEST,
        }
    }

    fn error_response(&self) -> HttpResponse {
        HttpResponse::build(self.status_code()).json(json!({ "error": self.to_string() }))
    }
}

impl From<SandboxError> for ControlError {
    fn from(error: SandboxError) -> Self {
        ControlError::BadRequest(error.to_string())
    }
}

/// The world the control API drives.
struct World {
    sandbox: Sandbox,
    clock: Clock,
    accounts: BTreeMap<String, AccountId>,
    /// Username (lower case) -> user id.
    people: BTreeMap<String, i64>,
    /// Username (lower case) -> channel id.
    channels: Mutex<BTreeMap<String, i64>>,
}

/// The first ids handed out: accounts, then channels, clear of a scenario's people.
const FIRST_ACCOUNT_ID: i64 = 7_000_000_001;
const FIRST_CHANNEL_ID: i64 = 1_700_000_001;

impl World {
    fn account(&self, label: &str) -> Result<AccountId, ControlError> {
        self.accounts.get(label).copied().ok_or_else(|| {
            ControlError::NotFound(format!(
                "no account {label:?}; the accounts are: {}",
                self.accounts.keys().cloned().collect::<Vec<_>>().join(", ")
            ))
        })
    }

    fn person(&self, username: &str) -> Result<i64, ControlError> {
        self.people
            .get(&username.to_lowercase())
            .copied()
            .ok_or_else(|| {
                ControlError::NotFound(format!(
                    "no person @{username}; the scenario's people are: {}",
                    self.people.keys().cloned().collect::<Vec<_>>().join(", ")
                ))
            })
    }

    fn channels(&self) -> MutexGuard<'_, BTreeMap<String, i64>> {
        self.channels
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The channel with this username, made (public, empty) if it does not exist yet.
    fn channel_or_new(&self, username: &str) -> Result<i64, ControlError> {
        let key = username.to_lowercase();
        let mut channels = self.channels();
        if let Some(id) = channels.get(&key) {
            return Ok(*id);
        }
        let id = FIRST_CHANNEL_ID + channels.len() as i64;
        self.sandbox
            .add_channel(id, id ^ 0x5eed, Some(username), username, "")?;
        channels.insert(key, id);
        Ok(id)
    }

    fn channel(&self, username: &str) -> Result<i64, ControlError> {
        self.channels()
            .get(&username.to_lowercase())
            .copied()
            .ok_or_else(|| ControlError::NotFound(format!("no channel @{username}")))
    }

    fn now_unix(&self) -> i32 {
        unix(self.clock.now())
    }
}

fn unix(at: DateTime<Utc>) -> i32 {
    i32::try_from(at.timestamp()).unwrap_or(i32::MAX)
}

/// A running server: the sandbox, its scenario player and the control API.
pub struct SandboxServer {
    pub sandbox: Sandbox,
    /// Where the control API listens.
    pub control: SocketAddr,
    /// The account labels and their sandbox accounts.
    pub accounts: BTreeMap<String, AccountId>,
    server: actix_web::dev::ServerHandle,
    player: tokio::task::JoinHandle<()>,
    floods: tokio::task::JoinHandle<()>,
}

impl SandboxServer {
    /// Starts the sandbox, populates it and serves the control API. Must run inside an actix
    /// system (`#[actix_web::main]`, `#[actix_rt::test]`).
    pub async fn start(options: ServerOptions) -> Result<SandboxServer, ServerError> {
        let sandbox = Sandbox::start().await?;
        let clock = Clock::fast(options.speed);
        let mut accounts = BTreeMap::new();
        for (index, label) in options.accounts.iter().enumerate() {
            let user_id = FIRST_ACCOUNT_ID + index as i64;
            let account = sandbox.add_account(user_id, user_id ^ 0x5eed, None, label)?;
            if accounts.insert(label.clone(), account).is_some() {
                return Err(ServerError::DuplicateAccount(label.clone()));
            }
        }
        let all: Vec<AccountId> = accounts.values().copied().collect();
        let origin = clock.now();
        sandbox_player::populate(&sandbox, &options.scenario, &all, origin)?;
        let people = options
            .scenario
            .users
            .iter()
            .filter_map(|user| Some((user.username.as_ref()?.to_lowercase(), user.id)))
            .collect();
        let world = Arc::new(World {
            sandbox: sandbox.clone(),
            clock,
            accounts: accounts.clone(),
            people,
            channels: Mutex::new(BTreeMap::new()),
        });
        for username in &options.channels {
            world
                .channel_or_new(username)
                .map_err(|error| ServerError::Channel {
                    username: username.clone(),
                    reason: error.to_string(),
                })?;
        }
        let player = sandbox_player::play(sandbox.clone(), options.scenario.clone(), clock, origin);
        let floods = play_flood_waits(&world, &options.scenario, origin);

        let data = web::Data::from(Arc::clone(&world));
        let http = actix_web::HttpServer::new(move || {
            actix_web::App::new()
                .app_data(data.clone())
                .app_data(web::JsonConfig::default().error_handler(|error, _| {
                    ControlError::BadRequest(format!("the body does not fit: {error}")).into()
                }))
                .app_data(web::QueryConfig::default().error_handler(|error, _| {
                    ControlError::BadRequest(format!("the query does not fit: {error}")).into()
                }))
                .route("/control", web::get().to(summary))
                .route("/control/channels/{username}/posts", web::post().to(post))
                .route(
                    "/control/channels/{username}/messages/{id}/edit",
                    web::post().to(edit),
                )
                .route(
                    "/control/channels/{username}/messages/{id}/delete",
                    web::post().to(delete),
                )
                .route("/control/people/{username}/status", web::post().to(status))
                .route("/control/accounts/{label}/ban", web::post().to(ban))
                .route("/control/accounts/{label}/unban", web::post().to(unban))
                .route(
                    "/control/accounts/{label}/flood_wait",
                    web::post().to(flood_wait),
                )
                .route("/control/accounts/{label}/session", web::get().to(session))
                .default_service(web::to(|| async {
                    ControlError::NotFound(
                        "no such control route; GET /control lists the world".into(),
                    )
                    .error_response()
                }))
        })
        .workers(1)
        .disable_signals()
        .bind((Ipv4Addr::LOCALHOST, options.port))
        .map_err(|source| ServerError::Bind {
            port: options.port,
            source,
        })?;
        let control = http.addrs().first().copied().ok_or(ServerError::Bind {
            port: options.port,
            source: std::io::Error::other("no address bound"),
        })?;
        let running = http.run();
        let server = running.handle();
        // Serving from now on, on the caller's actix system.
        actix_web::rt::spawn(running);
        Ok(SandboxServer {
            sandbox,
            control,
            accounts,
            server,
            player,
            floods,
        })
    }

    /// Serves until `stop` resolves, then stops the control API and the scenario.
    pub async fn serve_until(self, stop: impl std::future::Future<Output = ()>) {
        stop.await;
        self.server.stop(true).await;
        self.player.abort();
        self.floods.abort();
    }
}

/// Injects the scenario's FLOOD_WAITs at their times: the next call of the named account (of
/// every account when none is named) gets `FLOOD_WAIT_<seconds>`.
fn play_flood_waits(
    world: &Arc<World>,
    scenario: &Scenario,
    origin: DateTime<Utc>,
) -> tokio::task::JoinHandle<()> {
    let world = Arc::clone(world);
    let mut floods = scenario.flood_waits.clone();
    floods.sort_by_key(|flood| flood.at);
    tokio::spawn(async move {
        for flood in floods {
            world
                .clock
                .sleep_until(origin + chrono::Duration::seconds(flood.at))
                .await;
            let accounts: Vec<AccountId> = match &flood.account {
                Some(label) => world.accounts.get(label).copied().into_iter().collect(),
                None => world.accounts.values().copied().collect(),
            };
            for account in accounts {
                if let Err(error) = world.sandbox.inject_flood_wait(account, flood.seconds, 1) {
                    tracing::warn!(%error, "sandbox server: cannot inject a FLOOD_WAIT");
                }
            }
        }
    })
}

async fn summary(world: web::Data<World>) -> HttpResponse {
    let dcs: BTreeMap<String, String> = tgwatch_sandbox::DCS
        .filter_map(|dc| Some((dc.to_string(), world.sandbox.dc_addr(dc)?.to_string())))
        .collect();
    HttpResponse::Ok().json(json!({
        "dcs": dcs,
        "accounts": world.accounts.keys().collect::<Vec<_>>(),
        "channels": world.channels().keys().cloned().collect::<Vec<_>>(),
        "people": world.people.keys().collect::<Vec<_>>(),
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Posts {
    #[serde(default = "one")]
    count: u32,
    text: String,
}

fn one() -> u32 {
    1
}

/// At most this many posts per request.
const MAX_POSTS: u32 = 10_000;

async fn post(
    world: web::Data<World>,
    username: web::Path<String>,
    body: web::Json<Posts>,
) -> Result<HttpResponse, ControlError> {
    if !(1..=MAX_POSTS).contains(&body.count) {
        return Err(ControlError::BadRequest(format!(
            "count must be 1 to {MAX_POSTS}, not {}",
            body.count
        )));
    }
    let channel = world.channel_or_new(&username)?;
    let mut ids = Vec::new();
    for n in 1..=body.count {
        let text = if body.count == 1 {
            body.text.clone()
        } else {
            format!("{} #{n}", body.text)
        };
        ids.push(world.sandbox.post(channel, &text)?.id);
    }
    Ok(HttpResponse::Created().json(json!({ "channel_id": channel, "ids": ids })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Edit {
    text: String,
}

async fn edit(
    world: web::Data<World>,
    path: web::Path<(String, i32)>,
    body: web::Json<Edit>,
) -> Result<HttpResponse, ControlError> {
    let (username, id) = path.into_inner();
    let channel = world.channel(&username)?;
    world
        .sandbox
        .edit(channel, id, &body.text)
        .map_err(|error| ControlError::NotFound(error.to_string()))?;
    Ok(HttpResponse::Ok().json(json!({ "edited": id })))
}

async fn delete(
    world: web::Data<World>,
    path: web::Path<(String, i32)>,
) -> Result<HttpResponse, ControlError> {
    let (username, id) = path.into_inner();
    let channel = world.channel(&username)?;
    world.sandbox.delete(channel, &[id])?;
    Ok(HttpResponse::Ok().json(json!({ "deleted": id })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StatusBody {
    online: bool,
}

/// How long an "online" set here lasts unless changed, as a client's own online status does.
const ONLINE_FOR_SECONDS: i32 = 300;

async fn status(
    world: web::Data<World>,
    username: web::Path<String>,
    body: web::Json<StatusBody>,
) -> Result<HttpResponse, ControlError> {
    let person = world.person(&username)?;
    let now = world.now_unix();
    let status = if body.online {
        UserStatus::Online {
            expires: now.saturating_add(ONLINE_FOR_SECONDS),
        }
    } else {
        UserStatus::Offline { was_online: now }
    };
    let delivery = world.sandbox.set_user_status(person, status)?;
    Ok(HttpResponse::Ok().json(json!({ "pushed_to": delivery.live })))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct BanBody {
    reason: Option<String>,
}

async fn ban(
    world: web::Data<World>,
    label: web::Path<String>,
    body: Option<web::Json<BanBody>>,
) -> Result<HttpResponse, ControlError> {
    let account = world.account(&label)?;
    let reason = body
        .and_then(|body| body.into_inner().reason)
        .unwrap_or_else(|| "USER_DEACTIVATED_BAN".to_owned());
    let ban: Ban = reason.parse().map_err(|_| {
        ControlError::BadRequest(format!(
            "reason must be one of USER_DEACTIVATED, USER_DEACTIVATED_BAN, \
             AUTH_KEY_UNREGISTERED, SESSION_REVOKED, not {reason:?}"
        ))
    })?;
    world.sandbox.ban(account, ban)?;
    Ok(HttpResponse::Ok().json(json!({ "banned": label.as_str(), "reason": reason })))
}

async fn unban(
    world: web::Data<World>,
    label: web::Path<String>,
) -> Result<HttpResponse, ControlError> {
    let account = world.account(&label)?;
    world.sandbox.unban(account)?;
    Ok(HttpResponse::Ok().json(json!({ "unbanned": label.as_str() })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FloodWaitBody {
    /// A TL method name (`users.getUsers`); every method when absent.
    method: Option<String>,
    seconds: u32,
    #[serde(default = "one")]
    calls: u32,
}

async fn flood_wait(
    world: web::Data<World>,
    label: web::Path<String>,
    body: web::Json<FloodWaitBody>,
) -> Result<HttpResponse, ControlError> {
    let account = world.account(&label)?;
    match &body.method {
        Some(method) => world.sandbox.inject_account_method_flood_wait(
            account,
            method,
            body.seconds,
            body.calls,
        )?,
        None => world
            .sandbox
            .inject_flood_wait(account, body.seconds, body.calls)?,
    }
    Ok(HttpResponse::Ok().json(json!({
        "account": label.as_str(),
        "method": body.method,
        "seconds": body.seconds,
        "calls": body.calls,
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SessionQuery {
    #[serde(default = "tgw1")]
    format: String,
}

fn tgw1() -> String {
    "tgw1".to_owned()
}

async fn session(
    world: web::Data<World>,
    label: web::Path<String>,
    query: web::Query<SessionQuery>,
) -> Result<HttpResponse, ControlError> {
    let account = world.account(&label)?;
    let data = world.sandbox.session_data_for(account)?;
    let persisted = PersistedSession::from_data(&data);
    let text = match query.format.as_str() {
        "tgw1" => persisted.export(),
        "telethon" => persisted.to_telethon(),
        other => {
            return Err(ControlError::BadRequest(format!(
                "format must be tgw1 or telethon, not {other:?}"
            )));
        }
    }
    .map_err(|error| ControlError::BadRequest(error.to_string()))?;
    Ok(HttpResponse::Ok().json(json!({ "format": query.format, "session": text })))
}
