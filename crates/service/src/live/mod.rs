//! Live: the WebSocket `/ws` (alias `/telegram/ws`) of the dashboard and the Telegram Mini App.
//!
//! # Layout
//!
//! - [`Live`] (here): the hub: who a client is (admin token, a single-use ticket, or a Mini App
//!   sign-in checked by `tgwatch_core::init_data`), the status figures, broadcasts.
//! - [`protocol`]: client and server messages, who may broadcast, the status figures (pure).
//! - [`limit`]: broadcasts per person per minute (pure).
//! - [`seed_004`]: seed 004's status fields and its `live_out` frames (pure).
//! - [`tickets`]: single-use tickets that stand for the admin token in the `/ws` URL.
//! - [`session`]: one connection: the WebSocket handshake (actix-http's codec) and the
//!   response-body stream that carries the hub's frames and reads the client's.
//! - `telegram`: broadcasts and pins through the Bot API.
//!
//! The `/ws` route is in the `http` module; the load test (`tgwatch bench websocket`) is in
//! `tgwatch-bench`.
//!
//! # Design
//!
//! One hub ([`Live`]) owns a single broadcast channel of ready frames. Every status tick is
//! serialised and encoded as a WebSocket frame once, and the same bytes go to every connection
//! (`Bytes` clones are reference counts; server frames are not masked, so they are equal for all
//! clients); every event of the [`Feed`] becomes one frame the same way. A connection is one
//! response-body stream (no task, no channel of its own): the HTTP dispatcher polls it, and it
//! hands over the hub's frames and reads the client's. The same channel carries the heartbeat,
//! so connections need no timer of their own. A connection that falls behind loses frames and
//! is told (`error` with code `lagged`).

pub mod limit;
pub mod protocol;
pub mod seed_004;
pub mod session;
mod telegram;
pub mod tickets;

use std::{
    sync::{
        Arc, Mutex, PoisonError, RwLock,
        atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use actix_web::web::Bytes;
use chrono::Utc;
use sea_orm::{
    ColumnTrait, DatabaseConnection, EntityTrait, PaginatorTrait, QueryFilter, QuerySelect,
};
use tokio::sync::broadcast;

use crate::{feed::Feed, metrics::Metrics};
use protocol::{Audience, Counters, DatabaseFigures, Principal, Status};
pub use telegram::{AnnounceError, Announcer};
use tgwatch_core::{
    clock::Clock,
    config::{BotConfig, LiveConfig, Secret},
    constant_time,
    events::{Event, EventType, shows_online_state},
    init_data,
    roles::{Role, effective_role},
};
use tgwatch_store::{
    self as storage, Doing, StorageError,
    entities::{online_sessions, tracked_users},
};

/// Frames a session may fall behind by before it loses some.
const CHANNEL_CAPACITY: usize = 256;
/// The database's figures are read at most this often, whatever the status interval.
const FIGURES_EVERY: Duration = Duration::from_millis(250);

#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    #[error("`bot.api_url`: {0}")]
    ApiUrl(String),
}

/// Why a connection is refused; each maps to an HTTP status (see [`session`]).
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("`user_id` is required (the Telegram user id)")]
    MissingUserId,
    #[error("`user_id` must be an integer")]
    BadUserId,
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("too many live clients (live.max_clients = {0})")]
    Full(usize),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// What the hub sends to every connection.
#[derive(Clone, Debug)]
pub enum Outgoing {
    /// A whole WebSocket text frame, encoded once.
    Frame(Bytes, Audience),
    /// Time to ping the client and to check that it answered the last pings.
    Heartbeat,
    /// The service is stopping: close with 1001 "going away".
    GoingAway,
}

/// What the hub needs from the rest of the service.
pub struct LiveDeps {
    pub config: LiveConfig,
    pub bot: BotConfig,
    pub admin_token: Secret,
    pub db: DatabaseConnection,
    pub clock: Clock,
    pub feed: Feed,
    pub metrics: Arc<Metrics>,
}

