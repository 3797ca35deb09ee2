//! `account_sessions`: one account's Telegram session and secrets, sealed with the master key.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "account_sessions")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub account_id: Uuid,
    /// Sealed JSON of the grammers session (see `telegram::stored_session`).
    pub session: Vec<u8>,
    /// Sealed api_hash.
    pub api_hash: Option<Vec<u8>>,
    /// Sealed 2FA password hint.
    pub password_hint: Option<Vec<u8>>,
    pub telegram_user_id: Option<i64>,
    pub dc_id: i32,
    pub authorized_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

super::every_column_on_insert!();
