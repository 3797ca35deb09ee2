//! `online_sessions`: online periods derived from `status_checks` by the gap rule.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "online_sessions")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub tracked_user_id: Uuid,
    pub started_at: DateTimeUtc,
    pub last_online_at: DateTimeUtc,
    /// NULL while the session is open.
    pub ended_at: Option<DateTimeUtc>,
    pub duration_seconds: i64,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
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
