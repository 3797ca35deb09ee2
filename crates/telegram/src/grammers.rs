//! The grammers adapter: the Telegram port over real MTProto, with grammers-client 0.11.
//!
//! One [`GrammersConnector`] holds the grammers session of every account (registered by whoever
//! loads or logs in the account). `connect` starts a `SenderPool` for the account, checks that
//! the session is still logged in, and starts four tasks:
//!
//! * the pool's runner, which drives the network;
//! * the relay between the pool and grammers' update stream, which also tells the account of
//!   every connection grammers had to recreate ([`Update::Gap`]: statuses pushed meanwhile are
//!   lost, so the account polls everyone);
//! * the update forwarder, which turns pushed `updateUserStatus` into [`Update::UserStatus`] and
//!   channel posts, edits and deletions (pushed, or fetched by grammers itself with
//!   `updates.getChannelDifference` after a gap) into the `Update::Channel*` variants, and
//!   ends (closing [`Connection::updates`]) when the stream cannot go on;
//! * a watchdog, a cheap `updates.getState` every minute: grammers reconnects only when a request
//!   is made, so without it a quiet account would never notice that its connection dropped, and
//!   pushes would stop.
//!
//! Every grammers call runs in a task of its own, under a timeout: grammers panics on some odd
//! answers, and a panic or a hang in there must cost one call, not the account actor (whose
//! `ctx.wait` would block) or the service.
//!
//! Retries are left to the caller (`NoRetries`): the account actor decides what a FLOOD_WAIT or a
//! dropped connection means for its queue.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, PoisonError, Weak},
    time::Duration,
};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use grammers_client::{
    Client, InvocationError, SenderPool,
    client::UpdateStream,
    sender::{ConnectionParams, NoRetries, RpcError, SenderPoolHandle, UpdatesConfiguration},
    tl,
    update::Update as GrammersUpdate,
};
use grammers_session::Session;
use grammers_session::updates::UpdatesLike;
use tokio::{
    sync::mpsc,
    task::{AbortHandle, JoinError},
};

use super::stored_session::needs_ipv6;
use super::{
    AccountIdentity, ChannelMessage, ChannelRef, ChatMessage, Connection, Dialog, InputChannel,
    InputUser, SelfUser, TelegramChannel, TelegramConnector, TelegramError, TelegramSession,
    TelegramUser, Update, Username,
};
use tgwatch_core::presence::Status;

/// Channels and chats: joining, history, dialogs, pushed channel updates.
mod channels;

/// How often the watchdog asks `updates.getState` (real time: it is about network health).
const DEFAULT_WATCHDOG_INTERVAL: Duration = Duration::from_secs(60);
/// How long one call may take before it counts as a broken connection. A request on a dead
/// socket can otherwise wait for grammers' keepalive to notice, and the account actor waits too.
const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// Updates buffered for the account actor. It drains them at once; the bound only keeps a stuck
/// actor from growing memory (the forwarder then waits, and grammers drops new pushes itself).
const UPDATES_CAPACITY: usize = 1024;
/// Consecutive failures of the update stream before it is given up (the actor then reconnects).
/// A failure or two is normal: a getDifference racing a connection close fails, and the next
/// call on the stream reconnects.
const MAX_STREAM_FAILURES: u32 = 8;
/// grammers' own buffer of received updates; see `connect`.
const UPDATES_BUFFER: std::num::NonZeroUsize = match std::num::NonZeroUsize::new(100_000) {
    Some(capacity) => capacity,
    None => std::num::NonZeroUsize::MIN,
};
/// A 420 without a number still means "slow down"; wait a minute rather than hammer on.
const FLOOD_WAIT_WITHOUT_SECONDS: u32 = 60;
/// 401 names Telegram uses for an account that cannot be used until someone acts. Any 401 is
/// treated so; the names are also matched on their own in case the code is not 401.
const UNAUTHORIZED_NAMES: [&str; 4] = [
    "AUTH_KEY_UNREGISTERED",
    "SESSION_REVOKED",
    "USER_DEACTIVATED",
    "USER_DEACTIVATED_BAN",
];

