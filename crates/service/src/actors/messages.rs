//! Every message the actors exchange, in one place.

use actix::prelude::*;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::target::TargetActor;
use tgwatch_core::presence::{Observation, Source, pushes::PushState, sessions::SessionFolder};
use tgwatch_store::{
    StorageError,
    entities::{accounts, tracked_users},
    observations::NewObservation,
};
use tgwatch_telegram::{InputUser, TelegramError, TelegramUser, Update, Username};

/// A target asks its account to include it in the next batched poll; the account queues it
/// until the batch goes out.
#[derive(Message)]
#[rtype(result = "()")]
pub struct PollDue {
    pub tracked_user_id: Uuid,
    pub user: InputUser,
    pub target: Addr<TargetActor>,
    /// When the person's schedule wanted the poll (service time): how late the batch that
    /// carries it is goes into `tgwatch_poll_lateness_seconds`.
    pub due_at: DateTime<Utc>,
}

/// A target tells its account which Telegram user it is, so pushed updates reach it and the
/// account can poll it out of turn (after a gap in the pushes).
#[derive(Message)]
#[rtype(result = "()")]
pub struct AttachTarget {
    pub tracked_user_id: Uuid,
    pub user: InputUser,
    pub target: Addr<TargetActor>,
}

#[derive(Message)]
#[rtype(result = "()")]
pub struct DetachTarget {
    pub telegram_user_id: i64,
}

/// What an account (or an admin, by hand) saw of a tracked user.
#[derive(Message, Clone, Copy)]
#[rtype(result = "Result<Uuid, StorageError>")]
pub struct Observed {
    pub observation: Observation,
    pub source: Source,
    pub account_id: Option<Uuid>,
}

/// A pushed update from an account's connection (`generation` counts its connections).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Pushed {
    pub update: Update,
    pub generation: u64,
}

/// The account's connection `generation` ended: reconnect.
#[derive(Message)]
#[rtype(result = "()")]
pub struct ConnectionLost {
    pub generation: u64,
}

/// Who to look up on Telegram: by username (`contacts.resolveUsername`, once per tracked user)
/// or by id and access hash (`users.getUsers`).
#[derive(Debug, Clone)]
pub enum Lookup {
    Username(Username),
    User(InputUser),
}

impl std::fmt::Display for Lookup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Lookup::Username(username) => write!(f, "{username}"),
            Lookup::User(user) => write!(f, "user {}", user.id),
        }
    }
}

/// Look a user up through one account.
#[derive(Message)]
#[rtype(result = "Result<Option<TelegramUser>, TelegramError>")]
pub struct Resolve(pub Lookup);

/// One observation and the session changes it caused, to be written together.
#[derive(Message)]
#[rtype(result = "()")]
pub struct RecordObservation(pub NewObservation);

/// Write everything buffered now; answers once it is committed.
#[derive(Message)]
#[rtype(result = "Result<(), StorageError>")]
pub struct Flush;

/// Fold a user's stored history again from the session an out-of-order observation falls into
/// and replace the stored sessions from there on; answers with the folder to continue from.
#[derive(Message)]
#[rtype(result = "Result<SessionFolder, StorageError>")]
pub struct RebuildSessions {
    pub tracked_user_id: Uuid,
    /// The out-of-order observation (buffered for writing, not yet stored).
    pub late: Observation,
}

/// A person's stored observations were corrected (one edited or deleted): fold their sessions
/// again from `from` on. The person's actor does it when it runs, so that no observation is
/// folded meanwhile into the state from before the correction.
#[derive(Message)]
#[rtype(result = "Result<(), StorageError>")]
pub struct FoldAgain {
    pub tracked_user_id: Uuid,
    /// The earliest observation the correction touched.
    pub from: Observation,
}

/// Start (or restart with new settings) the actor of a tracked user.
#[derive(Message)]
#[rtype(result = "()")]
pub struct StartTarget(pub tracked_users::Model);

#[derive(Message)]
#[rtype(result = "()")]
pub struct StopTarget(pub Uuid);

#[derive(Message)]
#[rtype(result = "()")]
pub struct StartAccount(pub accounts::Model);

#[derive(Message)]
#[rtype(result = "()")]
pub struct StopAccount(pub Uuid);

