//! The state of the fake Telegram.
//!
//! Everything lives in one [`World`] behind one mutex: calls are tiny and synchronous, so a
//! single lock keeps every answer consistent with every control call (a status set by a test is
//! seen by the very next `users.getUsers`) without any ordering puzzles.
//!
//! Simplifications, on purpose:
//! * one access hash per user, valid for every account (Telegram's is per viewer);
//! * a contact is always shown as a mutual contact;
//! * an account's update state only moves for pts-carrying updates, of which there are none yet,
//!   so `pts` stays put; statuses are pts-less updates, as on Telegram.
//!
//! Growing it: channels will be a `channels` map (id, access hash, title, username, members, a
//! per-channel `pts` and a message log for `messages.getHistory` / `getChannelDifference`), and
//! logins a per-phone map of pending codes and 2FA (SRP) parameters; both hang off [`World`] the
//! same way users do, and their pushes go through [`World::push`].

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::str::FromStr;
use std::time::{SystemTime, UNIX_EPOCH};

use grammers_tl_types as tl;
use tokio::sync::mpsc;

use crate::crypto::ServerKey;
use crate::error::SandboxError;

/// An account: a Telegram user that a client logs in as, with its own auth key. It is known by
/// its user id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AccountId(i64);

impl AccountId {
    /// The id of the account's own user.
    pub fn user_id(self) -> i64 {
        self.0
    }
}

impl fmt::Display for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "account {}", self.0)
    }
}

/// What Telegram tells others about when a user was last seen. Times are unix seconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UserStatus {
    /// Never set, or the user is a bot.
    Empty,
    /// Online until `expires` (the client sends "offline" or the timeout runs out).
    Online { expires: i32 },
    /// Offline, last seen at `was_online`.
    Offline { was_online: i32 },
    /// The user hides the exact time; seen within about three days.
    Recently,
    /// Hidden; seen within a week.
    LastWeek,
    /// Hidden; seen within a month.
    LastMonth,
}

impl UserStatus {
    pub(crate) fn to_tl(self) -> tl::enums::UserStatus {
        use tl::enums::UserStatus as S;
        match self {
            UserStatus::Empty => S::Empty,
            UserStatus::Online { expires } => S::Online(tl::types::UserStatusOnline { expires }),
            UserStatus::Offline { was_online } => {
                S::Offline(tl::types::UserStatusOffline { was_online })
            }
            UserStatus::Recently => S::Recently(tl::types::UserStatusRecently { by_me: false }),
            UserStatus::LastWeek => S::LastWeek(tl::types::UserStatusLastWeek { by_me: false }),
            UserStatus::LastMonth => S::LastMonth(tl::types::UserStatusLastMonth { by_me: false }),
        }
    }
}

/// Why an account is locked out. Every later call of the account fails with `401` and this name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ban {
    /// `USER_DEACTIVATED`: the account was deleted.
    UserDeactivated,
    /// `USER_DEACTIVATED_BAN`: the account was banned by Telegram.
    UserDeactivatedBan,
    /// `AUTH_KEY_UNREGISTERED`: the session was logged out or never logged in.
    AuthKeyUnregistered,
    /// `SESSION_REVOKED`: the user terminated this session from another device.
    SessionRevoked,
}

impl Ban {
    /// The RPC error name the client sees.
    pub fn error_name(self) -> &'static str {
        match self {
            Ban::UserDeactivated => "USER_DEACTIVATED",
            Ban::UserDeactivatedBan => "USER_DEACTIVATED_BAN",
            Ban::AuthKeyUnregistered => "AUTH_KEY_UNREGISTERED",
            Ban::SessionRevoked => "SESSION_REVOKED",
        }
    }
}

/// Parses the error name, so that scenario files can say `ban: USER_DEACTIVATED_BAN`.
impl FromStr for Ban {
    type Err = SandboxError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [
            Ban::UserDeactivated,
            Ban::UserDeactivatedBan,
            Ban::AuthKeyUnregistered,
            Ban::SessionRevoked,
        ]
        .into_iter()
        .find(|ban| ban.error_name() == s)
        .ok_or_else(|| SandboxError::UnknownBan(s.to_owned()))
    }
}

/// Where a pushed update went.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Delivery {
    /// Accounts it was sent to over a live connection.
    pub live: usize,
    /// Accounts without a live connection: it waits for their next `updates.getDifference`.
    pub queued: usize,
}

/// A user of the fake Telegram (accounts are users too).
pub(crate) struct UserRecord {
    pub(crate) id: i64,
    pub(crate) access_hash: i64,
    pub(crate) first_name: String,
    pub(crate) username: Option<String>,
    pub(crate) status: UserStatus,
}

/// `FLOOD_WAIT_<seconds>` for the next `remaining` calls.
pub(crate) struct FloodWait {
    pub(crate) seconds: u32,
    pub(crate) remaining: u32,
}

