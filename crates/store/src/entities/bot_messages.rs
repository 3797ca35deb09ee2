//! `bot_messages`: the bot's outbox, one notification on its way to one chat.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "bot_messages")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub chat_id: i64,
    /// The event id, or `digest:<date>`: unique per chat.
    pub dedupe_key: String,
    /// The event type, or `digest`.
    pub kind: String,
    #[sea_orm(column_type = "Text")]
    pub text: String,
    pub status: MessageStatus,
    pub attempts: i32,
    pub next_attempt_at: DateTimeUtc,
    pub claimed_until: Option<DateTimeUtc>,
    #[sea_orm(column_type = "Text", nullable)]
    pub last_error: Option<String>,
    pub telegram_message_id: Option<i32>,
    pub created_at: DateTimeUtc,
    pub sent_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

super::every_column_on_insert!();

/// Where a bot message stands (`bot_messages.status`, stored as its `as_str` text).
#[derive(Clone, Copy, Debug, PartialEq, Eq, sea_orm::EnumIter, sea_orm::DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "Text")]
pub enum MessageStatus {
    /// Waiting to be sent (again).
    #[sea_orm(string_value = "pending")]
    Pending,
    #[sea_orm(string_value = "sent")]
    Sent,
    /// Telegram refuses it for good (bot blocked, chat gone).
    #[sea_orm(string_value = "failed")]
    Failed,
}
