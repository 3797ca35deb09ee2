//! Webhook endpoints, the outbox fan-out, claiming due messages, and recording attempts.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait,
    ActiveValue::Set,
    ColumnTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, EntityTrait,
    FromQueryResult, QueryFilter, QueryOrder, QuerySelect,
    prelude::Expr,
    sea_query::{ExprTrait, OnConflict},
};
use serde_json::json;
use tgwatch_core::config::Origin;
use uuid::Uuid;

use super::{
    Doing, StorageError,
    entities::{events, webhook_deliveries, webhook_messages, webhooks},
    page::{self, Order, Page},
    sql::{BulkInsert, MAX_BOUND_VALUES, Sql},
};
use tgwatch_core::events::{Event, EventType};

pub use crate::entities::webhooks::EndpointStatus;

impl EndpointStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            EndpointStatus::Active => "active",
            EndpointStatus::Inactive => "inactive",
            EndpointStatus::Disabled => "disabled",
        }
    }
}

pub use crate::entities::webhook_messages::DeliveryStatus;

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Failed => "failed",
        }
    }
}

/// Writes events into the outbox, inside the caller's transaction, and queues their webhook
/// messages in it: each event gets a message, due at the event's time, for every active
/// endpoint that wants it, and is written already fanned out. Doing it here spares the dispatcher reading the new
/// events back and rewriting each of them to mark it (on PostgreSQL that rewrite, a new version
/// of the whole row in three indexes, was the costliest statement of a channel post's path).
/// An endpoint created while the transaction runs gets the events written after it.
pub async fn insert_events(
    txn: &DatabaseTransaction,
    events: &[Event],
) -> Result<(), StorageError> {
    if events.is_empty() {
        return Ok(());
    }
    let mut insert = BulkInsert::new(txn.get_database_backend(), "events", events.len());
    insert
        .column("id", events.iter().map(|event| event.id.clone()))
        .column(
            "event_type",
            events
                .iter()
                .map(|event| event.event_type.as_str().to_owned()),
        )
        .column("body", events.iter().map(|event| event.body.clone()))
        .nullable(
            "tracked_user_id",
            events.iter().map(|event| event.tracked_user_id),
        )
        .nullable("channel_id", events.iter().map(|event| event.channel_id))
        .column("fanned_out", events.iter().map(|_| true))
        .column("created_at", events.iter().map(|event| event.timestamp));
    insert.execute(txn, "writing events to the outbox").await?;
    let outgoing = events.iter().map(|event| Outgoing {
        event_id: &event.id,
        event_type: event.event_type.as_str(),
        tracked_user_id: event.tracked_user_id,
        channel_id: event.channel_id,
        due: event.timestamp,
    });
    queue_for_subscribers(txn, outgoing, Duplicates::Impossible).await
}

/// An event about to get its webhook messages, due at `due`.
struct Outgoing<'a> {
    event_id: &'a str,
    event_type: &'a str,
    tracked_user_id: Option<Uuid>,
    channel_id: Option<Uuid>,
    due: DateTime<Utc>,
}

/// Whether messages about to be queued may be queued already.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Duplicates {
    /// Their events are written in the same transaction.
    Impossible,
    /// Older events: a replay may have queued some of their messages already; those are
    /// skipped.
    Skipped,
}

/// Queues a message of each event for every active endpoint that wants it.
async fn queue_for_subscribers<'a>(
    txn: &DatabaseTransaction,
    events: impl Iterator<Item = Outgoing<'a>>,
    duplicates: Duplicates,
) -> Result<(), StorageError> {
    let subscriptions: Vec<(Uuid, Subscription)> = active_endpoints(txn)
        .await?
        .iter()
        .map(|endpoint| (endpoint.id, Subscription::of(endpoint)))
        .collect();
    if subscriptions.is_empty() {
        return Ok(());
    }
    let mut messages = Vec::new();
    for event in events {
        for (endpoint, subscription) in &subscriptions {
            if subscription.wants(event.event_type, event.tracked_user_id, event.channel_id) {
                messages.push(NewMessage {
                    webhook_id: *endpoint,
                    event_id: event.event_id,
                    due: event.due,
                });
            }
        }
    }
    queue_messages(txn, &messages, duplicates).await
}

