//! The `logs` table (seed 001): events an operator should see, beside the process log.

use chrono::{DateTime, Utc};
use sea_orm::{ActiveValue::Set, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter};
use uuid::Uuid;

use super::{
    StorageError,
    entities::logs,
    page::{self, Order, Page},
};

pub use crate::entities::logs::LogLevel;

/// One line of the operator log: what happened, to what, and which part of the service says so.
#[derive(Clone, Debug)]
pub struct LogLine {
    pub level: LogLevel,
    pub message: String,
    pub account_id: Option<Uuid>,
    pub tracked_user_id: Option<Uuid>,
    pub channel_id: Option<Uuid>,
    pub source: Option<&'static str>,
    pub context: Option<serde_json::Value>,
}

impl LogLine {
    pub fn new(level: LogLevel, message: impl Into<String>) -> LogLine {
        LogLine {
            level,
            message: message.into(),
            account_id: None,
            tracked_user_id: None,
            channel_id: None,
            source: None,
            context: None,
        }
    }
    pub fn account(mut self, id: Uuid) -> LogLine {
        self.account_id = Some(id);
        self
    }
    pub fn channel(mut self, id: Uuid) -> LogLine {
        self.channel_id = Some(id);
        self
    }
    pub fn source(mut self, source: &'static str) -> LogLine {
        self.source = Some(source);
        self
    }
    pub fn context(mut self, context: serde_json::Value) -> LogLine {
        self.context = Some(context);
        self
    }

    /// Writes the line. A log that cannot be written must not fail the work it describes, so
    /// the failure goes to the process log instead.
    pub async fn write(self, db: &DatabaseConnection, at: DateTime<Utc>) {
        let row = logs::ActiveModel {
            id: Set(Uuid::now_v7()),
            created_at: Set(at),
            level: Set(self.level),
            message: Set(self.message.clone()),
            account_id: Set(self.account_id),
            tracked_user_id: Set(self.tracked_user_id),
            channel_id: Set(self.channel_id),
            source: Set(self.source.map(str::to_owned)),
            context: Set(self.context.map(|context| context.to_string())),
        };
        if let Err(error) = logs::Entity::insert(row).exec_without_returning(db).await {
            tracing::error!(%error, message = %self.message, "cannot write to the logs table");
        }
    }
}

/// Writes a log row about an account or a tracked user (see [`LogLine`] for more).
pub async fn write(
    db: &DatabaseConnection,
    level: LogLevel,
    message: &str,
    account_id: Option<Uuid>,
    tracked_user_id: Option<Uuid>,
    at: DateTime<Utc>,
) {
    LogLine {
        account_id,
        tracked_user_id,
        ..LogLine::new(level, message)
    }
    .write(db, at)
    .await;
}

/// A configuration item that could not be applied: to the process log and the logs table, so an
/// operator sees it in `GET /api/logs`; the rest of the configuration still applies.
pub async fn config_problem(db: &DatabaseConnection, message: &str, at: DateTime<Utc>) {
    tracing::error!(message, "configuration item not applied");
    write(db, LogLevel::Error, message, None, None, at).await;
}

#[derive(Default)]
pub struct LogFilter {
    pub level: Option<LogLevel>,
    pub account_id: Option<Uuid>,
    pub channel_id: Option<Uuid>,
    pub source: Option<String>,
    pub since: Option<DateTime<Utc>>,
}

pub async fn list(
    db: &DatabaseConnection,
    filter: LogFilter,
    limit: u64,
    cursor: Option<Uuid>,
    order: Order,
) -> Result<Page<logs::Model>, StorageError> {
    let mut select = logs::Entity::find();
    if let Some(level) = filter.level {
        select = select.filter(logs::Column::Level.eq(level));
    }
    if let Some(account_id) = filter.account_id {
        select = select.filter(logs::Column::AccountId.eq(account_id));
    }
    if let Some(channel_id) = filter.channel_id {
        select = select.filter(logs::Column::ChannelId.eq(channel_id));
    }
    if let Some(source) = filter.source {
        select = select.filter(logs::Column::Source.eq(source));
    }
    if let Some(since) = filter.since {
        select = select.filter(logs::Column::CreatedAt.gte(since));
    }
    page::fetch(
        db,
        select,
        logs::Column::Id,
        |row| row.id,
        limit,
        cursor,
        order,
    )
    .await
}
