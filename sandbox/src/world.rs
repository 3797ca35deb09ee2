//! The state of the fake Telegram.
//!
//! Everything lives in one [`World`] behind one mutex: calls are tiny and synchronous, so a
//! single lock keeps every answer consistent with every control call (a status set by a test is
//! seen by the very next `users.getUsers`) without any ordering puzzles.
//!
//! Simplifications, on purpose:
//! * one access hash per user, valid for every account (Telegram's is per viewer);
//! * a contact is always shown as a mutual contact;
//! * the only pts-carrying updates of an account's common box are incoming private messages
//!   ([`crate::Sandbox::send_private_message`]); statuses are pts-less, as on Telegram;
//! * channel catch-up state (which pts a member last got) is kept per account, not per
//!   authorization.
//!
//! Auth keys: an account has its original pre-shared key plus one per login, and a key may be
//! logged in to nobody (a fresh session before its login, or after `auth.logOut`). Connections
//! belong to a key, so a login or logout on a live connection takes effect on its next request.
//! Updates are routed as Telegram routes them: every authorization (auth key) logged in to the
//! account gets its own copy, on that key's most recently active connection among those that
//! asked for updates (a connection whose requests all come wrapped in `invokeWithoutUpdates`
//! gets none). An account without any such connection misses the push: a pts-less update (a
//! status change) is then lost, as on Telegram, while pts-carrying ones stay in the account's
//! update log (`crate::updates`) for `updates.getDifference`.
//!
//! Growing it: channels (id, access hash, title, username, members, a per-channel `pts` and a
//! message log for `messages.getHistory` / `getChannelDifference`) are
//! [`crate::channels::Channels`]; logins (phones, codes, 2FA verifiers, QR tokens) are
//! [`crate::login::Logins`]. Both hang off [`World`] the same way users do, and their pushes go
//! through [`World::push`] (or [`World::push_to_key`] for a key that is logged in to nobody yet).
//! What a member missed of a channel is replayed from the channel's own log by
//! `updates.getChannelDifference`, not by the common `updates.getDifference`. A new family (groups, private messages) would do the same:
//! a module with its state as one field here, its RPC methods behind one `match` arm in
//! `dispatch`, and its control API as an `impl Sandbox` block in its own module.

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
    /// Authorizations (auth keys) it was sent to over a live connection: an account with two
    /// logged-in clients counts twice.
    pub live: usize,
    /// Accounts without a connection that takes updates, for which it waits in a log: the
    /// account's own (`updates.getDifference`) or the channel's (`getChannelDifference`).
    pub queued: usize,
    /// Accounts without a connection that takes updates, for which it is lost: pts-less updates
    /// (status changes) are not part of any difference.
    pub dropped: usize,
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

/// Updates on their way to one authorization, already shaped for its account and in the
/// envelope Telegram uses for them.
#[derive(Clone)]
pub(crate) enum Pushed {
    /// `updateShort`: one update that needs no users or chats sent along (a status change of a
    /// contact, `updateLoginToken`).
    Short(Box<tl::enums::Update>),
    /// `updates`: with the users they mention (the chats are added when sent, as the viewer
    /// sees them).
    Updates {
        updates: Vec<tl::enums::Update>,
        users: Vec<tl::enums::User>,
    },
}

/// Orders for a connection task.
pub(crate) enum ConnCommand {
    /// Send these updates as a plain (not `rpc_result`) message.
    Push(Pushed),
    /// Close the TCP connection now.
    Close,
}

/// A connection that has told us its key and session.
pub(crate) struct LiveConnection {
    pub(crate) id: u64,
    pub(crate) tx: mpsc::UnboundedSender<ConnCommand>,
    /// Whether it made a request not wrapped in `invokeWithoutUpdates`: only such connections
    /// are pushed to.
    pub(crate) subscribed: bool,
    /// When it last made such a request ([`World::activity`] ticks): pushes go to the key's
    /// most recently active connection.
    pub(crate) last_active: u64,
}

