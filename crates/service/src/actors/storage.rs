//! StorageActor: the one writer of observations and sessions.
//!
//! Observations arrive at poll rate (tens of thousands a minute for a large fleet), so they are
//! buffered and written in one transaction per flush, with the session changes they caused, in
//! the order they happened. A failed write keeps the buffer and is tried again at the next tick:
//! nothing is dropped while the database is away.

use std::time::Duration;

use actix::prelude::*;
use sea_orm::DatabaseConnection;

use super::messages::{Flush, RebuildSessions, RecordObservation};
use crate::publish::Publisher;
use tgwatch_core::presence::sessions::SessionFolder;
use tgwatch_store::{self as storage, StorageError, observations::PendingWrites};

/// Flush early when this many observations wait, whatever the interval.
const FLUSH_AT: usize = 5_000;

/// Events are written at most this long after they happen, whatever the flush interval: webhook
/// consumers are waiting for them.
const EVENT_FLUSH_DELAY: Duration = Duration::from_millis(5);

pub struct StorageActor {
    db: DatabaseConnection,
    gap: chrono::Duration,
    flush_interval: Duration,
    buffer: PendingWrites,
    /// Where committed events go (webhooks, bot, live).
    publisher: Publisher,
    event_flush_scheduled: bool,
    metrics: std::sync::Arc<crate::metrics::Metrics>,
}

impl StorageActor {
    pub fn new(
        db: DatabaseConnection,
        gap: chrono::Duration,
        flush_interval: Duration,
        publisher: Publisher,
    ) -> Self {
        StorageActor {
            db,
            gap,
            flush_interval,
            buffer: PendingWrites::default(),
            publisher,
            event_flush_scheduled: false,
            metrics: std::sync::Arc::default(),
        }
    }

    /// Where batch write times and written events are counted.
    pub fn with_metrics(mut self, metrics: std::sync::Arc<crate::metrics::Metrics>) -> Self {
        self.metrics = metrics;
        self
    }

    /// Writes the buffer. A failed batch goes back in front of the buffer for the next try.
    fn write_buffer(
        &mut self,
    ) -> impl ActorFuture<Self, Output = Result<(), StorageError>> + use<> {
        let writes = std::mem::take(&mut self.buffer);
        let db = self.db.clone();
        let publisher = self.publisher.clone();
        let metrics = self.metrics.clone();
        async move {
            let started = std::time::Instant::now();
            let result = match writes.is_empty() {
                true => Ok(()),
                false => storage::observations::write(&db, &writes).await,
            };
            if !writes.is_empty() {
                metrics.db_write_seconds.observe(started.elapsed());
            }
            if result.is_ok() && writes.has_events() {
                metrics.events_written(writes.event_types());
                publisher.publish(writes.events().to_vec());
            }
            (writes, result)
        }
        .into_actor(self)
        .map(|(writes, result), act: &mut StorageActor, _ctx| {
            if let Err(error) = &result {
                tracing::error!(%error, observations = writes.len(), "write failed; keeping the batch for the next try");
                act.buffer.prepend(writes);
            }
            result
        })
    }

    /// The actor handles no other message until the write is done, which keeps writes in order.
    fn flush(&mut self, ctx: &mut Context<Self>) {
        if !self.buffer.is_empty() {
            ctx.wait(self.write_buffer().map(|_, _, _| ()));
        }
    }
}

impl Actor for StorageActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.run_interval(self.flush_interval, |act, ctx| act.flush(ctx));
    }
}

impl Supervised for StorageActor {
    /// The buffer survives a restart in place (the actor value is kept); the timers are set
    /// again in `started`.
    fn restarting(&mut self, _ctx: &mut Self::Context) {
        self.event_flush_scheduled = false;
    }
}

crate::panics_on_request!(StorageActor);

impl Handler<RecordObservation> for StorageActor {
    type Result = ();

    fn handle(&mut self, RecordObservation(record): RecordObservation, ctx: &mut Self::Context) {
        let has_events = !record.events.is_empty();
        self.buffer.push(record);
        if self.buffer.len() >= FLUSH_AT {
            self.flush(ctx);
        } else if has_events && !self.event_flush_scheduled {
            self.event_flush_scheduled = true;
            ctx.run_later(EVENT_FLUSH_DELAY, |act, ctx| {
                act.event_flush_scheduled = false;
                act.flush(ctx);
            });
        }
    }
}

impl Handler<Flush> for StorageActor {
    type Result = AtomicResponse<Self, Result<(), StorageError>>;

    fn handle(&mut self, _: Flush, _ctx: &mut Self::Context) -> Self::Result {
        AtomicResponse::new(Box::pin(self.write_buffer()))
    }
}

impl Handler<RebuildSessions> for StorageActor {
    type Result = AtomicResponse<Self, Result<SessionFolder, StorageError>>;

    fn handle(&mut self, rebuild: RebuildSessions, _ctx: &mut Self::Context) -> Self::Result {
        // The late observation is in the buffer: write it before folding the history.
        let (db, gap) = (self.db.clone(), self.gap);
        AtomicResponse::new(Box::pin(self.write_buffer().then(
            move |written, act, _ctx| {
                async move {
                    written?;
                    storage::sessions::refold_after(&db, rebuild.tracked_user_id, rebuild.late, gap)
                        .await
                }
                .into_actor(act)
            },
        )))
    }
}
