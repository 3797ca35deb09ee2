//! The channel half of the port: how to name a channel, what Telegram says about channels,
//! chats and their messages. Re-exported from [`crate::telegram`].

use chrono::{DateTime, Utc};

use super::{TelegramError, Username};

/// A channel reference that Telegram accepts in requests (`InputChannel`): its id and the
/// access hash this account got for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct InputChannel {
    pub id: i64,
    pub access_hash: i64,
}

/// The hash of an invite link (`https://t.me/+<hash>` or the older `t.me/joinchat/<hash>`):
/// letters, digits, `_` and `-`, as Telegram makes them.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct InviteHash(String);

impl InviteHash {
    /// Accepts the bare hash, `+hash`, and `t.me/+hash` / `t.me/joinchat/hash` links (with or
    /// without `https://`, also on `telegram.me`).
    pub fn parse(input: &str) -> Result<InviteHash, ChannelRefError> {
        let trimmed = input.trim();
        let link = ["https://", "http://"]
            .iter()
            .find_map(|scheme| trimmed.strip_prefix(scheme))
            .unwrap_or(trimmed);
        let path = ["t.me/", "telegram.me/"]
            .iter()
            .find_map(|host| link.strip_prefix(host))
            .unwrap_or(link);
        let hash = path
            .strip_prefix('+')
            .or_else(|| path.strip_prefix("joinchat/"))
            .unwrap_or(path)
            .trim_end_matches('/');
        let valid_chars = hash
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if hash.is_empty() || hash.len() > 64 || !valid_chars {
            return Err(ChannelRefError {
                input: input.to_owned(),
                reason: "an invite hash is 1 to 64 letters, digits, `_` or `-`",
            });
        }
        Ok(InviteHash(hash.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for InviteHash {
    /// As a link, so that logs show what a user would paste.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "https://t.me/+{}", self.0)
    }
}

/// How to name a channel to join.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ChannelRef {
    /// A public channel, by its username.
    Username(Username),
    /// A channel (public or private) by one of its invite links.
    Invite(InviteHash),
    /// A channel this account already knows the access hash of.
    Id(InputChannel),
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("`{input}` is not a channel: {reason}")]
pub struct ChannelRefError {
    input: String,
    reason: &'static str,
}

impl ChannelRef {
    /// Parses what a user would paste: an invite link (`https://t.me/+hash`, `+hash`,
    /// `t.me/joinchat/hash`) or a username (`@name`, `name`, `https://t.me/name`).
    pub fn parse(input: &str) -> Result<ChannelRef, ChannelRefError> {
        let trimmed = input.trim();
        let path = ["https://", "http://"]
            .iter()
            .find_map(|scheme| trimmed.strip_prefix(scheme))
            .unwrap_or(trimmed);
        let path = ["t.me/", "telegram.me/"]
            .iter()
            .find_map(|host| path.strip_prefix(host))
            .unwrap_or(path);
        if path.starts_with('+') || path.starts_with("joinchat/") {
            return InviteHash::parse(input).map(ChannelRef::Invite);
        }
        Username::parse(input)
            .map(ChannelRef::Username)
            .map_err(|_| ChannelRefError {
                input: input.to_owned(),
                reason: "expected @username, a t.me link or an invite link",
            })
    }
}

impl std::fmt::Display for ChannelRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ChannelRef::Username(username) => username.fmt(f),
            ChannelRef::Invite(hash) => hash.fmt(f),
            ChannelRef::Id(channel) => write!(f, "channel {}", channel.id),
        }
    }
}

/// A channel as Telegram describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TelegramChannel {
    pub id: i64,
    pub access_hash: i64,
    pub title: String,
    pub username: Option<String>,
    /// The description; only `channels.getFullChannel` (and an invite preview) carries it, so
    /// it is `None` after a join by username. `channel_info` always fills it.
    pub about: Option<String>,
    /// `None` when the answer did not carry it; `channel_info` always fills it.
    pub participants_count: Option<i32>,
}

