//! What the API returns: the stored rows shaped for JSON, without secrets.

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use tgwatch_core::config::Origin;
use tgwatch_core::presence::{Source, StatusKind, sessions::Session};
use tgwatch_store::{
    accounts::AccountStatus,
    entities::{accounts, logs, online_sessions, status_checks, tracked_users},
    logs::LogLevel,
    sessions::from_row,
};

#[derive(Serialize, utoipa::ToSchema)]
pub struct AccountView {
    pub id: Uuid,
    pub label: String,
    pub phone: Option<String>,
    pub username: Option<String>,
    pub telegram_user_id: Option<i64>,
    pub api_id: Option<i32>,
    pub status: AccountStatus,
    pub status_reason: Option<String>,
    pub is_active: bool,
    pub is_authorized: bool,
    pub max_targets: i32,
    pub max_channels: i32,
    pub targets_count: i32,
    pub channels_count: i32,
    pub last_active: Option<DateTime<Utc>>,
    /// `config` (declared in config.toml) or `api`.
    pub source: Origin,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<accounts::Model> for AccountView {
    fn from(row: accounts::Model) -> Self {
        AccountView {
            id: row.id,
            is_active: row.status == AccountStatus::Active,
            label: row.label,
            phone: row.phone,
            username: row.username,
            telegram_user_id: row.telegram_user_id,
            api_id: row.api_id,
            status: row.status,
            status_reason: row.status_reason,
            is_authorized: row.is_authorized,
            max_targets: row.max_targets,
            max_channels: row.max_channels,
            targets_count: row.targets_count,
            channels_count: row.channels_count,
            last_active: row.last_active,
            source: row.source,
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct TrackedUserView {
    pub id: Uuid,
    pub telegram_user_id: Option<i64>,
    pub username: Option<String>,
    pub first_name: Option<String>,
    pub account_id: Option<Uuid>,
    pub visible_online: bool,
    pub notify: bool,
    pub is_active: bool,
    /// `config` (declared in config.toml) or `api`.
    pub source: Origin,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<tracked_users::Model> for TrackedUserView {
    fn from(row: tracked_users::Model) -> Self {
        TrackedUserView {
            id: row.id,
            telegram_user_id: row.telegram_user_id,
            username: row.username,
            first_name: row.first_name,
            account_id: row.account_id,
            visible_online: row.visible_online,
            notify: row.notify,
            is_active: row.is_active,
            source: row.source,
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct StatusCheckView {
    pub id: Uuid,
    pub tracked_user_id: Uuid,
    pub status: StatusKind,
    pub is_online: bool,
    pub observed_at: DateTime<Utc>,
    /// Seed 002 calls the observation time `created_at`; same value as `observed_at`.
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub was_online_at: Option<DateTime<Utc>>,
    pub source: Source,
    pub account_id: Option<Uuid>,
}

impl From<status_checks::Model> for StatusCheckView {
    fn from(row: status_checks::Model) -> Self {
        StatusCheckView {
            id: row.id,
            tracked_user_id: row.tracked_user_id,
            is_online: row.status == StatusKind::Online,
            status: row.status,
            observed_at: row.observed_at,
            created_at: row.observed_at,
            expires_at: row.expires_at,
            was_online_at: row.was_online_at,
            source: row.source,
            account_id: row.account_id,
        }
    }
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct SessionView {
    pub started_at: DateTime<Utc>,
    /// `None` while the session may still go on.
    pub ended_at: Option<DateTime<Utc>>,
    pub last_online_at: DateTime<Utc>,
    pub is_open: bool,
    /// Length as known now (an open session counts up to now).
    pub duration_seconds: i64,
}

impl SessionView {
    pub fn new(row: &online_sessions::Model, now: DateTime<Utc>) -> SessionView {
        let session: Session = from_row(row);
        SessionView {
            started_at: session.started_at,
            ended_at: session.ended_at,
            last_online_at: session.last_online_at,
            is_open: session.is_open(),
            duration_seconds: session.duration_at(now).num_seconds(),
        }
    }
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct LogView {
    pub id: Uuid,
    pub created_at: DateTime<Utc>,
    pub level: LogLevel,
    pub message: String,
    pub account_id: Option<Uuid>,
    pub tracked_user_id: Option<Uuid>,
    pub channel_id: Option<Uuid>,
    pub source: Option<String>,
    pub context: Option<serde_json::Value>,
}

impl From<logs::Model> for LogView {
    fn from(row: logs::Model) -> Self {
        LogView {
            id: row.id,
            created_at: row.created_at,
            level: row.level,
            message: row.message,
            account_id: row.account_id,
            tracked_user_id: row.tracked_user_id,
            channel_id: row.channel_id,
            source: row.source,
            context: row
                .context
                .and_then(|text| serde_json::from_str(&text).ok()),
        }
    }
}
