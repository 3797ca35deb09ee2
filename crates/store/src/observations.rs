//! `status_checks`: every observation, written in batches together with the sessions they
//! changed.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, EntityTrait,
    QueryFilter, QueryOrder, Statement, sea_query::OnConflict,
};
use uuid::Uuid;

use super::{
    Doing, StorageError,
    entities::{online_sessions, status_checks},
    page::{self, Order, Page},
    sql::Sql,
};
use tgwatch_core::{
    events::Event,
    presence::{Observation, Source, Status, StatusKind, sessions::Session},
};

/// Rows per INSERT statement: SQLite allows 32,766 bound values, status_checks has 9 columns.
const ROWS_PER_STATEMENT: usize = 1000;

/// The columns [`insert_statements`] writes, in the order it binds them.
const STATUS_CHECK_COLUMNS: &str = "id, tracked_user_id, observed_at, status, expires_at, \
     was_online_at, source, account_id, created_at";

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
    /// Their sessions and events are moved to the lists beside.
    observations: Vec<NewObservation>,
    sessions: Vec<(Uuid, Session)>,
    events: Vec<Event>,
}

impl PendingWrites {
    pub fn push(&mut self, mut record: NewObservation) {
        let tracked_user_id = record.tracked_user_id;
        self.sessions.extend(
            std::mem::take(&mut record.sessions)
                .into_iter()
                .map(|session| (tracked_user_id, session)),
        );
        self.events.append(&mut record.events);
        self.observations.push(record);
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
    for statement in insert_statements(db.get_database_backend(), &writes.observations) {
        txn.execute_raw(statement)
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

/// The `status_checks` INSERT statements of `observations` (their sessions and events are
/// not in them), a thousand rows each. Built by hand: sea-query's per-row models cost about as
/// much as SQLite's own work for these rows (`tgwatch bench presence` compares the two).
pub fn insert_statements(backend: DbBackend, observations: &[NewObservation]) -> Vec<Statement> {
    observations
        .chunks(ROWS_PER_STATEMENT)
        .map(|chunk| {
            let mut sql = Sql::new(backend, "INSERT INTO status_checks (");
            sql.push(STATUS_CHECK_COLUMNS);
            sql.push(") VALUES ");
            sql.tuples(chunk.iter().map(|record| {
                let status = record.observation.status;
                [
                    record.id.into(),
                    record.tracked_user_id.into(),
                    record.observation.observed_at.into(),
                    status.kind().into(),
                    status.expires().into(),
                    status.was_online().into(),
                    record.source.into(),
                    record.account_id.into(),
                    record.recorded_at.into(),
                ]
            }));
            sql.statement()
        })
        .collect()
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

/// The newest observation of each of `tracked_user_ids` (of `kind` only, when given), picked as
/// [`newest_before`] picks it without a bound, in one statement: the id list drives, and each
/// person costs an index seek, whatever the length of their history.
pub async fn newest_of_each(
    db: &impl sea_orm::ConnectionTrait,
    tracked_user_ids: &[Uuid],
    kind: Option<StatusKind>,
) -> Result<HashMap<Uuid, Observation>, StorageError> {
    let mut newest: HashMap<Uuid, Observation> = HashMap::with_capacity(tracked_user_ids.len());
    let backend = db.get_database_backend();
    // Two bound values per kind filter beside the ids.
    for ids in tracked_user_ids.chunks(super::sql::MAX_BOUND_VALUES - 2) {
        let mut sql = Sql::new(
            backend,
            "SELECT status_checks.* FROM tracked_users \
             JOIN status_checks ON status_checks.tracked_user_id = tracked_users.id \
             AND status_checks.observed_at = (SELECT newest.observed_at FROM status_checks newest \
             WHERE newest.tracked_user_id = tracked_users.id",
        );
        if let Some(kind) = kind {
            sql.push(" AND newest.status = ");
            sql.bind(kind);
        }
        sql.push(" ORDER BY newest.observed_at DESC LIMIT 1)");
        if let Some(kind) = kind {
            sql.push(" AND status_checks.status = ");
            sql.bind(kind);
        }
        sql.push(" WHERE tracked_users.id IN ");
        sql.tuple(ids.iter().map(|id| (*id).into()));
        let rows = status_checks::Entity::find()
            .from_raw_sql(sql.statement())
            .all(db)
            .await
            .doing("loading people's newest observations")?;
        for row in &rows {
            let observation = to_observation(row)?;
            newest
                .entry(row.tracked_user_id)
                .and_modify(|kept| *kept = (*kept).max(observation))
                .or_insert(observation);
        }
    }
    Ok(newest)
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