/// The hub. Cheap to clone.
#[derive(Clone)]
pub struct Live {
    inner: Arc<Inner>,
}

struct Inner {
    config: LiveConfig,
    bot_token: Option<Secret>,
    admin_ids: Vec<i64>,
    default_role: Role,
    admin_token: Secret,
    db: DatabaseConnection,
    clock: Clock,
    metrics: Arc<Metrics>,
    started: Instant,
    out: broadcast::Sender<Outgoing>,
    /// The newest status frame, for clients that connect between ticks.
    latest_status: RwLock<Option<Bytes>>,
    clients: AtomicUsize,
    /// Set by [`Live::going_away`]: connections close, new ones close at once.
    going_away: AtomicBool,
    /// Clients signed in with Mini App `init_data` (seed 004's `activeUsers`).
    mini_app_clients: AtomicUsize,
    /// What is happening now, as seed 004's `live_out` items.
    live_outs: Mutex<seed_004::LiveOuts>,
    messages_processed: AtomicU64,
    alerts_sent: AtomicU64,
    limiter: Mutex<limit::RateLimiter>,
    tickets: Mutex<tickets::Tickets>,
    announcer: Option<Announcer>,
    /// The feed's events not yet forwarded; kept here so that a restarted forwarder goes on
    /// where the old one stopped.
    events: tokio::sync::Mutex<broadcast::Receiver<Arc<Event>>>,
}

impl Live {
    /// Builds the hub, subscribed to the feed at once: no event stored from now on is missed.
    /// Its tasks start with [`Live::spawn_tasks`].
    pub fn new(deps: LiveDeps) -> Result<Live, LiveError> {
        let events = tokio::sync::Mutex::new(deps.feed.subscribe());
        let api_url = reqwest::Url::parse(&deps.bot.api_url)
            .map_err(|error| LiveError::ApiUrl(error.to_string()))?;
        let announcer = match (&deps.bot.token, deps.config.broadcast_chat_id) {
            (Some(token), Some(chat_id)) => Some(Announcer::new(
                token,
                api_url,
                chat_id,
                deps.config.broadcast_thread_id,
            )),
            _ => None,
        };
        let (out, _) = broadcast::channel(CHANNEL_CAPACITY);
        Ok(Live {
            inner: Arc::new(Inner {
                limiter: Mutex::new(limit::RateLimiter::new(deps.config.broadcasts_per_minute)),
                tickets: Mutex::default(),
                config: deps.config,
                bot_token: deps.bot.token,
                admin_ids: deps.bot.admin_ids,
                default_role: Role::parse(&deps.bot.default_role).unwrap_or(Role::Banned),
                admin_token: deps.admin_token,
                db: deps.db,
                clock: deps.clock,
                metrics: deps.metrics,
                started: Instant::now(),
                out,
                latest_status: RwLock::new(None),
                clients: AtomicUsize::new(0),
                going_away: AtomicBool::new(false),
                mini_app_clients: AtomicUsize::new(0),
                live_outs: Mutex::default(),
                messages_processed: AtomicU64::new(0),
                alerts_sent: AtomicU64::new(0),
                announcer,
                events,
            }),
        })
    }

    /// Starts the hub's tasks on the runtime (the status tick, the feed's forwarder): at the
    /// start and after every restart of its worker.
    pub fn spawn_tasks(&self) -> Vec<tokio::task::JoinHandle<()>> {
        vec![
            tokio::spawn(forward_events(self.clone())),
            tokio::spawn(tick(self.clone())),
        ]
    }

    /// Tells hubs apart (one per service; tests run several in one process).
    fn key(&self) -> usize {
        Arc::as_ptr(&self.inner) as usize
    }

    pub fn config(&self) -> &LiveConfig {
        &self.inner.config
    }

