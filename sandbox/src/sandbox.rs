//! [`Sandbox`]: starts the server and is the control API that tests and the scenario player use.
//!
//! The login part of the control API (`set_phone`, `set_password`, `fresh_session_data`,
//! `login_code`, `accept_login_token`, ...) is in `login.rs`, next to the logic it drives.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};

use grammers_session::SessionData;
use grammers_session::storages::MemorySession;
use tokio::net::TcpListener;
use tokio::task::AbortHandle;

use crate::connection;
use crate::crypto::{ServerKey, random_key};
use crate::error::SandboxError;
use crate::world::MessageClock;
use crate::world::{AccountId, Ban, Delivery, FloodWait, UserStatus, World};

/// What the accept loop, every connection task and every handle share.
pub(crate) struct Shared {
    world: Mutex<World>,
}

impl Shared {
    /// Locks the world. A panic while holding the lock (a bug) must not wedge every later test
    /// step, and each world change is a few plain assignments, so a poisoned lock is taken over.
    pub(crate) fn world(&self) -> MutexGuard<'_, World> {
        self.world
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Stops the accept loop and closes every connection when the last handle goes away.
struct Lifetime {
    shared: Arc<Shared>,
    accept: Vec<AbortHandle>,
}

impl Drop for Lifetime {
    fn drop(&mut self) {
        for accept in &self.accept {
            accept.abort();
        }
        self.shared.world().close_all_connections();
    }
}

/// A running sandbox: a fake Telegram on 127.0.0.1 and the handle to drive it.
///
/// Cloning is cheap and every clone drives the same sandbox; the server stops when the last
/// clone is dropped. Must be started inside a tokio runtime.
#[derive(Clone)]
pub struct Sandbox {
    pub(crate) shared: Arc<Shared>,
    addr: SocketAddr,
    addr_v6: Option<SocketAddr>,
    /// Where each DC listens (127.0.0.1, a port each); [`crate::HOME_DC`] is at `addr`.
    pub(crate) dcs: Arc<BTreeMap<i32, SocketAddr>>,
    _lifetime: Arc<Lifetime>,
}

/// Serves every connection `listener` accepts as DC `dc`, until aborted.
fn accept_loop(listener: TcpListener, shared: Arc<Shared>, dc: i32) -> AbortHandle {
    tokio::spawn(async move {
        loop {
            match listener.accept().await {
                Ok((stream, _)) => {
                    // Answers are small and latency matters more than throughput here.
                    let _ = stream.set_nodelay(true);
                    shared.world().connections_accepted += 1;
                    tokio::spawn(connection::serve(stream, Arc::clone(&shared), dc));
                }
                // Running out of file descriptors and the like: keep serving the others.
                Err(err) => tracing::warn!(%err, "sandbox: accept failed"),
            }
        }
    })
    .abort_handle()
}

impl Sandbox {
    /// Binds 127.0.0.1 on a free port and starts accepting connections; also [::1] on a free
    /// port of its own when the machine has IPv6 loopback (see [`Self::addr_v6`]).
    pub async fn start() -> Result<Sandbox, SandboxError> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .map_err(SandboxError::Bind)?;
        let addr = listener.local_addr().map_err(SandboxError::Bind)?;
        // Clients given an IPv6 DC address (a Telethon session can carry one) connect here.
        let listener_v6 = match TcpListener::bind((Ipv6Addr::LOCALHOST, 0)).await {
            Ok(listener) => Some(listener),
            Err(err) => {
                tracing::debug!(%err, "sandbox: no IPv6 loopback, listening on IPv4 only");
                None
            }
        };
        let addr_v6 = listener_v6
            .as_ref()
            .and_then(|listener| listener.local_addr().ok());
        let shared = Arc::new(Shared {
            world: Mutex::new(World::default()),
        });

