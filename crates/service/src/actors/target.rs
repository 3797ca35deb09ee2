//! TargetActor: one tracked user. Asks its account for a poll at random intervals, applies every
//! observation to the gap rule, and hands the observation with its session changes to storage.

use actix::prelude::*;
use sea_orm::DatabaseConnection;
use uuid::Uuid;

use super::{
    super::supervision::Child,
    account::AccountActor,
    messages::{
        AttachTarget, DetachTarget, Flush, FoldAgain, Observed, PollDue, RebuildSessions,
        RecordObservation,
    },
    state_loader::StateLoader,
    storage::StorageActor,
};
use tgwatch_core::{
    clock::Clock,
    config::PresenceConfig,
    events::{TrackedUserRef, presence_events},
    presence::{
        Observation,
        schedule::next_poll_interval,
        sessions::{Applied, SessionChange, SessionFolder},
    },
};
use tgwatch_store::{StorageError, observations::NewObservation};
use tgwatch_telegram::InputUser;

pub struct TargetActor {
    pub tracked_user_id: Uuid,
    /// Known once the username is resolved; without it there is nothing to poll.
    pub user: Option<InputUser>,
    pub account: Option<Addr<AccountActor>>,
    pub storage: Addr<StorageActor>,
    pub db: DatabaseConnection,
    /// Where the stored state comes from when the actor starts.
    pub state: StateLoader,
    pub clock: Clock,
    pub presence: PresenceConfig,
    /// `None` until the stored state is loaded in `started`.
    pub folder: Option<SessionFolder>,
    /// Who events about this user name.
    pub user_ref: TrackedUserRef,
    /// The person's node in the supervision tree.
    pub child: Child,
    /// Set by a restart: the state is loaded again once storage has written what it holds.
    pub restarted: bool,
}

impl TargetActor {
    fn schedule_poll(&self, ctx: &mut Context<Self>, first: bool) {
        let mut rng = rand::rng();
        // The first poll of each target falls anywhere in [0, max] so that a fleet started at
        // once does not poll in one burst.
        let (min, max) = if first {
            (std::time::Duration::ZERO, self.presence.poll_max())
        } else {
            (self.presence.poll_min(), self.presence.poll_max())
        };
        let wait = next_poll_interval(&mut rng, min, max);
        let due_at = self.clock.now() + chrono::Duration::from_std(wait).unwrap_or_default();
        ctx.run_later(self.clock.real_duration(wait), move |act, ctx| {
            if let (Some(account), Some(user)) = (&act.account, act.user) {
                account.do_send(PollDue {
                    tracked_user_id: act.tracked_user_id,
                    user,
                    target: ctx.address(),
                    due_at,
                });
            }
            act.schedule_poll(ctx, false);
        });
    }

    fn record(
        &mut self,
        observed: Observed,
        previous: Option<Observation>,
        changes: Vec<SessionChange>,
    ) -> Uuid {
        let id = Uuid::now_v7();
        let events = presence_events(
            &self.user_ref,
            previous.as_ref(),
            &observed.observation,
            &changes,
        );
        self.storage.do_send(RecordObservation(NewObservation {
            id,
            tracked_user_id: self.tracked_user_id,
            account_id: observed.account_id,
            observation: observed.observation,
            source: observed.source,
            recorded_at: self.clock.now(),
            sessions: changes.iter().map(|change| *change.session()).collect(),
            events,
        }));
        id
    }
}

impl Actor for TargetActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        if self.parked() {
            tracing::error!(tracked_user_id = %self.tracked_user_id, "restarted too often: no longer polled until tracked anew");
            return;
        }
        let state = self.state.clone();
        let id = self.tracked_user_id;
        let gap = self.presence.gap();
        // After a crash the observations this actor handed to storage may not be written
        // yet: the state is read back once they are.
        let storage_written = std::mem::take(&mut self.restarted).then(|| self.storage.send(Flush));
        // No observation is handled before the stored state is back.
        ctx.wait(
            async move {
                if let Some(written) = storage_written
                    && let Ok(Err(error)) = written.await
                {
                    tracing::warn!(tracked_user_id = %id, %error, "storage could not write before the state was read back");
                }
                state.load(id, gap).await
            }
                .into_actor(self)
                .map(move |loaded, act, ctx| {
                    match loaded {
                        Ok(folder) => act.folder = Some(folder),
                        Err(error) => {
                            tracing::error!(tracked_user_id = %act.tracked_user_id, %error,
                                "cannot load session state; starting from an empty one");
                            act.folder = Some(SessionFolder::new(gap));
                        }
                    }
                    // The schedule starts once the state is back: a timer set before would
                    // fire only after the wait, late by however long the fleet took to load.
                    act.schedule_poll(ctx, true);
                }),
        );
        if let (Some(account), Some(user)) = (&self.account, self.user) {
            account.do_send(AttachTarget {
                tracked_user_id: self.tracked_user_id,
                user,
                target: ctx.address(),
            });
        }
    }

    fn stopped(&mut self, _ctx: &mut Self::Context) {
        if let (Some(account), Some(user)) = (&self.account, self.user) {
            account.do_send(DetachTarget {
                telegram_user_id: user.id,
            });
        }
    }
}

