//! The `logs` table (seed 001): events an operator should see, beside the process log.

use chrono::{DateTime, Utc};
use sea_orm::{ActiveValue::Set, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{
    StorageError,
    entities::logs,
    page::{self, Page},
};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogLevel {
    Info,
    Warning,
    Error,
    Critical,
}

impl LogLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Info => "info",
            LogLevel::Warning => "warning",
            LogLevel::Error => "error",
            LogLevel::Critical => "critical",
        }
    }
}

/// Writes a log row. A log that cannot be written must not fail the work it describes, so the
/// failure goes to the process log instead.
pub async fn write(
    db: &DatabaseConnection,
    level: LogLevel,
    message: &str,
    account_id: Option<Uuid>,
    tracked_user_id: Option<Uuid>,
    at: DateTime<Utc>,
) {
    let row = logs::ActiveModel {
        id: Set(Uuid::now_v7()),
        created_at: Set(at),
        level: Set(level.as_str().to_owned()),
        message: Set(message.to_owned()),
        account_id: Set(account_id),
        tracked_user_id: Set(tracked_user_id),
        context: Set(None),
    };
    if let Err(error) = logs::Entity::insert(row).exec_without_returning(db).await {
        tracing::error!(%error, message, "cannot write to the logs table");
    }
}

/// A configuration item that could not be applied: to the process log and the logs table, so an
/// operator sees it in `GET /api/logs`; the rest of the configuration still applies.
pub async fn config_problem(db: &DatabaseConnection, message: &str, at: DateTime<Utc>) {
    tracing::error!(message, "configuration item not applied");
    write(db, LogLevel::Error, message, None, None, at).await;
}

pub struct LogFilter {
    pub level: Option<LogLevel>,
    pub account_id: Option<Uuid>,
}

pub async fn list(
    db: &DatabaseConnection,
    filter: LogFilter,
    limit: u64,
    cursor: Option<Uuid>,
) -> Result<Page<logs::Model>, StorageError> {
    let mut select = logs::Entity::find();
    if let Some(level) = filter.level {
        select = select.filter(logs::Column::Level.eq(level.as_str()));
    }
    if let Some(account_id) = filter.account_id {
        select = select.filter(logs::Column::AccountId.eq(account_id));
    }
    page::fetch(db, select, logs::Column::Id, |row| row.id, limit, cursor).await
}
