//! `online_sessions`: what the gap rule made of the observations.

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};
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
use tgwatch_core::presence::{
    Observation, StatusKind,
    sessions::{Session, SessionFolder, fold_from},
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

/// Picks up the gap rule where it stopped for each of `tracked_user_ids`: the open session, the
/// newest observation and the newest online sighting. Three statements for the whole list (a
/// fleet of 100,000 people starts in a few hundred), each person an index seek in each.
pub async fn resume_folders(
    db: &DatabaseConnection,
    tracked_user_ids: &[Uuid],
    gap: Duration,
) -> Result<HashMap<Uuid, SessionFolder>, StorageError> {
    let mut open: HashMap<Uuid, online_sessions::Model> = HashMap::new();
    for ids in tracked_user_ids.chunks(super::sql::MAX_BOUND_VALUES) {
        let rows = online_sessions::Entity::find()
            .filter(online_sessions::Column::TrackedUserId.is_in(ids.iter().copied()))
            .filter(online_sessions::Column::EndedAt.is_null())
            .all(db)
            .await
            .doing("loading people's open sessions")?;
        for row in rows {
            // The newest open one, as `open_of` picks it.
            match open.get(&row.tracked_user_id) {
                Some(kept) if kept.started_at >= row.started_at => {}
                _ => {
                    open.insert(row.tracked_user_id, row);
                }
            }
        }
    }
    let newest = observations::newest_of_each(db, tracked_user_ids, None).await?;
    let newest_online =
        observations::newest_of_each(db, tracked_user_ids, Some(StatusKind::Online)).await?;
    Ok(tracked_user_ids
        .iter()
        .map(|id| {
            let folder = SessionFolder::resume(
                gap,
                open.get(id).map(from_row),
                newest.get(id).copied(),
                newest_online.get(id).map(|online| online.observed_at),
            );
            (*id, folder)
        })
        .collect())
}

/// Folds again what a late observation (already stored) can change, and replaces the stored
/// sessions from the restart point on: the start of the newest session whose opener comes before
/// `late` (see [`tgwatch_core::presence::sessions`], "Restarting a fold"), or `late` itself when no
/// opener does. The cost is bounded by the observations from that session on, not by the whole
/// history. Answers with the folder to continue from.
pub async fn refold_after(
    db: &DatabaseConnection,
    tracked_user_id: Uuid,
    late: Observation,
    gap: Duration,
) -> Result<SessionFolder, StorageError> {
    let txn = super::begin_write(db, "starting a session refold").await?;
    let restart_at = restart_point(&txn, tracked_user_id, &late).await?;
    let from = restart_at.unwrap_or(late.observed_at);
    let before = observations::newest_before(&txn, tracked_user_id, Some(from), None).await?;
    let seen_online =
        observations::newest_before(&txn, tracked_user_id, Some(from), Some(StatusKind::Online))
            .await?
            .map(|online| online.observed_at);
    let suffix = observations::from(&txn, tracked_user_id, from).await?;
    let (sessions, folder) = fold_from(SessionFolder::restart(gap, before, seen_online), suffix);

    // Before the first opener every stored session came from what is folded again.
    let mut stale = online_sessions::Entity::delete_many()
        .filter(online_sessions::Column::TrackedUserId.eq(tracked_user_id));
    if let Some(restart_at) = restart_at {
        stale = stale.filter(online_sessions::Column::StartedAt.gte(restart_at));
    }
    stale
        .exec(&txn)
        .await
        .doing("dropping sessions to fold again")?;
    if !sessions.is_empty() {
        online_sessions::Entity::insert_many(sessions.iter().map(|s| to_row(tracked_user_id, s)))
            .exec_without_returning(&txn)
            .await
            .doing("writing sessions folded again")?;
    }
    txn.commit().await.doing("committing a session refold")?;
    Ok(folder)
}

/// The start of the newest session whose opener comes before `late`, if any.
async fn restart_point(
    db: &impl ConnectionTrait,
    tracked_user_id: Uuid,
    late: &Observation,
) -> Result<Option<DateTime<Utc>>, StorageError> {
    let mut bound = late.observed_at;
    // At most two rounds: only the newest session before `late` can have its opener after it
    // (a visit revealed by a later `was_online`).
    loop {
        let Some(session) = online_sessions::Entity::find()
            .filter(online_sessions::Column::TrackedUserId.eq(tracked_user_id))
            .filter(online_sessions::Column::StartedAt.lt(bound))
            .order_by_desc(online_sessions::Column::StartedAt)
            .one(db)
            .await
            .doing("loading a session to fold again from")?
        else {
            return Ok(None);
        };
        if opener_precedes(db, tracked_user_id, session.started_at, late).await? {
            return Ok(Some(session.started_at));
        }
        bound = session.started_at;
    }
}

/// Whether the first observation at or after `started_at`, `late` left out, comes before `late`.
async fn opener_precedes(
    db: &impl ConnectionTrait,
    tracked_user_id: Uuid,
    started_at: DateTime<Utc>,
    late: &Observation,
) -> Result<bool, StorageError> {
    let first = status_checks::Entity::find()
        .filter(status_checks::Column::TrackedUserId.eq(tracked_user_id))
        .filter(status_checks::Column::ObservedAt.gte(started_at))
        .order_by_asc(status_checks::Column::ObservedAt)
        .one(db)
        .await
        .doing("loading the first observation of a session")?;
    match first {
        Some(first) if first.observed_at < late.observed_at => Ok(true),
        Some(first) if first.observed_at == late.observed_at => {
            // Same instant: the order of the gap rule decides, `late` itself left out once.
            let mut same_instant = observations::at(db, tracked_user_id, late.observed_at).await?;
            if let Some(index) = same_instant.iter().position(|o| o == late) {
                same_instant.swap_remove(index);
            }
            Ok(same_instant.iter().any(|o| o < late))
        }
        _ => Ok(false),
    }
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

/// Every session of a user, oldest first.
pub async fn all_of(
    db: &impl ConnectionTrait,
    tracked_user_id: Uuid,
) -> Result<Vec<Session>, StorageError> {
    Ok(online_sessions::Entity::find()
        .filter(online_sessions::Column::TrackedUserId.eq(tracked_user_id))
        .order_by_asc(online_sessions::Column::StartedAt)
        .all(db)
        .await
        .doing("loading sessions")?
        .iter()
        .map(from_row)
        .collect())
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
