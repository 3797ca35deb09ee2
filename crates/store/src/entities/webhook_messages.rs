//! `webhook_messages`: one event on its way to one endpoint.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "webhook_messages")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub webhook_id: Uuid,
    pub event_id: String,
    pub status: DeliveryStatus,
    pub attempts: i32,
    pub next_attempt_at: DateTimeUtc,
    pub claimed_until: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    pub completed_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

super::every_column_on_insert!();

/// Where a webhook message stands (`webhook_messages.status`, stored as its `as_str` text).
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, sea_orm::EnumIter, DeriveActiveEnum,
)]
#[serde(rename_all = "snake_case")]
#[sea_orm(rs_type = "String", db_type = "Text")]
pub enum DeliveryStatus {
    /// Waiting for its next attempt.
    #[sea_orm(string_value = "pending")]
    Pending,
    /// Only in rows of earlier versions: a delivered message now leaves the queue, its
    /// delivery row being its record. Retention deletes them.
    #[sea_orm(string_value = "delivered")]
    Delivered,
    /// Every attempt used.
    #[sea_orm(string_value = "failed")]
    Failed,
}
