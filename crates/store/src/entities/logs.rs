//! `logs`: the application's event log.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "logs")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub created_at: DateTimeUtc,
    pub level: LogLevel,
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

/// How serious a line of the logs table is (`logs.level`, stored as its text).
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    serde::Serialize,
    serde::Deserialize,
    sea_orm::EnumIter,
    sea_orm::DeriveActiveEnum,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
#[sea_orm(rs_type = "String", db_type = "Text")]
pub enum LogLevel {
    #[sea_orm(string_value = "info")]
    Info,
    #[sea_orm(string_value = "warning")]
    Warning,
    #[sea_orm(string_value = "error")]
    Error,
    #[sea_orm(string_value = "critical")]
    Critical,
}
