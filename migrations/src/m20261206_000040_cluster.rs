//! Several instances on one database (`[cluster]`).
//!
//! - `cluster_instances`: every running `tgwatch run`, with the heartbeat it renews; an instance
//!   whose heartbeat is older than the lease time is dead, and its row is deleted by the others.
//! - `cluster_leases`: who holds what until when: `resource` is `account:<uuid>` for an account
//!   (its actor, its people and its channels run on the holder) or `leader` for the singletons
//!   (bot polling, periodic jobs). A lease past `expires_at` is free for anyone to take.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(ClusterInstances::Table)
                    .if_not_exists()
                    .col(pk_uuid(ClusterInstances::Id))
                    .col(string(ClusterInstances::Host))
                    .col(integer(ClusterInstances::Pid))
                    .col(timestamp_with_time_zone(ClusterInstances::StartedAt))
                    .col(timestamp_with_time_zone(ClusterInstances::HeartbeatAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(ClusterLeases::Table)
                    .if_not_exists()
                    .col(string(ClusterLeases::Resource).primary_key())
                    .col(uuid(ClusterLeases::InstanceId))
                    .col(timestamp_with_time_zone(ClusterLeases::ExpiresAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_cluster_leases_instance_id")
                    .table(ClusterLeases::Table)
                    .col(ClusterLeases::InstanceId)
                    .if_not_exists()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(ClusterLeases::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(ClusterInstances::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum ClusterInstances {
    Table,
    Id,
    Host,
    Pid,
    StartedAt,
    HeartbeatAt,
}

#[derive(DeriveIden)]
enum ClusterLeases {
    Table,
    Resource,
    InstanceId,
    ExpiresAt,
}
