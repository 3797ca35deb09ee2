//! `message_versions`: what an edited message said before.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "message_versions")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub message_id: Uuid,
    pub version: i32,
    #[sea_orm(column_type = "Text")]
    pub text: String,
    pub media_type: Option<String>,
    #[sea_orm(column_type = "Text", nullable)]
    pub media_ref: Option<String>,
    pub edit_date: Option<DateTimeUtc>,
    pub recorded_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

super::every_column_on_insert!();