impl TelegramChannel {
    /// The reference to use in later requests.
    pub fn input(&self) -> InputChannel {
        InputChannel {
            id: self.id,
            access_hash: self.access_hash,
        }
    }
}

/// What a message carries besides its text.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MediaKind {
    Photo,
    /// Files, videos, voice notes, stickers, GIFs: Telegram's documents.
    Document,
    /// Anything else (link previews, polls, locations, contacts...).
    Other,
}

impl MediaKind {
    /// The name stored in `messages.media_type` and shown by the API.
    pub fn as_str(self) -> &'static str {
        match self {
            MediaKind::Photo => "photo",
            MediaKind::Document => "document",
            MediaKind::Other => "other",
        }
    }
}

/// A message's media: its kind and a reference to it. The reference is `photo:<id>:<access
/// hash>` or `document:<id>:<access hash>` (enough to find the file again with the message), or
/// the TL name (e.g. `messageMediaWebPage`) for other media.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Media {
    pub kind: MediaKind,
    pub reference: String,
}

/// A message of a channel (or supergroup), as pushed or read from its history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChannelMessage {
    pub channel_id: i64,
    /// The message id, unique and increasing within the channel.
    pub id: i32,
    pub date: DateTime<Utc>,
    /// The text, or a media's caption; empty when there is none.
    pub text: String,
    pub media: Option<Media>,
    pub edit_date: Option<DateTime<Utc>>,
    /// The sender's bare id (a user, or a channel posting as itself), if the message names one:
    /// broadcast posts without signatures do not.
    pub sender_id: Option<i64>,
    /// The author's name as the post carries it (its signature, `post_author`), if any.
    pub sender_name: Option<String>,
}

/// What kind of chat a dialog is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ChatKind {
    /// A private chat with a user (or bot).
    User,
    /// A small group.
    Group,
    /// A broadcast channel or a supergroup.
    Channel,
}

/// Channel ids live above this in the one-number chat id (Telegram's Bot API dialog ids).
const CHANNEL_CHAT_ID_BASE: i64 = 1_000_000_000_000;

impl ChatKind {
    /// The one-number chat id of a chat of this kind with bare id `id`, in Telegram's Bot API
    /// format, which tells the kinds apart: a user's id, `-id` for a group, `-(10^12 + id)`
    /// for a channel.
    pub fn chat_id(self, id: i64) -> i64 {
        match self {
            ChatKind::User => id,
            ChatKind::Group => -id,
            ChatKind::Channel => -(CHANNEL_CHAT_ID_BASE + id),
        }
    }

    /// The kind and bare id of a one-number chat id (see [`ChatKind::chat_id`]).
    pub fn of_chat_id(chat_id: i64) -> Option<(ChatKind, i64)> {
        match chat_id {
            1.. => Some((ChatKind::User, chat_id)),
            0 => None,
            _ if chat_id > -CHANNEL_CHAT_ID_BASE => Some((ChatKind::Group, -chat_id)),
            _ => {
                let id = -chat_id - CHANNEL_CHAT_ID_BASE;
                (id > 0).then_some((ChatKind::Channel, id))
            }
        }
    }
}

/// One of an account's chats, as `messages.getDialogs` lists them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dialog {
    /// The one-number chat id (see [`ChatKind::chat_id`]): what `chat_history` takes.
    pub chat_id: i64,
    pub kind: ChatKind,
    /// The bare id Telegram uses for the user, group or channel.
    pub id: i64,
    /// The access hash this account has for the user or channel (groups need none).
    pub access_hash: Option<i64>,
    /// A user's full name, or the chat's title.
    pub title: String,
    pub username: Option<String>,
    pub last_message_id: Option<i32>,
    pub last_message_date: Option<DateTime<Utc>>,
}

/// A message of any chat, for browsing an account's chats.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChatMessage {
    /// The one-number chat id (see [`ChatKind::chat_id`]).
    pub chat_id: i64,
    pub id: i32,
    pub date: DateTime<Utc>,
    pub text: String,
    pub media: Option<Media>,
    pub edit_date: Option<DateTime<Utc>>,
    /// The sender's bare id when known: `from_id`, or the other user in a private chat.
    pub sender_id: Option<i64>,
    /// Sent by this account.
    pub outgoing: bool,
}

