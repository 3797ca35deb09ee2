//! Pruning of the tables that grow without bound (`[retention]`): one batch at a time.
//!
//! Each call of [`prune_batch`] is one `DELETE ... WHERE id IN (SELECT id ... ORDER BY ...
//! LIMIT n) RETURNING age` statement in a transaction of its own: its text and bound values are
//! the same whatever the batch size, on SQLite (whose 32,766 bound values a list of ids would
//! run into) as on PostgreSQL, and it deletes at most `n` rows, so it holds the write lock only
//! briefly. On SQLite each batch is followed by a truncating checkpoint, which keeps the
//! write-ahead log at about one batch's pages. The caller loops until a batch comes back short,
//! letting other writers in between. What a row still serves is part of each table's
//! condition, so a batch never takes it:
//!
//! - `status_checks` older than the cutoff, except each person's newest instant and newest
//!   online instant (what the gap rule resumes from);
//! - `webhook_deliveries` done before the cutoff, except those of a message still pending (its
//!   retry is still to come);
//! - `webhook_messages` whose every attempt failed before the cutoff (a delivered message
//!   leaves the queue at once; earlier versions kept them, marked delivered, and those go too);
//! - `events` older than the cutoff that the webhooks fanned out, with no webhook message left
//!   for them, and, when the bot is on, that the bot has queued;
//! - `bot_messages` done (sent, or refused for good) and queued before the cutoff;
//! - channel `messages` posted before the cutoff (their versions go with them);
//! - `logs` written before the cutoff (`[logs]`).

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend};

use super::{Doing, StorageError, sql::Sql};
use tgwatch_core::config::RetentionConfig;

/// A table the retention job prunes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Prunable {
    StatusChecks,
    /// Outbox events; `bot_enabled`: wait for the bot to have queued its messages too.
    Events {
        bot_enabled: bool,
    },
    WebhookMessages,
    WebhookDeliveries,
    BotMessages,
    ChannelMessages,
    /// The operator log (`[logs]`, its own job).
    Logs,
}

impl Prunable {
    /// The table's name, also the label of the pruned-rows metric.
    pub fn table(self) -> &'static str {
        match self {
            Prunable::StatusChecks => "status_checks",
            Prunable::Events { .. } => "events",
            Prunable::WebhookMessages => "webhook_messages",
            Prunable::WebhookDeliveries => "webhook_deliveries",
            Prunable::BotMessages => "bot_messages",
            Prunable::ChannelMessages => "messages",
            Prunable::Logs => "logs",
        }
    }

    /// The column the cutoff applies to, oldest first.
    fn age_column(self) -> &'static str {
        match self {
            Prunable::StatusChecks => "observed_at",
            Prunable::Events { .. } | Prunable::BotMessages | Prunable::Logs => "created_at",
            Prunable::WebhookMessages | Prunable::WebhookDeliveries => "completed_at",
            Prunable::ChannelMessages => "date",
        }
    }

    /// What a row must also satisfy to go, beside its age (rows of the table are `t`).
    fn push_still_needed_guard(self, sql: &mut Sql) {
        match self {
            Prunable::StatusChecks => {
                // Not at the person's newest instant, and not at their newest online instant.
                sql.push(
                    " AND EXISTS (SELECT 1 FROM status_checks n WHERE n.tracked_user_id = \
                     t.tracked_user_id AND n.observed_at > t.observed_at) AND (t.status <> ",
                );
                sql.bind("online");
                sql.push(
                    " OR EXISTS (SELECT 1 FROM status_checks o WHERE o.tracked_user_id = \
                     t.tracked_user_id AND o.observed_at > t.observed_at AND o.status = ",
                );
                sql.bind("online");
                sql.push("))");
            }
            Prunable::WebhookDeliveries => {
                sql.push(
                    " AND NOT EXISTS (SELECT 1 FROM webhook_messages m WHERE m.id = t.message_id \
                     AND m.status = ",
                );
                sql.bind("pending");
                sql.push(")");
            }
            Prunable::WebhookMessages | Prunable::BotMessages => {
                sql.push(" AND t.status <> ");
                sql.bind("pending");
            }
            Prunable::Events { bot_enabled } => {
                sql.push(" AND t.fanned_out = ");
                sql.bind(true);
                if bot_enabled {
                    sql.push(" AND t.bot_fanned_out = ");
                    sql.bind(true);
                }
                sql.push(
                    " AND NOT EXISTS (SELECT 1 FROM webhook_messages m WHERE m.event_id = t.id)",
                );
            }
            Prunable::ChannelMessages | Prunable::Logs => {}
        }
    }
}

/// What one batch did: how many rows went, and the age of the youngest of them, where the next
/// batch starts ([`prune_batch`]'s `from`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Batch {
    pub deleted: u64,
    pub reached: Option<DateTime<Utc>>,
}

