//! `status_checks`: every observation, written in batches together with the sessions they
//! changed.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder,
    sea_query::OnConflict,
};
use uuid::Uuid;

use super::{
    Doing, StorageError,
    entities::{online_sessions, status_checks},
    page::{self, Order, Page},
};
use tgwatch_core::{
    events::Event,
    presence::{Observation, Source, Status, StatusKind, sessions::Session},
};

/// Rows per INSERT statement: SQLite allows 32,766 bound values, status_checks has 9 columns.
const ROWS_PER_STATEMENT: usize = 1000;

/// One observation and the session changes it caused, to be written together.
#[derive(Clone, Debug)]
pub struct NewObservation {
    pub id: Uuid,
    pub tracked_user_id: Uuid,
    pub account_id: Option<Uuid>,
    pub observation: Observation,
    pub source: Source,
    pub recorded_at: DateTime<Utc>,
    pub sessions: Vec<Session>,
    /// Events the observation caused, written in the same transaction (the outbox).
    pub events: Vec<Event>,
}

/// Observations and session changes waiting to be written, in arrival order.
#[derive(Default)]
pub struct PendingWrites {
    observations: Vec<status_checks::ActiveModel>,
    sessions: Vec<(Uuid, Session)>,
    events: Vec<Event>,
}

impl PendingWrites {
    pub fn push(&mut self, record: NewObservation) {
        let observation = record.observation;
        self.observations.push(status_checks::ActiveModel {
            id: Set(record.id),
            tracked_user_id: Set(record.tracked_user_id),
            observed_at: Set(observation.observed_at),
            status: Set(observation.status.kind()),
            expires_at: Set(observation.status.expires()),
            was_online_at: Set(observation.status.was_online()),
            source: Set(record.source),
            account_id: Set(record.account_id),
            created_at: Set(record.recorded_at),
        });
        self.sessions.extend(
            record
                .sessions
                .into_iter()
                .map(|session| (record.tracked_user_id, session)),
        );
        self.events.extend(record.events);
    }

    /// Whether consumers wait for something in this batch.
    pub fn has_events(&self) -> bool {
        !self.events.is_empty()
    }

    /// The events of this batch (for the live feed, once committed).
    pub fn events(&self) -> &[Event] {
        &self.events
    }

    /// The types of the events in this batch, for counting once committed.
    pub fn event_types(&self) -> impl Iterator<Item = tgwatch_core::events::EventType> + '_ {
        self.events.iter().map(|event| event.event_type)
    }

    /// Puts a batch that failed to write back in front of what arrived since.
    pub fn prepend(&mut self, mut older: PendingWrites) {
        older.observations.append(&mut self.observations);
        older.sessions.append(&mut self.sessions);
        older.events.append(&mut self.events);
        *self = older;
    }

    pub fn len(&self) -> usize {
        self.observations.len()
    }

    pub fn is_empty(&self) -> bool {
        self.observations.is_empty() && self.sessions.is_empty() && self.events.is_empty()
    }
}

/// Writes the observations, the latest state of each changed session and the events they
/// caused in one transaction: an event is never stored without its data, nor data without it.
pub async fn write(db: &DatabaseConnection, writes: &PendingWrites) -> Result<(), StorageError> {
    let txn = super::begin_write(db, "starting a write").await?;
    for chunk in writes.observations.chunks(ROWS_PER_STATEMENT) {
        status_checks::Entity::insert_many(chunk.iter().cloned())
            .exec_without_returning(&txn)
            .await
            .doing("inserting status checks")?;
    }
    // One row per session: the last change wins (PostgreSQL refuses to upsert a row twice in
    // one statement).
    let mut latest: HashMap<(Uuid, DateTime<Utc>), Session> = HashMap::new();
    for (tracked_user_id, session) in &writes.sessions {
        latest.insert((*tracked_user_id, session.started_at), *session);
    }
    let rows: Vec<online_sessions::ActiveModel> = latest
        .into_iter()
        .map(|((tracked_user_id, _), session)| super::sessions::to_row(tracked_user_id, &session))
        .collect();
    for chunk in rows.chunks(ROWS_PER_STATEMENT) {
        online_sessions::Entity::insert_many(chunk.iter().cloned())
            .on_conflict(
                OnConflict::columns([
                    online_sessions::Column::TrackedUserId,
                    online_sessions::Column::StartedAt,
                ])
                .update_columns([
                    online_sessions::Column::LastOnlineAt,
                    online_sessions::Column::EndedAt,
                    online_sessions::Column::DurationSeconds,
                    online_sessions::Column::UpdatedAt,
                ])
                .to_owned(),
            )
            .exec_without_returning(&txn)
            .await
            .doing("saving sessions")?;
    }
    super::webhooks::insert_events(&txn, &writes.events).await?;
    txn.commit().await.doing("committing a write")
}

/// Rebuilds the domain observation from its row.
pub fn to_observation(row: &status_checks::Model) -> Result<Observation, StorageError> {
    Ok(Observation {
        observed_at: row.observed_at,
        status: Status::from_parts(
            row.status,
            row.expires_at,
            row.was_online_at,
            row.observed_at,
        ),
    })
}

/// Every observation of one user, oldest first.
pub async fn all_of(
    db: &impl sea_orm::ConnectionTrait,
    tracked_user_id: Uuid,
) -> Result<Vec<Observation>, StorageError> {
    status_checks::Entity::find()
        .filter(status_checks::Column::TrackedUserId.eq(tracked_user_id))
        .order_by_asc(status_checks::Column::ObservedAt)
        .all(db)
        .await
        .doing("loading a user's observations")?
        .iter()
        .map(to_observation)
        .collect()
}

