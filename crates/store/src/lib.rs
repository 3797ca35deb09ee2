//! tgwatch-store: the database. sea-orm over SQLite (embedded default, WAL) or PostgreSQL, one
//! module per table group; the schema is the `migration` crate's ([`migrate`]).
//!
//! Every function takes the connection (or a transaction) it works on and plain data (the
//! `New...` and `...Patch` structs, `tgwatch_core` types), and every database error comes back
//! with what was being done when it happened ([`StorageError`]). Status, source and role columns
//! are typed (`AccountStatus`, `ChannelStatus`, `StatusKind`, `Source`, `Origin`, `Role`), stored
//! as the same texts as always.
//!
//! # Tour
//!
//! - [`entities`]: the sea-orm entities, one per table.
//! - [`accounts`], [`account_sessions`] (sealed sessions), [`auth_attempts`] (login steps).
//! - [`tracked_users`], [`observations`] (`status_checks`, written in batches with the
//!   sessions and events they caused), [`sessions`] (`online_sessions`).
//! - [`channels`], [`messages`] (channel messages and their versions).
//! - [`webhooks`]: endpoints, the event outbox, delivery claims and attempts.
//! - [`bot`] and [`telegram_users`]: the bot's chats, subscriptions, outbox and people.
//! - [`cluster`]: the instances sharing the database, their heartbeats and leases.
//! - [`logs`], [`gauges`] (figures for health and metrics), [`page`] (cursor pagination).
//! - [`retention`]: pruning old rows of the tables that grow without bound, a batch at a time.

pub mod account_sessions;
pub mod accounts;
pub mod auth_attempts;
pub mod bot;
pub mod channels;
pub mod cluster;
pub mod entities;
pub mod gauges;
pub mod logs;
pub mod messages;
pub mod observations;
pub mod page;
pub mod retention;
pub mod sessions;
mod sql;
pub mod telegram_users;
pub mod tracked_users;
pub mod webhooks;

use std::time::Duration;

use migration::{Migrator, MigratorTrait};
use sea_orm::{
    ConnectOptions, Database, DatabaseConnection, DatabaseTransaction, DbErr, RuntimeErr,
    SqliteTransactionMode, TransactionOptions, TransactionTrait,
    sqlx::{
        self,
        postgres::{PgDatabaseError, PgSslMode},
        sqlite::{SqliteJournalMode, SqliteSynchronous},
    },
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

/// A write refused by a unique index (or primary key): the table and the index's columns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UniqueViolation {
    pub table: String,
    pub columns: Vec<String>,
}

impl UniqueViolation {
    /// The columns as the API names them: `name`, or `chat_id, dedupe_key`.
    pub fn field(&self) -> String {
        self.columns.join(", ")
    }

    /// Whether the index is the one on exactly `table.column`.
    pub fn is(&self, table: &str, column: &str) -> bool {
        self.table == table && self.columns.len() == 1 && self.columns[0] == column
    }

    /// SQLite names the index in the message: `UNIQUE constraint failed: webhooks.name` (one
    /// `table.column` per column, comma separated).
    fn from_sqlite_message(message: &str) -> Option<UniqueViolation> {
        let list = message.split_once("constraint failed: ")?.1;
        let mut table = None;
        let mut columns = Vec::new();
        for qualified in list.split(',') {
            let (name, column) = qualified.trim().split_once('.')?;
            if table.get_or_insert(name) != &name {
                return None;
            }
            columns.push(column.to_owned());
        }
        Some(UniqueViolation {
            table: table?.to_owned(),
            columns,
        })
    }

    /// PostgreSQL gives the table, and the columns in the detail:
    /// `Key (name)=(night shift) already exists.`
    fn from_postgres(table: Option<&str>, detail: Option<&str>) -> Option<UniqueViolation> {
        let keys = detail?.strip_prefix("Key (")?.split_once(")=")?.0;
        Some(UniqueViolation {
            table: table?.to_owned(),
            columns: keys.split(',').map(|key| key.trim().to_owned()).collect(),
        })
    }
}

impl StorageError {
    /// The unique index a write ran into, on SQLite and on PostgreSQL; None for any other error.
    /// A request that would duplicate a row ends here when a check before the write raced with
    /// another request, so callers answer it as a conflict, never as a failure to retry.
    pub fn unique_violation(&self) -> Option<UniqueViolation> {
        let StorageError::Db { source, .. } = self else {
            return None;
        };
        let (DbErr::Exec(RuntimeErr::SqlxError(error))
        | DbErr::Query(RuntimeErr::SqlxError(error))) = source
        else {
            return None;
        };
        let sqlx::Error::Database(error) = error.as_ref() else {
            return None;
        };
        if !error.is_unique_violation() {
            return None;
        }
        match error.try_downcast_ref::<PgDatabaseError>() {
            Some(postgres) => UniqueViolation::from_postgres(postgres.table(), postgres.detail()),
            None => UniqueViolation::from_sqlite_message(error.message()),
        }
    }
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

/// Connects and tunes SQLite for concurrent readers and one writer; [`migrate`] runs the
/// migrations.
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
        })
        .map_sqlx_postgres_opts({
            let url = url.to_owned();
            move |postgres| {
                let loopback =
                    postgres.get_socket().is_some() || is_loopback_host(postgres.get_host());
                match loopback && !names_sslmode(&url) {
                    true => postgres.ssl_mode(PgSslMode::Disable),
                    false => postgres,
                }
            }
        })
        .map_sqlx_postgres_before_acquire(|connection, _| {
            Box::pin(async move { Ok(not_in_a_transaction(connection)) })
        })
        .map_sqlx_sqlite_before_acquire(|connection, _| {
            Box::pin(async move { Ok(not_in_a_transaction(connection)) })
        });
    let db = Database::connect(options)
        .await
        .doing("connecting to the database")?;
    Ok(db)
}

