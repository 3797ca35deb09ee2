//! Database schema migrations for tgwatch (SQLite and PostgreSQL).
//!
//! Run at start-up with `Migrator::up(&db, None).await?`.

pub use sea_orm_migration::prelude::*;

mod m20261125_000001_foundation;
mod m20261125_000002_webhooks;
mod m20261126_000003_logins;
mod m20261126_000004_channels;
mod m20261126_000005_config_source;
mod m20261126_000010_bot;
mod m20261206_000011_seed_001_fields;
mod m20261206_000020_retention_indexes;
mod m20261206_000040_cluster;
mod m20261206_000050_webhook_claim_index;
mod m20261206_000060_drop_webhook_due_index;
mod m20261206_000070_lean_webhook_messages;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261125_000001_foundation::Migration),
            Box::new(m20261125_000002_webhooks::Migration),
            Box::new(m20261126_000003_logins::Migration),
            Box::new(m20261126_000004_channels::Migration),
            Box::new(m20261126_000005_config_source::Migration),
            Box::new(m20261126_000010_bot::Migration),
            Box::new(m20261206_000011_seed_001_fields::Migration),
            Box::new(m20261206_000020_retention_indexes::Migration),
            Box::new(m20261206_000040_cluster::Migration),
            Box::new(m20261206_000050_webhook_claim_index::Migration),
            Box::new(m20261206_000060_drop_webhook_due_index::Migration),
            Box::new(m20261206_000070_lean_webhook_messages::Migration),
        ]
    }
}
