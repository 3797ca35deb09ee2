//! `auth_attempts`: every login step tried, for the record and for the login rate limits.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "auth_attempts")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub account_id: Uuid,
    pub kind: crate::auth_attempts::AttemptKind,
    pub status: crate::auth_attempts::AttemptStatus,
    #[sea_orm(column_type = "Text", nullable)]
    pub error: Option<String>,
    pub client_addr: Option<String>,
    pub created_at: DateTimeUtc,
    pub finished_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

super::every_column_on_insert!();
