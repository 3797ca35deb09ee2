//! [`AppState`]: what every HTTP handler can reach. Apart from the application (`app`)
//! that builds it and the handlers (`http`) that read it, so that neither depends on the
//! other through it.

use std::{
    sync::{Arc, atomic::AtomicBool},
    time::Instant,
};

use actix::Addr;
use sea_orm::DatabaseConnection;
use tgwatch_core::{
    clock::Clock,
    config::{Config, Secret, WebhooksConfig},
};
use tgwatch_telegram::logins::Logins;
use tokio::sync::watch;

use crate::{
    actors::{storage::StorageActor, supervisor::FleetSupervisor},
    channels::Channels,
    live::Live,
    metrics::Metrics,
    reload::ConfigState,
    tracking::Tracking,
    webhooks::dispatcher::Wake,
};

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
    /// `bot.admin_ids`: people who are admins whatever `telegram_users` says.
    pub bot_admin_ids: Vec<i64>,
    /// Channel monitoring.
    pub channels: Channels,
    /// Counters for `GET /metrics`.
    pub metrics: Arc<Metrics>,
    /// `http.metrics_public`: `/metrics` without the admin token.
    pub metrics_public: bool,
    /// The configuration file's status for `GET /api/health`.
    pub config: Arc<ConfigState>,
    /// The running configuration: its live sections follow the edits of the file.
    pub running: watch::Receiver<Arc<Config>>,
    /// The live WebSocket's hub (`/ws`, the dashboard and the Mini App).
    pub live: Live,
    /// Set when the clean stop begins: `GET /readyz` then answers 503.
    pub stopping: Arc<AtomicBool>,
    /// The supervision tree (`GET /api/supervision`, fault injection).
    pub supervision: crate::supervision::Supervision,
    /// This instance among those sharing the database (`GET /api/cluster`).
    pub ownership: crate::actors::ownership::Ownership,
}

impl AppState {
    pub fn tracking(&self) -> Tracking {
        Tracking {
            db: self.db.clone(),
            supervisor: self.supervisor.clone(),
        }
    }
}
