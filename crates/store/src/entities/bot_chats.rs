//! `bot_chats`: chats registered with the bot's `/start`.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "bot_chats")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    #[sea_orm(unique)]
    pub chat_id: i64,
    /// private / group / supergroup / channel
    pub chat_type: String,
    pub title: Option<String>,
    /// The `telegram_users` row of whoever registered the chat; their role decides what it gets.
    pub owner_id: Uuid,
    /// Presence notifications on (`/notify on|off`).
    pub notify: bool,
    /// Daily digest on (`/digest on|off`).
    pub digest: bool,
    pub last_digest_at: Option<DateTimeUtc>,
    /// False once Telegram said the bot cannot write there (blocked, kicked, chat gone).
    pub is_active: bool,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

super::every_column_on_insert!();
