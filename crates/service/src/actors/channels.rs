//! ChannelsActor: turns the channel updates of every account into stored messages and events.
//!
//! Account actors hand it every channel update they receive ([`ChannelUpdate`]); catch-ups
//! after a reassignment hand it history ([`CatchUp`]). It keeps the monitored channels by
//! Telegram id ([`Watch`] / [`Unwatch`]), drops updates of channels nobody monitors (an account
//! may be in other channels too) or that are paused, and writes what is left in batches, one
//! transaction per batch with the outbox events (`storage::messages::write_batch`). Storing is
//! idempotent, so the same post from two accounts, or from a push and a catch-up, is stored
//! once.
//!
//! A failed batch is kept and tried again with the next one. The events of each written batch
//! are published to their consumers (`crate::publish`).

use std::{collections::HashMap, panic::AssertUnwindSafe, sync::Arc, time::Duration};

use actix::prelude::*;
use futures_util::FutureExt;
use sea_orm::DatabaseConnection;
use uuid::Uuid;

use crate::publish::Publisher;
use tgwatch_core::{clock::Clock, events::MessageEvent};
use tgwatch_store::{
    self as storage, StorageError, channels::ChannelStatus, entities::channels,
    messages::ChannelChange,
};
use tgwatch_telegram::{ChannelMessage, Update};

/// Write at once when this many changes wait (else at the flush interval).
const FLUSH_AT: usize = 5_000;

/// A channel update received by an account.
#[derive(Message)]
#[rtype(result = "()")]
pub struct ChannelUpdate {
    pub account_id: Uuid,
    pub update: Update,
}

/// History read after a gap, oldest first; stored like pushed posts (idempotently).
#[derive(Message)]
#[rtype(result = "()")]
pub struct CatchUp {
    pub telegram_channel_id: i64,
    pub messages: Vec<ChannelMessage>,
}

/// Start (or keep) routing a channel's updates, with its current flags.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Watch(pub channels::Model);

/// Stop routing a channel's updates.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Unwatch {
    pub telegram_channel_id: i64,
}

/// Write what is buffered now; answers when it is written.
#[derive(Message)]
#[rtype(result = "Result<(), StorageError>")]
pub struct FlushChannels;

#[derive(Clone)]
struct Route {
    channel_id: Uuid,
    username: Option<String>,
    is_active: bool,
}

pub struct ChannelsActor {
    db: DatabaseConnection,
    clock: Clock,
    flush_interval: Duration,
    publisher: Publisher,
    routes: HashMap<i64, Route>,
    buffer: Vec<ChannelChange>,
    metrics: Arc<crate::metrics::Metrics>,
    /// Set by a restart: the monitored channels are read from the database again.
    restarted: bool,
}

impl ChannelsActor {
    pub fn new(
        db: DatabaseConnection,
        clock: Clock,
        flush_interval: Duration,
        publisher: Publisher,
        monitored: Vec<channels::Model>,
    ) -> ChannelsActor {
        let mut actor = ChannelsActor {
            db,
            clock,
            flush_interval,
            publisher,
            routes: HashMap::new(),
            buffer: Vec::new(),
            metrics: Arc::default(),
            restarted: false,
        };
        for channel in monitored {
            actor.watch(&channel);
        }
        actor
    }

    /// Where committed message events and batch write times are counted (`/metrics`).
    pub fn with_metrics(mut self, metrics: Arc<crate::metrics::Metrics>) -> Self {
        self.metrics = metrics;
        self
    }

    fn watch(&mut self, channel: &channels::Model) {
        if let Some(telegram_id) = channel.telegram_channel_id {
            self.routes.insert(
                telegram_id,
                Route {
                    channel_id: channel.id,
                    username: channel.username.clone(),
                    is_active: channel.is_active && channel.status != ChannelStatus::Left,
                },
            );
        }
    }

    fn push(&mut self, ctx: &mut Context<Self>, telegram_channel_id: i64, change: MessageEvent) {
        let Some(route) = self.routes.get(&telegram_channel_id) else {
            return;
        };
        if !route.is_active {
            return;
        }
        self.buffer.push(ChannelChange {
            channel_id: route.channel_id,
            channel_username: route.username.clone(),
            change,
        });
        if self.buffer.len() >= FLUSH_AT {
            self.flush(ctx);
        }
    }

