//! The data of the Telegram port: usernames, users, channels, messages, updates and errors,
//! shaped after grammers 0.11. The port's traits (`TelegramConnector`, `TelegramSession`) are in
//! the `tgwatch-telegram` crate, which re-exports these types.

mod channels;

use serde::{Deserialize, Serialize};

use crate::presence::Status;

pub use channels::{
    ChannelMessage, ChannelRef, ChannelRefError, ChatKind, ChatMessage, Dialog, InputChannel,
    InviteHash, Media, MediaKind, TelegramChannel, USERNAME_NOT_A_CHANNEL,
};

/// A Telegram username: 5–32 characters of `a-z`, `0-9` and `_`, starting with a letter,
/// stored lowercase (Telegram usernames are case-insensitive). `@name` and `t.me/name` are
/// accepted as input.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Username(String);

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("`{input}` is not a Telegram username: {reason}")]
pub struct UsernameError {
    input: String,
    reason: &'static str,
}

impl Username {
    pub fn parse(input: &str) -> Result<Username, UsernameError> {
        let fail = |reason| UsernameError {
            input: input.to_owned(),
            reason,
        };
        let trimmed = input.trim();
        let name = ["https://t.me/", "http://t.me/", "t.me/", "@"]
            .iter()
            .find_map(|prefix| trimmed.strip_prefix(prefix))
            .unwrap_or(trimmed);
        if !(5..=32).contains(&name.len()) {
            return Err(fail("it must be 5 to 32 characters long"));
        }
        if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(fail("only letters, digits and underscores are allowed"));
        }
        if !name.starts_with(|c: char| c.is_ascii_alphabetic()) {
            return Err(fail("it must start with a letter"));
        }
        if name.ends_with('_') || name.contains("__") {
            return Err(fail("it must not end with `_` or contain `__`"));
        }
        Ok(Username(name.to_ascii_lowercase()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Username {
    type Error = UsernameError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Username::parse(&value)
    }
}

impl From<Username> for String {
    fn from(value: Username) -> Self {
        value.0
    }
}

impl std::fmt::Display for Username {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "@{}", self.0)
    }
}

/// A user reference that Telegram accepts in requests (`InputUser`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct InputUser {
    pub id: i64,
    pub access_hash: i64,
}

/// A user as Telegram returns it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TelegramUser {
    pub id: i64,
    pub access_hash: i64,
    pub username: Option<String>,
    pub first_name: Option<String>,
    pub status: Status,
}

/// The account's own user as Telegram describes it (`users.getUsers` of `inputUserSelf`): the
/// self user is the one user whose phone Telegram always returns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SelfUser {
    pub id: i64,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub username: Option<String>,
    pub phone: Option<String>,
}

/// What Telegram pushes to a connected account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Update {
    /// `updateUserStatus`: sent for contacts and mutual users.
    UserStatus { user_id: i64, status: Status },
    /// A new post in a channel (or supergroup) the account is in: `updateNewChannelMessage`,
    /// pushed or recovered by the client's `updates.getChannelDifference`.
    ChannelMessageNew(ChannelMessage),
    /// A post was edited (`updateEditChannelMessage`); the message is as it is now.
    ChannelMessageEdited(ChannelMessage),
    /// Posts were deleted (`updateDeleteChannelMessages`).
    ChannelMessagesDeleted { channel_id: i64, ids: Vec<i32> },
    /// The last update of a connection that Telegram refused (a 401: ban, revoked session):
    /// reconnecting cannot help, so the account is lost now rather than after a reconnect.
    Unauthorized { reason: String },
    /// The connection was interrupted. What Telegram pushed meanwhile is lost for good: status
    /// changes carry no pts, so no `updates.getDifference` brings them back (channel posts do
    /// come back, through `getChannelDifference`). The people the account watches must be
    /// asked again now.
    Gap,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TelegramError {
    /// FLOOD_WAIT_N: the account must not call again for `seconds`.
    #[error("FLOOD_WAIT: Telegram asks to wait {seconds} s")]
    FloodWait { seconds: u32 },
    /// 401 answers (USER_DEACTIVATED_BAN, AUTH_KEY_UNREGISTERED, SESSION_REVOKED, ...): the
    /// account cannot be used until someone acts.
    #[error("account unusable: {reason}")]
    Unauthorized { reason: String },
    /// The account has no session yet: someone must log it in (`tgwatch login` or the login
    /// endpoints). Unlike a ban, nothing is wrong with the account.
    #[error("the account is not logged in")]
    NotLoggedIn,
    /// 303 `PHONE_MIGRATE_X`, `USER_MIGRATE_X`, ...: the phone or account lives in DC `dc`,
    /// and the request must be made there.
    #[error("Telegram answered {name}: ask DC {dc}")]
    Migrate { name: String, dc: i32 },
    #[error("Telegram answered {code} {name}")]
    Rpc { code: i32, name: String },
    #[error("connection to Telegram failed: {0}")]
    Connection(String),
}

/// Who an account is, as far as connecting goes.
#[derive(Clone, Debug)]
pub struct AccountIdentity {
    pub label: String,
    pub phone: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_accept_common_spellings_and_normalise_case() {
        for input in [
            "alice_w",
            "@Alice_W",
            "https://t.me/alice_w",
            " t.me/ALICE_W ",
        ] {
            assert_eq!(
                Username::parse(input).map(|u| u.0),
                Ok("alice_w".to_owned())
            );
        }
    }

    #[test]
    fn usernames_refuse_what_telegram_refuses() {
        for input in [
            "",
            "abc",
            "1alice",
            "alice w",
            "alice_",
            "al__ice",
            &"a".repeat(33),
        ] {
            assert!(Username::parse(input).is_err(), "{input:?} accepted");
        }
    }
}
