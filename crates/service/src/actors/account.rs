//! AccountActor: one Telegram account. Holds its connection, folds the polls that fall due into
//! batched `users.getUsers` calls (up to `batch_size` users, waiting at most `batch_delay` for a
//! batch to fill), pauses for FLOOD_WAIT, and forwards pushed status updates to the targets.
//! After a gap in the pushes (a reconnect, an interrupted update stream) it polls every person
//! it watches at once: status changes pushed meanwhile are lost, as on Telegram. It compares
//! what polls find with what was pushed, and says so when the pushes go to another client.

use std::{
    collections::{HashMap, HashSet, VecDeque},
    sync::Arc,
};

use actix::prelude::*;
use backoff::{ExponentialBackoff, backoff::Backoff};
use chrono::{DateTime, Utc};
use sea_orm::DatabaseConnection;
use uuid::Uuid;

use super::{
    super::supervision::Child,
    channels::ChannelUpdate,
    messages::{
        AccountHealth, AttachTarget, ConnectionLost, DetachTarget, GetSession, Lookup, Loss,
        Observed, PollDue, Pushed, Resolve,
    },
    target::TargetActor,
};
use tgwatch_core::{
    clock::Clock,
    config::{PresenceConfig, TelegramConfig},
    presence::{
        Observation, Source, Status,
        pushes::{PushState, PushWatch},
    },
    supervision::Verdict,
};
use tgwatch_store::{self as storage, LogLevel, accounts::AccountStatus};
use tgwatch_telegram::{
    AccountIdentity, InputUser, TelegramConnector, TelegramError, TelegramSession, TelegramUser,
    Update,
};

/// A person the account watches, as its target introduced itself.
struct Watched {
    tracked_user_id: Uuid,
    user: InputUser,
    target: Addr<TargetActor>,
}

pub struct AccountActor {
    pub account_id: Uuid,
    pub identity: AccountIdentity,
    pub connector: Arc<dyn TelegramConnector>,
    pub db: DatabaseConnection,
    pub clock: Clock,
    pub presence: PresenceConfig,
    pub reconnect: ExponentialBackoff,
    session: Option<Arc<dyn TelegramSession>>,
    pending: VecDeque<PollDue>,
    pending_ids: HashSet<Uuid>,
    flush_scheduled: bool,
    /// Set by FLOOD_WAIT: no call to Telegram before then.
    paused_until: Option<DateTime<Utc>>,
    /// Set by a 401 answer: the account is not used again until it is started anew.
    unusable: bool,
    targets_by_telegram_id: HashMap<i64, Watched>,
    /// Whether the account was connected before: a connection after that is a reconnect.
    was_connected: bool,
    pushes: PushWatch,
    metrics: Arc<crate::metrics::Metrics>,
    /// Where health changes and channel updates go (the fleet's caretaker and the channels
    /// actor); absent in setups without them.
    health: Option<Recipient<AccountHealth>>,
    channel_updates: Option<Recipient<ChannelUpdate>>,
    /// The account's node in the supervision tree: its failures (connections lost, panics)
    /// count against `[telegram] restart_limit` there.
    child: Child,
    /// Counts connections, so that what the stream of an older one reports is ignored.
    connection: u64,
    /// Set by a restart: the next connection waits for the backoff first.
    restarted: bool,
    restart_window_seconds: u64,
    /// Set by [`Drain`]: told once the connection's update stream has ended.
    drained: Option<tokio::sync::oneshot::Sender<()>>,
    /// Where status changes go to be written one after another, in the order they happened:
    /// two writes racing on separate connections could leave an older status in the row.
    status_writes: Option<tokio::sync::mpsc::UnboundedSender<StatusChange>>,
}

/// A status the account reached, to be recorded with a log line when it has a reason.
struct StatusChange {
    status: AccountStatus,
    reason: Option<String>,
    at: DateTime<Utc>,
    critical: bool,
}