/// The error name the adapters use when a username belongs to a user or a group rather than a
/// channel. Telegram itself never sends it.
pub const USERNAME_NOT_A_CHANNEL: &str = "USERNAME_NOT_A_CHANNEL";

/// RPC error names that mean "no such thing, or not for this account": the caller asked for
/// something wrong, and asking again will not help.
const NOT_FOUND_NAMES: [&str; 14] = [
    "USERNAME_NOT_OCCUPIED",
    "USERNAME_INVALID",
    USERNAME_NOT_A_CHANNEL,
    "CHANNEL_INVALID",
    "CHANNEL_PRIVATE",
    "INVITE_HASH_INVALID",
    "INVITE_HASH_EXPIRED",
    "INVITE_HASH_EMPTY",
    "PEER_ID_INVALID",
    "MSG_ID_INVALID",
    "CHAT_ID_INVALID",
    "USER_ID_INVALID",
    "CHAT_FORBIDDEN",
    "CHANNEL_PUBLIC_GROUP_NA",
];

impl TelegramError {
    /// Whether Telegram said that the username, invite, channel or chat asked about does not
    /// exist or is closed to this account (`CHANNEL_INVALID`, `CHANNEL_PRIVATE`,
    /// `INVITE_HASH_INVALID`, `USERNAME_NOT_OCCUPIED`, ...): a mistake of the caller, not a
    /// failure to retry. These stay [`TelegramError::Rpc`] with Telegram's name.
    pub fn is_not_found(&self) -> bool {
        matches!(self, TelegramError::Rpc { name, .. } if NOT_FOUND_NAMES.contains(&name.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_refs_parse_what_users_paste() {
        let invite = |hash: &str| ChannelRef::Invite(InviteHash(hash.to_owned()));
        for input in [
            "https://t.me/+AbC_d-9",
            "t.me/+AbC_d-9",
            "+AbC_d-9",
            "http://telegram.me/joinchat/AbC_d-9/",
            " https://t.me/joinchat/AbC_d-9 ",
        ] {
            assert_eq!(ChannelRef::parse(input), Ok(invite("AbC_d-9")), "{input}");
        }
        for input in ["@Durov_News", "durov_news", "https://t.me/durov_news"] {
            assert_eq!(
                ChannelRef::parse(input),
                Ok(ChannelRef::Username(
                    Username::parse("durov_news").expect("username")
                )),
                "{input}"
            );
        }
        for input in ["", "@ab", "https://t.me/+", "+with space", "t.me/+a/b"] {
            assert!(ChannelRef::parse(input).is_err(), "{input:?} accepted");
        }
        assert_eq!(invite("x1").to_string(), "https://t.me/+x1");
    }

    #[test]
    fn chat_ids_tell_the_kinds_apart() {
        for (kind, id, chat_id) in [
            (ChatKind::User, 777, 777),
            (ChatKind::Group, 4242, -4242),
            (ChatKind::Channel, 1_234_567_890, -1_001_234_567_890),
        ] {
            assert_eq!(kind.chat_id(id), chat_id);
            assert_eq!(ChatKind::of_chat_id(chat_id), Some((kind, id)));
        }
        assert_eq!(ChatKind::of_chat_id(0), None);
        assert_eq!(ChatKind::of_chat_id(-CHANNEL_CHAT_ID_BASE), None);
    }

    #[test]
    fn not_found_errors_are_told_apart_from_failures() {
        let rpc = |name: &str| TelegramError::Rpc {
            code: 400,
            name: name.to_owned(),
        };
        assert!(rpc("CHANNEL_INVALID").is_not_found());
        assert!(rpc("CHAT_ID_INVALID").is_not_found());
        assert!(rpc(USERNAME_NOT_A_CHANNEL).is_not_found());
        assert!(!rpc("LIMIT_INVALID").is_not_found());
        assert!(!TelegramError::FloodWait { seconds: 3 }.is_not_found());
        assert!(!TelegramError::Connection("reset".into()).is_not_found());
    }
}
