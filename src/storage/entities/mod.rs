//! sea-orm entities, one module per table created by the `migration` crate.
//!
//! Written in the 1.x "compact" format (`DeriveEntityModel` + `enum Relation`), which
//! sea-orm 2 still compiles. Enum-like columns (`status`, `source`, `level`) stay `String`
//! here; the domain layer converts them.

pub mod account_sessions;
pub mod accounts;
pub mod auth_attempts;
pub mod events;
pub mod logs;
pub mod online_sessions;
pub mod status_checks;
pub mod tracked_users;
pub mod webhook_deliveries;
pub mod webhook_messages;
pub mod webhooks;
