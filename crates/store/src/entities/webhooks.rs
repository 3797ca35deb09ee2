//! `webhooks`: the endpoints events are delivered to.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "webhooks")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub name: Option<String>,
    #[sea_orm(column_type = "Text")]
    pub url: String,
    /// JSON array of event type names, or `["all"]`.
    #[sea_orm(column_type = "Text")]
    pub event_types: String,
    pub tracked_user_id: Option<Uuid>,
    pub channel_id: Option<Uuid>,
    pub status: EndpointStatus,
    pub status_reason: Option<String>,
    pub failure_count: i32,
    pub consecutive_failed_messages: i32,
    pub failing_since: Option<DateTimeUtc>,
    pub last_triggered: Option<DateTimeUtc>,
    pub secret: String,
    pub previous_secret: Option<String>,
    pub previous_secret_until: Option<DateTimeUtc>,
    pub source: tgwatch_core::config::Origin,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

super::every_column_on_insert!();

/// A webhook endpoint's state (`webhooks.status`, stored as its `as_str` text).
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    serde::Serialize,
    sea_orm::EnumIter,
    DeriveActiveEnum,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
#[sea_orm(rs_type = "String", db_type = "Text")]
pub enum EndpointStatus {
    #[sea_orm(string_value = "active")]
    Active,
    /// Switched off by the operator.
    #[sea_orm(string_value = "inactive")]
    Inactive,
    /// Switched off by the service after failing for too long.
    #[sea_orm(string_value = "disabled")]
    Disabled,
}
