//! tgwatch: watches Telegram with a fleet of user accounts and hands what it sees to people and
//! programs.
//!
//! # Layout
//!
//! - [`presence`]: pure rules: statuses, the gap rule that folds observations into sessions,
//!   statistics over a window, the poll schedule. No I/O; tested directly.
//! - [`assignment`]: pure rule for which account gets new work.
//! - [`telegram`]: the port to Telegram ([`telegram::TelegramConnector`]) and the scripted
//!   Telegram that plays a scenario for `demo`, tests and benchmarks.
//! - [`actors`]: the running service: a `FleetSupervisor` owning one `AccountActor` per account
//!   and one `TargetActor` per tracked user, and the `StorageActor` that batches writes.
//! - [`storage`]: sea-orm over SQLite or PostgreSQL; one module per table group.
//! - [`tracking`]: the operations the API and the config file share (track a user, add an
//!   account), so both go through the same checks.
//! - [`http`]: the admin API (actix-web): handlers, bearer auth, JSON errors.
//! - [`app`]: wires it all together; [`app::Application::build`] binds the HTTP port, which tests
//!   set to 0.
//! - [`config`], [`clock`]: layered configuration; service time that can run fast.
//! - [`bot`]: the Telegram bot: commands, notifications from the event outbox, roles, charts.
//! - [`reload`]: config.toml as desired state, applied at start and on every edit of the file;
//!   [`jobs`]: scheduled jobs (account health, log retention); [`metrics`]: `GET /metrics`.
//! - [`live`]: the WebSocket `/ws` of the dashboard and the Telegram Mini App (status ticks,
//!   live events, broadcasts through the Bot API); the dashboard's page is `http::dashboard`.

pub mod actors;
pub mod app;
pub mod assignment;
pub mod bench;
pub mod bot;
pub mod channels;
pub mod cli;
pub mod clock;
pub mod config;
pub mod constant_time;
pub mod demo;
pub mod events;
pub mod feed;
pub mod http;
pub mod jobs;
pub mod live;
pub mod logins;
pub mod metrics;
pub mod presence;
pub mod procstat;
pub mod reload;
pub mod storage;
pub mod telegram;
pub mod tracking;
pub mod vault;
pub mod webhooks;
