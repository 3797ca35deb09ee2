//! FleetSupervisor: the fleet's node of the supervision tree. It starts and stops the account
//! and target actors (each under its own node, restarted in place when it crashes, see
//! [`crate::supervision`]) and routes requests to them.
//!
//! It is the only owner of actor addresses; the HTTP API asks it, never an actor directly. An
//! account whose connection fails reconnects by itself with exponential backoff (see
//! `AccountActor`). Accounts report their health to it ([`AccountHealth`]); a lost account
//! (banned, or parked after too many restarts) has its channels and people moved to healthy
//! accounts by the failover next to it ([`look_after_accounts`]).
//!
//! With an [`Ownership`] (several instances on one database) it starts an account only while
//! this instance holds its lease (taking the lease at once when it is free), and a person only
//! when their account is held here (a person without an account: on the leader).

use std::{collections::HashMap, sync::Arc};

use actix::prelude::*;
use sea_orm::DatabaseConnection;
use uuid::Uuid;

use futures_util::future::join_all;

use super::{
    account::{AccountActor, Drain},
    channels::ChannelUpdate,
    messages::{
        AccountHealth, FleetSnapshot, FoldAgain, GetSession, KeptTargets, LookUpUser,
        ManualObservation, ManualObservationError, Observed, RebuildSessions, Resolve,
        ResolveError, SessionOf, Snapshot, StartAccount, StartTarget, StopAccount, StopActor,
        StopTarget,
    },
    ownership::Ownership,
    state_loader::StateLoader,
    storage::StorageActor,
    target::TargetActor,
};
use crate::supervision::{Supervision, start_child};
use tgwatch_core::{
    clock::Clock,
    config::{PresenceConfig, SupervisionConfig, TelegramConfig},
    events::TrackedUserRef,
    presence::Source,
    supervision::RestartIntensity,
};
use tgwatch_store::{StorageError, accounts::AccountStatus};
use tgwatch_telegram::{
    AccountIdentity, InputUser, TelegramConnector, TelegramSession, TelegramUser,
};

pub struct FleetSupervisor {
    pub db: DatabaseConnection,
    pub clock: Clock,
    pub presence: PresenceConfig,
    pub telegram: TelegramConfig,
    pub connector: Arc<dyn TelegramConnector>,
    pub storage: Addr<StorageActor>,
    state: StateLoader,
    accounts: HashMap<Uuid, Addr<AccountActor>>,
    targets: HashMap<Uuid, Addr<TargetActor>>,
    metrics: Arc<crate::metrics::Metrics>,
    /// Where account health goes on to: the failover.
    failover: Option<tokio::sync::mpsc::UnboundedSender<AccountHealth>>,
    channel_updates: Option<Recipient<ChannelUpdate>>,
    supervision: Supervision,
    /// How often a person's actor may restart (`[supervision]`).
    target_intensity: RestartIntensity,
    /// Set by [`StopFleet`]: nothing is started any more.
    stopped: bool,
    /// What this instance may run; without it, everything.
    ownership: Option<Ownership>,
}

impl FleetSupervisor {
    pub fn new(
        db: DatabaseConnection,
        clock: Clock,
        presence: PresenceConfig,
        telegram: TelegramConfig,
        connector: Arc<dyn TelegramConnector>,
        storage: Addr<StorageActor>,
        supervision: Supervision,
    ) -> FleetSupervisor {
        FleetSupervisor {
            state: StateLoader::start(db.clone()),
            db,
            clock,
            presence,
            telegram,
            connector,
            storage,
            accounts: HashMap::new(),
            targets: HashMap::new(),
            metrics: Arc::default(),
            failover: None,
            channel_updates: None,
            supervision,
            target_intensity: SupervisionConfig::default().intensity(),
            stopped: false,
            ownership: None,
        }
    }

    /// Runs only what `ownership` says this instance holds.
    pub fn with_ownership(mut self, ownership: Ownership) -> FleetSupervisor {
        self.ownership = Some(ownership);
        self
    }

