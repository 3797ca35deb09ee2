//! `logs`: the application's event log.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "logs")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub created_at: DateTimeUtc,
    pub level: crate::logs::LogLevel,
    #[sea_orm(column_type = "Text")]
    pub message: String,
    pub account_id: Option<Uuid>,
    pub tracked_user_id: Option<Uuid>,
    pub channel_id: Option<Uuid>,
    /// Which part of the service wrote the line (supervisor, account, channels, webhooks, ...).
    pub source: Option<String>,
    /// JSON text.
    #[sea_orm(column_type = "Text", nullable)]
    pub context: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

super::every_column_on_insert!();
