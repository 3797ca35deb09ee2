//! The actors of the running service.
//!
//! - [`supervisor::FleetSupervisor`] owns everything below and is what the HTTP API talks to.
//! - [`account::AccountActor`], one per Telegram account: holds the connection, folds the polls
//!   that fall due into batched `users.getUsers` calls, obeys FLOOD_WAIT, forwards pushes.
//! - [`target::TargetActor`], one per tracked user: its poll schedule and its gap-rule state.
//! - [`state_loader::StateLoader`]: reads the stored state of the people whose actors start,
//!   many per query.
//! - [`storage::StorageActor`]: buffers observations and session changes and writes them in
//!   batches, in the order they happened.
//! - [`channels::ChannelsActor`]: the channel updates of every account, stored as messages and
//!   events in batches.
//! - [`ownership::Ownership`]: which accounts (and people) this instance may run when several
//!   share the database; the supervisor starts nothing else.
//!
//! Each actor runs under the supervision tree ([`crate::supervision`]): a panic restarts it in
//! place, with the same address, and counts against its restart intensity. Bad input is still
//! answered with an error, never a panic.

pub mod account;
pub mod channels;
pub mod messages;
pub mod ownership;
pub mod state_loader;
pub mod storage;
pub mod supervisor;
pub mod target;