impl AccountActor {
    #[expect(
        clippy::too_many_arguments,
        reason = "each part is given once, by the fleet supervisor, its only caller"
    )]
    pub fn new(
        account_id: Uuid,
        identity: AccountIdentity,
        connector: Arc<dyn TelegramConnector>,
        db: DatabaseConnection,
        clock: Clock,
        presence: PresenceConfig,
        telegram: &TelegramConfig,
        child: Child,
    ) -> AccountActor {
        let reconnect = ExponentialBackoff {
            initial_interval: std::time::Duration::from_secs(telegram.reconnect_min_seconds),
            max_interval: std::time::Duration::from_secs(telegram.reconnect_max_seconds),
            max_elapsed_time: None,
            ..ExponentialBackoff::default()
        };
        AccountActor {
            account_id,
            identity,
            connector,
            db,
            clock,
            presence,
            reconnect,
            session: None,
            pending: VecDeque::new(),
            pending_ids: HashSet::new(),
            flush_scheduled: false,
            paused_until: None,
            unusable: false,
            targets_by_telegram_id: HashMap::new(),
            was_connected: false,
            pushes: PushWatch::default(),
            metrics: Arc::default(),
            health: None,
            channel_updates: None,
            child,
            connection: 0,
            restarted: false,
            restart_window_seconds: telegram.restart_window_seconds,
            drained: None,
            status_writes: None,
        }
    }

    /// Health changes go to `health`, channel updates to `channel_updates`.
    pub fn with_fleet_links(
        mut self,
        health: Option<Recipient<AccountHealth>>,
        channel_updates: Option<Recipient<ChannelUpdate>>,
    ) -> AccountActor {
        self.health = health;
        self.channel_updates = channel_updates;
        self
    }

    fn tell_health(&self, health: AccountHealth) {
        if let Some(supervisor) = &self.health {
            supervisor.do_send(health);
        }
    }

    pub fn with_metrics(mut self, metrics: Arc<crate::metrics::Metrics>) -> AccountActor {
        self.metrics = metrics;
        self
    }

    fn connect(&mut self, ctx: &mut Context<Self>) {
        let connector = self.connector.clone();
        let identity = self.identity.clone();
        ctx.wait(
            async move { connector.connect(&identity).await }
                .into_actor(self)
                .map(|result, act, ctx| match result {
                    Ok(connection) => {
                        act.reconnect.reset();
                        act.connection += 1;
                        let generation = act.connection;
                        act.session = Some(connection.session);
                        tracing::info!(account = %act.identity.label, "connected to Telegram");
                        act.note_status(AccountStatus::Active, None);
                        act.tell_health(AccountHealth::Ready(act.account_id));
                        let address = ctx.address();
                        let mut updates = connection.updates;
                        actix::spawn(async move {
                            while let Some(update) = updates.recv().await {
                                address.do_send(Pushed { update, generation });
                            }
                            address.do_send(ConnectionLost { generation });
                        });
                        if std::mem::replace(&mut act.was_connected, true) {
                            act.poll_everyone_now(ctx);
                        }
                        act.schedule_flush(ctx, std::time::Duration::ZERO);
                    }
                    Err(error) => act.connection_failed(ctx, &error),
                }),
        );
    }

    fn connection_failed(&mut self, ctx: &mut Context<Self>, error: &TelegramError) {
        self.session = None;
        match error {
            TelegramError::Unauthorized { reason } => {
                self.mark_unusable(reason);
                return;
            }
            TelegramError::NotLoggedIn => {
                // Nothing to retry: a login restarts the account.
                self.unusable = true;
                self.pending.clear();
                self.pending_ids.clear();
                tracing::warn!(
                    account = %self.identity.label,
                    "account is not logged in; log it in with `tgwatch login` or POST /api/accounts/{{id}}/login/phone"
                );
                // Inactive, so that no work is given to it; a login makes it active again.
                self.note_status(
                    AccountStatus::Inactive,
                    Some("not logged in: use `tgwatch login` or the login endpoints".into()),
                );
                return;
            }
            _ => {}
        }
        if self
            .child
            .record_failure(&format!("Telegram connection failed: {error}"))
            == Verdict::GiveUp
        {
            self.park();
            return;
        }
        let wait = self.next_backoff();
        tracing::warn!(account = %self.identity.label, %error, retry_in = ?wait, "Telegram connection failed");
        self.metrics.reconnects.inc(&self.identity.label);
        ctx.run_later(self.clock.real_duration(wait), |act, ctx| act.connect(ctx));
    }

    /// How long to wait before the next connection (service time).
    fn next_backoff(&mut self) -> std::time::Duration {
        self.reconnect
            .next_backoff()
            .unwrap_or(self.reconnect.max_interval)
    }

    fn mark_unusable(&mut self, reason: &str) {
        self.unusable = true;
        self.pending.clear();
        self.pending_ids.clear();
        tracing::error!(account = %self.identity.label, reason, "account can no longer be used");
        self.note_status(AccountStatus::Banned, Some(reason.to_owned()));
        self.tell_health(AccountHealth::Lost {
            account_id: self.account_id,
            loss: Loss::Banned,
            reason: reason.to_owned(),
        });
    }

    /// Too many restarts in the window: stop trying, so a broken account does not hammer
    /// Telegram; its work moves elsewhere. An operator restarts it (PATCH status `active`).
    fn park(&mut self) {
        self.child.park();
        let reason = format!(
            "parked after {} failures (lost connections or crashes) within {} s",
            self.child.recent_failures(),
            self.restart_window_seconds
        );
        self.unusable = true;
        self.pending.clear();
        self.pending_ids.clear();
        tracing::error!(account = %self.identity.label, reason, "restart intensity limit reached");
        self.note_status(AccountStatus::Inactive, Some(reason.clone()));
        self.tell_health(AccountHealth::Lost {
            account_id: self.account_id,
            loss: Loss::Parked,
            reason,
        });
    }

    /// Records the account's status and a log line, without holding up the actor.
    fn note_status(&mut self, status: AccountStatus, reason: Option<String>) {
        let change = StatusChange {
            status,
            reason,
            at: self.clock.now(),
            critical: status == AccountStatus::Banned || self.child.is_parked(),
        };
        let writes = self.status_writes.get_or_insert_with(|| {
            let (writes, changes) = tokio::sync::mpsc::unbounded_channel();
            actix::spawn(write_statuses(self.db.clone(), self.account_id, changes));
            writes
        });
        if let Err(unsent) = writes.send(change) {
            // The writer ended (its runtime is stopping); the next change starts a new one.
            self.status_writes = None;
            tracing::warn!(account = %self.identity.label, status = %unsent.0.status, "account status not recorded: the service is stopping");
        }
    }

    fn schedule_flush(&mut self, ctx: &mut Context<Self>, after: std::time::Duration) {
        if self.flush_scheduled {
            return;
        }
        self.flush_scheduled = true;
        ctx.run_later(self.clock.real_duration(after), |act, ctx| {
            act.flush_scheduled = false;
            act.flush(ctx);
        });
    }

    /// Queues a poll of every person the account watches, ahead of their schedules: after a
    /// gap in the pushes, only asking tells what changed meanwhile.
    fn poll_everyone_now(&mut self, ctx: &mut Context<Self>) {
        self.pushes.gap();
        let now = self.clock.now();
        for watched in self.targets_by_telegram_id.values() {
            if self.pending_ids.insert(watched.tracked_user_id) {
                self.pending.push_back(PollDue {
                    tracked_user_id: watched.tracked_user_id,
                    user: watched.user,
                    target: watched.target.clone(),
                    due_at: now,
                });
            }
        }
        tracing::debug!(account = %self.identity.label, queued = self.pending.len(), "gap in the pushes: polling everyone");
        self.flush(ctx);
    }

    /// Sends the pending polls as batched calls, one call at a time.
    fn flush(&mut self, ctx: &mut Context<Self>) {
        if self.unusable || self.pending.is_empty() {
            return;
        }
        let now = self.clock.now();
        if let Some(until) = self.paused_until {
            if now < until {
                let wait = (until - now).to_std().unwrap_or_default();
                self.schedule_flush(ctx, wait);
                return;
            }
            self.paused_until = None;
            self.note_status(AccountStatus::Active, None);
        }
        let Some(session) = self.session.clone() else {
            return; // polled again once connected
        };
        let take = self.pending.len().min(self.presence.batch_size);
        let batch: Vec<PollDue> = self.pending.drain(..take).collect();
        for poll in &batch {
            self.pending_ids.remove(&poll.tracked_user_id);
            self.metrics
                .poll_lateness_seconds
                .observe((now - poll.due_at).to_std().unwrap_or_default());
        }
        let inputs: Vec<InputUser> = batch.iter().map(|poll| poll.user).collect();
        self.metrics.poll(inputs.len());
        ctx.wait(
            async move { session.get_users(&inputs).await }
                .into_actor(self)
                .map(move |result, act, ctx| {
                    match result {
                        Ok(users) => act.deliver(batch, users),
                        Err(error) => act.poll_failed(ctx, batch, error),
                    }
                    if !act.pending.is_empty() && act.pending.len() >= act.presence.batch_size {
                        act.flush(ctx);
                    } else if !act.pending.is_empty() {
                        act.schedule_flush(ctx, act.presence.batch_delay());
                    }
                }),
        );
    }

    fn deliver(&mut self, batch: Vec<PollDue>, users: Vec<TelegramUser>) {
        let observed_at = self.clock.now();
        let statuses: HashMap<i64, Status> = users
            .into_iter()
            .map(|user| (user.id, user.status))
            .collect();
        let pushes_before = self.pushes.state();
        for poll in batch {
            // Telegram leaves out users it will not show us (deleted, bad access hash).
            let status = match statuses.get(&poll.user.id) {
                Some(status) => {
                    self.pushes.polled(poll.user.id, status.kind());
                    *status
                }
                None => Status::Unknown,
            };
            poll.target.do_send(Observed {
                observation: Observation {
                    observed_at,
                    status,
                },
                source: Source::Poll,
                account_id: Some(self.account_id),
            });
        }
        self.touch_last_active(observed_at);
        self.tell_if_pushes_changed(pushes_before);
    }

    /// Logs (and records in the log table) when the pushes stop reaching the account or come
    /// back; health shows the current state.
    fn tell_if_pushes_changed(&self, before: PushState) {
        let now = self.pushes.state();
        if now == before {
            return;
        }
        let (level, message) = match now.reason() {
            Some(reason) => {
                tracing::warn!(account = %self.identity.label, reason, "status pushes stopped");
                (LogLevel::Warning, reason.to_owned())
            }
            None if before == PushState::Stopped => {
                tracing::info!(account = %self.identity.label, "status pushes arrive again");
                (LogLevel::Info, "status pushes arrive again".to_owned())
            }
            None => return,
        };
        let db = self.db.clone();
        let account_id = self.account_id;
        let at = self.clock.now();
        actix::spawn(async move {
            storage::logs::write(&db, level, &message, Some(account_id), None, at).await;
        });
    }

    fn touch_last_active(&self, at: DateTime<Utc>) {
        let db = self.db.clone();
        let account_id = self.account_id;
        actix::spawn(async move {
            if let Err(error) = storage::accounts::touch_last_active(&db, account_id, at).await {
                tracing::warn!(%account_id, %error, "cannot record account activity");
            }
        });
    }

    fn poll_failed(&mut self, ctx: &mut Context<Self>, batch: Vec<PollDue>, error: TelegramError) {
        match &error {
            TelegramError::FloodWait { seconds } => {
                let until = self.clock.now() + chrono::Duration::seconds(i64::from(*seconds));
                self.paused_until = Some(until);
                self.metrics.flood_wait(&self.identity.label, *seconds);
                tracing::warn!(account = %self.identity.label, seconds, "FLOOD_WAIT: pausing the account");
                self.note_status(
                    AccountStatus::Limited,
                    Some(format!("FLOOD_WAIT of {seconds} s")),
                );
            }
            TelegramError::Unauthorized { reason } => {
                self.mark_unusable(reason);
                return;
            }
            TelegramError::Connection(_) | TelegramError::NotLoggedIn => {
                self.connection_failed(ctx, &error)
            }
            // A session whose home DC is not the account's is moved by a new login, not here.
            TelegramError::Rpc { .. } | TelegramError::Migrate { .. } => {
                tracing::warn!(account = %self.identity.label, %error, "poll refused; retrying in the next batch");
            }
        }
        // Nothing is lost: the polls go back to the front of the queue.
        for poll in batch.into_iter().rev() {
            if self.pending_ids.insert(poll.tracked_user_id) {
                self.pending.push_front(poll);
            }
        }
    }
}

