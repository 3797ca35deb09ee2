//! Indexes the retention job (`[retention]`, `tgwatch_store::retention`) needs so that each
//! batch finds its oldest rows, and the "still needed" checks their rows, without a scan:
//! messages and attempts by when they were done, bot messages by when they were queued, channel
//! posts by date, and webhook messages by event (an event goes only when no message is left for
//! it; deleting an event also cascades to its messages by this column).

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// (index name, table, column)
const INDEXES: [(&str, &str, &str); 5] = [
    (
        "idx_webhook_messages_event_id",
        "webhook_messages",
        "event_id",
    ),
    (
        "idx_webhook_messages_completed_at",
        "webhook_messages",
        "completed_at",
    ),
    (
        "idx_webhook_deliveries_completed_at",
        "webhook_deliveries",
        "completed_at",
    ),
    ("idx_bot_messages_created_at", "bot_messages", "created_at"),
    ("idx_messages_date", "messages", "date"),
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for (name, table, column) in INDEXES {
            manager
                .create_index(
                    Index::create()
                        .name(name)
                        .table(Alias::new(table))
                        .col(Alias::new(column))
                        .if_not_exists()
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for (name, table, _) in INDEXES {
            manager
                .drop_index(Index::drop().name(name).table(Alias::new(table)).to_owned())
                .await?;
        }
        Ok(())
    }
}
