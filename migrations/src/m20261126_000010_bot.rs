//! The Telegram bot's tables (seed 002's `TelegramUser`, seed 000's notifications).
//!
//! - `telegram_users`: the people who talk to the bot: their Telegram id, names as last seen,
//!   `role` (banned / user / vip / moderator / admin) and `permissions` (a JSON list of strings
//!   such as `"broadcast"` or `"pin"`, which the Mini App checks).
//! - `bot_chats`: chats registered with `/start`, owned by the person who registered them (their
//!   role decides what the chat receives). `notify` is the chat's switch for presence
//!   notifications, `digest` for the daily summary (`last_digest_at`: the last one queued);
//!   `is_active` turns false when Telegram says the bot can no longer write there (blocked,
//!   kicked, chat gone).
//! - `bot_subscriptions`: a chat's choice for one tracked user (`/notify on|off @user`),
//!   overriding the user's own `notify` flag for that chat.
//! - `bot_messages`: the bot's outbox: one notification for one chat, with its text fixed when
//!   it was queued, its attempts, when the next is due and the lease (`claimed_until`) of the
//!   notifier sending it. `dedupe_key` (the event id, or `digest:<date>`) is unique per chat, so
//!   fanning an event out twice queues it once.
//! - `events.bot_fanned_out`: whether the bot has queued its messages for that event, the bot's
//!   own mark next to the webhooks' `fanned_out`. Events stored before this migration are marked:
//!   they happened before there was a bot to tell.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(TelegramUsers::Table)
                    .if_not_exists()
                    .col(pk_uuid(TelegramUsers::Id))
                    .col(big_integer_uniq(TelegramUsers::TelegramUserId))
                    .col(string_null(TelegramUsers::Username))
                    .col(string_null(TelegramUsers::FirstName))
                    .col(string(TelegramUsers::Role).default("user"))
                    .col(text(TelegramUsers::Permissions).default("[]"))
                    .col(timestamp_with_time_zone(TelegramUsers::CreatedAt))
                    .col(timestamp_with_time_zone(TelegramUsers::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_telegram_users_role")
                    .table(TelegramUsers::Table)
                    .col(TelegramUsers::Role)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(BotChats::Table)
                    .if_not_exists()
                    .col(pk_uuid(BotChats::Id))
                    .col(big_integer_uniq(BotChats::ChatId))
                    .col(string(BotChats::ChatType))
                    .col(string_null(BotChats::Title))
                    .col(uuid(BotChats::OwnerId))
                    .col(boolean(BotChats::Notify).default(true))
                    .col(boolean(BotChats::Digest).default(false))
                    .col(timestamp_with_time_zone_null(BotChats::LastDigestAt))
                    .col(boolean(BotChats::IsActive).default(true))
                    .col(timestamp_with_time_zone(BotChats::CreatedAt))
                    .col(timestamp_with_time_zone(BotChats::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_bot_chats_owner_id")
                            .from(BotChats::Table, BotChats::OwnerId)
                            .to(TelegramUsers::Table, TelegramUsers::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(BotSubscriptions::Table)
                    .if_not_exists()
                    .col(pk_uuid(BotSubscriptions::Id))
                    .col(uuid(BotSubscriptions::BotChatId))
                    .col(uuid(BotSubscriptions::TrackedUserId))
                    .col(boolean(BotSubscriptions::Notify))
                    .col(timestamp_with_time_zone(BotSubscriptions::CreatedAt))
                    .col(timestamp_with_time_zone(BotSubscriptions::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_bot_subscriptions_bot_chat_id")
                            .from(BotSubscriptions::Table, BotSubscriptions::BotChatId)
                            .to(BotChats::Table, BotChats::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_bot_subscriptions_tracked_user_id")
                            .from(BotSubscriptions::Table, BotSubscriptions::TrackedUserId)
                            .to(TrackedUsers::Table, TrackedUsers::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("uq_bot_subscriptions_chat_user")
                    .table(BotSubscriptions::Table)
                    .col(BotSubscriptions::BotChatId)
                    .col(BotSubscriptions::TrackedUserId)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(BotMessages::Table)
                    .if_not_exists()
                    .col(pk_uuid(BotMessages::Id))
                    .col(big_integer(BotMessages::ChatId))
                    .col(string(BotMessages::DedupeKey))
                    .col(string(BotMessages::Kind))
                    .col(text(BotMessages::Text))
                    .col(string(BotMessages::Status).default("pending"))
                    .col(integer(BotMessages::Attempts).default(0))
                    .col(timestamp_with_time_zone(BotMessages::NextAttemptAt))
                    .col(timestamp_with_time_zone_null(BotMessages::ClaimedUntil))
                    .col(text_null(BotMessages::LastError))
                    .col(integer_null(BotMessages::TelegramMessageId))
                    .col(timestamp_with_time_zone(BotMessages::CreatedAt))
                    .col(timestamp_with_time_zone_null(BotMessages::SentAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("uq_bot_messages_chat_dedupe_key")
                    .table(BotMessages::Table)
                    .col(BotMessages::ChatId)
                    .col(BotMessages::DedupeKey)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_bot_messages_due")
                    .table(BotMessages::Table)
                    .col(BotMessages::Status)
                    .col(BotMessages::NextAttemptAt)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Events::Table)
                    .add_column(boolean(Events::BotFannedOut).default(false))
                    .to_owned(),
            )
            .await?;
        manager
            .exec_stmt(
                Query::update()
                    .table(Events::Table)
                    .value(Events::BotFannedOut, true)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_events_bot_fanned_out_created_at")
                    .table(Events::Table)
                    .col(Events::BotFannedOut)
                    .col(Events::CreatedAt)
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("idx_events_bot_fanned_out_created_at")
                    .table(Events::Table)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Events::Table)
                    .drop_column(Events::BotFannedOut)
                    .to_owned(),
            )
            .await?;
        for table in [
            BotMessages::Table.into_iden(),
            BotSubscriptions::Table.into_iden(),
            BotChats::Table.into_iden(),
            TelegramUsers::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).if_exists().to_owned())
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum TrackedUsers {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Events {
    Table,
    BotFannedOut,
    CreatedAt,
}

#[derive(DeriveIden)]
enum TelegramUsers {
    Table,
    Id,
    TelegramUserId,
    Username,
    FirstName,
    Role,
    Permissions,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum BotChats {
    Table,
    Id,
    ChatId,
    ChatType,
    Title,
    OwnerId,
    Notify,
    Digest,
    LastDigestAt,
    IsActive,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum BotSubscriptions {
    Table,
    Id,
    BotChatId,
    TrackedUserId,
    Notify,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum BotMessages {
    Table,
    Id,
    ChatId,
    DedupeKey,
    Kind,
    Text,
    Status,
    Attempts,
    NextAttemptAt,
    ClaimedUntil,
    LastError,
    TelegramMessageId,
    CreatedAt,
    SentAt,
}