pub(crate) struct AccountRecord {
    /// The id of the account's original pre-shared key (in [`World::keys`]); logins add more.
    pub(crate) original_key: [u8; 8],
    pub(crate) contacts: BTreeSet<i64>,
    pub(crate) flood: Option<FloodWait>,
    /// Method name -> FLOOD_WAIT for the account's next calls of it.
    pub(crate) method_floods: HashMap<String, FloodWait>,
    pub(crate) ban: Option<Ban>,
    /// The DC the account lives in: its requests are served there only.
    pub(crate) home_dc: i32,
    /// The common update sequence (`updates.getState`), moved by pts-carrying updates only.
    pub(crate) pts: i32,
    pub(crate) qts: i32,
    pub(crate) seq: i32,
    /// The pts-carrying updates of the common box, oldest first: what `updates.getDifference`
    /// answers from, without consuming anything.
    pub(crate) log: Vec<crate::updates::LoggedUpdate>,
    /// The id of the last private message the account received (ids are per account).
    pub(crate) last_message_id: i32,
    pub(crate) calls: HashMap<String, u64>,
}

/// An auth key the sandbox knows, and whom it is logged in as.
pub(crate) struct KeyRecord {
    pub(crate) key: ServerKey,
    /// `None` while logged in to nobody: then only the login methods work.
    pub(crate) account: Option<AccountId>,
    /// Live connections using this key, oldest first.
    pub(crate) connections: Vec<LiveConnection>,
    /// The MTProto sessions (ids chosen by the client) the server knows for this key.
    pub(crate) sessions: BTreeSet<i64>,
}

#[derive(Default)]
pub(crate) struct World {
    /// Accounts whose connections are refused (a network outage of one account).
    pub(crate) unreachable: BTreeSet<AccountId>,
    pub(crate) users: BTreeMap<i64, UserRecord>,
    /// Lower-cased username -> user id.
    pub(crate) usernames: HashMap<String, i64>,
    pub(crate) accounts: BTreeMap<AccountId, AccountRecord>,
    /// auth_key_id -> the key and whom it is logged in as: how a connection is recognised.
    pub(crate) keys: HashMap<[u8; 8], KeyRecord>,
    pub(crate) logins: crate::login::Logins,
    pub(crate) channels: crate::channels::Channels,
    /// Method name -> FLOOD_WAIT for its next calls, whatever key makes them.
    pub(crate) method_floods: HashMap<String, FloodWait>,
    /// Calls per method name (e.g. `users.getUsers`), all accounts together.
    pub(crate) calls: HashMap<String, u64>,
    pub(crate) connections_accepted: u64,
    next_connection_id: u64,
    /// Counts requests that subscribe their connection to updates; orders connections by
    /// activity.
    activity: u64,
    /// Where the dates of channels, posts and edits come from: the wall clock unless a faster
    /// world is played (see [`crate::Sandbox::set_message_clock`]).
    pub(crate) message_clock: Option<MessageClock>,
}

/// Unix seconds, as a world played faster than real time counts them.
pub type MessageClock = std::sync::Arc<dyn Fn() -> i32 + Send + Sync>;

/// Unix time in seconds, as Telegram's `date` fields carry it.
pub(crate) fn unix_now() -> i32 {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    i32::try_from(secs).unwrap_or(i32::MAX)
}

impl World {
    /// Now, for the `date` of a channel, a post or an edit.
    pub(crate) fn message_time(&self) -> i32 {
        self.message_clock
            .as_ref()
            .map_or_else(unix_now, |clock| clock())
    }

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
            // Users and channels share one username namespace, as on Telegram.
            if self.usernames.contains_key(&key) || self.channels.username_taken(&key) {
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
        let original_key = key.id();
        self.add_key(key, Some(id));
        self.accounts.insert(
            id,
            AccountRecord {
                original_key,
                contacts: BTreeSet::new(),
                flood: None,
                method_floods: HashMap::new(),
                ban: None,
                home_dc: crate::HOME_DC,
                pts: 1,
                qts: 0,
                seq: 0,
                log: Vec::new(),
                last_message_id: 0,
                calls: HashMap::new(),
            },
        );
        Ok(id)
    }

