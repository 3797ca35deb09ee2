//! tgwatch-core: the plain data and the pure rules of tgwatch. No database, no actors, no
//! network: everything here is tested directly, and every other crate of the workspace builds
//! on it.
//!
//! # Tour
//!
//! - [`presence`]: statuses, the gap rule that folds observations into sessions, statistics
//!   over a window, the poll schedule.
//! - [`events`]: what the service tells the world (`user.online`, `channel.message`, ...), as
//!   plain values; the store writes them to the outbox, webhooks and the bot read them back.
//! - [`assignment`]: which account gets new work (the least-loaded usable one with room), and
//!   why none can.
//! - [`config`]: the configuration (`config.toml`, `TGWATCH_*` variables), its validation,
//!   [`config::locate`] (errors with their line) and [`config::diff`] (what a new file changes,
//!   and which keys apply live).
//! - [`telegram`]: the data of the Telegram port (usernames, channel references, users,
//!   messages, updates, errors); the port's traits are in `tgwatch-telegram`.
//! - [`cluster`]: several instances on one database: lease names and the fair share of accounts.
//! - [`clock`]: service time, which can run faster than real time (demo, tests).
//! - [`vault`]: sealing MTProto sessions and secrets at rest (ChaCha20-Poly1305).
//! - [`roles`]: the bot's roles and permissions; [`login_limits`]: how often a login may fail;
//!   [`retry`]: the webhook retry schedule; [`supervision`]: restart intensity; [`signing`]: Standard Webhooks signatures;
//!   [`init_data`]: Telegram Mini App `initData` validation; [`tags`]: the channel tag rule;
//!   [`constant_time`]: comparing secrets.

pub mod assignment;
pub mod clock;
pub mod cluster;
pub mod config;
pub mod constant_time;
pub mod events;
pub mod init_data;
pub mod login_limits;
pub mod presence;
pub mod retry;
pub mod roles;
pub mod signing;
pub mod supervision;
pub mod tags;
pub mod telegram;
pub mod vault;