    /// Frames for one more session.
    pub fn subscribe(&self) -> broadcast::Receiver<Outgoing> {
        self.inner.out.subscribe()
    }

    /// The newest status frame (none before the first tick with a client).
    pub fn latest_status(&self) -> Option<Bytes> {
        self.inner
            .latest_status
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Closes every WebSocket connection with 1001 "going away" (the service is stopping), and
    /// any opened after this at once.
    pub fn going_away(&self) {
        self.inner.going_away.store(true, Ordering::SeqCst);
        // No receiver means no connection to close.
        let _ = self.inner.out.send(Outgoing::GoingAway);
    }

    pub fn is_going_away(&self) -> bool {
        self.inner.going_away.load(Ordering::SeqCst)
    }

    /// WebSocket clients connected now.
    pub fn clients(&self) -> usize {
        self.inner.clients.load(Ordering::Relaxed)
    }

    /// A place for one more client (a Mini App user's when `mini_app`), or `Full` at
    /// `live.max_clients`. The place is given back when the slot is dropped.
    pub fn reserve(&self, mini_app: bool) -> Result<ClientSlot, ConnectError> {
        let max = self.inner.config.max_clients;
        self.inner
            .clients
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .map_err(|_| ConnectError::Full(max))?;
        if mini_app {
            self.inner.mini_app_clients.fetch_add(1, Ordering::AcqRel);
        }
        Ok(ClientSlot {
            inner: Arc::clone(&self.inner),
            mini_app,
        })
    }

    /// The `live_out` frames of what is happening now, for a client that just connected.
    pub fn current_live_outs(&self) -> Vec<Bytes> {
        self.live_outs()
            .current()
            .into_iter()
            .map(session::text_frame)
            .collect()
    }

    fn live_outs(&self) -> std::sync::MutexGuard<'_, seed_004::LiveOuts> {
        self.inner
            .live_outs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Sends again the `live_out` items of open sessions whose `expiresAt` is near.
    fn refresh_live_outs(&self) {
        let frames = self.live_outs().refresh(self.inner.clock.now());
        for frame in frames {
            let _ = self.inner.out.send(Outgoing::Frame(
                session::text_frame(frame),
                Audience::Everyone,
            ));
        }
    }

    pub fn announcer(&self) -> Option<&Announcer> {
        self.inner.announcer.as_ref()
    }

    /// One broadcast for `user_id` now, or how long until the next is allowed.
    pub fn take_broadcast(&self, user_id: i64) -> Result<(), Duration> {
        self.inner
            .limiter
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .try_take(user_id, Instant::now())
    }

    /// A single-use ticket for one admin connection, and when it expires (wall time): asked
    /// with the admin token (`POST /api/live/ticket`), used as `/ws?ticket=`.
    pub fn issue_ticket(&self) -> (String, chrono::DateTime<Utc>) {
        let (ticket, _) = self
            .inner
            .tickets
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .issue(Instant::now());
        (ticket, Utc::now() + tickets::TICKET_LIFETIME)
    }

    /// Who a connection is: the admin token (header `Authorization: Bearer` or query `token`)
    /// or a ticket issued for it makes an admin; else `init_data` must be a valid Mini App
    /// sign-in of `user_id`.
    pub async fn authenticate(
        &self,
        user_id: Option<&str>,
        init_data: Option<&str>,
        token: Option<&str>,
        ticket: Option<&str>,
    ) -> Result<Principal, ConnectError> {
        let user_id = user_id
            .filter(|id| !id.trim().is_empty())
            .ok_or(ConnectError::MissingUserId)?
            .trim()
            .parse::<i64>()
            .map_err(|_| ConnectError::BadUserId)?;
        if let Some(token) = token.filter(|t| !t.is_empty()) {
            if !constant_time::eq(token.as_bytes(), self.inner.admin_token.expose().as_bytes()) {
                return Err(ConnectError::Unauthorized(
                    "the admin token is wrong".to_owned(),
                ));
            }
            return Ok(Principal {
                user_id,
                role: Role::Admin,
                permissions: Vec::new(),
                admin_token: true,
            });
        }
        if let Some(ticket) = ticket.filter(|t| !t.is_empty()) {
            let redeemed = self
                .inner
                .tickets
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .redeem(ticket, Instant::now());
            if !redeemed {
                return Err(ConnectError::Unauthorized(
                    "the ticket is unknown, used or expired: ask POST /api/live/ticket for a new one"
                        .to_owned(),
                ));
            }
            return Ok(Principal {
                user_id,
                role: Role::Admin,
                permissions: Vec::new(),
                admin_token: true,
            });
        }
        match init_data.filter(|data| !data.is_empty()) {
            Some(init_data) => self.mini_app(init_data, Some(user_id)).await,
            None => Err(ConnectError::Unauthorized(
                "send `init_data` (Telegram Mini App), a `ticket` or the admin token".to_owned(),
            )),
        }
    }

    /// A Mini App user from `init_data` (checked with `bot.token`), met like the bot meets
    /// people (a `telegram_users` row with `bot.default_role` the first time). Banned people
    /// are refused.
    pub async fn mini_app(
        &self,
        init_data: &str,
        claimed_user_id: Option<i64>,
    ) -> Result<Principal, ConnectError> {
        let Some(bot_token) = &self.inner.bot_token else {
            return Err(ConnectError::Unauthorized(
                "Mini App sign-in needs `bot.token` on the server".to_owned(),
            ));
        };
        let max_age =
            i64::try_from(self.inner.config.init_data_max_age_seconds).unwrap_or(i64::MAX);
        // Real time: init data carries Telegram's clock, not the service's (which may run fast).
        let checked = init_data::validate(
            init_data,
            bot_token.expose(),
            Utc::now(),
            max_age,
            claimed_user_id,
        )
        .map_err(|error| ConnectError::Unauthorized(error.to_string()))?;
        let user = checked.user;
        let row = storage::telegram_users::met(
            &self.inner.db,
            user.id,
            user.username.clone(),
            user.first_name.clone(),
            self.inner.default_role,
            self.inner.clock.now(),
        )
        .await?;
        let role = effective_role(user.id, Some(row.role), &self.inner.admin_ids);
        if role == Role::Banned {
            return Err(ConnectError::Forbidden(
                "your Telegram account has no access (ask an admin for a role)".to_owned(),
            ));
        }
        Ok(Principal {
            user_id: user.id,
            role,
            permissions: storage::telegram_users::permissions(&row),
            admin_token: false,
        })
    }

    /// `who` with the role and permissions stored now (a change applies to the next action).
    /// Someone no longer known counts as banned.
    pub async fn refresh(&self, who: &Principal) -> Result<Principal, StorageError> {
        if who.admin_token {
            return Ok(who.clone());
        }
        let row = storage::telegram_users::find(&self.inner.db, who.user_id).await?;
        let role = effective_role(
            who.user_id,
            row.as_ref().map(|row| row.role),
            &self.inner.admin_ids,
        );
        Ok(Principal {
            user_id: who.user_id,
            role,
            permissions: row
                .as_ref()
                .map(storage::telegram_users::permissions)
                .unwrap_or_default(),
            admin_token: false,
        })
    }

    fn counters(&self) -> Counters {
        let inner = &self.inner;
        Counters {
            uptime_seconds: inner.started.elapsed().as_secs(),
            messages_processed: inner.messages_processed.load(Ordering::Relaxed),
            alerts_sent: inner.alerts_sent.load(Ordering::Relaxed),
            webhooks_delivered: inner.metrics.webhook_attempts.get("delivered"),
            webhooks_failed: inner.metrics.webhook_attempts.get("failed"),
            clients: self.clients() as u64,
            mini_app_clients: inner.mini_app_clients.load(Ordering::Relaxed) as u64,
        }
    }

    /// Whether the event may go to the sessions: not the online state of a person who hides it
    /// (`visible_online = false`). When that cannot be read, presence is not shown.
    async fn shown(&self, event: &Event) -> bool {
        let Some(id) = event.tracked_user_id else {
            return true;
        };
        match storage::tracked_users::get(&self.inner.db, id).await {
            Ok(row) => {
                let hidden = row
                    .filter(|row| !row.visible_online)
                    .map(|row| row.id)
                    .into_iter()
                    .collect();
                shows_online_state(event.event_type, Some(id), &hidden)
            }
            Err(error) => {
                tracing::warn!(tracked_user_id = %id, %error, "cannot tell whether a presence event may be shown; not showing it");
                false
            }
        }
    }

    /// Counts an event and hands its frame to every session.
    fn publish_event(&self, event: &Event) {
        match event.event_type {
            EventType::NewMessage | EventType::EditedMessage | EventType::DeletedMessage => {
                self.inner
                    .messages_processed
                    .fetch_add(1, Ordering::Relaxed);
            }
            EventType::Alert | EventType::AccountBanned => {
                self.inner.alerts_sent.fetch_add(1, Ordering::Relaxed);
            }
            _ => {}
        }
        // Frames are for whoever is connected; the open sessions behind `live_out` are kept
        // either way, for the next client.
        let listening = self.inner.out.receiver_count() > 0;
        if !listening
            && !matches!(
                event.event_type,
                EventType::UserOnline | EventType::SessionClosed
            )
        {
            return;
        }
        if let Some((frame, audience)) = protocol::event_frame(event).filter(|_| listening) {
            let _ = self
                .inner
                .out
                .send(Outgoing::Frame(session::text_frame(frame), audience));
        }
        let live_out = self.live_outs().on_event(event, self.inner.clock.now());
        if let Some(frame) = live_out {
            let _ = self.inner.out.send(Outgoing::Frame(
                session::text_frame(frame),
                Audience::Everyone,
            ));
        }
    }
}

/// A connected client's place under `live.max_clients`.
pub struct ClientSlot {
    inner: Arc<Inner>,
    mini_app: bool,
}

impl Drop for ClientSlot {
    fn drop(&mut self) {
        self.inner.clients.fetch_sub(1, Ordering::AcqRel);
        if self.mini_app {
            self.inner.mini_app_clients.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

/// Every stored event, as it is stored, to the sessions.
async fn forward_events(live: Live) {
    /// Under a burst the feed falls behind many times a second: one warning per this long, with
    /// the events missed since the last one.
    const WARN_EVERY: Duration = Duration::from_secs(10);
    let mut events = live.inner.events.lock().await;
    let mut missed_unreported = 0_u64;
    let mut warned_at: Option<Instant> = None;
    loop {
        match events.recv().await {
            Ok(event) => {
                if live.shown(&event).await {
                    live.publish_event(&event);
                }
            }
            Err(broadcast::error::RecvError::Lagged(missed)) => {
                missed_unreported += missed;
                if warned_at.is_none_or(|at| at.elapsed() >= WARN_EVERY) {
                    tracing::warn!(
                        missed = missed_unreported,
                        "the live feed fell behind; events were not shown live"
                    );
                    missed_unreported = 0;
                    warned_at = Some(Instant::now());
                }
            }
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}

/// The status every `live.status_interval_ms` and the heartbeat every `live.heartbeat_seconds`,
/// while anyone is connected.
async fn tick(live: Live) {
    let config = live.inner.config.clone();
    let mut status_every = tokio::time::interval(config.status_interval());
    status_every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut heartbeat_every = tokio::time::interval(Duration::from_secs(config.heartbeat_seconds));
    heartbeat_every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut figures = DatabaseFigures::default();
    let mut figures_at: Option<Instant> = None;
    loop {
        tokio::select! {
            _ = status_every.tick() => {
                // Kept fresh even with nobody connected: the next client gets them as they are.
                live.refresh_live_outs();
                if live.inner.out.receiver_count() == 0 {
                    // Nobody to tell: no queries. The next client waits for a fresh status.
                    *live.inner.latest_status.write().unwrap_or_else(PoisonError::into_inner) = None;
                    continue;
                }
                if figures_at.is_none_or(|at| at.elapsed() >= FIGURES_EVERY) {
                    match read_figures(&live.inner.db).await {
                        Ok(read) => figures = read,
                        Err(error) => tracing::warn!(%error, "live status: cannot read the database's figures"),
                    }
                    figures_at = Some(Instant::now());
                }
                let status = Status::assemble(&figures, &live.counters());
                let frame = session::text_frame(protocol::status_frame(&status, Utc::now()));
                *live.inner.latest_status.write().unwrap_or_else(PoisonError::into_inner) =
                    Some(frame.clone());
                let _ = live.inner.out.send(Outgoing::Frame(frame, Audience::Everyone));
            }
            _ = heartbeat_every.tick() => {
                let _ = live.inner.out.send(Outgoing::Heartbeat);
            }
        }
    }
}

/// Accounts by status, tracked users, and tracked users with an open session.
async fn read_figures(db: &DatabaseConnection) -> Result<DatabaseFigures, StorageError> {
    let accounts = storage::accounts::count_by_status(db).await?;
    let tracked_users = tracked_users::Entity::find()
        .filter(tracked_users::Column::IsActive.eq(true))
        .count(db)
        .await
        .doing("counting tracked users")?;
    let online_now = online_sessions::Entity::find()
        .inner_join(tracked_users::Entity)
        .filter(online_sessions::Column::EndedAt.is_null())
        .filter(tracked_users::Column::IsActive.eq(true))
        .select_only()
        .column(online_sessions::Column::TrackedUserId)
        .distinct()
        .count(db)
        .await
        .doing("counting open sessions")?;
    Ok(DatabaseFigures {
        accounts,
        tracked_users,
        online_now,
    })
}

#[cfg(test)]
mod tests {
    use tgwatch_core::config::Config;

    #[test]
    fn the_live_section_is_checked_key_by_key() {
        let config = Config::from_toml("").expect("defaults");
        assert_eq!(config.live.status_interval_ms, 1000);
        assert_eq!(config.live.init_data_max_age_seconds, 86_400);
        assert!(config.live.allow_all_broadcast);
        let config = Config::from_toml(
            "[live]
broadcast_chat_id = -1001234567890
broadcast_thread_id = 47
broadcasts_per_minute = 2
",
        )
        .expect("valid");
        assert_eq!(config.live.broadcast_chat_id, Some(-1_001_234_567_890));
        assert_eq!(config.live.broadcast_thread_id, Some(47));
        for (text, key) in [
            (
                "[live]
status_interval_ms = 0
",
                "live.status_interval_ms",
            ),
            (
                "[live]
init_data_max_age_seconds = 0
",
                "live.init_data_max_age_seconds",
            ),
            (
                "[live]
broadcast_chat_id = 0
",
                "live.broadcast_chat_id",
            ),
            (
                "[live]
broadcast_thread_id = -1
",
                "live.broadcast_thread_id",
            ),
            (
                "[live]
broadcasts_per_minute = 0
",
                "live.broadcasts_per_minute",
            ),
            (
                "[live]
max_clients = 0
",
                "live.max_clients",
            ),
            (
                "[live]
heartbeat_seconds = 30
client_timeout_seconds = 30
",
                "live.client_timeout_seconds",
            ),
            (
                "[live]
status_interval = 5
",
                "status_interval",
            ),
        ] {
            let error = Config::from_toml(text).expect_err(text).to_string();
            assert!(error.contains(key), "{text}: {error}");
        }
    }
}