/// Whether `host` is this machine's loopback interface. TLS to PostgreSQL there protects
/// nothing (whoever can read that traffic is root on the machine) and halves the webhook
/// throughput (3,600 against 7,400 deliveries a second, `bench webhooks` on the 2-core machine):
/// sqlx's default `sslmode=prefer` would use it whenever the server offers it, so [`connect`]
/// turns it off for the loopback and Unix sockets unless the URL names an `sslmode`.
fn is_loopback_host(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|address| address.is_loopback())
}

/// Whether a database URL chooses its TLS mode itself (`?sslmode=...`).
fn names_sslmode(url: &str) -> bool {
    url.split_once('?').is_some_and(|(_, query)| {
        query
            .split('&')
            .any(|pair| pair.to_ascii_lowercase().starts_with("sslmode="))
    })
}

/// Whether a pooled connection may be handed out: not when it is still inside a transaction.
/// A task cancelled in the middle of a transaction (a supervised worker restarted, a request
/// dropped) can leave one behind when sea-orm's rollback-on-drop finds the connection busy: a
/// later user would then run inside it, its writes uncommitted and its row locks held (on
/// PostgreSQL, webhook claims skipped by every other instance). Such a connection is closed
/// instead, which rolls it back.
fn not_in_a_transaction(connection: &impl sqlx::Connection) -> bool {
    let in_transaction = connection.is_in_transaction();
    if in_transaction {
        tracing::warn!("a pooled connection was left inside a transaction; closing it");
    }
    !in_transaction
}

/// Applies the migrations that have not run yet (the `migration` crate).
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

/// Runs `work` again after a failure, [`AGAIN_AFTER`] apart, until it succeeds or `deadline`
/// would pass. For the service's stop: a pooled PostgreSQL connection that an HTTP request
/// opened lives on that HTTP worker's runtime and dies with it when the HTTP server stops, the
/// stop's first step; the statement that fails on it takes it out of the pool, and the next try
/// gets a live connection.
pub async fn again_until<T, F>(
    deadline: tokio::time::Instant,
    mut work: impl FnMut() -> F,
) -> Result<T, StorageError>
where
    F: std::future::Future<Output = Result<T, StorageError>>,
{
    loop {
        match work().await {
            Err(error) if tokio::time::Instant::now() + AGAIN_AFTER < deadline => {
                tracing::warn!(%error, "a write failed while stopping; trying again");
                tokio::time::sleep(AGAIN_AFTER).await;
            }
            done => return done,
        }
    }
}

/// How long [`again_until`] waits before trying again.
pub const AGAIN_AFTER: Duration = Duration::from_millis(100);

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

#[cfg(test)]
mod tests {
    use super::{UniqueViolation, is_loopback_host, names_sslmode};

    #[test]
    fn tls_is_left_off_only_for_the_loopback_and_only_when_the_url_does_not_choose() {
        for host in [
            "127.0.0.1",
            "127.3.4.5",
            "localhost",
            "LocalHost",
            "::1",
            "[::1]",
        ] {
            assert!(is_loopback_host(host), "{host}");
        }
        for host in ["10.0.0.5", "db.example.org", "::ffff:10.0.0.5", ""] {
            assert!(!is_loopback_host(host), "{host}");
        }
        assert!(names_sslmode("postgres://u@127.0.0.1/db?sslmode=require"));
        assert!(names_sslmode(
            "postgres://u@127.0.0.1/db?application_name=x&SSLMODE=prefer"
        ));
        assert!(!names_sslmode("postgres://u@127.0.0.1/db"));
        assert!(!names_sslmode(
            "postgres://u@127.0.0.1/db?application_name=sslmode"
        ));
    }

    #[test]
    fn unique_violations_name_their_table_and_columns_on_both_databases() {
        let sqlite =
            UniqueViolation::from_sqlite_message("UNIQUE constraint failed: webhooks.name");
        assert_eq!(
            sqlite,
            Some(UniqueViolation {
                table: "webhooks".into(),
                columns: vec!["name".into()],
            })
        );
        let pair = UniqueViolation::from_sqlite_message(
            "UNIQUE constraint failed: bot_messages.chat_id, bot_messages.dedupe_key",
        )
        .unwrap();
        assert_eq!(pair.field(), "chat_id, dedupe_key");
        assert!(!pair.is("bot_messages", "chat_id"));
        let postgres = UniqueViolation::from_postgres(
            Some("accounts"),
            Some("Key (label)=(main) already exists."),
        )
        .unwrap();
        assert!(postgres.is("accounts", "label"));
        assert_eq!(
            UniqueViolation::from_postgres(
                Some("messages"),
                Some("Key (channel_id, telegram_message_id)=(x, 5) already exists."),
            )
            .unwrap()
            .columns,
            ["channel_id", "telegram_message_id"]
        );
        assert_eq!(UniqueViolation::from_postgres(Some("accounts"), None), None);
        assert_eq!(UniqueViolation::from_sqlite_message("disk I/O error"), None);
    }
}