/// Writes an account's status changes in order, until the actor is gone.
async fn write_statuses(
    db: DatabaseConnection,
    account_id: Uuid,
    mut changes: tokio::sync::mpsc::UnboundedReceiver<StatusChange>,
) {
    while let Some(change) = changes.recv().await {
        let StatusChange {
            status,
            reason,
            at,
            critical,
        } = change;
        if let Err(error) =
            storage::accounts::set_status(&db, account_id, status, reason.clone(), at).await
        {
            tracing::error!(%account_id, %error, "cannot record account status");
        }
        if let Some(reason) = reason {
            let level = match critical {
                true => LogLevel::Critical,
                false => LogLevel::Warning,
            };
            let message = format!("account is {status}: {reason}");
            storage::logs::write(&db, level, &message, Some(account_id), None, at).await;
        }
    }
}

impl Actor for AccountActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        if self.unusable {
            return; // banned, logged out or parked: started anew by an operator
        }
        match std::mem::take(&mut self.restarted) {
            false => self.connect(ctx),
            true => {
                let wait = self.next_backoff();
                tracing::info!(account = %self.identity.label, reconnect_in = ?wait, "account restarted");
                ctx.run_later(self.clock.real_duration(wait), |act, ctx| act.connect(ctx));
            }
        }
    }
}

