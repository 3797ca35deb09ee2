//! tgwatch-service: the running service. It builds on `tgwatch-core` (plain data, pure rules),
//! `tgwatch-store` (the database) and `tgwatch-telegram` (the port to Telegram).
//!
//! # Tour
//!
//! - [`app`]: wires it all together; [`app::Application`] is built from a configuration and a
//!   Telegram connector, binds the HTTP port (tests set it to 0) and stops cleanly.
//! - [`actors`]: a `FleetSupervisor` owning one `AccountActor` per account and one
//!   `TargetActor` per tracked user, the `StorageActor` that batches writes, the
//!   `ChannelsActor` that routes channel posts.
//! - [`supervision`]: the supervision tree every actor runs under: restarts in place (panics
//!   included), restart intensity, parking and giving up, `GET /api/supervision`.
//! - [`tracking`]: the operations the API and the config file share (track a user, add an
//!   account), so both go through the same checks; [`channels`]: the same for channels.
//! - [`cluster`]: several instances on one database: the registry and heartbeat, account and
//!   leader leases, takeover and balancing, the SQLite single-instance lock, `GET /api/cluster`.
//! - [`reload`]: `config.toml` as desired state, applied at start and on every edit of the file,
//!   through one reconciler per section.
//! - [`webhooks`]: delivery of the event outbox (dispatcher, endpoints, address checks).
//! - [`bot`]: the Telegram bot: commands, notifications from the outbox, charts.
//! - [`live`]: the hub of the live WebSocket `/ws` (dashboard and Mini App) and its protocol.
//! - [`http`]: the admin API (actix-web): handlers, bearer auth, JSON errors, the dashboard page,
//!   seed 003's `/telegram` adapters and pages, and the `/ws` route; [`state::AppState`]: what every handler can reach.
//! - [`jobs`]: scheduled jobs (account health, log retention); [`metrics`]: the counters of
//!   `GET /metrics`; [`publish`]: committed events to their consumers' workers (webhooks, bot,
//!   live); [`feed`]: the live hub's queue of them; [`relay`]: the events of the other instances
//!   on the same PostgreSQL database to this one's feed (LISTEN/NOTIFY).

pub mod actors;
pub mod app;
pub mod bot;
pub mod channels;
pub mod cluster;
pub mod feed;
pub mod http;
pub mod jobs;
pub mod live;
pub mod metrics;
pub mod publish;
pub mod relay;
pub mod reload;
pub mod shutdown;
pub mod state;
pub mod supervision;
pub mod tracking;
pub mod webhooks;
