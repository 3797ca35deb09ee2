//! `account_channel_assignments`: who watched which channel, when, and how it ended.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "account_channel_assignments")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub channel_id: Uuid,
    pub account_id: Uuid,
    pub status: AssignmentStatus,
    #[sea_orm(column_type = "Text", nullable)]
    pub reason: Option<String>,
    pub assigned_at: DateTimeUtc,
    pub ended_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

super::every_column_on_insert!();

/// An assignment's state (`account_channel_assignments.status`, stored as its `as_str` text):
/// running, or how it ended ([`AssignmentEnd`]).
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
pub enum AssignmentStatus {
    #[sea_orm(string_value = "active")]
    Active,
    #[sea_orm(string_value = "reassigned")]
    Reassigned,
    #[sea_orm(string_value = "left")]
    Left,
    #[sea_orm(string_value = "failed")]
    Failed,
}
