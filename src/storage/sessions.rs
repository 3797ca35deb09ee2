//! `online_sessions`: what the gap rule made of the observations.

use chrono::{Duration, Utc};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter,
    QueryOrder,
};
use uuid::Uuid;

use super::{
    Doing, StorageError,
    entities::{online_sessions, status_checks},
    observations,
};
use crate::presence::{
    StatusKind,
    sessions::{Session, SessionFolder, fold},
    stats::Window,
};

pub fn to_row(tracked_user_id: Uuid, session: &Session) -> online_sessions::ActiveModel {
    let now = Utc::now();
    online_sessions::ActiveModel {
        id: Set(Uuid::now_v7()),
        tracked_user_id: Set(tracked_user_id),
        started_at: Set(session.started_at),
        last_online_at: Set(session.last_online_at),
        ended_at: Set(session.ended_at),
        duration_seconds: Set((session.last_online_at - session.started_at).num_seconds()),
        created_at: Set(now),
        updated_at: Set(now),
    }
}

pub fn from_row(row: &online_sessions::Model) -> Session {
    Session {
        started_at: row.started_at,
        last_online_at: row.last_online_at,
        ended_at: row.ended_at,
    }
}

/// Picks up the gap rule where it stopped: the open session, the newest observation and the
/// newest online sighting of the user.
pub async fn resume_folder(
    db: &DatabaseConnection,
    tracked_user_id: Uuid,
    gap: Duration,
) -> Result<SessionFolder, StorageError> {
    let open = open_of(db, tracked_user_id).await?;
    let newest = observations::newest_of(db, tracked_user_id).await?;
    let newest_online = status_checks::Entity::find()
        .filter(status_checks::Column::TrackedUserId.eq(tracked_user_id))
        .filter(status_checks::Column::Status.eq(StatusKind::Online.as_str()))
        .order_by_desc(status_checks::Column::ObservedAt)
        .one(db)
        .await
        .doing("loading the newest online sighting")?;
    Ok(SessionFolder::resume(
        gap,
        open.as_ref().map(from_row),
        newest
            .as_ref()
            .map(observations::to_observation)
            .transpose()?,
        newest_online.map(|row| row.observed_at),
    ))
}

/// Folds a user's whole history again and replaces the stored sessions with the result.
pub async fn rebuild(
    db: &DatabaseConnection,
    tracked_user_id: Uuid,
    gap: Duration,
) -> Result<SessionFolder, StorageError> {
    let txn = super::begin_write(db, "starting a session rebuild").await?;
    let history = observations::all_of(&txn, tracked_user_id).await?;
    let (sessions, folder) = fold(history, gap);
    online_sessions::Entity::delete_many()
        .filter(online_sessions::Column::TrackedUserId.eq(tracked_user_id))
        .exec(&txn)
        .await
        .doing("dropping sessions to rebuild")?;
    online_sessions::Entity::insert_many(sessions.iter().map(|s| to_row(tracked_user_id, s)))
        .exec_without_returning(&txn)
        .await
        .doing("writing rebuilt sessions")?;
    txn.commit().await.doing("committing a session rebuild")?;
    Ok(folder)
}

/// The sessions of a user that overlap the window, oldest first.
pub async fn overlapping(
    db: &impl ConnectionTrait,
    tracked_user_id: Uuid,
    window: Window,
) -> Result<Vec<online_sessions::Model>, StorageError> {
    online_sessions::Entity::find()
        .filter(online_sessions::Column::TrackedUserId.eq(tracked_user_id))
        .filter(online_sessions::Column::StartedAt.lte(window.to))
        .filter(online_sessions::Column::LastOnlineAt.gte(window.from))
        .order_by_asc(online_sessions::Column::StartedAt)
        .all(db)
        .await
        .doing("loading sessions")
}

/// The session still open for a user, if any.
pub async fn open_of(
    db: &DatabaseConnection,
    tracked_user_id: Uuid,
) -> Result<Option<online_sessions::Model>, StorageError> {
    online_sessions::Entity::find()
        .filter(online_sessions::Column::TrackedUserId.eq(tracked_user_id))
        .filter(online_sessions::Column::EndedAt.is_null())
        .order_by_desc(online_sessions::Column::StartedAt)
        .one(db)
        .await
        .doing("loading the open session")
}
