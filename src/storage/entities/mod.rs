//! sea-orm entities, one module per table created by the `migration` crate.
//!
//! Written in the 1.x "compact" format (`DeriveEntityModel` + `enum Relation`), which
//! sea-orm 2 still compiles. Enum-like columns (`status`, `source`, `level`) stay `String`
//! here; the domain layer converts them.

pub mod account_channel_assignments;
pub mod account_sessions;
pub mod accounts;
pub mod auth_attempts;
pub mod bot_chats;
pub mod bot_messages;
pub mod bot_subscriptions;
pub mod channels;
pub mod events;
pub mod logs;
pub mod message_versions;
pub mod messages;
pub mod online_sessions;
pub mod status_checks;
pub mod telegram_users;
pub mod tracked_users;
pub mod webhook_deliveries;
pub mod webhook_messages;
pub mod webhooks;