    /// Whether the person's actor belongs on this instance.
    fn runs_here(&self, account_id: Option<Uuid>) -> bool {
        match (&self.ownership, account_id) {
            (None, _) => true,
            (Some(ownership), Some(account_id)) => ownership.owns(account_id),
            (Some(ownership), None) => ownership.is_leader(),
        }
    }

    /// How often a person's actor may restart (`[supervision]`; its defaults otherwise).
    pub fn with_target_intensity(mut self, intensity: RestartIntensity) -> FleetSupervisor {
        self.target_intensity = intensity;
        self
    }

    /// Account health goes on to `failover` (`crate::channels::look_after_accounts`); account actors send
    /// their channel updates to `channel_updates`.
    pub fn with_fleet_links(
        mut self,
        failover: tokio::sync::mpsc::UnboundedSender<AccountHealth>,
        channel_updates: Recipient<ChannelUpdate>,
    ) -> FleetSupervisor {
        self.failover = Some(failover);
        self.channel_updates = Some(channel_updates);
        self
    }

    /// Where the account actors count their Telegram calls, FLOOD_WAITs and reconnections.
    pub fn with_metrics(mut self, metrics: Arc<crate::metrics::Metrics>) -> FleetSupervisor {
        self.metrics = metrics;
        self
    }
}

impl Actor for FleetSupervisor {
    type Context = Context<Self>;
}

impl Handler<StartAccount> for FleetSupervisor {
    type Result = ();

    fn handle(&mut self, StartAccount(account): StartAccount, ctx: &mut Self::Context) {
        if let Some(running) = self.accounts.remove(&account.id) {
            running.do_send(StopActor);
        }
        if self.stopped
            || matches!(
                account.status,
                AccountStatus::Banned | AccountStatus::Inactive
            )
        {
            return;
        }
        if let Some(ownership) = self.ownership.clone().filter(|o| !o.owns(account.id)) {
            // Another instance may hold it: start it only once the lease is ours.
            let supervisor = ctx.address();
            actix::spawn(async move {
                match ownership.claim(account.id).await {
                    Ok(true) => supervisor.do_send(StartAccount(account)),
                    Ok(false) => {
                        tracing::debug!(account = %account.label, "another instance holds the account")
                    }
                    Err(error) => {
                        tracing::error!(account = %account.label, %error, "cannot take the account's lease")
                    }
                }
            });
            return;
        }
        let child = self.supervision.account(
            account.id,
            &account.label,
            self.telegram.restart_intensity(),
        );
        let actor = AccountActor::new(
            account.id,
            AccountIdentity {
                label: account.label.clone(),
                phone: account.phone.clone(),
            },
            self.connector.clone(),
            self.db.clone(),
            self.clock,
            self.presence.clone(),
            &self.telegram,
            child.clone(),
        )
        .with_metrics(Arc::clone(&self.metrics))
        .with_fleet_links(
            Some(ctx.address().recipient()),
            self.channel_updates.clone(),
        );
        self.accounts.insert(account.id, start_child(child, actor));
    }
}

impl Handler<StopAccount> for FleetSupervisor {
    type Result = ();
    fn handle(&mut self, StopAccount(id): StopAccount, _ctx: &mut Self::Context) {
        if let Some(running) = self.accounts.remove(&id) {
            running.do_send(StopActor);
        }
    }
}

impl Handler<StartTarget> for FleetSupervisor {
    type Result = ();