        let mut accept = vec![accept_loop(listener, Arc::clone(&shared), crate::HOME_DC)];
        accept.extend(
            listener_v6.map(|listener| accept_loop(listener, Arc::clone(&shared), crate::HOME_DC)),
        );
        let mut dcs = BTreeMap::from([(crate::HOME_DC, addr)]);
        for dc in crate::DCS.filter(|dc| *dc != crate::HOME_DC) {
            let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
                .await
                .map_err(SandboxError::Bind)?;
            dcs.insert(dc, listener.local_addr().map_err(SandboxError::Bind)?);
            accept.push(accept_loop(listener, Arc::clone(&shared), dc));
        }

        tracing::debug!(%addr, ?addr_v6, ?dcs, "sandbox: listening");
        Ok(Sandbox {
            shared: Arc::clone(&shared),
            addr,
            addr_v6,
            dcs: Arc::new(dcs),
            _lifetime: Arc::new(Lifetime { shared, accept }),
        })
    }

    /// Where DC `dc` listens; `None` outside 1..=5.
    pub fn dc_addr(&self, dc: i32) -> Option<SocketAddr> {
        self.dcs.get(&dc).copied()
    }

    /// Moves the account to DC `dc` (1..=5): it logs in there, and its requests made on any
    /// other DC are answered `303 USER_MIGRATE_<dc>` (a login by phone on another DC gets
    /// `PHONE_MIGRATE_<dc>`, a QR login accepted by it `auth.loginTokenMigrateTo`).
    pub fn set_home_dc(&self, account: AccountId, dc: i32) -> Result<(), SandboxError> {
        if !crate::DCS.contains(&dc) {
            return Err(SandboxError::UnknownDc(dc));
        }
        self.shared.world().account_mut(account)?.home_dc = dc;
        Ok(())
    }

    /// Where the sandbox listens (127.0.0.1 and the port it got).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Where the sandbox listens on [::1], if the machine has IPv6 loopback.
    pub fn addr_v6(&self) -> Option<SocketAddr> {
        self.addr_v6
    }

    /// Adds an account: a user that a client will be logged in as, with a fresh random auth key.
    pub fn add_account(
        &self,
        user_id: i64,
        access_hash: i64,
        username: Option<&str>,
        first_name: &str,
    ) -> Result<AccountId, SandboxError> {
        let key = ServerKey::new(random_key());
        self.shared
            .world()
            .add_account(user_id, access_hash, username, first_name, key)
    }

    /// The account's pre-shared auth key, as a grammers `DcOption` carries it.
    pub fn auth_key(&self, account: AccountId) -> Result<[u8; 256], SandboxError> {
        Ok(*self.shared.world().original_key(account)?.data())
    }

    /// The session data that points a grammers client at the sandbox, logged in as `account`:
    /// the account's home DC, every DC 1..=5 at its listener with the account's key (so the client never
    /// attempts a key exchange), and the self user cached with `is_self`, without which
    /// grammers' update stream never fetches `updates.getState`.
    ///
    /// Use it to seed any session storage; [`Self::session_for`] gives it as a `MemorySession`.
    pub fn session_data_for(&self, account: AccountId) -> Result<SessionData, SandboxError> {
        let key = self.auth_key(account)?;
        let access_hash = self
            .shared
            .world()
            .users
            .get(&account.user_id())
            .map(|user| user.access_hash)
            .ok_or(SandboxError::UnknownAccount(account))?;
        let home_dc = self.shared.world().account(account)?.home_dc;
        Ok(crate::session::session_data(
            &self.dcs,
            home_dc,
            key,
            Some((account.user_id(), access_hash)),
        ))
    }