/// Builds a sender pool over one account's session (the session type is erased here, so that
/// in-memory and database-backed sessions can sit in one connector).
type PoolFactory = Arc<dyn Fn(ConnectionParams) -> SenderPool + Send + Sync>;

/// Connects accounts to Telegram with grammers. See the module documentation.
pub struct GrammersConnector {
    api_id: i32,
    /// Each account's session, as a factory of sender pools. Logins add to it while the service
    /// runs, and a session reset removes from it.
    pools: Mutex<HashMap<String, PoolFactory>>,
    watchdog_interval: Duration,
    call_timeout: Duration,
    /// The live connection of each account, so that a new `connect` can stop the previous one:
    /// grammers must not run two pools over one session.
    live: Mutex<HashMap<String, Weak<Teardown>>>,
}

impl GrammersConnector {
    /// A connector for the accounts in `sessions` (account label -> logged-in grammers session).
    pub fn new<S>(api_id: i32, sessions: HashMap<String, Arc<S>>) -> GrammersConnector
    where
        S: Session,
        S::Error: std::error::Error + Send + Sync + 'static,
    {
        let connector = GrammersConnector {
            api_id,
            pools: Mutex::new(HashMap::new()),
            watchdog_interval: DEFAULT_WATCHDOG_INTERVAL,
            call_timeout: DEFAULT_CALL_TIMEOUT,
            live: Mutex::new(HashMap::new()),
        };
        sessions
            .into_iter()
            .fold(connector, |connector, (label, session)| {
                connector.with_session(label, session)
            })
    }

    /// Adds (or replaces) the session of one account; its type may differ from the others'.
    pub fn with_session<S>(self, label: impl Into<String>, session: Arc<S>) -> Self
    where
        S: Session,
        S::Error: std::error::Error + Send + Sync + 'static,
    {
        self.register(label, session);
        self
    }

    /// Adds (or replaces) the session of one account while the service runs (after a login).
    /// The next `connect` of the account uses it.
    pub fn register<S>(&self, label: impl Into<String>, session: Arc<S>)
    where
        S: Session,
        S::Error: std::error::Error + Send + Sync + 'static,
    {
        let api_id = self.api_id;
        let factory: PoolFactory = Arc::new(move |params| {
            let params = ConnectionParams {
                use_ipv6: needs_ipv6(&*session),
                ..params
            };
            SenderPool::with_configuration(Arc::clone(&session), api_id, params)
        });
        self.pools().insert(label.into(), factory);
    }

    /// Forgets the account's session and closes its connection (a session reset).
    pub fn unregister(&self, label: &str) {
        self.pools().remove(label);
        if let Some(live) = self.live().remove(label).and_then(|weak| weak.upgrade()) {
            live.shutdown();
        }
    }

    pub fn api_id(&self) -> i32 {
        self.api_id
    }

    pub fn call_timeout(&self) -> Duration {
        self.call_timeout
    }

    fn pools(&self) -> std::sync::MutexGuard<'_, HashMap<String, PoolFactory>> {
        // Plain map operations: a panic elsewhere cannot leave it half-changed.
        self.pools.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// How often a connection checks itself with `updates.getState` (60 s by default).
    pub fn with_watchdog_interval(mut self, interval: Duration) -> Self {
        self.watchdog_interval = interval.max(Duration::from_millis(10));
        self
    }

    /// How long one call may take before it fails as a connection error (30 s by default).
    pub fn with_call_timeout(mut self, timeout: Duration) -> Self {
        self.call_timeout = timeout;
        self
    }