    /// Registers an auth key, logged in as `account` or (`None`) as nobody.
    pub(crate) fn add_key(&mut self, key: ServerKey, account: Option<AccountId>) {
        self.keys.insert(
            key.id(),
            KeyRecord {
                key,
                account,
                connections: Vec::new(),
                sessions: BTreeSet::new(),
            },
        );
    }

    /// Whom the key is logged in as; `None` for an unknown key or one logged in to nobody.
    pub(crate) fn account_of_key(&self, key: [u8; 8]) -> Option<AccountId> {
        self.keys.get(&key).and_then(|record| record.account)
    }

    /// Logs the key in as `account`, or out (`None`). Its live connections stay open and serve
    /// the new account from their next request on.
    pub(crate) fn set_key_account(&mut self, key: [u8; 8], account: Option<AccountId>) {
        if let Some(record) = self.keys.get_mut(&key) {
            record.account = account;
        }
    }

    /// The account's original pre-shared key.
    pub(crate) fn original_key(&self, account: AccountId) -> Result<&ServerKey, SandboxError> {
        let id = self.account(account)?.original_key;
        self.keys
            .get(&id)
            .map(|record| &record.key)
            .ok_or(SandboxError::UnknownAccount(account))
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
            // As on Telegram: an account sees its own phone (the one it logs in with).
            phone: if is_self {
                self.logins.phone_of(viewer)
            } else {
                None
            },
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
            match self.push(viewer, &Pushed::Short(Box::new(update)))? {
                0 => delivery.dropped += 1,
                reached => delivery.live += reached,
            }
        }
        Ok(delivery)
    }

    /// Sends updates to every authorization of the account (each key logged in to it), on the
    /// key's most recently active subscribed connection. Returns how many authorizations took
    /// them; what none took is not kept here (pts-carrying updates are in a log already).
    pub(crate) fn push(
        &mut self,
        account: AccountId,
        pushed: &Pushed,
    ) -> Result<usize, SandboxError> {
        // Telegram sends nothing to a banned account or to one that cannot be reached.
        let locked_out =
            self.account(account)?.ban.is_some() || self.unreachable.contains(&account);
        if locked_out {
            return Ok(0);
        }
        let keys: Vec<[u8; 8]> = self
            .keys
            .iter()
            .filter(|(_, record)| record.account == Some(account))
            .map(|(id, _)| *id)
            .collect();
        Ok(keys
            .into_iter()
            .filter(|key| self.push_to_key(*key, pushed.clone()).is_ok())
            .count())
    }

    /// Sends updates to the key's most recently active subscribed connection, forgetting dead
    /// ones on the way; gives the updates back if none took them. Also how keys logged in to
    /// nobody get `updateLoginToken`.
    pub(crate) fn push_to_key(&mut self, key: [u8; 8], pushed: Pushed) -> Result<(), Pushed> {
        let Some(record) = self.keys.get_mut(&key) else {
            return Err(pushed);
        };
        let mut pushed = pushed;
        loop {
            let Some(index) = record
                .connections
                .iter()
                .enumerate()
                .filter(|(_, live)| live.subscribed)
                .max_by_key(|(_, live)| live.last_active)
                .map(|(index, _)| index)
            else {
                return Err(pushed);
            };
            match record.connections[index].tx.send(ConnCommand::Push(pushed)) {
                Ok(()) => return Ok(()),
                Err(mpsc::error::SendError(cmd)) => {
                    // The task is gone without unregistering (it panicked or is exiting);
                    // forget it and try the next one.
                    record.connections.remove(index);
                    match cmd {
                        ConnCommand::Push(back) => pushed = back,
                        // Only pushes are sent here, so this cannot happen; there would be
                        // nothing left to deliver.
                        ConnCommand::Close => return Ok(()),
                    }
                }
            }
        }
    }

    /// Records a request on a connection: unless it came wrapped in `invokeWithoutUpdates`, the
    /// connection now takes updates and is its key's most recently active one.
    pub(crate) fn note_request(&mut self, key: [u8; 8], connection: u64, wants_updates: bool) {
        if !wants_updates {
            return;
        }
        self.activity += 1;
        let now = self.activity;
        if let Some(live) = self.keys.get_mut(&key).and_then(|record| {
            record
                .connections
                .iter_mut()
                .find(|live| live.id == connection)
        }) {
            live.subscribed = true;
            live.last_active = now;
        }
    }

    /// Remembers the session `session_id` of the key; true if it was new (the client must be
    /// told `new_session_created`).
    pub(crate) fn note_session(&mut self, key: [u8; 8], session_id: i64) -> bool {
        self.keys
            .get_mut(&key)
            .is_some_and(|record| record.sessions.insert(session_id))
    }

    /// Forgets a session of the key (`destroy_session`); false if it was not known.
    pub(crate) fn forget_session(&mut self, key: [u8; 8], session_id: i64) -> bool {
        self.keys
            .get_mut(&key)
            .is_some_and(|record| record.sessions.remove(&session_id))
    }

    /// Registers a connection that has proven its key (by decrypting) and session.
    pub(crate) fn register_connection(
        &mut self,
        key: [u8; 8],
        tx: mpsc::UnboundedSender<ConnCommand>,
    ) -> Option<u64> {
        let record = self.keys.get_mut(&key)?;
        self.next_connection_id += 1;
        let id = self.next_connection_id;
        record.connections.push(LiveConnection {
            id,
            tx,
            subscribed: false,
            last_active: 0,
        });
        Some(id)
    }

    pub(crate) fn unregister_connection(&mut self, key: [u8; 8], connection: u64) {
        if let Some(record) = self.keys.get_mut(&key) {
            record.connections.retain(|live| live.id != connection);
        }
    }

    /// Unregisters and closes every connection of the account (of all its keys); returns how
    /// many there were.
    ///
    /// Unregistering happens here, under the lock, so that no push can be sent to a connection
    /// that is about to close: later pushes find no connection, as in a real network drop.
    pub(crate) fn drop_connections(&mut self, account: AccountId) -> Result<usize, SandboxError> {
        self.account(account)?;
        Ok(self.close_connections(|owner| owner == Some(account)))
    }

    /// Closes every connection of every key (the sandbox is going away).
    pub(crate) fn close_all_connections(&mut self) {
        self.close_connections(|_| true);
    }

    fn close_connections(&mut self, whose: impl Fn(Option<AccountId>) -> bool) -> usize {
        let mut closed = 0;
        for record in self
            .keys
            .values_mut()
            .filter(|record| whose(record.account))
        {
            for connection in std::mem::take(&mut record.connections) {
                // A task that is already gone needs no closing.
                let _ = connection.tx.send(ConnCommand::Close);
                closed += 1;
            }
        }
        closed
    }

    /// How many live connections the account has, all its keys together.
    pub(crate) fn connection_count(&self, account: AccountId) -> Result<usize, SandboxError> {
        self.account(account)?;
        Ok(self
            .keys
            .values()
            .filter(|record| record.account == Some(account))
            .map(|record| record.connections.len())
            .sum())
    }

    /// Counts one call of `method` by `account` (`None`: by a key logged in to nobody, which
    /// only the totals count).
    pub(crate) fn count_call(&mut self, account: Option<AccountId>, method: &str) {
        *self.calls.entry(method.to_owned()).or_default() += 1;
        if let Some(record) = account.and_then(|account| self.accounts.get_mut(&account)) {
            *record.calls.entry(method.to_owned()).or_default() += 1;
        }
    }
}
