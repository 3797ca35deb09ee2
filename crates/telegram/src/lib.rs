//! tgwatch's port to Telegram: the little of Telegram the service needs, shaped after grammers
//! 0.11.
//!
//! - [`TelegramConnector`] and [`TelegramSession`]: the port. The service's actors talk to
//!   Telegram only through them; the data they carry (usernames, users, channels, messages,
//!   updates, errors) is plain data from `tgwatch_core::telegram`, re-exported here.
//! - [`grammers`]: the adapter for real Telegram over MTProto (grammers 0.11), with its
//!   reconnecting watchdog and the channel calls.
//! - [`stored_session`]: MTProto sessions sealed in the database (one per account).
//! - [`login`] and [`logins`]: logging an account in (code, 2FA password, QR), with the limits
//!   on wrong codes; a logged-in account is handed back to the service through
//!   [`logins::AccountRestarter`].
//!
//! The scripted Telegram that plays a scenario (for the tests, `bench presence` and
//! `telegram.scenario`) implements the same traits in the `tgwatch-testkit` crate; `demo` runs
//! this crate's grammers adapter against the sandbox.

pub mod grammers;
pub mod login;
pub mod logins;
pub mod stored_session;

pub use tgwatch_core::telegram::*;

use async_trait::async_trait;
use tokio::sync::mpsc;

/// A live connection of one account: requests go through `session`, pushed updates arrive on
/// `updates` until the connection drops (then the receiver ends).
pub struct Connection {
    pub session: std::sync::Arc<dyn TelegramSession>,
    pub updates: mpsc::Receiver<Update>,
}

#[async_trait]
pub trait TelegramConnector: Send + Sync {
    async fn connect(&self, account: &AccountIdentity) -> Result<Connection, TelegramError>;
}

#[async_trait]
pub trait TelegramSession: Send + Sync {
    /// `users.getUsers`: up to 200 users per call; users Telegram does not know are left out.
    async fn get_users(&self, users: &[InputUser]) -> Result<Vec<TelegramUser>, TelegramError>;

    /// The account's own user (`users.getUsers` of `inputUserSelf`), with its phone.
    async fn get_me(&self) -> Result<SelfUser, TelegramError>;

    /// `contacts.resolveUsername`: expensive and flood-prone, so call it once per user.
    async fn resolve_username(
        &self,
        username: &Username,
    ) -> Result<Option<TelegramUser>, TelegramError>;

    /// Joins a channel: resolves the username (`contacts.resolveUsername`, flood-prone) and
    /// joins (`channels.joinChannel`), or imports the invite (`messages.importChatInvite`).
    /// Already being a member is not an error. Unknown usernames, invites and channels are
    /// [`TelegramError::Rpc`] errors for which [`TelegramError::is_not_found`] holds.
    async fn join_channel(&self, channel: &ChannelRef) -> Result<TelegramChannel, TelegramError>;

    /// The channel's messages with an id above `after_id`, oldest first, at most `limit`
    /// (`messages.getHistory`, 100 per call): for catching up after a gap. Fewer than `limit`
    /// means there are no more. Service messages are left out.
    async fn channel_history(
        &self,
        channel: InputChannel,
        after_id: i32,
        limit: usize,
    ) -> Result<Vec<ChannelMessage>, TelegramError>;

    /// Leaves the channel (`channels.leaveChannel`): its updates stop. Not being a member is not
    /// an error.
    async fn leave_channel(&self, channel: InputChannel) -> Result<(), TelegramError>;

    /// The channel with its description and participant count (`channels.getFullChannel`).
    async fn channel_info(&self, channel: InputChannel) -> Result<TelegramChannel, TelegramError>;

    /// The account's chats, most recent first, at most `limit` (`messages.getDialogs`).
    async fn dialogs(&self, limit: usize) -> Result<Vec<Dialog>, TelegramError>;

    /// Messages of one of the account's chats, newest first: those older than `before_id` (0:
    /// the newest), at most `limit` (up to 100). The chat is named by its one-number chat id
    /// ([`Dialog::chat_id`]); the adapter finds its access hash among the dialogs.
    async fn chat_history(
        &self,
        chat_id: i64,
        before_id: i32,
        limit: usize,
    ) -> Result<Vec<ChatMessage>, TelegramError>;
}
