//! Errors of the control API. Connection-level failures never reach the caller: a broken
//! connection is closed and logged, like a real server would.

use crate::world::AccountId;

/// What can go wrong when starting or driving the sandbox.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// The listener could not be bound (or its address read).
    #[error("could not bind the sandbox listener: {0}")]
    Bind(#[source] std::io::Error),

    /// The account was never added to this sandbox.
    #[error("unknown sandbox account {0}")]
    UnknownAccount(AccountId),

    /// The user was never added to this sandbox.
    #[error("unknown sandbox user {0}")]
    UnknownUser(i64),

    /// A user with this id already exists.
    #[error("sandbox user {0} already exists")]
    DuplicateUser(i64),

    /// Another user already has this username (usernames are unique, case-insensitively).
    #[error("username {0:?} is already taken in the sandbox")]
    UsernameTaken(String),

    /// The string is not one of the ban reasons the sandbox knows.
    #[error("unknown ban reason {0:?}")]
    UnknownBan(String),
}
