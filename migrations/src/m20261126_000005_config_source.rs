//! Where an account or a tracked user comes from: `source` is `config` for rows declared in
//! config.toml (the file is their desired state: they change and stop with it) and `api` for
//! rows added through the API, which the configuration never touches. Existing rows become
//! `api`; the next start adopts those the file names.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One ALTER per table and column: SQLite takes one change per statement.
        for table in [Tables::Accounts, Tables::TrackedUsers] {
            manager
                .alter_table(
                    Table::alter()
                        .table(table)
                        .add_column(
                            ColumnDef::new(Source::Source)
                                .string_len(16)
                                .not_null()
                                .default("api"),
                        )
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [Tables::TrackedUsers, Tables::Accounts] {
            manager
                .alter_table(
                    Table::alter()
                        .table(table)
                        .drop_column(Source::Source)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden, Clone, Copy)]
enum Tables {
    Accounts,
    TrackedUsers,
}

#[derive(DeriveIden)]
enum Source {
    Source,
}