    fn handle(&mut self, StartTarget(tracked): StartTarget, _ctx: &mut Self::Context) {
        if let Some(running) = self.targets.remove(&tracked.id) {
            running.do_send(StopActor);
        }
        if self.stopped || !tracked.is_active || !self.runs_here(tracked.account_id) {
            return;
        }
        let user = tracked.telegram_user_id.map(|id| InputUser {
            id,
            access_hash: tracked.access_hash.unwrap_or(0),
        });
        let label = tracked
            .username
            .clone()
            .unwrap_or_else(|| tracked.id.to_string());
        let child = self.supervision.target(
            tracked.id,
            &label,
            tracked.account_id,
            self.target_intensity,
        );
        let actor = TargetActor {
            tracked_user_id: tracked.id,
            user,
            account: tracked
                .account_id
                .and_then(|id| self.accounts.get(&id).cloned()),
            storage: self.storage.clone(),
            db: self.db.clone(),
            state: self.state.clone(),
            clock: self.clock,
            presence: self.presence.clone(),
            folder: None,
            user_ref: TrackedUserRef {
                tracked_user_id: tracked.id,
                telegram_user_id: tracked.telegram_user_id,
                username: tracked.username.clone(),
            },
            child: child.clone(),
            restarted: false,
        };
        self.targets.insert(tracked.id, start_child(child, actor));
    }
}

/// The service's stop: every account hands on what its connection had received and lets go
/// of it ([`Drain`]), then every person's actor stops. Answered when all have, so that what they
/// handed to the storage and channels actors is in those actors' mailboxes before the stop
/// writes their buffers.
#[derive(Message)]
#[rtype(result = "()")]
pub struct StopFleet;

impl Handler<StopFleet> for FleetSupervisor {
    type Result = ResponseFuture<()>;

    fn handle(&mut self, _: StopFleet, _ctx: &mut Self::Context) -> Self::Result {
        self.stopped = true;
        let accounts: Vec<Addr<AccountActor>> = self.accounts.drain().map(|(_, a)| a).collect();
        let targets: Vec<Addr<TargetActor>> = self.targets.drain().map(|(_, t)| t).collect();
        Box::pin(async move {
            // Gone already (parked, or failed) is stopped too.
            join_all(accounts.iter().map(|account| account.send(Drain))).await;
            join_all(targets.iter().map(|target| target.send(StopActor))).await;
        })
    }
}

impl Handler<StopTarget> for FleetSupervisor {
    type Result = ();
    fn handle(&mut self, StopTarget(id): StopTarget, _ctx: &mut Self::Context) {
        if let Some(running) = self.targets.remove(&id) {
            running.do_send(StopActor);
        }
    }
}

impl Handler<LookUpUser> for FleetSupervisor {
    type Result = ResponseFuture<Result<TelegramUser, ResolveError>>;

    fn handle(&mut self, request: LookUpUser, _ctx: &mut Self::Context) -> Self::Result {
        let account = self.accounts.get(&request.account_id).cloned();
        Box::pin(async move {
            let account = account.ok_or(ResolveError::AccountNotRunning)?;
            account
                .send(Resolve(request.lookup.clone()))
                .await??
                .ok_or(ResolveError::NotFound(request.lookup))
        })
    }
}

/// The account's live Telegram session, through the supervisor, or why there is none.
pub async fn account_session(
    supervisor: &Addr<FleetSupervisor>,
    account_id: Uuid,
) -> Result<Arc<dyn TelegramSession>, ResolveError> {
    supervisor.send(SessionOf(account_id)).await?
}

impl Handler<SessionOf> for FleetSupervisor {
    type Result = ResponseFuture<Result<Arc<dyn TelegramSession>, ResolveError>>;

    fn handle(
        &mut self,
        SessionOf(account_id): SessionOf,
        _ctx: &mut Self::Context,
    ) -> Self::Result {
        let account = self.accounts.get(&account_id).cloned();
        Box::pin(async move {
            let account = account.ok_or(ResolveError::AccountNotRunning)?;
            Ok(account.send(GetSession).await??)
        })
    }
}

impl Handler<ManualObservation> for FleetSupervisor {
    type Result = ResponseFuture<Result<Uuid, ManualObservationError>>;

    fn handle(&mut self, manual: ManualObservation, _ctx: &mut Self::Context) -> Self::Result {
        let target = self.targets.get(&manual.tracked_user_id).cloned();
        Box::pin(async move {
            let target =
                target.ok_or(ManualObservationError::NotTracked(manual.tracked_user_id))?;
            let observed = Observed {
                observation: manual.observation,
                source: Source::Manual,
                account_id: None,
            };
            Ok(target.send(observed).await??)
        })
    }
}