impl AccountActor {
    /// Stopped on purpose (the account was removed, or is started anew): no restart.
    pub fn retire(&self) {
        self.child.retire();
    }
}

impl Supervised for AccountActor {
    /// After a crash: the connection is made again (after the backoff); the queued polls and
    /// the people watched stay. Beyond the restart intensity the account is parked.
    fn restarting(&mut self, _ctx: &mut Self::Context) {
        self.session = None;
        self.flush_scheduled = false;
        self.restarted = true;
        if self.child.is_parked() && !self.unusable {
            self.park();
        }
    }
}

crate::panics_on_request!(AccountActor);

impl Handler<PollDue> for AccountActor {
    type Result = ();

    fn handle(&mut self, poll: PollDue, ctx: &mut Self::Context) {
        if self.unusable || !self.pending_ids.insert(poll.tracked_user_id) {
            return;
        }
        self.pending.push_back(poll);
        if self.pending.len() >= self.presence.batch_size {
            self.flush(ctx);
        } else {
            self.schedule_flush(ctx, self.presence.batch_delay());
        }
    }
}

impl Handler<AttachTarget> for AccountActor {
    type Result = ();
    fn handle(&mut self, attach: AttachTarget, _ctx: &mut Self::Context) {
        self.targets_by_telegram_id.insert(
            attach.user.id,
            Watched {
                tracked_user_id: attach.tracked_user_id,
                user: attach.user,
                target: attach.target,
            },
        );
    }
}

