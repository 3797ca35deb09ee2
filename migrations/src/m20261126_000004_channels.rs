//! Channel monitoring (seed 001 Channels, Messages, AccountChannelAssignments, Logs).
//!
//! - `channels`: a monitored channel: how it was named (username or invite hash), what Telegram
//!   says about it (id, access hash, title, about, member count), tags, its state
//!   (active/unassigned/failed/left), the account watching it, and the newest message id stored
//!   (where a catch-up from history starts).
//! - `account_channel_assignments`: who watched what, when, and how it ended
//!   (active/failed/reassigned/left).
//! - `messages`: every message seen, one row per channel message id, with its current content;
//!   deletions mark the row (a deletion of a message never seen still makes a row).
//! - `message_versions`: the earlier contents of edited messages.
//! - `logs` gains `channel_id` and `source` (which part of the service wrote the line).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Channels::Table)
                    .if_not_exists()
                    .col(pk_uuid(Channels::Id))
                    .col(big_integer_null(Channels::TelegramChannelId))
                    .col(big_integer_null(Channels::AccessHash))
                    .col(string_null(Channels::Username))
                    .col(string_null(Channels::InviteHash))
                    .col(text_null(Channels::Title))
                    .col(text_null(Channels::About))
                    .col(integer_null(Channels::MemberCount))
                    .col(text(Channels::Tags).default("[]"))
                    .col(boolean(Channels::IsActive).default(true))
                    .col(string(Channels::Status).default("active"))
                    .col(text_null(Channels::StatusReason))
                    .col(uuid_null(Channels::AccountId))
                    .col(integer(Channels::LastMessageId).default(0))
                    .col(timestamp_with_time_zone_null(Channels::LastEventAt))
                    .col(string(Channels::Source).default("api"))
                    .col(timestamp_with_time_zone(Channels::CreatedAt))
                    .col(timestamp_with_time_zone(Channels::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_channels_account_id")
                            .from(Channels::Table, Channels::AccountId)
                            .to(Accounts::Table, Accounts::Id)
                            .on_delete(ForeignKeyAction::SetNull),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("uq_channels_telegram_channel_id")
                    .table(Channels::Table)
                    .col(Channels::TelegramChannelId)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_channels_account_id")
                    .table(Channels::Table)
                    .col(Channels::AccountId)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(AccountChannelAssignments::Table)
                    .if_not_exists()
                    .col(pk_uuid(AccountChannelAssignments::Id))
                    .col(uuid(AccountChannelAssignments::ChannelId))
                    .col(uuid(AccountChannelAssignments::AccountId))
                    .col(string(AccountChannelAssignments::Status))
                    .col(text_null(AccountChannelAssignments::Reason))
                    .col(timestamp_with_time_zone(
                        AccountChannelAssignments::AssignedAt,
                    ))
                    .col(timestamp_with_time_zone_null(
                        AccountChannelAssignments::EndedAt,
                    ))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_assignments_channel_id")
                            .from(
                                AccountChannelAssignments::Table,
                                AccountChannelAssignments::ChannelId,
                            )
                            .to(Channels::Table, Channels::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_assignments_account_id")
                            .from(
                                AccountChannelAssignments::Table,
                                AccountChannelAssignments::AccountId,
                            )
                            .to(Accounts::Table, Accounts::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_assignments_channel_id")
                    .table(AccountChannelAssignments::Table)
                    .col(AccountChannelAssignments::ChannelId)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Messages::Table)
                    .if_not_exists()
                    .col(pk_uuid(Messages::Id))
                    .col(uuid(Messages::ChannelId))
                    .col(integer(Messages::TelegramMessageId))
                    .col(timestamp_with_time_zone(Messages::Date))
                    .col(text(Messages::Text))
                    .col(big_integer_null(Messages::SenderId))
                    .col(string_null(Messages::MediaType))
                    .col(text_null(Messages::MediaRef))
                    .col(timestamp_with_time_zone_null(Messages::EditDate))
                    .col(integer(Messages::Version).default(1))
                    .col(boolean(Messages::IsDeleted).default(false))
                    .col(timestamp_with_time_zone_null(Messages::DeletedAt))
                    .col(timestamp_with_time_zone(Messages::CreatedAt))
                    .col(timestamp_with_time_zone(Messages::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_messages_channel_id")
                            .from(Messages::Table, Messages::ChannelId)
                            .to(Channels::Table, Channels::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("uq_messages_channel_id_telegram_message_id")
                    .table(Messages::Table)
                    .col(Messages::ChannelId)
                    .col(Messages::TelegramMessageId)
                    .unique()
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(MessageVersions::Table)
                    .if_not_exists()
                    .col(pk_uuid(MessageVersions::Id))
                    .col(uuid(MessageVersions::MessageId))
                    .col(integer(MessageVersions::Version))
                    .col(text(MessageVersions::Text))
                    .col(string_null(MessageVersions::MediaType))
                    .col(text_null(MessageVersions::MediaRef))
                    .col(timestamp_with_time_zone_null(MessageVersions::EditDate))
                    .col(timestamp_with_time_zone(MessageVersions::RecordedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_message_versions_message_id")
                            .from(MessageVersions::Table, MessageVersions::MessageId)
                            .to(Messages::Table, Messages::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_message_versions_message_id")
                    .table(MessageVersions::Table)
                    .col(MessageVersions::MessageId)
                    .to_owned(),
            )
            .await?;

        // One column per statement: SQLite's ALTER TABLE adds one at a time.
        manager
            .alter_table(
                Table::alter()
                    .table(Logs::Table)
                    .add_column(uuid_null(Logs::ChannelId))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Logs::Table)
                    .add_column(string_null(Logs::Source))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            MessageVersions::Table.into_iden(),
            Messages::Table.into_iden(),
            AccountChannelAssignments::Table.into_iden(),
            Channels::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        manager
            .alter_table(
                Table::alter()
                    .table(Logs::Table)
                    .drop_column(Logs::Source)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Logs::Table)
                    .drop_column(Logs::ChannelId)
                    .to_owned(),
            )
            .await
    }
}

#[derive(DeriveIden)]
enum Accounts {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Channels {
    Table,
    Id,
    TelegramChannelId,
    AccessHash,
    Username,
    InviteHash,
    Title,
    About,
    MemberCount,
    Tags,
    IsActive,
    Status,
    StatusReason,
    AccountId,
    LastMessageId,
    LastEventAt,
    Source,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum AccountChannelAssignments {
    Table,
    Id,
    ChannelId,
    AccountId,
    Status,
    Reason,
    AssignedAt,
    EndedAt,
}

#[derive(DeriveIden)]
enum Messages {
    Table,
    Id,
    ChannelId,
    TelegramMessageId,
    Date,
    Text,
    SenderId,
    MediaType,
    MediaRef,
    EditDate,
    Version,
    IsDeleted,
    DeletedAt,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum MessageVersions {
    Table,
    Id,
    MessageId,
    Version,
    Text,
    MediaType,
    MediaRef,
    EditDate,
    RecordedAt,
}

#[derive(DeriveIden)]
enum Logs {
    Table,
    ChannelId,
    Source,
}