/// Look a user up through the given account.
#[derive(Message)]
#[rtype(result = "Result<TelegramUser, ResolveError>")]
pub struct LookUpUser {
    pub lookup: Lookup,
    pub account_id: Uuid,
}

#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error("the account is not running")]
    AccountNotRunning,
    #[error("{0} does not exist on Telegram or is not visible to the account")]
    NotFound(Lookup),
    #[error(transparent)]
    Telegram(#[from] TelegramError),
    #[error("the account did not answer")]
    Mailbox(#[from] MailboxError),
}

/// Hand an observation made by an admin to the tracked user's actor.
#[derive(Message)]
#[rtype(result = "Result<Uuid, ManualObservationError>")]
pub struct ManualObservation {
    pub tracked_user_id: Uuid,
    pub observation: Observation,
}

#[derive(Debug, thiserror::Error)]
pub enum ManualObservationError {
    #[error("tracked user {0} is not being tracked")]
    NotTracked(Uuid),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("the tracked user's actor did not answer")]
    Mailbox(#[from] MailboxError),
}

/// How many actors are running.
#[derive(Message)]
#[rtype(result = "FleetSnapshot")]
pub struct Snapshot;

#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct FleetSnapshot {
    pub accounts_running: usize,
    pub targets_running: usize,
}

/// Ask an actor to stop (actix has no `Addr::stop`).
#[derive(Message)]
#[rtype(result = "()")]
pub struct StopActor;

/// The account's live Telegram session, for calls that are not polls (joining a channel,
/// reading history, browsing chats). Refused while the account is banned, paused by a
/// FLOOD_WAIT, or not connected.
#[derive(Message)]
#[rtype(
    result = "Result<std::sync::Arc<dyn tgwatch_telegram::TelegramSession>, tgwatch_telegram::TelegramError>"
)]
pub struct GetSession;

/// [`GetSession`] of an account, through the supervisor.
#[derive(Message)]
#[rtype(result = "Result<std::sync::Arc<dyn tgwatch_telegram::TelegramSession>, ResolveError>")]
pub struct SessionOf(pub Uuid);

/// New live presence settings (poll interval, batch size and delay) from a configuration
/// reload: the supervisor keeps them for new actors and hands them to the running ones.
#[derive(Message, Clone)]
#[rtype(result = "()")]
pub struct SetPresence(pub tgwatch_core::config::PresenceConfig);

/// Whether an account's actor holds a Telegram connection it may use, and whether its status
/// pushes arrive.
#[derive(Message)]
#[rtype(result = "ConnectionReport")]
pub struct AskConnection;

#[derive(Debug, Clone, Copy, PartialEq, Eq, MessageResponse)]
pub struct ConnectionReport {
    pub connected: bool,
    pub pushes: PushState,
}

/// Every running account actor and whether it is connected (for health checks).
#[derive(Message)]
#[rtype(result = "std::collections::HashMap<Uuid, AccountLink>")]
pub struct AccountLinks;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct AccountLink {
    /// The actor is alive.
    pub running: bool,
    /// Its answer to [`AskConnection`]; `None` when it did not answer in time (busy in a call).
    pub connected: Option<bool>,
    /// Its pushes' state, `None` when it did not answer in time.
    pub pushes: Option<PushState>,
}

/// Why an account was lost.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Loss {
    /// Telegram refuses it (ban, revoked session): `account_banned`.
    Banned,
    /// Too many restarts in the restart window: parked, `alert`.
    Parked,
}

/// What account actors tell their supervisor about their health (the failover acts on it).
#[derive(Message, Clone, Debug)]
#[rtype(result = "()")]
pub enum AccountHealth {
    /// Connected and usable: unassigned work can go to it.
    Ready(Uuid),
    /// No longer usable: its channels and tracked users must move.
    Lost {
        account_id: Uuid,
        loss: Loss,
        reason: String,
    },
}

/// The people whose actor the supervisor keeps (running, restarting or parked), by tracked user
/// id: the cluster's heartbeat starts the missing ones of the accounts this instance holds.
#[derive(Message)]
#[rtype(result = "std::collections::HashSet<Uuid>")]
pub struct KeptTargets;
