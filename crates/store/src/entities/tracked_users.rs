//! `tracked_users`: Telegram users whose presence is watched.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "tracked_users")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    #[sea_orm(unique)]
    pub telegram_user_id: Option<i64>,
    #[sea_orm(unique)]
    pub username: Option<String>,
    pub first_name: Option<String>,
    pub access_hash: Option<i64>,
    /// Account that watches this user; set to NULL when that account is deleted.
    pub account_id: Option<Uuid>,
    pub visible_online: bool,
    pub notify: bool,
    pub is_active: bool,
    pub source: tgwatch_core::config::Origin,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::accounts::Entity",
        from = "Column::AccountId",
        to = "super::accounts::Column::Id",
        on_delete = "SetNull"
    )]
    Accounts,
    #[sea_orm(has_many = "super::status_checks::Entity")]
    StatusChecks,
    #[sea_orm(has_many = "super::online_sessions::Entity")]
    OnlineSessions,
}

impl Related<super::accounts::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Accounts.def()
    }
}

impl Related<super::status_checks::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::StatusChecks.def()
    }
}

impl Related<super::online_sessions::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::OnlineSessions.def()
    }
}

super::every_column_on_insert!();

impl std::fmt::Display for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (&self.username, self.telegram_user_id) {
            (Some(username), _) => write!(f, "@{username}"),
            (None, Some(id)) => write!(f, "user {id}"),
            (None, None) => write!(f, "tracked user {}", self.id),
        }
    }
}
