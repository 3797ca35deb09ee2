//! tgwatch-testkit: what tests, `demo` and the benchmarks run tgwatch against. Never linked into
//! a `--no-default-features` build of the binary.
//!
//! - [`scripted`]: a scripted Telegram that plays a scenario (users going online and offline,
//!   channel posts) with a fast clock, behind the same port as real Telegram.
//! - [`sandbox_player`] and [`sandbox_newsroom`]: play a scenario, or a newsroom of channels,
//!   into the sandbox (the fake MTProto server), for the real grammers client to see.
//! - [`sandbox_server`]: the sandbox as a server of its own with an HTTP control API, run by
//!   the `tgwatch-sandbox` binary, that several tgwatch instances and other clients can share.
//! - [`demo`]: `tgwatch demo`'s configuration, and the sandbox fleet (sandbox, accounts with
//!   imported sessions, database) that the demo and the MTProto benchmarks start from;
//!   [`demo_history`] writes its people's past week, [`demo_receiver`] receives its webhooks.
//! - `harness` (feature `harness`, for the integration tests): `spawn_app` and friends, and a
//!   webhook receiver.

pub mod demo;
pub mod demo_history;
pub mod demo_receiver;
#[cfg(feature = "harness")]
pub mod harness;
pub mod sandbox_newsroom;
pub mod sandbox_player;
pub mod sandbox_server;
pub mod scripted;
