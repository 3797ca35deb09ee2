//! ChannelsActor: turns the channel updates of every account into stored messages and events.
//!
//! Account actors hand it every channel update they receive ([`ChannelUpdate`]); catch-ups
//! after a reassignment hand it history ([`CatchUp`]). It keeps the monitored channels by
//! Telegram id ([`Watch`] / [`Unwatch`]), drops updates of channels nobody monitors (an account
//! may be in other channels too) or that are paused, and writes what is left in batches, one
//! transaction per batch with the outbox events (`storage::messages::write_batch`). Each
//! channel belongs to one of the writers, which write side by side on PostgreSQL; a writer's
//! batches are written one after the other, so a channel's changes stay in order. Storing is
//! idempotent, so the same post from two accounts, or from a push and a catch-up, is stored
//! once.
//!
//! A failed batch is kept and tried again with the writer's next one. The events of each
//! written batch are published to their consumers (`crate::publish`).

use std::{collections::HashMap, panic::AssertUnwindSafe, sync::Arc, time::Duration};

use actix::prelude::*;
use futures_util::FutureExt;
use sea_orm::{DatabaseConnection, DbBackend};
use tokio::task::JoinHandle;
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
    /// Each channel's changes go to one writer, so that they are written in order, while the
    /// writers write side by side ([`writer_count`] of them).
    writers: Vec<Writer>,
    metrics: Arc<crate::metrics::Metrics>,
    /// Set by a restart: the monitored channels are read from the database again.
    restarted: bool,
}

/// How many writers write channel posts side by side: on PostgreSQL half the pool's
/// connections, at most 4 (one writer left the machine half idle while the server and this
/// process waited on each other's statements; the other half of the pool stays for everything
/// else); on SQLite one, which writes one transaction at a time whatever the writers.
pub fn writer_count(backend: DbBackend, max_connections: u32) -> usize {
    match backend {
        DbBackend::Postgres => (max_connections as usize / 2).clamp(1, 4),
        _ => 1,
    }
}

/// The changes of some channels waiting to be written.
#[derive(Default)]
struct Writer {
    buffer: Vec<ChannelChange>,
    /// A write of this writer is under way: changes wait in the buffer until it ends.
    writing: bool,
    /// A write failed: the next flush tries again even with nothing new.
    failed: bool,
    /// Held by the write under way; holds the changes of a write that failed, which go first in
    /// the next one. Writes take it in turn, in the order they were started (tokio's mutex is
    /// fair), which keeps a channel's changes in order even across a restart of the actor.
    unwritten: Arc<tokio::sync::Mutex<Vec<ChannelChange>>>,
}

impl ChannelsActor {
    pub fn new(
        db: DatabaseConnection,
        clock: Clock,
        flush_interval: Duration,
        publisher: Publisher,
        monitored: Vec<channels::Model>,
        writers: usize,
    ) -> ChannelsActor {
        let writers = (0..writers.max(1)).map(|_| Writer::default()).collect();
        let mut actor = ChannelsActor {
            db,
            clock,
            flush_interval,
            publisher,
            routes: HashMap::new(),
            writers,
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
        let writer = (route.channel_id.as_u128() % self.writers.len() as u128) as usize;
        let buffer = &mut self.writers[writer].buffer;
        buffer.push(ChannelChange {
            channel_id: route.channel_id,
            channel_username: route.username.clone(),
            change,
        });
        if buffer.len() >= FLUSH_AT {
            self.flush_writer(writer, ctx);
        }
    }

    /// Writes, on the runtime's worker threads, what failed before and then `batch`, once the
    /// writer's write under way has ended. Every actor of the service shares one thread, and a
    /// batch's statements and allocations are most of its CPU.
    fn write(
        &self,
        writer: usize,
        batch: Vec<ChannelChange>,
    ) -> JoinHandle<Result<(), StorageError>> {
        let (db, now, publisher) = (self.db.clone(), self.clock.now(), self.publisher.clone());
        let metrics = self.metrics.clone();
        let unwritten = Arc::clone(&self.writers[writer].unwritten);
        tokio::spawn(async move {
            let mut unwritten = unwritten.lock_owned().await;
            unwritten.extend(batch);
            if unwritten.is_empty() {
                return Ok(());
            }
            let written = AssertUnwindSafe(storage::messages::write_batch(&db, &unwritten, now))
                .catch_unwind()
                .await;
            let error = match written {
                Ok(Ok(outcome)) => {
                    unwritten.clear();
                    metrics.events_written(outcome.events.iter().map(|event| event.event_type));
                    publisher.publish(outcome.events);
                    return Ok(());
                }
                Ok(Err(error)) => error,
                Err(_panic) => StorageError::TaskFailed("writing a message batch panicked".into()),
            };
            tracing::error!(%error, changes = unwritten.len(), "message write failed; keeping the batch for the next try");
            Err(error)
        })
    }

    /// Starts writing the writer's buffer unless a write of it is under way (the buffer waits
    /// for its end).
    fn flush_writer(&mut self, writer: usize, ctx: &mut Context<Self>) {
        let state = &mut self.writers[writer];
        if state.writing || (state.buffer.is_empty() && !state.failed) {
            return;
        }
        state.writing = true;
        let batch = std::mem::take(&mut state.buffer);
        let write = self.write(writer, batch);
        ctx.spawn(write.into_actor(self).map(move |result, act, ctx| {
            let state = &mut act.writers[writer];
            state.writing = false;
            state.failed = !matches!(result, Ok(Ok(())));
            if state.buffer.len() >= FLUSH_AT {
                act.flush_writer(writer, ctx);
            }
        }));
    }

    fn flush(&mut self, ctx: &mut Context<Self>) {
        for writer in 0..self.writers.len() {
            self.flush_writer(writer, ctx);
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
    /// The buffers survive a restart in place; the routes are read again in `started`. A write
    /// under way goes on: the next one waits for it (its writer's lock).
    fn restarting(&mut self, _ctx: &mut Self::Context) {
        self.restarted = true;
        for writer in &mut self.writers {
            writer.writing = false;
            writer.failed = true;
        }
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
    type Result = ResponseFuture<Result<(), StorageError>>;

    /// Writes every buffer and what failed before, after the writes under way.
    fn handle(&mut self, _: FlushChannels, _ctx: &mut Self::Context) -> Self::Result {
        let writes: Vec<_> = (0..self.writers.len())
            .map(|writer| {
                let batch = std::mem::take(&mut self.writers[writer].buffer);
                self.write(writer, batch)
            })
            .collect();
        Box::pin(async move {
            for write in writes {
                write.await.map_err(|join_error| {
                    StorageError::TaskFailed(format!("writing a message batch: {join_error}"))
                })??;
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postgresql_writes_with_half_the_pool_and_sqlite_with_one_writer() {
        assert_eq!(writer_count(DbBackend::Postgres, 10), 4);
        assert_eq!(writer_count(DbBackend::Postgres, 5), 2);
        assert_eq!(writer_count(DbBackend::Postgres, 1), 1);
        assert_eq!(writer_count(DbBackend::Postgres, 100), 4);
        assert_eq!(writer_count(DbBackend::Sqlite, 10), 1);
    }
}
