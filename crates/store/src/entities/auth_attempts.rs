//! `auth_attempts`: every login step tried, for the record and for the login rate limits.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "auth_attempts")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub account_id: Uuid,
    pub kind: AttemptKind,
    pub status: AttemptStatus,
    #[sea_orm(column_type = "Text", nullable)]
    pub error: Option<String>,
    pub client_addr: Option<String>,
    pub created_at: DateTimeUtc,
    pub finished_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

super::every_column_on_insert!();

/// What a login step was (`auth_attempts.kind`, stored as its `as_str` text).
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, sea_orm::EnumIter, DeriveActiveEnum,
)]
#[serde(rename_all = "snake_case")]
#[sea_orm(rs_type = "String", db_type = "Text")]
pub enum AttemptKind {
    /// A login code sent to the phone and typed back.
    #[sea_orm(string_value = "phone")]
    Phone,
    /// The 2FA password.
    #[serde(rename = "2fa")]
    #[sea_orm(string_value = "2fa")]
    TwoFactor,
    #[sea_orm(string_value = "qr")]
    Qr,
}

/// How a login step ended (`auth_attempts.status`, stored as its `as_str` text).
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, sea_orm::EnumIter, DeriveActiveEnum,
)]
#[serde(rename_all = "snake_case")]
#[sea_orm(rs_type = "String", db_type = "Text")]
pub enum AttemptStatus {
    #[sea_orm(string_value = "pending")]
    Pending,
    #[sea_orm(string_value = "success")]
    Success,
    #[sea_orm(string_value = "failed")]
    Failed,
    #[sea_orm(string_value = "timeout")]
    Timeout,
}
