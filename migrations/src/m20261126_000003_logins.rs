//! Logins and sessions at rest (seed 003 `auth_attempts`, seed 001 session strings).
//!
//! - `account_sessions`: one row per account holding its grammers session (home DC, DC options
//!   with the auth key, the self user and channel peers, update state), its api_hash and its 2FA
//!   hint. Those three are sealed with the master key (see `src/vault.rs`): the columns hold
//!   ciphertext, so a copy of the database alone reveals no auth key.
//! - `auth_attempts`: every login step tried (phone code, 2FA password, QR), with its outcome
//!   and the client address, which the login rate limits count.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(AccountSessions::Table)
                    .if_not_exists()
                    .col(pk_uuid(AccountSessions::AccountId))
                    .col(blob(AccountSessions::Session))
                    .col(blob_null(AccountSessions::ApiHash))
                    .col(blob_null(AccountSessions::PasswordHint))
                    .col(big_integer_null(AccountSessions::TelegramUserId))
                    .col(integer(AccountSessions::DcId))
                    .col(timestamp_with_time_zone_null(AccountSessions::AuthorizedAt))
                    .col(timestamp_with_time_zone(AccountSessions::CreatedAt))
                    .col(timestamp_with_time_zone(AccountSessions::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_account_sessions_account_id")
                            .from(AccountSessions::Table, AccountSessions::AccountId)
                            .to(Accounts::Table, Accounts::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(AuthAttempts::Table)
                    .if_not_exists()
                    .col(pk_uuid(AuthAttempts::Id))
                    .col(uuid(AuthAttempts::AccountId))
                    .col(string(AuthAttempts::Kind))
                    .col(string(AuthAttempts::Status))
                    .col(text_null(AuthAttempts::Error))
                    .col(string_null(AuthAttempts::ClientAddr))
                    .col(timestamp_with_time_zone(AuthAttempts::CreatedAt))
                    .col(timestamp_with_time_zone_null(AuthAttempts::FinishedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_auth_attempts_account_id")
                            .from(AuthAttempts::Table, AuthAttempts::AccountId)
                            .to(Accounts::Table, Accounts::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        for (name, column) in [
            (
                "idx_auth_attempts_account_id_created_at",
                AuthAttempts::AccountId,
            ),
            (
                "idx_auth_attempts_client_addr_created_at",
                AuthAttempts::ClientAddr,
            ),
        ] {
            manager
                .create_index(
                    Index::create()
                        .name(name)
                        .table(AuthAttempts::Table)
                        .col(column)
                        .col(AuthAttempts::CreatedAt)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(AuthAttempts::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(AccountSessions::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum Accounts {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum AccountSessions {
    Table,
    AccountId,
    Session,
    ApiHash,
    PasswordHint,
    TelegramUserId,
    DcId,
    AuthorizedAt,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum AuthAttempts {
    Table,
    Id,
    AccountId,
    Kind,
    Status,
    Error,
    ClientAddr,
    CreatedAt,
    FinishedAt,
}
