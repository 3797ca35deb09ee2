//! Makes a webhook message cheaper to write, claim and complete; each delivered message is
//! written three times (queued, claimed, done) and PostgreSQL writes every index of the row
//! again for each version.
//!
//! - No foreign keys on `webhook_messages` and `webhook_deliveries`. Each inserted row ran a
//!   query per key that also locked the referenced event and endpoint rows (on PostgreSQL 110 of
//!   the 256 ms it took to queue 20,000 messages). Nothing needs their cascades: retention deletes
//!   an event only once no message refers to it, and deleting an endpoint deletes its messages
//!   and deliveries itself. Without them, attempts recorded for an endpoint deleted meanwhile
//!   no longer fail their whole batch.
//! - The unique `(webhook_id, event_id)` becomes `(event_id, webhook_id)`, which also serves
//!   retention's look-up by event, so the separate `event_id` index goes.
//! - The claim's index holds pending messages only (`WHERE status = 'pending'`), and the
//!   `completed_at` index done messages only: a message enters each index once instead of with
//!   every version.
//! - On PostgreSQL, pages of `webhook_messages` are filled to half (`fillfactor = 50`): the
//!   claim changes no indexed column, and with room on the page its new version is a heap-only
//!   tuple that adds no index entry (claims: 20,000 heap-only updates of 20,000 instead of 3,900;
//!   deliveries 19,800 -> 21,700/s in `bench webhooks`).
//!
//! SQLite cannot drop a foreign key: there the two tables are rebuilt (in the migration's
//! transaction).

use sea_orm::{ConnectionTrait, DbBackend};
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