/// An update batch on its way to one account, already shaped for that account.
pub(crate) struct Pushed {
    pub(crate) updates: Vec<tl::enums::Update>,
    pub(crate) users: Vec<tl::enums::User>,
}

/// Orders for a connection task.
pub(crate) enum ConnCommand {
    /// Send these updates as a plain (not `rpc_result`) message.
    Push(Pushed),
    /// Close the TCP connection now.
    Close,
}

/// A connection that has told us its account and session, so it can be pushed to.
pub(crate) struct LiveConnection {
    pub(crate) id: u64,
    pub(crate) tx: mpsc::UnboundedSender<ConnCommand>,
}

pub(crate) struct AccountRecord {
    pub(crate) key: ServerKey,
    pub(crate) contacts: BTreeSet<i64>,
    pub(crate) flood: Option<FloodWait>,
    pub(crate) ban: Option<Ban>,
    /// The common update sequence (`updates.getState`). Statuses carry no pts, so only `date`
    /// moves for now; pts-carrying private messages would bump `pts` here.
    pub(crate) pts: i32,
    pub(crate) qts: i32,
    pub(crate) seq: i32,
    /// Updates that found no live connection, for the next `updates.getDifference`.
    pub(crate) pending: Vec<Pushed>,
    pub(crate) calls: HashMap<String, u64>,
    /// Live connections, oldest first. Pushes go to the newest.
    pub(crate) connections: Vec<LiveConnection>,
}

#[derive(Default)]
pub(crate) struct World {
    pub(crate) users: BTreeMap<i64, UserRecord>,
    /// Lower-cased username -> user id.
    pub(crate) usernames: HashMap<String, i64>,
    pub(crate) accounts: BTreeMap<AccountId, AccountRecord>,
    /// auth_key_id -> account: how a connection is recognised.
    pub(crate) keys: HashMap<[u8; 8], AccountId>,
    /// Calls per method name (e.g. `users.getUsers`), all accounts together.
    pub(crate) calls: HashMap<String, u64>,
    pub(crate) connections_accepted: u64,
    next_connection_id: u64,
}

/// Unix time in seconds, as Telegram's `date` fields carry it.
pub(crate) fn unix_now() -> i32 {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    i32::try_from(secs).unwrap_or(i32::MAX)
}

impl World {
    pub(crate) fn add_user(
        &mut self,
        id: i64,
        access_hash: i64,
        username: Option<&str>,
        first_name: &str,
    ) -> Result<(), SandboxError> {
        if self.users.contains_key(&id) {
            return Err(SandboxError::DuplicateUser(id));
        }
        if let Some(name) = username {
            let key = name.to_lowercase();
            if self.usernames.contains_key(&key) {
                return Err(SandboxError::UsernameTaken(name.to_owned()));
            }
            self.usernames.insert(key, id);
        }
        self.users.insert(
            id,
            UserRecord {
                id,
                access_hash,
                first_name: first_name.to_owned(),
                username: username.map(str::to_owned),
                status: UserStatus::Empty,
            },
        );
        Ok(())
    }

    pub(crate) fn add_account(
        &mut self,
        user_id: i64,
        access_hash: i64,
        username: Option<&str>,
        first_name: &str,
        key: ServerKey,
    ) -> Result<AccountId, SandboxError> {
        self.add_user(user_id, access_hash, username, first_name)?;
        let id = AccountId(user_id);
        self.keys.insert(key.id(), id);
        self.accounts.insert(
            id,
            AccountRecord {
                key,
                contacts: BTreeSet::new(),
                flood: None,
                ban: None,
                pts: 1,
                qts: 0,
                seq: 0,
                pending: Vec::new(),
                calls: HashMap::new(),
                connections: Vec::new(),
            },
        );
        Ok(id)
    }

    pub(crate) fn account(&self, id: AccountId) -> Result<&AccountRecord, SandboxError> {
        self.accounts
            .get(&id)
            .ok_or(SandboxError::UnknownAccount(id))
    }

    pub(crate) fn account_mut(
        &mut self,
        id: AccountId,
    ) -> Result<&mut AccountRecord, SandboxError> {
        self.accounts
            .get_mut(&id)
            .ok_or(SandboxError::UnknownAccount(id))
    }