    /// A second authorization of the account, as if it had logged in on another device: a new
    /// auth key logged in to it, and the session data that uses that key. Telegram sends each
    /// authorization its own copy of every update, so a client on this session does not take
    /// pushes away from one on [`Self::session_data_for`].
    pub fn new_authorization(&self, account: AccountId) -> Result<SessionData, SandboxError> {
        let data = random_key();
        let access_hash = {
            let mut world = self.shared.world();
            let access_hash = world
                .users
                .get(&account.user_id())
                .map(|user| user.access_hash)
                .ok_or(SandboxError::UnknownAccount(account))?;
            world.add_key(ServerKey::new(data), Some(account));
            access_hash
        };
        let home_dc = self.shared.world().account(account)?.home_dc;
        Ok(crate::session::session_data(
            &self.dcs,
            home_dc,
            data,
            Some((account.user_id(), access_hash)),
        ))
    }

    /// [`Self::session_data_for`] as grammers' in-memory session, ready for
    /// `SenderPool::new(Arc::new(session), api_id)`.
    pub fn session_for(&self, account: AccountId) -> Result<MemorySession, SandboxError> {
        self.session_data_for(account).map(MemorySession::from)
    }

    /// Adds a user (someone to watch). Usernames are unique, case-insensitively.
    pub fn add_user(
        &self,
        id: i64,
        access_hash: i64,
        username: Option<&str>,
        first_name: &str,
    ) -> Result<(), SandboxError> {
        self.shared
            .world()
            .add_user(id, access_hash, username, first_name)
    }

    /// Makes `user_id` a contact of `account`, so that the account is told when the user's
    /// status changes.
    pub fn add_contact(&self, account: AccountId, user_id: i64) -> Result<(), SandboxError> {
        let mut world = self.shared.world();
        if !world.users.contains_key(&user_id) {
            return Err(SandboxError::UnknownUser(user_id));
        }
        world.account_mut(account)?.contacts.insert(user_id);
        Ok(())
    }

    /// The user's current status.
    pub fn user_status(&self, user_id: i64) -> Result<UserStatus, SandboxError> {
        self.shared
            .world()
            .users
            .get(&user_id)
            .map(|user| user.status)
            .ok_or(SandboxError::UnknownUser(user_id))
    }

    /// Changes the user's status; every later answer carries it, and every account that has the
    /// user as a contact gets an `updateUserStatus` pushed (or queued for its next
    /// `updates.getDifference` when it has no live connection).
    pub fn set_user_status(
        &self,
        user_id: i64,
        status: UserStatus,
    ) -> Result<Delivery, SandboxError> {
        self.shared.world().set_user_status(user_id, status)
    }

    /// The next `calls` API calls of the account fail with `420 FLOOD_WAIT_<seconds>` (which
    /// grammers reports as name `FLOOD_WAIT`, value `seconds`). Connection setup and the update
    /// machinery (`updates.getState`, `updates.getDifference`) are spared. Replaces any earlier
    /// injection; `calls = 0` clears it.
    pub fn inject_flood_wait(
        &self,
        account: AccountId,
        seconds: u32,
        calls: u32,
    ) -> Result<(), SandboxError> {
        let mut world = self.shared.world();
        world.account_mut(account)?.flood = (calls > 0).then_some(FloodWait {
            seconds,
            remaining: calls,
        });
        Ok(())
    }

    /// The next `calls` calls of the TL method `method` (e.g. `auth.sendCode`), whatever key
    /// makes them (logged in or not), fail with `420 FLOOD_WAIT_<seconds>`. Unlike
    /// [`Self::inject_flood_wait`] nothing is spared but `help.getConfig` (connection setup): the
    /// test names the method. Replaces any earlier injection for the method; `calls = 0` clears
    /// it.
    pub fn inject_method_flood_wait(&self, method: &str, seconds: u32, calls: u32) {
        let mut world = self.shared.world();
        if calls == 0 {
            world.method_floods.remove(method);
        } else {
            world.method_floods.insert(
                method.to_owned(),
                FloodWait {
                    seconds,
                    remaining: calls,
                },
            );
        }
    }