/// A user's observations from `from` on, oldest first.
pub async fn from(
    db: &impl sea_orm::ConnectionTrait,
    tracked_user_id: Uuid,
    from: DateTime<Utc>,
) -> Result<Vec<Observation>, StorageError> {
    status_checks::Entity::find()
        .filter(status_checks::Column::TrackedUserId.eq(tracked_user_id))
        .filter(status_checks::Column::ObservedAt.gte(from))
        .order_by_asc(status_checks::Column::ObservedAt)
        .all(db)
        .await
        .doing("loading a user's recent observations")?
        .iter()
        .map(to_observation)
        .collect()
}

/// A user's observations made at exactly `at`.
pub async fn at(
    db: &impl sea_orm::ConnectionTrait,
    tracked_user_id: Uuid,
    at: DateTime<Utc>,
) -> Result<Vec<Observation>, StorageError> {
    status_checks::Entity::find()
        .filter(status_checks::Column::TrackedUserId.eq(tracked_user_id))
        .filter(status_checks::Column::ObservedAt.eq(at))
        .all(db)
        .await
        .doing("loading observations of one instant")?
        .iter()
        .map(to_observation)
        .collect()
}

/// A user's last observation (of `kind`, when given) in the order of the gap rule, among those
/// made before `before` (when given): several may share the newest instant.
pub async fn newest_before(
    db: &impl sea_orm::ConnectionTrait,
    tracked_user_id: Uuid,
    before: Option<DateTime<Utc>>,
    kind: Option<StatusKind>,
) -> Result<Option<Observation>, StorageError> {
    let mut newest = status_checks::Entity::find()
        .filter(status_checks::Column::TrackedUserId.eq(tracked_user_id));
    if let Some(before) = before {
        newest = newest.filter(status_checks::Column::ObservedAt.lt(before));
    }
    if let Some(kind) = kind {
        newest = newest.filter(status_checks::Column::Status.eq(kind.as_str()));
    }
    let Some(row) = newest
        .order_by_desc(status_checks::Column::ObservedAt)
        .one(db)
        .await
        .doing("loading the newest observation")?
    else {
        return Ok(None);
    };
    Ok(at(db, tracked_user_id, row.observed_at)
        .await?
        .into_iter()
        .filter(|observation| kind.is_none_or(|kind| observation.status.kind() == kind))
        .max())
}

#[derive(Clone, Default)]
pub struct ObservationFilter {
    pub tracked_user_ids: Option<Vec<Uuid>>,
    pub is_online: Option<bool>,
    pub status: Option<StatusKind>,
    pub after: Option<DateTime<Utc>>,
    pub before: Option<DateTime<Utc>>,
}

pub async fn list(
    db: &DatabaseConnection,
    filter: ObservationFilter,
    limit: u64,
    cursor: Option<Uuid>,
    order: Order,
) -> Result<Page<status_checks::Model>, StorageError> {
    let mut select = status_checks::Entity::find();
    if let Some(ids) = filter.tracked_user_ids {
        select = select.filter(status_checks::Column::TrackedUserId.is_in(ids));
    }
    match filter.is_online {
        Some(true) => select = select.filter(status_checks::Column::Status.eq("online")),
        Some(false) => select = select.filter(status_checks::Column::Status.ne("online")),
        None => {}
    }
    if let Some(status) = filter.status {
        select = select.filter(status_checks::Column::Status.eq(status.as_str()));
    }
    if let Some(after) = filter.after {
        select = select.filter(status_checks::Column::ObservedAt.gte(after));
    }
    if let Some(before) = filter.before {
        select = select.filter(status_checks::Column::ObservedAt.lt(before));
    }
    page::fetch(
        db,
        select,
        status_checks::Column::Id,
        |row| row.id,
        limit,
        cursor,
        order,
    )
    .await
}

pub async fn get(
    db: &DatabaseConnection,
    id: Uuid,
) -> Result<Option<status_checks::Model>, StorageError> {
    status_checks::Entity::find_by_id(id)
        .one(db)
        .await
        .doing("loading a status check")
}

/// The newest observation of a user, by observation time.
pub async fn newest_of(
    db: &DatabaseConnection,
    tracked_user_id: Uuid,
) -> Result<Option<status_checks::Model>, StorageError> {
    status_checks::Entity::find()
        .filter(status_checks::Column::TrackedUserId.eq(tracked_user_id))
        .order_by_desc(status_checks::Column::ObservedAt)
        .one(db)
        .await
        .doing("loading the newest observation")
}

/// Replaces what an observation says (a correction by an admin): its status and time. The
/// status's `expires_at` / `was_online_at` go with the status they belonged to: a changed status
/// keeps none. Fold the sessions again afterwards (the caller does, through the storage actor).
pub async fn correct(
    db: &DatabaseConnection,
    existing: status_checks::Model,
    observation: Observation,
) -> Result<status_checks::Model, StorageError> {
    use sea_orm::ActiveModelTrait;
    let mut row: status_checks::ActiveModel = existing.into();
    let (expires, was_online) = match observation.status {
        Status::Online { expires } => (Some(expires), None),
        Status::Offline { was_online } => (None, was_online),
        _ => (None, None),
    };
    row.status = Set(observation.status.kind());
    row.observed_at = Set(observation.observed_at);
    row.expires_at = Set(expires);
    row.was_online_at = Set(was_online);
    row.update(db).await.doing("correcting an observation")
}

/// Deletes one observation (the caller folds the sessions again).
pub async fn delete(db: &DatabaseConnection, id: Uuid) -> Result<(), StorageError> {
    status_checks::Entity::delete_by_id(id)
        .exec(db)
        .await
        .doing("deleting an observation")?;
    Ok(())
}