const FOREIGN_KEYS: [(&str, &str); 3] = [
    ("webhook_messages", "fk_webhook_messages_webhook_id"),
    ("webhook_messages", "fk_webhook_messages_event_id"),
    ("webhook_deliveries", "fk_webhook_deliveries_webhook_id"),
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    /// In one transaction on SQLite too, where tables are rebuilt: a rebuild cut short would
    /// otherwise leave the rows in a table the service does not know.
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        match manager.get_database_backend() {
            DbBackend::Sqlite => rebuild_sqlite_tables(manager, false).await?,
            _ => {
                for (table, name) in FOREIGN_KEYS {
                    manager
                        .get_connection()
                        .execute_unprepared(&format!(
                            "ALTER TABLE {table} DROP CONSTRAINT IF EXISTS {name}"
                        ))
                        .await?;
                }
                manager
                    .get_connection()
                    .execute_unprepared("ALTER TABLE webhook_messages SET (fillfactor = 50)")
                    .await?;
            }
        }
        for name in [
            "uq_webhook_messages_webhook_event",
            "idx_webhook_messages_event_id",
            "idx_webhook_messages_endpoint_due",
            "idx_webhook_messages_completed_at",
        ] {
            drop_index(manager, name).await?;
        }
        manager
            .create_index(
                Index::create()
                    .name("uq_webhook_messages_event_webhook")
                    .table(WebhookMessages::Table)
                    .col(WebhookMessages::EventId)
                    .col(WebhookMessages::WebhookId)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_webhook_messages_pending_due")
                    .table(WebhookMessages::Table)
                    .col(WebhookMessages::WebhookId)
                    .col(WebhookMessages::NextAttemptAt)
                    .and_where(Expr::col(WebhookMessages::Status).eq("pending"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_webhook_messages_completed_at")
                    .table(WebhookMessages::Table)
                    .col(WebhookMessages::CompletedAt)
                    .and_where(Expr::col(WebhookMessages::CompletedAt).is_not_null())
                    .to_owned(),
            )
            .await?;
        create_deliveries_indexes(manager).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        match manager.get_database_backend() {
            DbBackend::Sqlite => rebuild_sqlite_tables(manager, true).await?,
            _ => {
                for key in foreign_keys() {
                    manager.create_foreign_key(key).await?;
                }
                manager
                    .get_connection()
                    .execute_unprepared("ALTER TABLE webhook_messages RESET (fillfactor)")
                    .await?;
            }
        }
        for name in [
            "uq_webhook_messages_event_webhook",
            "idx_webhook_messages_pending_due",
            "idx_webhook_messages_completed_at",
        ] {
            drop_index(manager, name).await?;
        }
        for (name, columns, unique) in [
            (
                "uq_webhook_messages_webhook_event",
                &[WebhookMessages::WebhookId, WebhookMessages::EventId][..],
                true,
            ),
            (
                "idx_webhook_messages_event_id",
                &[WebhookMessages::EventId],
                false,
            ),
            (
                "idx_webhook_messages_endpoint_due",
                &[
                    WebhookMessages::WebhookId,
                    WebhookMessages::Status,
                    WebhookMessages::NextAttemptAt,
                ],
                false,
            ),
            (
                "idx_webhook_messages_completed_at",
                &[WebhookMessages::CompletedAt],
                false,
            ),
        ] {
            let mut index = Index::create();
            index.name(name).table(WebhookMessages::Table);
            for column in columns {
                index.col(*column);
            }
            if unique {
                index.unique();
            }
            manager.create_index(index).await?;
        }
        create_deliveries_indexes(manager).await
    }
}

async fn drop_index(manager: &SchemaManager<'_>, name: &str) -> Result<(), DbErr> {
    manager
        .drop_index(
            Index::drop()
                .name(name)
                .table(WebhookMessages::Table)
                .if_exists()
                .to_owned(),
        )
        .await
}

/// The foreign keys the tables were created with (for `down`).
fn foreign_keys() -> [ForeignKeyCreateStatement; 3] {
    [
        ForeignKey::create()
            .name("fk_webhook_messages_webhook_id")
            .from(WebhookMessages::Table, WebhookMessages::WebhookId)
            .to(Webhooks::Table, Webhooks::Id)
            .on_delete(ForeignKeyAction::Cascade)
            .to_owned(),
        ForeignKey::create()
            .name("fk_webhook_messages_event_id")
            .from(WebhookMessages::Table, WebhookMessages::EventId)
            .to(Events::Table, Events::Id)
            .on_delete(ForeignKeyAction::Cascade)
            .to_owned(),
        ForeignKey::create()
            .name("fk_webhook_deliveries_webhook_id")
            .from(WebhookDeliveries::Table, WebhookDeliveries::WebhookId)
            .to(Webhooks::Table, Webhooks::Id)
            .on_delete(ForeignKeyAction::Cascade)
            .to_owned(),
    ]
}

/// Rebuilds both tables on SQLite, with or without their foreign keys, rows kept. Their
/// indexes go with the old tables: the caller creates those it wants.
async fn rebuild_sqlite_tables(
    manager: &SchemaManager<'_>,
    with_foreign_keys: bool,
) -> Result<(), DbErr> {
    let [mut to_endpoint, mut to_event, mut delivery_to_endpoint] = foreign_keys();
    let mut messages = Table::create();
    messages
        .table(Alias::new("webhook_messages_rebuilt"))
        .col(pk_uuid(WebhookMessages::Id))
        .col(uuid(WebhookMessages::WebhookId))
        .col(string(WebhookMessages::EventId))
        .col(string(WebhookMessages::Status).default("pending"))
        .col(integer(WebhookMessages::Attempts).default(0))
        .col(timestamp_with_time_zone(WebhookMessages::NextAttemptAt))
        .col(timestamp_with_time_zone_null(WebhookMessages::ClaimedUntil))
        .col(timestamp_with_time_zone(WebhookMessages::CreatedAt))
        .col(timestamp_with_time_zone_null(WebhookMessages::CompletedAt));
    let mut deliveries = Table::create();
    deliveries
        .table(Alias::new("webhook_deliveries_rebuilt"))
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
        .col(timestamp_with_time_zone(WebhookDeliveries::CompletedAt));
    if with_foreign_keys {
        messages
            .foreign_key(&mut to_endpoint)
            .foreign_key(&mut to_event);
        deliveries.foreign_key(&mut delivery_to_endpoint);
    }
    for (table, rebuilt, columns) in [
        (
            "webhook_messages",
            messages,
            "id, webhook_id, event_id, status, attempts, next_attempt_at, claimed_until, \
             created_at, completed_at",
        ),
        (
            "webhook_deliveries",
            deliveries,
            "id, webhook_id, message_id, event_id, attempt, request_body, status_code, \
             response_body, latency_ms, error, success, triggered_at, completed_at",
        ),
    ] {
        manager.create_table(rebuilt).await?;
        let connection = manager.get_connection();
        for statement in [
            format!("INSERT INTO {table}_rebuilt ({columns}) SELECT {columns} FROM {table}"),
            format!("DROP TABLE {table}"),
            format!("ALTER TABLE {table}_rebuilt RENAME TO {table}"),
        ] {
            connection.execute_unprepared(&statement).await?;
        }
    }
    Ok(())
}

/// The deliveries' indexes, which the SQLite rebuild drops with the old table.
async fn create_deliveries_indexes(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    for (name, columns) in [
        (
            "idx_webhook_deliveries_webhook_triggered",
            &[WebhookDeliveries::WebhookId, WebhookDeliveries::TriggeredAt][..],
        ),
        (
            "idx_webhook_deliveries_completed_at",
            &[WebhookDeliveries::CompletedAt],
        ),
    ] {
        let mut index = Index::create();
        index
            .name(name)
            .table(WebhookDeliveries::Table)
            .if_not_exists();
        for column in columns {
            index.col(*column);
        }
        manager.create_index(index).await?;
    }
    Ok(())
}

#[derive(DeriveIden)]
enum Events {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Webhooks {
    Table,
    Id,
}

#[derive(DeriveIden, Clone, Copy)]
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

#[derive(DeriveIden, Clone, Copy)]
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