    /// Writes the buffer; a failed batch goes back in front for the next try.
    fn write_buffer(
        &mut self,
    ) -> impl ActorFuture<Self, Output = Result<(), StorageError>> + use<> {
        let batch = std::mem::take(&mut self.buffer);
        let (db, now, publisher) = (self.db.clone(), self.clock.now(), self.publisher.clone());
        let metrics = self.metrics.clone();
        // Built, written and dropped on the runtime's worker threads: every actor of the service
        // shares one thread, and a batch's statements and allocations are most of its CPU.
        let writer = tokio::spawn(async move {
            if batch.is_empty() {
                return Ok(());
            }
            let written = AssertUnwindSafe(storage::messages::write_batch(&db, &batch, now))
                .catch_unwind()
                .await;
            match written {
                Ok(Ok(outcome)) => {
                    metrics.events_written(outcome.events.iter().map(|event| event.event_type));
                    publisher.publish(outcome.events);
                    Ok(())
                }
                Ok(Err(error)) => Err((error, batch)),
                Err(_panic) => Err((
                    StorageError::TaskFailed("writing a message batch panicked".into()),
                    batch,
                )),
            }
        });
        async move {
            writer.await.unwrap_or_else(|join_error| {
                // Only when the runtime shuts down: nothing is left to write to.
                Err((
                    StorageError::TaskFailed(format!("writing a message batch: {join_error}")),
                    Vec::new(),
                ))
            })
        }
        .into_actor(self)
        .map(|result, act: &mut ChannelsActor, _ctx| {
            result.map_err(|(error, batch)| {
                tracing::error!(%error, changes = batch.len(), "message write failed; keeping the batch for the next try");
                let newer = std::mem::replace(&mut act.buffer, batch);
                act.buffer.extend(newer);
                error
            })
        })
    }

    /// The actor handles no other message until the write is done, which keeps writes in order.
    fn flush(&mut self, ctx: &mut Context<Self>) {
        if !self.buffer.is_empty() {
            ctx.wait(self.write_buffer().map(|_, _, _| ()));
        }
    }
}

impl Actor for ChannelsActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(100_000);
        ctx.run_interval(self.flush_interval, |act, ctx| act.flush(ctx));
        if std::mem::take(&mut self.restarted) {
            // After a crash the routes may be half-changed: read them back before any update.
            let db = self.db.clone();
            ctx.wait(
                async move { storage::channels::monitored(&db).await }
                    .into_actor(self)
                    .map(|monitored, act, _ctx| match monitored {
                        Ok(monitored) => {
                            act.routes.clear();
                            for channel in monitored {
                                act.watch(&channel);
                            }
                        }
                        Err(error) => {
                            tracing::error!(%error, "cannot read the monitored channels again; keeping the routes");
                        }
                    }),
            );
        }
    }
}

impl Supervised for ChannelsActor {
    /// The buffer survives a restart in place; the routes are read again in `started`.
    fn restarting(&mut self, _ctx: &mut Self::Context) {
        self.restarted = true;
    }
}

crate::panics_on_request!(ChannelsActor);

impl Handler<ChannelUpdate> for ChannelsActor {
    type Result = ();

    fn handle(&mut self, ChannelUpdate { update, .. }: ChannelUpdate, ctx: &mut Self::Context) {
        match update {
            Update::ChannelMessageNew(message) => {
                self.push(ctx, message.channel_id, MessageEvent::New(message));
            }
            Update::ChannelMessageEdited(message) => {
                self.push(ctx, message.channel_id, MessageEvent::Edited(message));
            }
            Update::ChannelMessagesDeleted { channel_id, ids } => {
                self.push(ctx, channel_id, MessageEvent::Deleted { ids });
            }
            Update::UserStatus { .. } | Update::Unauthorized { .. } | Update::Gap => {}
        }
    }
}

impl Handler<CatchUp> for ChannelsActor {
    type Result = ();

    fn handle(&mut self, catch_up: CatchUp, ctx: &mut Self::Context) {
        for message in catch_up.messages {
            self.push(
                ctx,
                catch_up.telegram_channel_id,
                MessageEvent::New(message),
            );
        }
        self.flush(ctx);
    }
}

impl Handler<Watch> for ChannelsActor {
    type Result = ();

    fn handle(&mut self, Watch(channel): Watch, _ctx: &mut Self::Context) {
        self.watch(&channel);
    }
}

impl Handler<Unwatch> for ChannelsActor {
    type Result = ();

    fn handle(&mut self, unwatch: Unwatch, _ctx: &mut Self::Context) {
        self.routes.remove(&unwatch.telegram_channel_id);
    }
}

impl Handler<FlushChannels> for ChannelsActor {
    type Result = AtomicResponse<Self, Result<(), StorageError>>;

    fn handle(&mut self, _: FlushChannels, _ctx: &mut Self::Context) -> Self::Result {
        AtomicResponse::new(Box::pin(self.write_buffer()))
    }
}