impl Handler<DetachTarget> for AccountActor {
    type Result = ();
    fn handle(&mut self, detach: DetachTarget, _ctx: &mut Self::Context) {
        self.targets_by_telegram_id.remove(&detach.telegram_user_id);
    }
}

impl Handler<Pushed> for AccountActor {
    type Result = ();
    fn handle(&mut self, Pushed { update, generation }: Pushed, ctx: &mut Self::Context) {
        if generation != self.connection {
            return; // from a connection replaced since
        }
        match update {
            Update::UserStatus { user_id, status } => {
                if let Some(watched) = self.targets_by_telegram_id.get(&user_id) {
                    let pushes_before = self.pushes.state();
                    self.pushes.pushed(user_id, status.kind());
                    self.tell_if_pushes_changed(pushes_before);
                    watched.target.do_send(Observed {
                        observation: Observation {
                            observed_at: self.clock.now(),
                            status,
                        },
                        source: Source::Push,
                        account_id: Some(self.account_id),
                    });
                }
            }
            Update::ChannelMessageNew(_)
            | Update::ChannelMessageEdited(_)
            | Update::ChannelMessagesDeleted { .. } => {
                if let Some(channels) = &self.channel_updates {
                    channels.do_send(ChannelUpdate {
                        account_id: self.account_id,
                        update,
                    });
                }
            }
            Update::Unauthorized { reason } => {
                if self.session.is_some() && !self.unusable {
                    self.connection_failed(ctx, &TelegramError::Unauthorized { reason });
                }
            }
            Update::Gap => {
                if !self.unusable {
                    self.poll_everyone_now(ctx);
                }
            }
        }
    }
}

