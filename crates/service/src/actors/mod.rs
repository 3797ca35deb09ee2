//! The actors of the running service.
//!
//! - [`supervisor::FleetSupervisor`] owns everything below and is what the HTTP API talks to.
//! - [`account::AccountActor`], one per Telegram account: holds the connection, folds the polls
//!   that fall due into batched `users.getUsers` calls, obeys FLOOD_WAIT, forwards pushes.
//! - [`target::TargetActor`], one per tracked user: its poll schedule and its gap-rule state.
//! - [`storage::StorageActor`]: buffers observations and session changes and writes them in
//!   batches, in the order they happened.
//! - [`channels::ChannelsActor`]: the channel updates of every account, stored as messages and
//!   events in batches.
//! - [`ownership::Ownership`]: which accounts (and people) this instance may run when several
//!   share the database; the supervisor starts nothing else.
//!
//! Handlers must never panic: actix does not restart an actor whose handler panicked, so the
//! actor (and every address to it) would be gone for good.

pub mod account;
pub mod channels;
pub mod messages;
pub mod ownership;
pub mod storage;
pub mod supervisor;
pub mod target;