/// Deletes at most `batch` rows of `what` older than `cutoff` (and, when given, not older than
/// `from`: the previous batch's `reached`) that nothing needs any more, oldest first. Fewer
/// than `batch` means the table is done. Starting where the last batch stopped matters on
/// PostgreSQL: the index entries of deleted rows stay until a vacuum, and a batch that started
/// from the oldest row every time would walk all of them again.
async fn prune_batch(
    db: &DatabaseConnection,
    what: Prunable,
    cutoff: DateTime<Utc>,
    from: Option<DateTime<Utc>>,
    batch: u64,
) -> Result<Batch, StorageError> {
    let table = what.table();
    let age = what.age_column();
    let backend = db.get_database_backend();
    let mut sql = Sql::new(
        backend,
        &format!("DELETE FROM {table} WHERE id IN (SELECT t.id FROM {table} t WHERE t.{age} < "),
    );
    sql.bind(cutoff);
    if let Some(from) = from {
        sql.push(&format!(" AND t.{age} >= "));
        sql.bind(from);
    }
    what.push_still_needed_guard(&mut sql);
    sql.push(&format!(" ORDER BY t.{age} LIMIT "));
    sql.bind(i64::try_from(batch).unwrap_or(i64::MAX));
    sql.push(&format!(") RETURNING {age}"));
    let txn = super::begin_write(db, "starting a prune").await?;
    if backend == DbBackend::Postgres {
        // The planner's estimate for the correlated checks is huge, and PostgreSQL would spend
        // most of a batch compiling it (JIT) for a thousand rows.
        txn.execute_unprepared("SET LOCAL jit = off")
            .await
            .doing("turning JIT off for a prune")?;
    }
    let rows = txn
        .query_all_raw(sql.statement())
        .await
        .doing("pruning old rows")?;
    txn.commit().await.doing("committing a prune")?;
    if backend == DbBackend::Sqlite {
        // A batch rewrites thousands of pages. With other writers committing between batches,
        // SQLite's automatic checkpoints (passive) never find the log fully copied back when a
        // transaction starts, so the log is never restarted and grows by every batch (8.5 GB
        // for a million rows deleted). This one waits for the writers in flight, copies the log
        // back and empties it; when readers keep it from finishing it says so in its row, and
        // the next batch tries again.
        db.execute_unprepared("PRAGMA wal_checkpoint(TRUNCATE)")
            .await
            .doing("checkpointing the write-ahead log after a prune")?;
    }
    let mut reached = None;
    for row in &rows {
        let at: DateTime<Utc> = row.try_get("", age).doing("reading a pruned row's age")?;
        reached = reached.max(Some(at));
    }
    Ok(Batch {
        deleted: rows.len() as u64,
        reached,
    })
}

/// Deletes every row of `what` older than `cutoff` that nothing needs any more, `batch` rows per
/// statement, letting other writers in between; returns how many went.
pub async fn prune_older_than(
    db: &DatabaseConnection,
    what: Prunable,
    cutoff: DateTime<Utc>,
    batch: u64,
) -> Result<u64, StorageError> {
    prune_in_batches(db, what, cutoff, batch, |_| {}).await
}

/// [`prune_older_than`], telling `each_batch` what every batch did as soon as it is done (the
/// benchmark times the batches, the tests check them).
pub async fn prune_in_batches(
    db: &DatabaseConnection,
    what: Prunable,
    cutoff: DateTime<Utc>,
    batch: u64,
    mut each_batch: impl FnMut(&Batch),
) -> Result<u64, StorageError> {
    let mut deleted = 0;
    let mut from = None;
    loop {
        let done = prune_batch(db, what, cutoff, from, batch).await?;
        each_batch(&done);
        deleted += done.deleted;
        if done.deleted < batch {
            return Ok(deleted);
        }
        from = done.reached;
        tokio::task::yield_now().await;
    }
}

/// What the retention job prunes and after how many days (0: never), in the order it must go:
/// webhook attempts before their messages, messages before their events (an event waits for
/// its messages to go). `bot_enabled`: events wait for the bot to have taken them too. Pure.
pub fn plan(retention: &RetentionConfig, bot_enabled: bool) -> [(Prunable, u32); 6] {
    [
        (Prunable::StatusChecks, retention.status_checks_days),
        (Prunable::WebhookDeliveries, retention.webhook_messages_days),
        (Prunable::WebhookMessages, retention.webhook_messages_days),
        (Prunable::Events { bot_enabled }, retention.events_days),
        (Prunable::BotMessages, retention.bot_messages_days),
        (Prunable::ChannelMessages, retention.channel_messages_days),
    ]
}
