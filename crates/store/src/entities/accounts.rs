//! `accounts`: Telegram accounts tgwatch watches with.

use sea_orm::entity::prelude::*;
pub use tgwatch_core::assignment::AccountStatus;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "accounts")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    #[sea_orm(unique)]
    pub label: String,
    pub phone: Option<String>,
    pub username: Option<String>,
    pub telegram_user_id: Option<i64>,
    pub api_id: Option<i32>,
    pub status: AccountStatus,
    pub is_authorized: bool,
    pub max_targets: i32,
    pub max_channels: i32,
    pub targets_count: i32,
    pub channels_count: i32,
    pub last_active: Option<DateTimeUtc>,
    pub status_reason: Option<String>,
    pub source: tgwatch_core::config::Origin,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(has_many = "super::tracked_users::Entity")]
    TrackedUsers,
}

impl Related<super::tracked_users::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::TrackedUsers.def()
    }
}

super::every_column_on_insert!();
