//! Webhook delivery (seed 001 Webhooks / WebhookDeliveries, Standard Webhooks, Svix's outbox).
//!
//! - `events`: the outbox. Each event is written in the same transaction as the data it
//!   describes; `body` is the exact JSON sent to consumers, so retries are byte-identical.
//!   `fanned_out` turns true once a `webhook_messages` row exists for every matching endpoint.
//! - `webhooks`: the endpoints: URL, event types (JSON array), optional filter, status
//!   active/inactive/failed/disabled, failure counters, the signing secret and, during a
//!   rotation, the previous secret with the end of its overlap window.
//! - `webhook_messages`: one event for one endpoint: its attempts so far, when the next is due,
//!   and the lease (`claimed_until`) of the dispatcher working on it.
//! - `webhook_deliveries`: every attempt: request body, status code, truncated response,
//!   latency, error, attempt number.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Events::Table)
                    .if_not_exists()
                    .col(string(Events::Id).primary_key())
                    .col(string(Events::EventType))
                    .col(text(Events::Body))
                    .col(uuid_null(Events::TrackedUserId))
                    .col(uuid_null(Events::ChannelId))
                    .col(boolean(Events::FannedOut).default(false))
                    .col(timestamp_with_time_zone(Events::CreatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_events_fanned_out_created_at")
                    .table(Events::Table)
                    .col(Events::FannedOut)
                    .col(Events::CreatedAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Webhooks::Table)
                    .if_not_exists()
                    .col(pk_uuid(Webhooks::Id))
                    .col(string_null(Webhooks::Name))
                    .col(text(Webhooks::Url))
                    .col(text(Webhooks::EventTypes))
                    .col(uuid_null(Webhooks::TrackedUserId))
                    .col(uuid_null(Webhooks::ChannelId))
                    .col(string(Webhooks::Status).default("active"))
                    .col(string_null(Webhooks::StatusReason))
                    .col(integer(Webhooks::FailureCount).default(0))
                    .col(integer(Webhooks::ConsecutiveFailedMessages).default(0))
                    .col(timestamp_with_time_zone_null(Webhooks::FailingSince))
                    .col(timestamp_with_time_zone_null(Webhooks::LastTriggered))
                    .col(string(Webhooks::Secret))
                    .col(string_null(Webhooks::PreviousSecret))
                    .col(timestamp_with_time_zone_null(Webhooks::PreviousSecretUntil))
                    .col(string(Webhooks::Source).default("api"))
                    .col(timestamp_with_time_zone(Webhooks::CreatedAt))
                    .col(timestamp_with_time_zone(Webhooks::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("uq_webhooks_name")
                    .table(Webhooks::Table)
                    .col(Webhooks::Name)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(WebhookMessages::Table)
                    .if_not_exists()
                    .col(pk_uuid(WebhookMessages::Id))
                    .col(uuid(WebhookMessages::WebhookId))
                    .col(string(WebhookMessages::EventId))
                    .col(string(WebhookMessages::Status).default("pending"))
                    .col(integer(WebhookMessages::Attempts).default(0))
                    .col(timestamp_with_time_zone(WebhookMessages::NextAttemptAt))
                    .col(timestamp_with_time_zone_null(WebhookMessages::ClaimedUntil))
                    .col(timestamp_with_time_zone(WebhookMessages::CreatedAt))
                    .col(timestamp_with_time_zone_null(WebhookMessages::CompletedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_webhook_messages_webhook_id")
                            .from(WebhookMessages::Table, WebhookMessages::WebhookId)
                            .to(Webhooks::Table, Webhooks::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_webhook_messages_event_id")
                            .from(WebhookMessages::Table, WebhookMessages::EventId)
                            .to(Events::Table, Events::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("uq_webhook_messages_webhook_event")
                    .table(WebhookMessages::Table)
                    .col(WebhookMessages::WebhookId)
                    .col(WebhookMessages::EventId)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_webhook_messages_due")
                    .table(WebhookMessages::Table)
                    .col(WebhookMessages::Status)
                    .col(WebhookMessages::NextAttemptAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(WebhookDeliveries::Table)
                    .if_not_exists()
                    .col(pk_uuid(WebhookDeliveries::Id))
                    .col(uuid(WebhookDeliveries::WebhookId))
                    .col(uuid(WebhookDeliveries::MessageId))
                    .col(string(WebhookDeliveries::EventId))
                    .col(integer(WebhookDeliveries::Attempt))
                    .col(text(WebhookDeliveries::RequestBody))
                    .col(integer_null(WebhookDeliveries::StatusCode))
                    .col(text_null(WebhookDeliveries::ResponseBody))
                    .col(integer(WebhookDeliveries::LatencyMs))
                    .col(text_null(WebhookDeliveries::Error))
                    .col(boolean(WebhookDeliveries::Success))
                    .col(timestamp_with_time_zone(WebhookDeliveries::TriggeredAt))
                    .col(timestamp_with_time_zone(WebhookDeliveries::CompletedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_webhook_deliveries_webhook_id")
                            .from(WebhookDeliveries::Table, WebhookDeliveries::WebhookId)
                            .to(Webhooks::Table, Webhooks::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_webhook_deliveries_webhook_triggered")
                    .table(WebhookDeliveries::Table)
                    .col(WebhookDeliveries::WebhookId)
                    .col(WebhookDeliveries::TriggeredAt)
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            WebhookDeliveries::Table.into_iden(),
            WebhookMessages::Table.into_iden(),
            Webhooks::Table.into_iden(),
            Events::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).if_exists().to_owned())
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum Events {
    Table,
    Id,
    EventType,
    Body,
    TrackedUserId,
    ChannelId,
    FannedOut,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Webhooks {
    Table,
    Id,
    Name,
    Url,
    EventTypes,
    TrackedUserId,
    ChannelId,
    Status,
    StatusReason,
    FailureCount,
    ConsecutiveFailedMessages,
    FailingSince,
    LastTriggered,
    Secret,
    PreviousSecret,
    PreviousSecretUntil,
    Source,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum WebhookMessages {
    Table,
    Id,
    WebhookId,
    EventId,
    Status,
    Attempts,
    NextAttemptAt,
    ClaimedUntil,
    CreatedAt,
    CompletedAt,
}

#[derive(DeriveIden)]
enum WebhookDeliveries {
    Table,
    Id,
    WebhookId,
    MessageId,
    EventId,
    Attempt,
    RequestBody,
    StatusCode,
    ResponseBody,
    LatencyMs,
    Error,
    Success,
    TriggeredAt,
    CompletedAt,
}