    fn live(&self) -> std::sync::MutexGuard<'_, HashMap<String, Weak<Teardown>>> {
        // Plain map operations: a panic elsewhere cannot leave it half-changed.
        self.live.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl std::fmt::Debug for GrammersConnector {
    /// Labels only: a session holds auth keys, which must never reach a log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GrammersConnector")
            .field("api_id", &self.api_id)
            .field("accounts", &self.pools().keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl TelegramConnector for GrammersConnector {
    async fn connect(&self, account: &AccountIdentity) -> Result<Connection, TelegramError> {
        let label = account.label.as_str();
        let Some(factory) = self.pools().get(label).cloned() else {
            return Err(TelegramError::NotLoggedIn);
        };
        let previous = self.live().remove(label).and_then(|weak| weak.upgrade());
        if let Some(previous) = previous {
            tracing::debug!(account = label, "stopping the previous connection first");
            previous.shutdown();
        }

        // grammers' defaults describe the device by running `lsb_release` and the like: off the
        // async threads.
        let defaults = tokio::task::spawn_blocking(ConnectionParams::default)
            .await
            .map_err(join_failed)?;
        let params = ConnectionParams {
            app_version: env!("CARGO_PKG_VERSION").to_owned(),
            // FLOOD_WAIT and dropped connections must reach the account actor, which pauses or
            // reconnects; grammers' default would sleep inside the call.
            retry_policy: Box::new(NoRetries),
            // grammers DROPS updates when this buffer is full (default 100): a burst of channel
            // posts would be lost. The forwarder drains it at once, so it only fills in bursts.
            updates_channel_capacity: UPDATES_BUFFER,
            ..defaults
        };
        let SenderPool {
            runner,
            handle,
            updates,
        } = factory(params);
        let runner_task = tokio::spawn(runner.run());
        let runner_abort = runner_task.abort_handle();
        // From here on, dropping `teardown` (on any early return too) stops everything started.
        let teardown = Arc::new(Teardown {
            pool: handle.thin.clone(),
            tasks: Mutex::new(vec![runner_abort.clone()]),
        });
        let client = Client::new(handle);

        // What `is_authorized` does, but keeping the 401's name (a ban reads differently from a
        // revoked session to whoever has to act on it).
        match invoke(
            &client,
            self.call_timeout,
            tl::functions::updates::GetState {},
        )
        .await
        {
            Ok(_) => {}
            Err(error) => {
                tracing::warn!(account = label, %error, "cannot connect the account");
                return Err(error);
            }
        }

        // grammers tells its update stream when it had to recreate the connection
        // (`ConnectionClosed`): the stream then asks for the difference. The account must hear
        // of it too, since status changes pushed meanwhile are in no difference: the relay
        // passes everything on and sends a `Gap` beside.
        let (updates_tx, updates_rx) = mpsc::channel(UPDATES_CAPACITY);
        let (relayed_tx, relayed_rx) = mpsc::channel(UPDATES_BUFFER.get());
        teardown.add(
            tokio::spawn(relay_updates(
                updates,
                relayed_tx,
                updates_tx.downgrade(),
                label.to_owned(),
            ))
            .abort_handle(),
        );
        let stream = {
            let client = client.clone();
            let started = tokio::spawn(async move {
                client
                    .stream_updates(relayed_rx, UpdatesConfiguration { catch_up: false })
                    .await
                    .map_err(|error| TelegramError::Connection(format!("update stream: {error}")))
            });
            match tokio::time::timeout(self.call_timeout, started).await {
                Ok(Ok(result)) => result?,
                Ok(Err(join_error)) => return Err(join_failed(join_error)),
                Err(_) => {
                    return Err(TelegramError::Connection(
                        "the update stream did not start in time".into(),
                    ));
                }
            }
        };

        let watchdog_updates = updates_tx.downgrade();
        let forwarder = tokio::spawn(forward_updates(
            stream,
            updates_tx,
            runner_abort,
            label.to_owned(),
        ))
        .abort_handle();
        let watchdog = tokio::spawn(watchdog(
            client.clone(),
            self.watchdog_interval,
            self.call_timeout,
            forwarder.clone(),
            watchdog_updates,
            label.to_owned(),
        ))
        .abort_handle();
        teardown.add(forwarder);
        teardown.add(watchdog);
        self.live()
            .insert(label.to_owned(), Arc::downgrade(&teardown));
        tracing::info!(account = label, "connected to Telegram with grammers");

        Ok(Connection {
            session: Arc::new(GrammersSession {
                client,
                account: label.to_owned(),
                call_timeout: self.call_timeout,
                peers: channels::PeerCache::default(),
                _teardown: teardown,
            }),
            updates: updates_rx,
        })
    }
}

/// Stops a connection's pool and tasks when the last handle on the connection goes away (the
/// account actor drops its session when it reconnects), or when a new connection replaces it.
struct Teardown {
    pool: SenderPoolHandle,
    tasks: Mutex<Vec<AbortHandle>>,
}

impl Teardown {
    fn add(&self, task: AbortHandle) {
        self.tasks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(task);
    }

    /// Idempotent. Aborting the forwarder drops the updates sender, which tells the account
    /// actor that this connection is over.
    fn shutdown(&self) {
        // False only when the runner is already gone, which is what we want anyway.
        let _ = self.pool.quit();
        for task in self
            .tasks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
        {
            task.abort();
        }
    }
}

impl Drop for Teardown {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// One account's live connection.
struct GrammersSession {
    client: Client,
    account: String,
    call_timeout: Duration,
    /// Access hashes of the chats this connection has seen, for `chat_history`.
    peers: channels::PeerCache,
    _teardown: Arc<Teardown>,
}

#[async_trait]
impl TelegramSession for GrammersSession {
    async fn get_users(&self, users: &[InputUser]) -> Result<Vec<TelegramUser>, TelegramError> {
        if users.is_empty() {
            return Ok(Vec::new());
        }
        // Min users come back without an access hash: keep the one we asked with.
        let hashes: HashMap<i64, i64> = users
            .iter()
            .map(|user| (user.id, user.access_hash))
            .collect();
        // The whole batch in one call: polling costs one request per batch, not per user.
        let request = tl::functions::users::GetUsers {
            id: users
                .iter()
                .map(|user| {
                    tl::enums::InputUser::User(tl::types::InputUser {
                        user_id: user.id,
                        access_hash: user.access_hash,
                    })
                })
                .collect(),
        };
        let answer = invoke(&self.client, self.call_timeout, request)
            .await
            .inspect_err(|error| {
                tracing::warn!(account = %self.account, users = users.len(), %error, "users.getUsers failed");
            })?;
        let found: Vec<TelegramUser> = answer
            .into_iter()
            .filter_map(|user| telegram_user(user, &hashes))
            .collect();
        tracing::debug!(
            account = %self.account,
            asked = users.len(),
            found = found.len(),
            "users.getUsers"
        );
        Ok(found)
    }

    async fn get_me(&self) -> Result<SelfUser, TelegramError> {
        let request = tl::functions::users::GetUsers {
            id: vec![tl::enums::InputUser::UserSelf],
        };
        let answer = invoke(&self.client, self.call_timeout, request)
            .await
            .inspect_err(|error| {
                tracing::warn!(account = %self.account, %error, "users.getUsers of self failed");
            })?;
        match answer.into_iter().next() {
            Some(tl::enums::User::User(user)) => Ok(SelfUser {
                id: user.id,
                first_name: user.first_name,
                last_name: user.last_name,
                username: user.username,
                phone: user.phone,
            }),
            // Telegram always knows the self user of a working session.
            _ => Err(TelegramError::Rpc {
                code: 400,
                name: "USER_EMPTY".into(),
            }),
        }
    }

    async fn resolve_username(
        &self,
        username: &Username,
    ) -> Result<Option<TelegramUser>, TelegramError> {
        let request = tl::functions::contacts::ResolveUsername {
            username: username.as_str().to_owned(),
            referer: None,
        };
        let resolved = match invoke(&self.client, self.call_timeout, request).await {
            Ok(tl::enums::contacts::ResolvedPeer::Peer(resolved)) => resolved,
            Err(TelegramError::Rpc { name, .. })
                if name == "USERNAME_NOT_OCCUPIED" || name == "USERNAME_INVALID" =>
            {
                tracing::debug!(account = %self.account, %username, reason = %name, "username not found");
                return Ok(None);
            }
            Err(error) => {
                tracing::warn!(account = %self.account, %username, %error, "contacts.resolveUsername failed");
                return Err(error);
            }
        };
        let tl::enums::Peer::User(peer) = resolved.peer else {
            // A channel or a group has this name: not someone whose presence can be watched.
            tracing::debug!(account = %self.account, %username, "username belongs to a chat, not a user");
            return Ok(None);
        };
        let user = resolved
            .users
            .into_iter()
            .filter_map(|user| telegram_user(user, &HashMap::new()))
            .find(|user| user.id == peer.user_id);
        tracing::debug!(account = %self.account, %username, found = user.is_some(), "contacts.resolveUsername");
        Ok(user)
    }

    // The channel and chat methods live in `channels`.

    async fn join_channel(&self, channel: &ChannelRef) -> Result<TelegramChannel, TelegramError> {
        channels::join_channel(self, channel).await
    }

    async fn channel_history(
        &self,
        channel: InputChannel,
        after_id: i32,
        limit: usize,
    ) -> Result<Vec<ChannelMessage>, TelegramError> {
        channels::channel_history(self, channel, after_id, limit).await
    }

    async fn channel_info(&self, channel: InputChannel) -> Result<TelegramChannel, TelegramError> {
        channels::channel_info(self, channel).await
    }

    async fn leave_channel(&self, channel: InputChannel) -> Result<(), TelegramError> {
        channels::leave_channel(self, channel).await
    }

    async fn dialogs(&self, limit: usize) -> Result<Vec<Dialog>, TelegramError> {
        channels::dialogs(self, limit).await
    }

    async fn chat_history(
        &self,
        chat_id: i64,
        before_id: i32,
        limit: usize,
    ) -> Result<Vec<ChatMessage>, TelegramError> {
        channels::chat_history(self, chat_id, before_id, limit).await
    }
}

/// Runs one grammers call in a task of its own, under `timeout`. A panic in grammers becomes a
/// connection error (the actor reconnects), and dropping the returned future cancels the call.
pub(super) async fn invoke<R>(
    client: &Client,
    timeout: Duration,
    request: R,
) -> Result<R::Return, TelegramError>
where
    R: tl::RemoteCall + Send + Sync + 'static,
    R::Return: Send + 'static,
{
    let client = client.clone();
    let task = tokio::spawn(async move { client.invoke(&request).await });
    let _cancel_on_drop = AbortOnDrop(task.abort_handle());
    match tokio::time::timeout(timeout, task).await {
        Ok(Ok(result)) => result.map_err(|error| map_invocation_error(&error)),
        Ok(Err(join_error)) => Err(join_failed(join_error)),
        Err(_) => Err(TelegramError::Connection(format!(
            "no answer from Telegram within {} s",
            timeout.as_secs_f64()
        ))),
    }
}

struct AbortOnDrop(AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        // A no-op once the task has finished.
        self.0.abort();
    }
}

pub(super) fn join_failed(error: JoinError) -> TelegramError {
    if !error.is_panic() {
        return TelegramError::Connection("grammers call was cancelled".into());
    }
    let payload = error.into_panic();
    let message = payload
        .downcast_ref::<&str>()
        .map(|text| (*text).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "no message".to_owned());
    tracing::error!(panic = %message, "grammers panicked");
    TelegramError::Connection(format!("grammers panicked: {message}"))
}

/// What a grammers error means to the service.
///
/// RPC FLOOD_WAIT_N (any 420) -> [`TelegramError::FloodWait`]; a 401 or one of the ban and
/// revocation names -> [`TelegramError::Unauthorized`] with the name; other RPC errors ->
/// [`TelegramError::Rpc`]; everything else (I/O, a dropped request, transport errors, an
/// answer we cannot read, the session store) -> [`TelegramError::Connection`], which the actor
/// handles by reconnecting with backoff.
pub fn map_invocation_error(error: &InvocationError) -> TelegramError {
    match error {
        InvocationError::Rpc(rpc) => map_rpc_error(rpc),
        other => TelegramError::Connection(other.to_string()),
    }
}

fn map_rpc_error(rpc: &RpcError) -> TelegramError {
    if rpc.code == 420 || rpc.name == "FLOOD_WAIT" {
        return TelegramError::FloodWait {
            seconds: rpc.value.unwrap_or(FLOOD_WAIT_WITHOUT_SECONDS),
        };
    }
    if rpc.code == 401 || UNAUTHORIZED_NAMES.contains(&rpc.name.as_str()) {
        return TelegramError::Unauthorized {
            reason: rpc.name.clone(),
        };
    }
    if rpc.code == 303
        && let Some(dc) = rpc.value.and_then(|dc| i32::try_from(dc).ok())
    {
        return TelegramError::Migrate {
            name: rpc.name.clone(),
            dc,
        };
    }
    TelegramError::Rpc {
        code: rpc.code,
        name: rpc.name.clone(),
    }
}

/// grammers' (raw) `UserStatus` as ours. An absent status is what Telegram sends for bots and
/// users who never set one: `Unknown`, like `userStatusEmpty`.
pub fn map_status(status: Option<&tl::enums::UserStatus>) -> Status {
    use tl::enums::UserStatus as S;
    match status {
        Some(S::Online(online)) => match timestamp(online.expires) {
            Some(expires) => Status::Online { expires },
            None => Status::Unknown,
        },
        Some(S::Offline(offline)) => Status::Offline {
            was_online: timestamp(offline.was_online),
        },
        Some(S::Recently(_)) => Status::Recently,
        Some(S::LastWeek(_)) => Status::LastWeek,
        Some(S::LastMonth(_)) => Status::LastMonth,
        Some(S::Empty) | None => Status::Unknown,
    }
}

/// Telegram's Unix seconds; 0 means "not known".
fn timestamp(seconds: i32) -> Option<DateTime<Utc>> {
    (seconds > 0)
        .then(|| DateTime::from_timestamp(i64::from(seconds), 0))
        .flatten()
}

/// A user as the port describes it; `None` for `userEmpty` (deleted or unknown).
fn telegram_user(user: tl::enums::User, asked_hashes: &HashMap<i64, i64>) -> Option<TelegramUser> {
    let tl::enums::User::User(user) = user else {
        return None;
    };
    let access_hash = user
        .access_hash
        .or_else(|| asked_hashes.get(&user.id).copied())
        .unwrap_or(0);
    Some(TelegramUser {
        id: user.id,
        access_hash,
        username: user.username,
        first_name: user.first_name,
        status: map_status(user.status.as_ref()),
    })
}

/// The port's update for one of grammers'; `None` for those the service does not use. The raw
/// update decides: grammers wraps channel messages as `NewMessage` / `MessageEdited` /
/// `MessageDeleted` (or as `Raw` when a message names no peer), statuses as `Raw`.
fn port_update(update: &GrammersUpdate) -> Option<Update> {
    match update.raw() {
        tl::enums::Update::UserStatus(pushed) => Some(Update::UserStatus {
            user_id: pushed.user_id,
            status: map_status(Some(&pushed.status)),
        }),
        raw => channels::channel_update(raw, |_sender| sender_name_of(update)),
    }
}

/// The name of a message's sender as it came with the update (a user's full name, a chat's
/// title), for posts that carry no signature.
fn sender_name_of(update: &GrammersUpdate) -> Option<String> {
    let (GrammersUpdate::NewMessage(message) | GrammersUpdate::MessageEdited(message)) = update
    else {
        return None;
    };
    match message.sender()? {
        grammers_client::peer::Peer::User(user) => Some(user.full_name()),
        peer => peer.name().map(str::to_owned),
    }
}

/// Forwards pushed status changes and channel updates until the stream cannot go on or nobody
/// listens. Ending drops `updates`, which tells the account actor that the connection is lost.
async fn forward_updates(
    mut stream: UpdateStream,
    updates: mpsc::Sender<Update>,
    runner: AbortHandle,
    account: String,
) {
    let mut failures = 0u32;
    loop {
        let next = tokio::select! {
            // Nobody listens any more: stop pulling (cancelling `next` is fine as we stop).
            () = updates.closed() => return,
            next = stream.next() => next,
        };
        match next {
            Ok(update) => {
                failures = 0;
                let Some(update) = port_update(&update) else {
                    continue;
                };
                tracing::trace!(account = %account, ?update, "pushed update");
                if updates.send(update).await.is_err() {
                    return;
                }
            }
            Err(error) => {
                let mapped = map_invocation_error(&error);
                if runner.is_finished() {
                    tracing::warn!(account = %account, %error, "update stream ended: the sender pool stopped");
                    return;
                }
                if let TelegramError::Unauthorized { reason } = mapped {
                    tracing::warn!(account = %account, reason, "update stream ended: account unauthorized");
                    let _ = updates.send(Update::Unauthorized { reason }).await;
                    return;
                }
                failures += 1;
                if failures >= MAX_STREAM_FAILURES {
                    tracing::warn!(account = %account, %error, failures, "update stream ended: it keeps failing");
                    return;
                }
                // The next call on the stream reconnects; give the network a moment first.
                let wait = Duration::from_millis(50 << failures.min(6));
                tracing::debug!(account = %account, %error, failures, ?wait, "update stream failed; retrying");
                tokio::time::sleep(wait).await;
            }
        }
    }
}

/// Passes grammers' updates on to its update stream, and tells the account of every connection
/// grammers had to recreate (a `Gap`) until nobody listens.
async fn relay_updates(
    mut from_grammers: mpsc::Receiver<UpdatesLike>,
    to_stream: mpsc::Sender<UpdatesLike>,
    // Weak: the account's updates end when the forwarder ends, not when this does.
    to_account: mpsc::WeakSender<Update>,
    account: String,
) {
    while let Some(update) = from_grammers.recv().await {
        if matches!(update, UpdatesLike::ConnectionClosed) {
            tracing::debug!(account = %account, "connection recreated: pushes may have been missed");
            if let Some(to_account) = to_account.upgrade() {
                // Not awaited here: grammers' own buffer must keep draining meanwhile.
                tokio::spawn(async move {
                    let _ = to_account.send(Update::Gap).await;
                });
            }
        }
        if to_stream.send(update).await.is_err() {
            return;
        }
    }
}

/// A cheap request now and then, so that a dropped home connection is re-established (grammers
/// reconnects only on a request) and a revoked account is noticed even when nothing is polled.
async fn watchdog(
    client: Client,
    interval: Duration,
    timeout: Duration,
    forwarder: AbortHandle,
    // Weak: the updates end when the forwarder ends, which is how the actor learns of it.
    updates: mpsc::WeakSender<Update>,
    account: String,
) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // The first tick is immediate; `connect` has just asked getState.
    ticker.tick().await;
    loop {
        ticker.tick().await;
        match invoke(&client, timeout, tl::functions::updates::GetState {}).await {
            Ok(_) => tracing::trace!(account = %account, "watchdog: connection alive"),
            Err(TelegramError::Unauthorized { reason }) => {
                tracing::warn!(account = %account, reason, "watchdog: account unauthorized");
                // The updates end with the reason, so the actor gives the account up at once
                // (the strong sender is taken first: the forwarder's goes with it).
                if let Some(updates) = updates.upgrade() {
                    forwarder.abort();
                    let _ = updates.send(Update::Unauthorized { reason }).await;
                }
                return;
            }
            // grammers reconnects on the next request; the next tick is that request.
            Err(error) => tracing::info!(account = %account, %error, "watchdog: request failed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rpc(code: i32, message: &str) -> InvocationError {
        InvocationError::Rpc(RpcError::from(tl::types::RpcError {
            error_code: code,
            error_message: message.into(),
        }))
    }

    #[test]
    fn flood_wait_carries_its_seconds() {
        assert_eq!(
            map_invocation_error(&rpc(420, "FLOOD_WAIT_120")),
            TelegramError::FloodWait { seconds: 120 }
        );
        assert_eq!(
            map_invocation_error(&rpc(420, "FLOOD_PREMIUM_WAIT_7")),
            TelegramError::FloodWait { seconds: 7 }
        );
        assert_eq!(
            map_invocation_error(&rpc(420, "FLOOD_WAIT")),
            TelegramError::FloodWait {
                seconds: FLOOD_WAIT_WITHOUT_SECONDS
            }
        );
    }

    #[test]
    fn bans_and_revocations_are_unauthorized_with_their_name() {
        for name in UNAUTHORIZED_NAMES.into_iter().chain(["SESSION_EXPIRED"]) {
            assert_eq!(
                map_invocation_error(&rpc(401, name)),
                TelegramError::Unauthorized {
                    reason: name.into()
                }
            );
        }
        // The name alone is enough.
        assert_eq!(
            map_invocation_error(&rpc(403, "USER_DEACTIVATED_BAN")),
            TelegramError::Unauthorized {
                reason: "USER_DEACTIVATED_BAN".into()
            }
        );
    }

    #[test]
    fn migrate_errors_name_the_dc_to_ask() {
        for name in ["PHONE_MIGRATE", "USER_MIGRATE", "NETWORK_MIGRATE"] {
            assert_eq!(
                map_invocation_error(&rpc(303, &format!("{name}_4"))),
                TelegramError::Migrate {
                    name: name.into(),
                    dc: 4
                }
            );
        }
    }

    #[test]
    fn other_rpc_errors_keep_code_and_name() {
        assert_eq!(
            map_invocation_error(&rpc(400, "USERNAME_NOT_OCCUPIED")),
            TelegramError::Rpc {
                code: 400,
                name: "USERNAME_NOT_OCCUPIED".into()
            }
        );
        assert_eq!(
            map_invocation_error(&rpc(500, "INTERDC_2_CALL_ERROR")),
            TelegramError::Rpc {
                code: 500,
                name: "INTERDC_CALL_ERROR".into()
            }
        );
    }

    #[test]
    fn io_and_dropped_are_connection_errors() {
        let io = InvocationError::Io(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "reset",
        ));
        assert!(matches!(
            map_invocation_error(&io),
            TelegramError::Connection(_)
        ));
        assert!(matches!(
            map_invocation_error(&InvocationError::Dropped("runner gone")),
            TelegramError::Connection(_)
        ));
    }

    #[test]
    fn statuses_map_with_their_timestamps() {
        use tl::enums::UserStatus as S;
        let at = |s: i64| DateTime::from_timestamp(s, 0).expect("valid");
        assert_eq!(
            map_status(Some(&S::Online(tl::types::UserStatusOnline {
                expires: 1_700_000_300
            }))),
            Status::Online {
                expires: at(1_700_000_300)
            }
        );
        assert_eq!(
            map_status(Some(&S::Offline(tl::types::UserStatusOffline {
                was_online: 1_700_000_000
            }))),
            Status::Offline {
                was_online: Some(at(1_700_000_000))
            }
        );
        assert_eq!(
            map_status(Some(&S::Offline(tl::types::UserStatusOffline {
                was_online: 0
            }))),
            Status::Offline { was_online: None }
        );
        assert_eq!(
            map_status(Some(&S::Recently(tl::types::UserStatusRecently {
                by_me: false
            }))),
            Status::Recently
        );
        assert_eq!(
            map_status(Some(&S::LastWeek(tl::types::UserStatusLastWeek {
                by_me: true
            }))),
            Status::LastWeek
        );
        assert_eq!(
            map_status(Some(&S::LastMonth(tl::types::UserStatusLastMonth {
                by_me: false
            }))),
            Status::LastMonth
        );
        assert_eq!(map_status(Some(&S::Empty)), Status::Unknown);
        assert_eq!(map_status(None), Status::Unknown);
    }

    #[tokio::test]
    async fn a_panicking_task_becomes_a_connection_error() {
        let task = tokio::spawn(async {
            if true {
                panic!("odd answer");
            }
        });
        let error = join_failed(task.await.expect_err("it panicked"));
        assert_eq!(
            error,
            TelegramError::Connection("grammers panicked: odd answer".into())
        );
    }
}
