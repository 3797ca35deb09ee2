//! Figures read at scrape and health-check time: accounts and channels by state.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use migration::SchemaManager;
use sea_orm::{
    ConnectionTrait, DatabaseConnection, EntityTrait, QueryOrder,
    sea_query::{Alias, Expr, ExprTrait, Query},
};
use serde::Serialize;
use uuid::Uuid;

use super::{Doing, StorageError, entities::channels};

/// Channels by `status` (active / unassigned / failed / left); empty while there is no
/// `channels` table.
pub async fn channels_by_status(
    db: &DatabaseConnection,
) -> Result<BTreeMap<String, u64>, StorageError> {
    let mut counts = BTreeMap::new();
    if !SchemaManager::new(db)
        .has_table("channels")
        .await
        .doing("looking for the channels table")?
    {
        return Ok(counts);
    }
    let query = Query::select()
        .column(Alias::new("status"))
        .expr_as(Expr::col(Alias::new("id")).count(), Alias::new("n"))
        .from(Alias::new("channels"))
        .group_by_col(Alias::new("status"))
        .to_owned();
    for row in db
        .query_all(&query)
        .await
        .doing("counting channels by status")?
    {
        let status: String = row
            .try_get("", "status")
            .doing("reading a channel status")?;
        let count: i64 = row.try_get("", "n").doing("reading a channel count")?;
        counts.insert(status, u64::try_from(count).unwrap_or(0));
    }
    Ok(counts)
}

/// One monitored channel as `GET /api/health` shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ChannelActivity {
    pub id: Uuid,
    pub username: Option<String>,
    pub title: Option<String>,
    pub status: crate::channels::ChannelStatus,
    /// When the last message event of the channel was stored.
    pub last_event_at: Option<DateTime<Utc>>,
}

/// Every channel with its state and the time of its last event.
pub async fn channel_activity(
    db: &DatabaseConnection,
) -> Result<Vec<ChannelActivity>, StorageError> {
    Ok(channels::Entity::find()
        .order_by_asc(channels::Column::CreatedAt)
        .all(db)
        .await
        .doing("loading channels for the health check")?
        .into_iter()
        .map(|row| ChannelActivity {
            id: row.id,
            username: row.username,
            title: row.title,
            status: row.status,
            last_event_at: row.last_event_at,
        })
        .collect())
}
