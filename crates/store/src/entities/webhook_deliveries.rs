//! `webhook_deliveries`: every delivery attempt.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "webhook_deliveries")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub webhook_id: Uuid,
    pub message_id: Uuid,
    pub event_id: String,
    pub attempt: i32,
    #[sea_orm(column_type = "Text")]
    pub request_body: String,
    pub status_code: Option<i32>,
    #[sea_orm(column_type = "Text", nullable)]
    pub response_body: Option<String>,
    pub latency_ms: i32,
    #[sea_orm(column_type = "Text", nullable)]
    pub error: Option<String>,
    pub success: bool,
    pub triggered_at: DateTimeUtc,
    pub completed_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

super::every_column_on_insert!();