/// A webhook message to queue: the endpoint, the event, and when it is due (also its creation
/// time).
struct NewMessage<'a> {
    webhook_id: Uuid,
    event_id: &'a str,
    due: DateTime<Utc>,
}

/// Queues messages. Skipping duplicates costs PostgreSQL a speculative insertion per row, so
/// only the messages of older events pay for it.
async fn queue_messages(
    txn: &DatabaseTransaction,
    messages: &[NewMessage<'_>],
    duplicates: Duplicates,
) -> Result<(), StorageError> {
    let mut insert = BulkInsert::new(
        txn.get_database_backend(),
        "webhook_messages",
        messages.len(),
    );
    insert
        .column("id", messages.iter().map(|_| Uuid::now_v7()))
        .column(
            "webhook_id",
            messages.iter().map(|message| message.webhook_id),
        )
        .column(
            "event_id",
            messages.iter().map(|message| message.event_id.to_owned()),
        )
        .column(
            "status",
            messages
                .iter()
                .map(|_| DeliveryStatus::Pending.as_str().to_owned()),
        )
        .column("attempts", messages.iter().map(|_| 0i32))
        .column(
            "next_attempt_at",
            messages.iter().map(|message| message.due),
        )
        .column("created_at", messages.iter().map(|message| message.due));
    if duplicates == Duplicates::Skipped {
        insert.then(" ON CONFLICT (event_id, webhook_id) DO NOTHING");
    }
    insert.execute(txn, "queueing webhook messages").await
}

/// Writes events into the outbox in a transaction of their own (see [`insert_events`]).
pub async fn write_events(db: &DatabaseConnection, events: &[Event]) -> Result<(), StorageError> {
    let txn = super::begin_write(db, "starting to write events").await?;
    insert_events(&txn, events).await?;
    txn.commit().await.doing("committing events")
}

pub struct NewWebhook {
    pub name: Option<String>,
    pub url: String,
    pub event_types: Vec<String>,
    pub tracked_user_id: Option<Uuid>,
    pub channel_id: Option<Uuid>,
    pub secret: String,
    pub source: Origin,
}

pub async fn create(
    db: &DatabaseConnection,
    new: NewWebhook,
    now: DateTime<Utc>,
) -> Result<webhooks::Model, StorageError> {
    webhooks::ActiveModel {
        id: Set(Uuid::now_v7()),
        name: Set(new.name),
        url: Set(new.url),
        event_types: Set(json!(new.event_types).to_string()),
        tracked_user_id: Set(new.tracked_user_id),
        channel_id: Set(new.channel_id),
        status: Set(EndpointStatus::Active),
        status_reason: Set(None),
        failure_count: Set(0),
        consecutive_failed_messages: Set(0),
        failing_since: Set(None),
        last_triggered: Set(None),
        secret: Set(new.secret),
        previous_secret: Set(None),
        previous_secret_until: Set(None),
        source: Set(new.source),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(db)
    .await
    .doing("creating a webhook")
}

pub async fn get(
    db: &DatabaseConnection,
    id: Uuid,
) -> Result<Option<webhooks::Model>, StorageError> {
    webhooks::Entity::find_by_id(id)
        .one(db)
        .await
        .doing("loading a webhook")
}

pub async fn find_by_name(
    db: &DatabaseConnection,
    name: &str,
) -> Result<Option<webhooks::Model>, StorageError> {
    webhooks::Entity::find()
        .filter(webhooks::Column::Name.eq(name))
        .one(db)
        .await
        .doing("finding a webhook by name")
}

pub async fn all(db: &DatabaseConnection) -> Result<Vec<webhooks::Model>, StorageError> {
    webhooks::Entity::find()
        .all(db)
        .await
        .doing("loading webhooks")
}

pub async fn list(
    db: &DatabaseConnection,
    status: Option<EndpointStatus>,
    limit: u64,
    cursor: Option<Uuid>,
    order: Order,
) -> Result<Page<webhooks::Model>, StorageError> {
    let mut select = webhooks::Entity::find();
    if let Some(status) = status {
        select = select.filter(webhooks::Column::Status.eq(status.as_str()));
    }
    page::fetch(
        db,
        select,
        webhooks::Column::Id,
        |row| row.id,
        limit,
        cursor,
        order,
    )
    .await
}

pub async fn save(
    db: &DatabaseConnection,
    row: webhooks::ActiveModel,
) -> Result<webhooks::Model, StorageError> {
    row.update(db).await.doing("updating a webhook")
}

/// Deletes an endpoint with its messages and its deliveries.
pub async fn delete(db: &DatabaseConnection, id: Uuid) -> Result<(), StorageError> {
    let txn = super::begin_write(db, "starting to delete a webhook").await?;
    webhook_messages::Entity::delete_many()
        .filter(webhook_messages::Column::WebhookId.eq(id))
        .exec(&txn)
        .await
        .doing("deleting a webhook's messages")?;
    webhook_deliveries::Entity::delete_many()
        .filter(webhook_deliveries::Column::WebhookId.eq(id))
        .exec(&txn)
        .await
        .doing("deleting a webhook's deliveries")?;
    webhooks::Entity::delete_by_id(id)
        .exec(&txn)
        .await
        .doing("deleting a webhook")?;
    txn.commit().await.doing("committing a webhook's deletion")
}

/// The event types a webhook subscribed to (`["all"]` for everything).
pub fn event_types(row: &webhooks::Model) -> Vec<String> {
    serde_json::from_str(&row.event_types).unwrap_or_default()
}

/// What an endpoint subscribed to, read once for many events.
pub struct Subscription {
    event_types: Vec<String>,
    tracked_user_id: Option<Uuid>,
    channel_id: Option<Uuid>,
}

impl Subscription {
    pub fn of(row: &webhooks::Model) -> Subscription {
        Subscription {
            event_types: event_types(row),
            tracked_user_id: row.tracked_user_id,
            channel_id: row.channel_id,
        }
    }

    /// Whether the endpoint wants an event of this type about this person or channel.
    pub fn wants(
        &self,
        event_type: &str,
        tracked_user_id: Option<Uuid>,
        channel_id: Option<Uuid>,
    ) -> bool {
        // Test events go to the one endpoint they were made for, never by subscription.
        let is_test = event_type == EventType::Test.as_str();
        let type_matches = self
            .event_types
            .iter()
            .any(|t| t == "all" || t == event_type);
        let user_matches =
            self.tracked_user_id.is_none() || self.tracked_user_id == tracked_user_id;
        let channel_matches = self.channel_id.is_none() || self.channel_id == channel_id;
        !is_test && type_matches && user_matches && channel_matches
    }
}

/// The endpoints that get messages.
async fn active_endpoints(db: &impl ConnectionTrait) -> Result<Vec<webhooks::Model>, StorageError> {
    webhooks::Entity::find()
        .filter(webhooks::Column::Status.eq(EndpointStatus::Active.as_str()))
        .all(db)
        .await
        .doing("loading active webhooks")
}

/// Queues the messages of events written without them (by a version of tgwatch that left the
/// fan-out to the dispatcher) for every active endpoint that wants them. Returns how many
/// events were handled (the caller loops while there are more).
///
/// The events are looked for outside the write transaction, which is begun only when there are
/// some (see [`fan_out_events`]).
pub async fn fan_out(
    db: &DatabaseConnection,
    limit: u64,
    now: DateTime<Utc>,
) -> Result<usize, StorageError> {
    let pending = events::Entity::find()
        .filter(events::Column::FannedOut.eq(false))
        .order_by_asc(events::Column::CreatedAt)
        .limit(limit)
        .all(db)
        .await
        .doing("loading events not fanned out")?;
    if pending.is_empty() {
        return Ok(0);
    }
    fan_out_events(db, &pending, now).await?;
    Ok(pending.len())
}

/// Marks `pending` (read as not fanned out) fanned out and queues messages for the events it
/// marked itself, in one transaction: of two instances fanning the same events out at once, the
/// second finds them marked (on PostgreSQL its update waits for the first's commit and checks
/// again) and queues nothing. Checking for the messages instead would not do: a delivered
/// message leaves the queue, so the second could queue one the first had already delivered.
pub async fn fan_out_events(
    db: &DatabaseConnection,
    pending: &[events::Model],
    now: DateTime<Utc>,
) -> Result<(), StorageError> {
    let txn = super::begin_write(db, "starting the fan-out").await?;
    let mut sql = Sql::new(
        txn.get_database_backend(),
        "UPDATE events SET fanned_out = ",
    );
    sql.bind(true);
    sql.push(" WHERE fanned_out = ");
    sql.bind(false);
    sql.push(" AND id IN ");
    sql.tuple(pending.iter().map(|event| event.id.clone().into()));
    sql.push(" RETURNING id");
    let mut marked = HashSet::with_capacity(pending.len());
    for row in txn
        .query_all_raw(sql.statement())
        .await
        .doing("marking events fanned out")?
    {
        marked.insert(
            row.try_get::<String>("", "id")
                .doing("reading an event marked fanned out")?,
        );
    }
    let outgoing = pending
        .iter()
        .filter(|event| marked.contains(&event.id))
        .map(|event| Outgoing {
            event_id: &event.id,
            event_type: &event.event_type,
            tracked_user_id: event.tracked_user_id,
            channel_id: event.channel_id,
            due: now,
        });
    queue_for_subscribers(&txn, outgoing, Duplicates::Skipped).await?;
    txn.commit().await.doing("committing the fan-out")
}

fn new_message(
    webhook_id: Uuid,
    event_id: &str,
    now: DateTime<Utc>,
) -> webhook_messages::ActiveModel {
    webhook_messages::ActiveModel {
        id: Set(Uuid::now_v7()),
        webhook_id: Set(webhook_id),
        event_id: Set(event_id.to_owned()),
        status: Set(DeliveryStatus::Pending),
        attempts: Set(0),
        next_attempt_at: Set(now),
        claimed_until: Set(None),
        created_at: Set(now),
        completed_at: Set(None),
    }
}

/// A message claimed for an attempt, with what the attempt needs.
pub struct Claimed {
    pub message: webhook_messages::Model,
    pub body: String,
    pub url: String,
    pub secrets: Vec<String>,
}

/// What a claim found: the active endpoints, and the messages claimed for them.
pub struct Claims {
    pub active: Vec<Uuid>,
    pub claimed: Vec<Claimed>,
}

/// Claims due messages of active endpoints, at most `capacity(endpoint)` for each, until
/// `lease_until`, oldest due first. On PostgreSQL the rows are locked with SKIP LOCKED, so
/// several instances share the work without sending a message twice.
///
/// Each endpoint's claim is one statement that picks the messages, sets their lease and returns
/// them with their events' bodies: on PostgreSQL every statement is a round trip.
pub async fn claim(
    db: &DatabaseConnection,
    now: DateTime<Utc>,
    lease_until: DateTime<Utc>,
    capacity: impl Fn(Uuid) -> u64,
) -> Result<Claims, StorageError> {
    let endpoints = active_endpoints(db).await?;
    let mut claimed = Vec::new();
    for endpoint in &endpoints {
        let room = capacity(endpoint.id);
        if room > 0 {
            claimed.extend(claim_for(db, endpoint, now, lease_until, room).await?);
        }
    }
    Ok(Claims {
        active: endpoints.iter().map(|endpoint| endpoint.id).collect(),
        claimed,
    })
}

/// Claims at most `room` due messages of `endpoint` (see [`claim`]).
async fn claim_for(
    db: &DatabaseConnection,
    endpoint: &webhooks::Model,
    now: DateTime<Utc>,
    lease_until: DateTime<Utc>,
    room: u64,
) -> Result<Vec<Claimed>, StorageError> {
    let backend = db.get_database_backend();
    let mut sql = Sql::new(backend, "UPDATE webhook_messages SET claimed_until = ");
    sql.bind(lease_until);
    sql.push(" WHERE id IN (SELECT id FROM webhook_messages WHERE webhook_id = ");
    sql.bind(endpoint.id);
    // Written out, not bound: the index of pending messages is used only when the query names
    // its condition itself.
    sql.push(" AND status = 'pending' AND next_attempt_at <= ");
    sql.bind(now);
    sql.push(" AND (claimed_until IS NULL OR claimed_until < ");
    sql.bind(now);
    sql.push(") ORDER BY next_attempt_at LIMIT ");
    sql.bind(i64::try_from(room).unwrap_or(i64::MAX));
    if backend == DbBackend::Postgres {
        sql.push(" FOR UPDATE SKIP LOCKED");
    }
    sql.push(
        ") RETURNING id, webhook_id, event_id, status, attempts, next_attempt_at, \
         claimed_until, created_at, completed_at, \
         (SELECT body FROM events WHERE events.id = webhook_messages.event_id) AS body",
    );
    let rows = match backend {
        // A write statement on SQLite takes the write lock at BEGIN (see `begin_write`).
        DbBackend::Sqlite => {
            let txn = super::begin_write(db, "starting a claim").await?;
            let rows = txn
                .query_all_raw(sql.statement())
                .await
                .doing("claiming webhook messages")?;
            txn.commit().await.doing("committing a claim")?;
            rows
        }
        _ => db
            .query_all_raw(sql.statement())
            .await
            .doing("claiming webhook messages")?,
    };
    let mut secrets = vec![endpoint.secret.clone()];
    if let (Some(previous), Some(until)) =
        (&endpoint.previous_secret, endpoint.previous_secret_until)
        && until > now
    {
        secrets.push(previous.clone());
    }
    let mut claimed = Vec::with_capacity(rows.len());
    for row in rows {
        let message = webhook_messages::Model::from_query_result(&row, "")
            .doing("reading a claimed webhook message")?;
        // An event deleted by hand (retention keeps every event a message refers to): there is
        // nothing to send, and the message waits for the end of its lease like any other.
        let Some(body) = row
            .try_get::<Option<String>>("", "body")
            .doing("reading a claimed message's event")?
        else {
            continue;
        };
        claimed.push(Claimed {
            url: endpoint.url.clone(),
            secrets: secrets.clone(),
            body,
            message,
        });
    }
    claimed.sort_by_key(|claimed| claimed.message.next_attempt_at);
    Ok(claimed)
}

/// Gives back the claims on `message_ids` that are still pending: a stopping instance that could
/// not finish their attempts lets the next claim (its own after a restart, or another
/// instance's) take them at once instead of waiting for the lease to run out. Returns how many
/// claims were released.
pub async fn release_claims(
    db: &DatabaseConnection,
    message_ids: &[Uuid],
) -> Result<u64, StorageError> {
    let mut released = 0;
    for chunk in message_ids.chunks(MAX_BOUND_VALUES) {
        released += webhook_messages::Entity::update_many()
            .col_expr(
                webhook_messages::Column::ClaimedUntil,
                Expr::value(Option::<DateTime<Utc>>::None),
            )
            .filter(webhook_messages::Column::Id.is_in(chunk.iter().copied()))
            .filter(webhook_messages::Column::Status.eq(DeliveryStatus::Pending.as_str()))
            .exec(db)
            .await
            .doing("releasing webhook claims")?
            .rows_affected;
    }
    Ok(released)
}

/// What one attempt came to, and what happens to its message next.
pub struct AttemptRecord {
    pub message_id: Uuid,
    pub webhook_id: Uuid,
    pub event_id: String,
    pub attempt: i32,
    pub request_body: String,
    pub status_code: Option<i32>,
    pub response_body: Option<String>,
    pub latency_ms: i32,
    pub error: Option<String>,
    pub success: bool,
    pub triggered_at: DateTime<Utc>,
    pub completed_at: DateTime<Utc>,
    /// `Some` to try again then; `None` when the message is done (delivered or failed).
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// 410 Gone: the consumer wants no more.
    pub gone: bool,
}

/// When an endpoint that keeps failing is disabled.
#[derive(Clone, Copy)]
pub struct DisablePolicy {
    pub after_failing_for: chrono::Duration,
    pub after_failed_messages: i32,
}

/// Writes a batch of attempts: the delivery rows, the messages' next state and the endpoints'
/// health, in one transaction. Endpoints that must be disabled are, with an alert event.
/// Returns the endpoints disabled.
pub async fn record_attempts(
    db: &DatabaseConnection,
    attempts: &[AttemptRecord],
    policy: DisablePolicy,
    now: DateTime<Utc>,
) -> Result<Vec<webhooks::Model>, StorageError> {
    let txn = super::begin_write(db, "starting to record attempts").await?;
    let mut deliveries = BulkInsert::new(
        txn.get_database_backend(),
        "webhook_deliveries",
        attempts.len(),
    );
    deliveries
        .column("id", attempts.iter().map(|_| Uuid::now_v7()))
        .column("webhook_id", attempts.iter().map(|a| a.webhook_id))
        .column("message_id", attempts.iter().map(|a| a.message_id))
        .column("event_id", attempts.iter().map(|a| a.event_id.clone()))
        .column("attempt", attempts.iter().map(|a| a.attempt))
        .column(
            "request_body",
            attempts.iter().map(|a| a.request_body.clone()),
        )
        .nullable("status_code", attempts.iter().map(|a| a.status_code))
        .nullable(
            "response_body",
            attempts.iter().map(|a| a.response_body.clone()),
        )
        .column("latency_ms", attempts.iter().map(|a| a.latency_ms))
        .nullable("error", attempts.iter().map(|a| a.error.clone()))
        .column("success", attempts.iter().map(|a| a.success))
        .column("triggered_at", attempts.iter().map(|a| a.triggered_at))
        .column("completed_at", attempts.iter().map(|a| a.completed_at));
    deliveries
        .execute(&txn, "recording delivery attempts")
        .await?;
    let mut endpoints: HashMap<Uuid, webhooks::Model> = webhooks::Entity::find()
        .filter(
            webhooks::Column::Id.is_in(
                attempts
                    .iter()
                    .map(|a| a.webhook_id)
                    .collect::<HashSet<Uuid>>(),
            ),
        )
        .all(&txn)
        .await
        .doing("loading webhooks of attempts")?
        .into_iter()
        .map(|w| (w.id, w))
        .collect();
    let mut disabled = Vec::new();
    // A delivered message leaves the queue: its delivery row is its record. A message whose
    // every attempt failed stays, marked failed, until retention. Done messages of the batch
    // are written together; retries each get their own time.
    let delivered: Vec<Uuid> = attempts
        .iter()
        .filter(|a| a.success)
        .map(|a| a.message_id)
        .collect();
    for chunk in delivered.chunks(500) {
        webhook_messages::Entity::delete_many()
            .filter(webhook_messages::Column::Id.is_in(chunk.iter().copied()))
            .exec(&txn)
            .await
            .doing("removing delivered webhook messages")?;
    }
    let failed: Vec<Uuid> = attempts
        .iter()
        .filter(|a| !a.success && a.next_attempt_at.is_none())
        .map(|a| a.message_id)
        .collect();
    for chunk in failed.chunks(500) {
        webhook_messages::Entity::update_many()
            .col_expr(
                webhook_messages::Column::Status,
                Expr::value(DeliveryStatus::Failed.as_str()),
            )
            .col_expr(
                webhook_messages::Column::Attempts,
                Expr::col(webhook_messages::Column::Attempts).add(1),
            )
            .col_expr(
                webhook_messages::Column::ClaimedUntil,
                Expr::value(Option::<DateTime<Utc>>::None),
            )
            .col_expr(webhook_messages::Column::CompletedAt, Expr::value(now))
            .filter(webhook_messages::Column::Id.is_in(chunk.iter().copied()))
            .exec(&txn)
            .await
            .doing("completing webhook messages")?;
    }
    for attempt in attempts {
        if let (false, Some(next)) = (attempt.success, attempt.next_attempt_at) {
            webhook_messages::Entity::update_many()
                .col_expr(
                    webhook_messages::Column::Attempts,
                    Expr::value(attempt.attempt),
                )
                .col_expr(webhook_messages::Column::NextAttemptAt, Expr::value(next))
                .col_expr(
                    webhook_messages::Column::ClaimedUntil,
                    Expr::value(Option::<DateTime<Utc>>::None),
                )
                .filter(webhook_messages::Column::Id.eq(attempt.message_id))
                .exec(&txn)
                .await
                .doing("scheduling a webhook retry")?;
        }
        let Some(endpoint) = endpoints.get_mut(&attempt.webhook_id) else {
            continue; // deleted meanwhile
        };
        if attempt.success {
            endpoint.last_triggered = Some(attempt.completed_at);
            endpoint.consecutive_failed_messages = 0;
            endpoint.failing_since = None;
            continue;
        }
        endpoint.failure_count += 1;
        endpoint.failing_since.get_or_insert(attempt.completed_at);
        let message_failed = attempt.next_attempt_at.is_none();
        if message_failed {
            endpoint.consecutive_failed_messages += 1;
        }
        let failing_too_long = endpoint
            .failing_since
            .is_some_and(|since| now - since >= policy.after_failing_for);
        let reason = if attempt.gone {
            Some("the endpoint answered 410 Gone".to_owned())
        } else if message_failed
            && (failing_too_long
                || endpoint.consecutive_failed_messages >= policy.after_failed_messages)
        {
            Some(format!(
                "every attempt failed for {} message(s) in a row since {}",
                endpoint.consecutive_failed_messages,
                endpoint
                    .failing_since
                    .map(|s| s.to_rfc3339())
                    .unwrap_or_default()
            ))
        } else {
            None
        };
        if let Some(reason) = reason
            && endpoint.status == EndpointStatus::Active
        {
            endpoint.status = EndpointStatus::Disabled;
            endpoint.status_reason = Some(reason);
            disabled.push(endpoint.clone());
        }
    }
    for endpoint in endpoints.into_values() {
        let mut row: webhooks::ActiveModel = endpoint.into();
        row.updated_at = Set(now);
        // Mark every field as changed: the in-memory model holds the new values.
        row = mark_changed(row);
        row.update(&txn).await.doing("updating webhook health")?;
    }
    let alerts: Vec<Event> = disabled
        .iter()
        .map(|endpoint| {
            Event::new(
                EventType::Alert,
                now,
                json!({
                    "alert": "webhook_disabled",
                    "webhook_id": endpoint.id,
                    "url": endpoint.url,
                    "reason": endpoint.status_reason,
                }),
            )
        })
        .collect();
    insert_events(&txn, &alerts).await?;
    txn.commit().await.doing("committing attempts")?;
    Ok(disabled)
}

fn mark_changed(mut row: webhooks::ActiveModel) -> webhooks::ActiveModel {
    for column in [
        webhooks::Column::Status,
        webhooks::Column::StatusReason,
        webhooks::Column::FailureCount,
        webhooks::Column::ConsecutiveFailedMessages,
        webhooks::Column::FailingSince,
        webhooks::Column::LastTriggered,
    ] {
        row.reset(column);
    }
    row
}

pub struct DeliveryFilter {
    pub webhook_id: Uuid,
    pub success: Option<bool>,
    pub since: Option<DateTime<Utc>>,
}

pub async fn deliveries(
    db: &DatabaseConnection,
    filter: DeliveryFilter,
    limit: u64,
    cursor: Option<Uuid>,
    order: Order,
) -> Result<Page<webhook_deliveries::Model>, StorageError> {
    let mut select = webhook_deliveries::Entity::find()
        .filter(webhook_deliveries::Column::WebhookId.eq(filter.webhook_id));
    if let Some(success) = filter.success {
        select = select.filter(webhook_deliveries::Column::Success.eq(success));
    }
    if let Some(since) = filter.since {
        select = select.filter(webhook_deliveries::Column::TriggeredAt.gte(since));
    }
    page::fetch(
        db,
        select,
        webhook_deliveries::Column::Id,
        |row| row.id,
        limit,
        cursor,
        order,
    )
    .await
}

pub async fn delivery(
    db: &DatabaseConnection,
    id: Uuid,
) -> Result<Option<webhook_deliveries::Model>, StorageError> {
    webhook_deliveries::Entity::find_by_id(id)
        .one(db)
        .await
        .doing("loading a delivery")
}

/// Queues (again) the given events for one endpoint, due now, as a fresh round of attempts.
pub async fn requeue(
    db: &DatabaseConnection,
    webhook_id: Uuid,
    event_ids: &[String],
    now: DateTime<Utc>,
) -> Result<usize, StorageError> {
    let txn = super::begin_write(db, "starting a requeue").await?;
    for chunk in event_ids.chunks(500) {
        let rows = chunk
            .iter()
            .map(|event_id| new_message(webhook_id, event_id, now));
        webhook_messages::Entity::insert_many(rows)
            .on_conflict(
                OnConflict::columns([
                    webhook_messages::Column::EventId,
                    webhook_messages::Column::WebhookId,
                ])
                .update_columns([
                    webhook_messages::Column::Status,
                    webhook_messages::Column::Attempts,
                    webhook_messages::Column::NextAttemptAt,
                    webhook_messages::Column::ClaimedUntil,
                    webhook_messages::Column::CompletedAt,
                ])
                .to_owned(),
            )
            .exec_without_returning(&txn)
            .await
            .doing("requeueing webhook messages")?;
    }
    txn.commit().await.doing("committing a requeue")?;
    Ok(event_ids.len())
}

/// Ids of the events since `since` that an endpoint wants, for a replay.
pub async fn events_for_replay(
    db: &DatabaseConnection,
    endpoint: &webhooks::Model,
    since: DateTime<Utc>,
) -> Result<Vec<String>, StorageError> {
    let subscription = Subscription::of(endpoint);
    Ok(events::Entity::find()
        .filter(events::Column::CreatedAt.gte(since))
        .order_by_asc(events::Column::CreatedAt)
        .all(db)
        .await
        .doing("loading events to replay")?
        .into_iter()
        .filter(|event| {
            subscription.wants(&event.event_type, event.tracked_user_id, event.channel_id)
        })
        .map(|event| event.id)
        .collect())
}

/// Writes a test event for one endpoint only, and queues it.
pub async fn queue_test_event(
    db: &DatabaseConnection,
    endpoint: &webhooks::Model,
    now: DateTime<Utc>,
) -> Result<Event, StorageError> {
    let event = Event::new(
        EventType::Test,
        now,
        json!({ "webhook_id": endpoint.id, "message": "a test event from tgwatch" }),
    );
    let txn = super::begin_write(db, "starting a test event").await?;
    // Queued for no endpoint by subscription: only for this one, below.
    insert_events(&txn, std::slice::from_ref(&event)).await?;
    let message = NewMessage {
        webhook_id: endpoint.id,
        event_id: &event.id,
        due: now,
    };
    queue_messages(&txn, &[message], Duplicates::Impossible).await?;
    txn.commit().await.doing("committing a test event")?;
    Ok(event)
}
