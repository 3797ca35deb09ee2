//! `messages`: every message of a monitored channel, with its current content.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "messages")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub channel_id: Uuid,
    pub telegram_message_id: i32,
    pub date: DateTimeUtc,
    #[sea_orm(column_type = "Text")]
    pub text: String,
    pub sender_id: Option<i64>,
    /// The post's signature (seed 001 `sender_name`).
    #[sea_orm(column_type = "Text", nullable)]
    pub sender_name: Option<String>,
    /// photo / document / other
    pub media_type: Option<String>,
    #[sea_orm(column_type = "Text", nullable)]
    pub media_ref: Option<String>,
    pub edit_date: Option<DateTimeUtc>,
    /// 1, then one more per edit; earlier contents are in `message_versions`.
    pub version: i32,
    pub is_deleted: bool,
    pub deleted_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

super::every_column_on_insert!();
