//! An index for the webhook claim (`tgwatch_store::webhooks::claim`): one endpoint's pending
//! messages in the order they fall due. Without it PostgreSQL combined the endpoint's unique
//! index (every message the endpoint ever had) with the due index on each claim, a cost that
//! grew with the endpoint's history (4.6 ms a claim after 20,000 messages).

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

const NAME: &str = "idx_webhook_messages_endpoint_due";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_index(
                Index::create()
                    .name(NAME)
                    .table(Alias::new("webhook_messages"))
                    .col(Alias::new("webhook_id"))
                    .col(Alias::new("status"))
                    .col(Alias::new("next_attempt_at"))
                    .if_not_exists()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name(NAME)
                    .table(Alias::new("webhook_messages"))
                    .to_owned(),
            )
            .await
    }
}
