//! tgwatch: a self-hosted service that watches Telegram with a fleet of user accounts and hands
//! what it sees to people and programs.
//!
//! This package is the `tgwatch` binary (`src/main.rs`: the command line) and [`cli`], the
//! operator commands it runs against a database or a running service (login, session import
//! and export, key rotation, backup). The service itself is a workspace of crates, in
//! dependency order:
//!
//! - `tgwatch-core` (`crates/core`): plain data and pure rules: configuration, presence,
//!   events, assignment, signing, the Telegram port's data types.
//! - `tgwatch-store` (`crates/store`) and `migration` (`migrations/`): the database.
//! - `tgwatch-telegram` (`crates/telegram`): the port to Telegram, the grammers adapter, stored
//!   sessions, logins.
//! - `tgwatch-service` (`crates/service`): actors, channels, tracking, reload, webhooks, bot,
//!   live WebSocket, HTTP API, and the `Application` that wires them.
//!
//! Beside them, only in builds with the default `sandbox` feature: `tgwatch-sandbox`
//! (`sandbox/`: a fake MTProto server and Bot API), `tgwatch-testkit` (`crates/testkit`: the
//! scripted Telegram, the sandbox players, `demo`) and `tgwatch-bench` (`crates/bench`).

pub mod cli;
