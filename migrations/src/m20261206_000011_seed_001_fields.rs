//! Seed 001's fields: when the watching account joined a channel (`channels.date_joined`, set at
//! every join: the first, a rejoin, a move to another account) and a post's author
//! (`messages.sender_name`: the post's signature or the sender's name). Existing channels take
//! the start of their current assignment; existing messages have no name.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One ALTER per table and column: SQLite takes one change per statement.
        manager
            .alter_table(
                Table::alter()
                    .table(Channels::Table)
                    .add_column(
                        ColumnDef::new(Channels::DateJoined)
                            .timestamp_with_time_zone()
                            .null(),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .get_connection()
            .execute_unprepared(
                "UPDATE channels SET date_joined = (SELECT MAX(a.assigned_at) \
                 FROM account_channel_assignments a WHERE a.channel_id = channels.id)",
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Messages::Table)
                    .add_column(ColumnDef::new(Messages::SenderName).text().null())
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Messages::Table)
                    .drop_column(Messages::SenderName)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Channels::Table)
                    .drop_column(Channels::DateJoined)
                    .to_owned(),
            )
            .await?;
        Ok(())
    }
}

#[derive(DeriveIden)]
enum Channels {
    Table,
    DateJoined,
}

#[derive(DeriveIden)]
enum Messages {
    Table,
    SenderName,
}
