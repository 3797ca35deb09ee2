//! `channels`: the monitored channels.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "channels")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub telegram_channel_id: Option<i64>,
    pub access_hash: Option<i64>,
    pub username: Option<String>,
    pub invite_hash: Option<String>,
    #[sea_orm(column_type = "Text", nullable)]
    pub title: Option<String>,
    #[sea_orm(column_type = "Text", nullable)]
    pub about: Option<String>,
    pub member_count: Option<i32>,
    /// JSON array of strings.
    #[sea_orm(column_type = "Text")]
    pub tags: String,
    pub is_active: bool,
    pub status: ChannelStatus,
    #[sea_orm(column_type = "Text", nullable)]
    pub status_reason: Option<String>,
    pub account_id: Option<Uuid>,
    /// When the watching account joined (the first join, a rejoin or a move).
    pub date_joined: Option<DateTimeUtc>,
    /// The newest message id stored: a catch-up reads history after it.
    pub last_message_id: i32,
    pub last_event_at: Option<DateTimeUtc>,
    pub source: tgwatch_core::config::Origin,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

super::every_column_on_insert!();

/// A channel's state (`channels.status`, stored as its `as_str` text).
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    serde::Serialize,
    serde::Deserialize,
    sea_orm::EnumIter,
    DeriveActiveEnum,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
#[sea_orm(rs_type = "String", db_type = "Text")]
pub enum ChannelStatus {
    /// Watched by an account.
    #[sea_orm(string_value = "active")]
    Active,
    /// No healthy account could take it; it is picked up when one comes back.
    #[sea_orm(string_value = "unassigned")]
    Unassigned,
    /// The join failed for a reason an account change does not fix (the channel is gone or
    /// private); `status_reason` says why.
    #[sea_orm(string_value = "failed")]
    Failed,
    /// Removed from monitoring.
    #[sea_orm(string_value = "left")]
    Left,
}