impl Supervised for TargetActor {
    /// After a crash the gap-rule state is loaded from the database again (in `started`).
    fn restarting(&mut self, _ctx: &mut Self::Context) {
        self.folder = None;
        self.restarted = true;
    }
}

impl TargetActor {
    /// Parked after too many restarts: the actor answers but no longer keeps the state.
    fn parked(&self) -> bool {
        self.folder.is_none() && self.child.is_parked()
    }
}

crate::panics_on_request!(TargetActor);

impl Handler<Observed> for TargetActor {
    // Atomic: while a rebuild runs, later observations wait for the rebuilt state.
    type Result = AtomicResponse<Self, Result<Uuid, StorageError>>;

    fn handle(&mut self, mut observed: Observed, _ctx: &mut Self::Context) -> Self::Result {
        if self.parked() {
            return AtomicResponse::new(Box::pin(fut::ready(Err(StorageError::Unavailable))));
        }
        observed.observation = observed.observation.at_stored_precision();
        let gap = self.presence.gap();
        let folder = self.folder.get_or_insert_with(|| SessionFolder::new(gap));
        let previous = folder.last_observation().copied();
        let applied = folder.apply(observed.observation);
        match applied {
            Applied::Changes(changes) => {
                let id = self.record(observed, previous, changes);
                AtomicResponse::new(Box::pin(fut::ready(Ok(id))))
            }
            Applied::Duplicate => {
                // Still a real observation to keep in the raw history.
                let id = self.record(observed, None, Vec::new());
                AtomicResponse::new(Box::pin(fut::ready(Ok(id))))
            }
            Applied::OutOfOrder => {
                // History is being corrected, not happening now: no events.
                let late = observed.observation;
                let id = self.record(observed, None, Vec::new());
                let tracked_user_id = self.tracked_user_id;
                AtomicResponse::new(Box::pin(self.fold_again(late).map(
                    move |folded, _act, _ctx| {
                        folded?;
                        tracing::info!(%tracked_user_id, "sessions folded again after a late observation");
                        Ok(id)
                    },
                )))
            }
        }
    }
}

impl TargetActor {
    /// Folds the person's stored sessions again from `from` on (storage writes what it holds
    /// first) and continues from the rebuilt state.
    fn fold_again(
        &self,
        from: Observation,
    ) -> impl ActorFuture<Self, Output = Result<(), StorageError>> + 'static {
        let storage = self.storage.clone();
        let tracked_user_id = self.tracked_user_id;
        async move {
            storage
                .send(RebuildSessions {
                    tracked_user_id,
                    late: from,
                })
                .await
                .map_err(|_| StorageError::Unavailable)?
        }
        .into_actor(self)
        .map(|rebuilt, act, _ctx| {
            act.folder = Some(rebuilt?);
            Ok(())
        })
    }
}

impl Handler<FoldAgain> for TargetActor {
    // Atomic: observations that arrive meanwhile wait for the rebuilt state.
    type Result = AtomicResponse<Self, Result<(), StorageError>>;

    fn handle(&mut self, again: FoldAgain, _ctx: &mut Self::Context) -> Self::Result {
        AtomicResponse::new(Box::pin(self.fold_again(again.from)))
    }
}

impl Handler<super::messages::SetPresence> for TargetActor {
    type Result = ();
    /// The next poll is scheduled with the new interval; the gap stays (it needs a restart).
    fn handle(&mut self, update: super::messages::SetPresence, _ctx: &mut Self::Context) {
        let gap_seconds = self.presence.gap_seconds;
        self.presence = update.0;
        self.presence.gap_seconds = gap_seconds;
    }
}