impl Handler<ConnectionLost> for AccountActor {
    type Result = ();
    fn handle(&mut self, lost: ConnectionLost, ctx: &mut Self::Context) {
        if lost.generation != self.connection {
            return;
        }
        if let Some(drained) = self.drained.take() {
            let _ = drained.send(());
            return;
        }
        if self.session.is_some() && !self.unusable {
            let error = TelegramError::Connection("update stream ended".into());
            self.connection_failed(ctx, &error);
        }
    }
}

/// How long the stop waits for an account's update stream to hand on what it had received.
const DRAIN_WITHIN: std::time::Duration = std::time::Duration::from_secs(2);

/// The service's stop: the account lets go of its connection (the last handle on it, so it
/// closes) and goes on handling what the connection had already received, until its update
/// stream ends; then it stops for good. Answered when it has, or after [`DRAIN_WITHIN`].
///
/// This is what keeps a channel post that Telegram delivered just before the stop: the post is
/// handed to the channels actor before the stop writes that actor's buffer.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Drain;

impl Handler<Drain> for AccountActor {
    type Result = ResponseActFuture<Self, ()>;

    fn handle(&mut self, _: Drain, _ctx: &mut Self::Context) -> Self::Result {
        self.retire();
        // Neither reconnect nor report the connection lost: the stream's end is expected.
        self.unusable = true;
        let (drained, stream_ended) = tokio::sync::oneshot::channel();
        // Dropping the last handle on the session closes the connection; without one there is
        // no stream to wait for (the dropped sender ends the wait at once).
        if self.session.take().is_some() {
            self.drained = Some(drained);
        }
        let label = self.identity.label.clone();
        Box::pin(
            async move {
                if tokio::time::timeout(DRAIN_WITHIN, stream_ended).await.is_err() {
                    tracing::warn!(account = %label, "the update stream did not end in time; stopping without it");
                }
            }
            .into_actor(self)
            .map(|(), _act, ctx| ctx.stop()),
        )
    }
}

impl AccountActor {
    /// The live session, if the account may make a call now.
    fn usable_session(&self) -> Result<Arc<dyn TelegramSession>, TelegramError> {
        if self.unusable {
            return Err(TelegramError::Unauthorized {
                reason: "the account is banned, revoked or not logged in".into(),
            });
        }
        if let Some(wait) = self
            .paused_until
            .and_then(|until| (until - self.clock.now()).to_std().ok())
        {
            return Err(TelegramError::FloodWait {
                seconds: wait.as_secs().max(1) as u32,
            });
        }
        self.session
            .clone()
            .ok_or_else(|| TelegramError::Connection("the account is not connected yet".into()))
    }
}

impl Handler<GetSession> for AccountActor {
    type Result = Result<Arc<dyn TelegramSession>, TelegramError>;

    fn handle(&mut self, _: GetSession, _ctx: &mut Self::Context) -> Self::Result {
        self.usable_session()
    }
}

impl Handler<Resolve> for AccountActor {
    type Result = ResponseFuture<Result<Option<TelegramUser>, TelegramError>>;

    fn handle(&mut self, Resolve(lookup): Resolve, _ctx: &mut Self::Context) -> Self::Result {
        let session = self.usable_session();
        let metrics = Arc::clone(&self.metrics);
        Box::pin(async move {
            let session = session?;
            match lookup {
                Lookup::Username(username) => {
                    metrics.telegram_calls.inc(crate::metrics::RESOLVE_USERNAME);
                    session.resolve_username(&username).await
                }
                Lookup::User(user) => {
                    metrics.telegram_calls.inc(crate::metrics::GET_USERS);
                    Ok(session.get_users(&[user]).await?.into_iter().next())
                }
            }
        })
    }
}

impl Handler<super::messages::AskConnection> for AccountActor {
    type Result = super::messages::ConnectionReport;
    fn handle(
        &mut self,
        _: super::messages::AskConnection,
        _ctx: &mut Self::Context,
    ) -> Self::Result {
        super::messages::ConnectionReport {
            connected: self.session.is_some() && !self.unusable,
            pushes: self.pushes.state(),
        }
    }
}

impl Handler<super::messages::SetPresence> for AccountActor {
    type Result = ();
    fn handle(&mut self, update: super::messages::SetPresence, _ctx: &mut Self::Context) {
        self.presence = update.0;
    }
}
