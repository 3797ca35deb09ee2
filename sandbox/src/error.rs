//! Errors of the control API. Connection-level failures never reach the caller: a broken
//! connection is closed and logged, like a real server would.

use crate::world::AccountId;

/// What can go wrong when starting or driving the sandbox.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// The listener could not be bound (or its address read).
    #[error("could not bind the sandbox listener: {0}")]
    Bind(#[source] std::io::Error),

    /// The sandbox runs DCs 1..=5 only.
    #[error("there is no DC {0} in the sandbox (it runs DCs 1 to 5)")]
    UnknownDc(i32),

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

    /// A phone number must have at least one digit (only the digits count).
    #[error("{0:?} is not a phone number: it has no digits")]
    InvalidPhone(String),

    /// Another account already logs in with this phone number.
    #[error("phone number {phone} already logs in as {account}")]
    PhoneTaken { phone: String, account: AccountId },

    /// No `auth.exportLoginToken` handed out this QR login token, a newer export replaced it, or
    /// its login already finished.
    #[error("unknown QR login token: never exported, replaced by a newer one, or already used")]
    UnknownLoginToken,

    /// The QR login token is older than its 30 seconds, or `expire_login_tokens` expired it.
    #[error("the QR login token has expired; the client must export a new one")]
    LoginTokenExpired,

    /// The QR login token was already scanned.
    #[error("the QR login token was already accepted")]
    LoginTokenAlreadyAccepted,

    /// The channel was never added to this sandbox.
    #[error("unknown sandbox channel {0}")]
    UnknownChannel(i64),

    /// A channel with this id already exists.
    #[error("sandbox channel {0} already exists")]
    DuplicateChannel(i64),

    /// Telegram (and grammers) only know channel ids in 1..=997852516352.
    #[error("{0} is not a valid channel id (1..=997852516352)")]
    InvalidChannelId(i64),

    /// Another channel already has this invite hash.
    #[error("invite hash {0:?} is already taken in the sandbox")]
    InviteTaken(String),

    /// The channel has no such message, or it was deleted.
    #[error("channel {channel_id} has no message {message_id}")]
    UnknownMessage { channel_id: i64, message_id: i32 },
}
