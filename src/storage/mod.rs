//! Storage: sea-orm over SQLite (embedded default, WAL) or PostgreSQL, one module per table group.
//!
//! Every function takes the connection (or a transaction) it works on, and every database error
//! comes back with what was being done when it happened.

pub mod account_sessions;
pub mod accounts;
pub mod auth_attempts;
pub mod bot;
pub mod channels;
pub mod entities;
pub mod gauges;
pub mod logs;
pub mod messages;
pub mod observations;
pub mod page;
pub mod sessions;
mod sql;
pub mod telegram_users;
pub mod tracked_users;
pub mod webhooks;

use std::time::Duration;

use migration::{Migrator, MigratorTrait};
use sea_orm::{
    ConnectOptions, Database, DatabaseConnection, DatabaseTransaction, DbErr,
    SqliteTransactionMode, TransactionOptions, TransactionTrait,
    sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous},
};

pub use logs::LogLevel;

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("database error while {doing}: {source}")]
    Db {
        doing: &'static str,
        #[source]
        source: DbErr,
    },
    #[error("the storage actor is not running")]
    Unavailable,
    #[error("stored data is invalid: {0}")]
    Corrupt(String),
    /// A write handed to another task ended without an answer (it panicked).
    #[error("a storage task failed: {0}")]
    TaskFailed(String),
}

/// Adds what was being done to a database error.
pub trait Doing<T> {
    fn doing(self, doing: &'static str) -> Result<T, StorageError>;
}

impl<T> Doing<T> for Result<T, DbErr> {
    fn doing(self, doing: &'static str) -> Result<T, StorageError> {
        self.map_err(|source| StorageError::Db { doing, source })
    }
}

/// Connects, tunes SQLite for concurrent readers and one writer, and runs the migrations.
pub async fn connect(url: &str, max_connections: u32) -> Result<DatabaseConnection, StorageError> {
    let mut options = ConnectOptions::new(url.to_owned());
    options
        .max_connections(max_connections)
        .connect_timeout(Duration::from_secs(10))
        .sqlx_logging(false)
        // Per connection, so every pooled connection gets them: WAL lets the API read while the
        // storage actor writes, NORMAL sync is safe in WAL mode and saves an fsync per commit,
        // the busy timeout makes a second writer wait instead of failing.
        .map_sqlx_sqlite_opts(|sqlite| {
            sqlite
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(5))
                .foreign_keys(true)
        });
    let db = Database::connect(options)
        .await
        .doing("connecting to the database")?;
    Ok(db)
}

pub async fn migrate(db: &DatabaseConnection) -> Result<(), StorageError> {
    Migrator::up(db, None).await.doing("running migrations")
}

/// Starts a transaction that will write. On SQLite it takes the write lock at BEGIN
/// (`BEGIN IMMEDIATE`): a transaction that read first and then tried to write would fail with
/// SQLITE_BUSY_SNAPSHOT whenever another writer committed meanwhile, and the busy timeout
/// cannot help it. PostgreSQL ignores the option.
pub async fn begin_write(
    db: &DatabaseConnection,
    doing: &'static str,
) -> Result<DatabaseTransaction, StorageError> {
    db.begin_with_options(TransactionOptions {
        sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
        ..TransactionOptions::default()
    })
    .await
    .doing(doing)
}

/// A cheap query that tells whether the database answers.
pub async fn ping(db: &DatabaseConnection) -> Result<(), StorageError> {
    db.ping().await.doing("pinging the database")
}

/// Whether every migration this build knows has been applied.
pub async fn migrations_applied(db: &DatabaseConnection) -> Result<bool, StorageError> {
    let pending = Migrator::get_pending_migrations(db)
        .await
        .doing("listing pending migrations")?;
    Ok(pending.is_empty())
}
