//! The integration tests: one binary, one module per area. Each test starts the service (or the
//! binary) on 127.0.0.1 with its own database: SQLite by default, PostgreSQL when
//! `TGWATCH_TEST_DATABASE_URL` is set.

#![allow(clippy::expect_used, clippy::unwrap_used)] // a failing test may panic

use tgwatch_testkit::harness as common;

mod api;
mod bot;
mod channels;
mod cli;
mod cluster;
mod conflicts;
mod dashboard;
mod demo;
mod deploy;
mod live;
mod logins;
mod messages_storage;
mod migrations;
mod mtproto;
mod mtproto_channels;
mod openapi;
mod operations;
mod presence;
mod retention;
mod sandbox_server;
mod seeds;
mod session_commands;
mod shutdown;
mod state_reads;
mod stored_session;
mod supervision;
mod webhooks;
mod webhooks_crash;