impl Handler<FoldAgain> for FleetSupervisor {
    type Result = ResponseFuture<Result<(), StorageError>>;

    /// Through the person's actor when it runs (see [`FoldAgain`]); directly by storage
    /// otherwise, as nothing else folds that person's observations then.
    fn handle(&mut self, again: FoldAgain, _ctx: &mut Self::Context) -> Self::Result {
        let target = self.targets.get(&again.tracked_user_id).cloned();
        let storage = self.storage.clone();
        Box::pin(async move {
            let folded = match target {
                Some(target) => target.send(again).await,
                None => storage
                    .send(RebuildSessions {
                        tracked_user_id: again.tracked_user_id,
                        late: again.from,
                    })
                    .await
                    .map(|rebuilt| rebuilt.map(drop)),
            };
            folded.map_err(|_| StorageError::Unavailable)?
        })
    }
}

impl Handler<Snapshot> for FleetSupervisor {
    type Result = MessageResult<Snapshot>;
    fn handle(&mut self, _: Snapshot, _ctx: &mut Self::Context) -> Self::Result {
        MessageResult(FleetSnapshot {
            accounts_running: self.accounts.values().filter(|a| a.connected()).count(),
            targets_running: self.targets.values().filter(|t| t.connected()).count(),
        })
    }
}

impl Handler<KeptTargets> for FleetSupervisor {
    type Result = MessageResult<KeptTargets>;
    fn handle(&mut self, _: KeptTargets, _ctx: &mut Self::Context) -> Self::Result {
        MessageResult(self.targets.keys().copied().collect())
    }
}

impl Handler<StopActor> for AccountActor {
    type Result = ();
    fn handle(&mut self, _: StopActor, ctx: &mut Self::Context) {
        self.retire();
        ctx.stop();
    }
}

impl Handler<StopActor> for TargetActor {
    type Result = ();
    fn handle(&mut self, _: StopActor, ctx: &mut Self::Context) {
        self.child.retire();
        ctx.stop();
    }
}

impl Handler<AccountHealth> for FleetSupervisor {
    type Result = ();
    fn handle(&mut self, health: AccountHealth, _ctx: &mut Self::Context) {
        if let Some(failover) = &self.failover {
            // The failover runs as long as the service; a report after shutdown is moot.
            let _ = failover.send(health);
        }
    }
}

impl Handler<super::messages::SetPresence> for FleetSupervisor {
    type Result = ();
    fn handle(&mut self, update: super::messages::SetPresence, _ctx: &mut Self::Context) {
        self.presence = update.0.clone();
        for account in self.accounts.values() {
            account.do_send(update.clone());
        }
        for target in self.targets.values() {
            target.do_send(update.clone());
        }
    }
}

impl Handler<super::messages::AccountLinks> for FleetSupervisor {
    type Result = ResponseFuture<HashMap<Uuid, super::messages::AccountLink>>;

    fn handle(
        &mut self,
        _: super::messages::AccountLinks,
        _ctx: &mut Self::Context,
    ) -> Self::Result {
        // An account busy in a Telegram call answers after it: wait a little, not for the call.
        const ANSWER_WITHIN: std::time::Duration = std::time::Duration::from_millis(500);
        let accounts: Vec<(Uuid, Addr<AccountActor>)> = self
            .accounts
            .iter()
            .map(|(id, addr)| (*id, addr.clone()))
            .collect();
        Box::pin(async move {
            let asks = accounts.into_iter().map(|(id, addr)| async move {
                let running = addr.connected();
                let report = match running {
                    true => addr
                        .send(super::messages::AskConnection)
                        .timeout(ANSWER_WITHIN)
                        .await
                        .ok(),
                    false => None,
                };
                let link = super::messages::AccountLink {
                    running,
                    connected: match running {
                        true => report.map(|report| report.connected),
                        false => Some(false),
                    },
                    pushes: report.map(|report| report.pushes),
                };
                (id, link)
            });
            join_all(asks).await.into_iter().collect()
        })
    }
}