    /// The account's next `calls` calls of the TL method `method` fail with
    /// `420 FLOOD_WAIT_<seconds>`; its other calls, and other accounts, are not affected. Replaces
    /// any earlier injection for the method; `calls = 0` clears it.
    pub fn inject_account_method_flood_wait(
        &self,
        account: AccountId,
        method: &str,
        seconds: u32,
        calls: u32,
    ) -> Result<(), SandboxError> {
        let mut world = self.shared.world();
        let floods = &mut world.account_mut(account)?.method_floods;
        if calls == 0 {
            floods.remove(method);
        } else {
            floods.insert(
                method.to_owned(),
                FloodWait {
                    seconds,
                    remaining: calls,
                },
            );
        }
        Ok(())
    }

    /// Every later call of the account fails with `401` and the ban's name (connection setup
    /// still succeeds, as on Telegram, so the error reaches the caller of the request). It
    /// covers every key of the account: its original one and those of its logins.
    pub fn ban(&self, account: AccountId, ban: Ban) -> Result<(), SandboxError> {
        self.shared.world().account_mut(account)?.ban = Some(ban);
        Ok(())
    }

    /// Lifts a ban.
    pub fn unban(&self, account: AccountId) -> Result<(), SandboxError> {
        self.shared.world().account_mut(account)?.ban = None;
        Ok(())
    }

    /// Closes every TCP connection of the account, as a network drop would. grammers reconnects
    /// on its next request and then asks `updates.getDifference`, which hands over whatever was
    /// pushed in between. Returns how many connections were closed.
    pub fn drop_connections(&self, account: AccountId) -> Result<usize, SandboxError> {
        self.shared.world().drop_connections(account)
    }

    /// Dates channels, posts and edits by `clock` (Unix seconds) instead of the wall clock, for a
    /// world played faster than real time (the demo's), so that they agree with the statuses its
    /// players set. Protocol times (message ids, login token expiry) stay on the wall clock.
    pub fn set_message_clock(&self, clock: MessageClock) {
        self.shared.world().message_clock = Some(clock);
    }

    /// Cuts the account off the network (or reconnects it): its connections close and new ones
    /// are closed at their first packet, so every connection attempt fails, as in an outage of
    /// that account's network. Nothing is pushed to it meanwhile.
    pub fn set_unreachable(
        &self,
        account: AccountId,
        unreachable: bool,
    ) -> Result<(), SandboxError> {
        let mut world = self.shared.world();
        world.account(account)?;
        if unreachable {
            world.unreachable.insert(account);
            world.drop_connections(account)?;
        } else {
            world.unreachable.remove(&account);
        }
        Ok(())
    }

    /// How many connections of the account are live (have sent at least one message).
    pub fn connection_count(&self, account: AccountId) -> Result<usize, SandboxError> {
        self.shared.world().connection_count(account)
    }

    /// How many TCP connections were accepted so far, all accounts together.
    pub fn connections_accepted(&self) -> u64 {
        self.shared.world().connections_accepted
    }

    /// How many times `method` (TL name, e.g. `users.getUsers`) was called, all accounts
    /// together. Calls refused by an injected ban or FLOOD_WAIT count too: they reached the
    /// server. Wrappers are not counted, only what they carry (`help.getConfig` once per
    /// connection).
    pub fn calls(&self, method: &str) -> u64 {
        self.shared.world().calls.get(method).copied().unwrap_or(0)
    }

    /// How many times the account called `method`.
    pub fn account_calls(&self, account: AccountId, method: &str) -> Result<u64, SandboxError> {
        Ok(self
            .shared
            .world()
            .account(account)?
            .calls
            .get(method)
            .copied()
            .unwrap_or(0))
    }

    /// Every method called so far with its count, all accounts together.
    pub fn call_counts(&self) -> BTreeMap<String, u64> {
        self.shared
            .world()
            .calls
            .iter()
            .map(|(method, count)| (method.clone(), *count))
            .collect()
    }
}