    /// `user` as `viewer` sees it: with its access hash, current status and the viewer-relative
    /// flags (`self`, `contact`).
    pub(crate) fn user_for(&self, user: &UserRecord, viewer: AccountId) -> tl::enums::User {
        let is_self = user.id == viewer.0;
        let contact = self
            .accounts
            .get(&viewer)
            .is_some_and(|account| account.contacts.contains(&user.id));
        tl::enums::User::User(tl::types::User {
            is_self,
            contact,
            mutual_contact: contact,
            deleted: false,
            bot: false,
            bot_chat_history: false,
            bot_nochats: false,
            verified: false,
            restricted: false,
            min: false,
            bot_inline_geo: false,
            support: false,
            scam: false,
            apply_min_photo: false,
            fake: false,
            bot_attach_menu: false,
            premium: false,
            attach_menu_enabled: false,
            bot_can_edit: false,
            close_friend: false,
            stories_hidden: false,
            stories_unavailable: false,
            contact_require_premium: false,
            bot_business: false,
            bot_has_main_app: false,
            bot_forum_view: false,
            bot_forum_can_manage_topics: false,
            bot_can_manage_bots: false,
            bot_guestchat: false,
            bot_guard: false,
            id: user.id,
            access_hash: Some(user.access_hash),
            first_name: Some(user.first_name.clone()),
            last_name: None,
            username: user.username.clone(),
            phone: None,
            photo: None,
            status: Some(user.status.to_tl()),
            // Shares flag bit 14 with `bot`: must stay None while `bot` is false, or the bytes
            // will not read back (the Rust types do not enforce shared flags).
            bot_info_version: None,
            // Shares flag bit 18 with `restricted`, likewise.
            restriction_reason: None,
            bot_inline_placeholder: None,
            lang_code: None,
            emoji_status: None,
            usernames: None,
            stories_max_id: None,
            color: None,
            profile_color: None,
            bot_active_users: None,
            bot_verification_icon: None,
            send_paid_messages_stars: None,
            linked_community_id: None,
        })
    }

    pub(crate) fn set_user_status(
        &mut self,
        user_id: i64,
        status: UserStatus,
    ) -> Result<Delivery, SandboxError> {
        let user = self
            .users
            .get_mut(&user_id)
            .ok_or(SandboxError::UnknownUser(user_id))?;
        user.status = status;

        // Telegram pushes status changes only to users that have the user as a contact.
        let watchers: Vec<AccountId> = self
            .accounts
            .iter()
            .filter(|(_, account)| account.contacts.contains(&user_id))
            .map(|(id, _)| *id)
            .collect();
        let mut delivery = Delivery::default();
        for viewer in watchers {
            let update = tl::enums::Update::UserStatus(tl::types::UpdateUserStatus {
                user_id,
                status: status.to_tl(),
            });
            let users = self
                .users
                .get(&user_id)
                .map(|user| vec![self.user_for(user, viewer)])
                .unwrap_or_default();
            let pushed = Pushed {
                updates: vec![update],
                users,
            };
            if self.push(viewer, pushed)? {
                delivery.live += 1;
            } else {
                delivery.queued += 1;
            }
        }
        Ok(delivery)
    }

    /// Sends updates to the account's newest live connection, or keeps them for its next
    /// `updates.getDifference`. Returns whether a live connection took them.
    pub(crate) fn push(
        &mut self,
        account: AccountId,
        pushed: Pushed,
    ) -> Result<bool, SandboxError> {
        let record = self.account_mut(account)?;
        let mut pushed = pushed;
        while let Some(connection) = record.connections.last() {
            match connection.tx.send(ConnCommand::Push(pushed)) {
                Ok(()) => return Ok(true),
                Err(mpsc::error::SendError(cmd)) => {
                    // The task is gone without unregistering (it panicked or is exiting);
                    // forget it and try the next one.
                    record.connections.pop();
                    match cmd {
                        ConnCommand::Push(back) => pushed = back,
                        ConnCommand::Close => return Ok(false),
                    }
                }
            }
        }
        record.pending.push(pushed);
        Ok(false)
    }

    /// Registers a connection that has proven its account (by decrypting) and session.
    pub(crate) fn register_connection(
        &mut self,
        account: AccountId,
        tx: mpsc::UnboundedSender<ConnCommand>,
    ) -> Result<u64, SandboxError> {
        self.next_connection_id += 1;
        let id = self.next_connection_id;
        self.account_mut(account)?
            .connections
            .push(LiveConnection { id, tx });
        Ok(id)
    }

    pub(crate) fn unregister_connection(&mut self, account: AccountId, connection: u64) {
        if let Some(record) = self.accounts.get_mut(&account) {
            record.connections.retain(|live| live.id != connection);
        }
    }

    /// Unregisters and closes every connection of the account; returns how many there were.
    ///
    /// Unregistering happens here, under the lock, so that no push can be sent to a connection
    /// that is about to close: later pushes queue for `updates.getDifference` instead.
    pub(crate) fn drop_connections(&mut self, account: AccountId) -> Result<usize, SandboxError> {
        let record = self.account_mut(account)?;
        let connections = std::mem::take(&mut record.connections);
        for connection in &connections {
            // A task that is already gone needs no closing.
            let _ = connection.tx.send(ConnCommand::Close);
        }
        Ok(connections.len())
    }

    /// Counts one call of `method` by `account`.
    pub(crate) fn count_call(&mut self, account: AccountId, method: &str) {
        *self.calls.entry(method.to_owned()).or_default() += 1;
        if let Some(record) = self.accounts.get_mut(&account) {
            *record.calls.entry(method.to_owned()).or_default() += 1;
        }
    }
}
