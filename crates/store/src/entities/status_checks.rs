//! `status_checks`: every raw presence observation (append-only).

use sea_orm::entity::prelude::*;
use tgwatch_core::presence::{Source, StatusKind};

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "status_checks")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub tracked_user_id: Uuid,
    pub observed_at: DateTimeUtc,
    pub status: StatusKind,
    pub expires_at: Option<DateTimeUtc>,
    pub was_online_at: Option<DateTimeUtc>,
    pub source: Source,
    /// Account that made the observation (no foreign key).
    pub account_id: Option<Uuid>,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::tracked_users::Entity",
        from = "Column::TrackedUserId",
        to = "super::tracked_users::Column::Id",
        on_delete = "Cascade"
    )]
    TrackedUsers,
}

impl Related<super::tracked_users::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::TrackedUsers.def()
    }
}

super::every_column_on_insert!();
