//! Drops the webhook messages' `(status, next_attempt_at)` index: the claim reads the
//! endpoint's own index (`idx_webhook_messages_endpoint_due`) and nothing else looks messages up
//! by status first, while every message queued paid for one more index entry (a sixth of a
//! message's insert on PostgreSQL).

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

const NAME: &str = "idx_webhook_messages_due";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name(NAME)
                    .table(Alias::new("webhook_messages"))
                    .if_exists()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_index(
                Index::create()
                    .name(NAME)
                    .table(Alias::new("webhook_messages"))
                    .col(Alias::new("status"))
                    .col(Alias::new("next_attempt_at"))
                    .if_not_exists()
                    .to_owned(),
            )
            .await
    }
}
