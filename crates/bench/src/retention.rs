//! `tgwatch bench retention`: the retention job's pruning on a large database. Fills
//! `status_checks` with `rows` observations of 1,000 people over 60 days, and the outbox
//! (`events`, `webhook_messages`, `webhook_deliveries`) and `bot_messages` with a hundredth of
//! that each, then prunes everything older than 30 days in the job's order and batches
//! ([`tgwatch_store::retention::plan`], [`tgwatch_store::retention::prune_in_batches`]) while
//! a writer stores one observation every 10 ms through the storage actor's write path. Reports
//! rows per second per table, the longest single batch, and the writer's latency during the
//! pruning next to its latency on the idle database.

use std::{fmt, time::Duration, time::Instant};

use chrono::{DateTime, Utc};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, PaginatorTrait, QueryFilter,
    Value,
    sea_query::{Alias, Query},
};
use tokio::sync::watch;
use uuid::Uuid;

use tgwatch_core::{
    config::RetentionConfig,
    presence::{Observation, Source, Status},
};
use tgwatch_service::jobs::retention_cutoff;
use tgwatch_store::{
    self as storage,
    entities::status_checks,
    observations::{NewObservation, PendingWrites},
    retention::{self, Prunable, prune_in_batches},
};

use crate::{BenchError, percentile, tempfile_dir};

/// People the observations belong to.
const PEOPLE: usize = 1000;
/// The history spans this many days; the retention keeps the last [`KEEP_DAYS`].
const HISTORY_DAYS: i64 = 60;
const KEEP_DAYS: u32 = 30;
/// The outbox and bot tables get this share of the observations' rows each.
const OUTBOX_SHARE: usize = 100;
/// Rows per INSERT while filling (9 columns: 18,000 bound values, under SQLite's 32,766).
const FILL_ROWS_PER_STATEMENT: usize = 2000;
/// Rows per transaction while filling.
const FILL_ROWS_PER_TRANSACTION: usize = 50_000;
/// How often the concurrent writer stores an observation.
const WRITER_INTERVAL: Duration = Duration::from_millis(10);
/// How long the writer is timed on the idle database, for comparison.
const IDLE_WRITER_RUN: Duration = Duration::from_secs(3);

/// What one table's pruning took.
pub struct TablePruning {
    pub table: &'static str,
    pub rows_before: u64,
    pub deleted: u64,
    pub batches: usize,
    pub seconds: f64,
    pub longest_batch_ms: f64,
    /// On SQLite: the largest size of the write-ahead log file seen after one of its batches.
    pub wal_peak_bytes: Option<u64>,
}

/// Latency of single-observation writes, in milliseconds.
pub struct WriterLatency {
    pub writes: usize,
    pub p50: f64,
    pub p99: f64,
    pub max: f64,
}

pub struct RetentionReport {
    pub database: String,
    pub batch_size: u64,
    pub fill_seconds: f64,
    pub tables: Vec<TablePruning>,
    pub idle_writer: WriterLatency,
    pub pruning_writer: WriterLatency,
    /// Rows older than the cutoff left in `status_checks` (each person's newest state only).
    pub old_observations_left: u64,
    /// On SQLite: the largest size of the write-ahead log file seen after a batch.
    pub wal_peak_bytes: Option<u64>,
}

impl fmt::Display for RetentionReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let rows: u64 = self.tables.iter().map(|t| t.rows_before).sum();
        let deleted: u64 = self.tables.iter().map(|t| t.deleted).sum();
        let seconds: f64 = self.tables.iter().map(|t| t.seconds).sum();
        let longest = self
            .tables
            .iter()
            .map(|t| t.longest_batch_ms)
            .fold(0.0, f64::max);
        writeln!(
            f,
            "retention benchmark on {}: {rows} rows ({} s to fill), {HISTORY_DAYS} days of history, the last {KEEP_DAYS} kept, batches of {}",
            self.database,
            self.fill_seconds.round(),
            self.batch_size
        )?;
        for table in &self.tables {
            writeln!(
                f,
                "  {:<19} {:>10} rows, {:>10} deleted in {:>6} batches, {:>7.1} s: {:>9.0} rows/s, longest batch {:.1} ms",
                table.table,
                table.rows_before,
                table.deleted,
                table.batches,
                table.seconds,
                table.deleted as f64 / table.seconds.max(f64::EPSILON),
                table.longest_batch_ms
            )?;
        }
        writeln!(
            f,
            "  all tables: {deleted} rows deleted in {seconds:.1} s, {:.0} rows/s; longest single batch {longest:.1} ms",
            deleted as f64 / seconds.max(f64::EPSILON)
        )?;
        for (when, writer) in [
            ("idle database", &self.idle_writer),
            ("during the pruning", &self.pruning_writer),
        ] {
            writeln!(
                f,
                "  an observation written every {} ms ({when}): {} writes, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
                WRITER_INTERVAL.as_millis(),
                writer.writes,
                writer.p50,
                writer.p99,
                writer.max
            )?;
        }
        if let Some(peak) = self.wal_peak_bytes {
            writeln!(
                f,
                "  write-ahead log: at most {:.1} MB after a batch",
                peak as f64 / 1e6
            )?;
        }
        write!(
            f,
            "  observations older than the cutoff left: {} (each person's newest state stays)",
            self.old_observations_left
        )
    }
}

/// `tgwatch bench retention`: see the module's documentation. `database_url`: an empty
/// PostgreSQL database instead of a temporary SQLite file.
pub async fn retention(
    database_url: Option<String>,
    rows: usize,
    batch_size: u64,
) -> Result<RetentionReport, BenchError> {
    let dir = tempfile_dir()?;
    let url = database_url
        .unwrap_or_else(|| format!("sqlite://{}?mode=rwc", dir.join("bench.db").display()));
    let (database, wal) = if url.starts_with("sqlite") {
        ("SQLite", Some(dir.join("bench.db-wal")))
    } else {
        ("PostgreSQL", None)
    };
    let db = storage::connect(&url, 4).await?;
    storage::migrate(&db).await?;
    let now = Utc::now();
    let started = Instant::now();
    let people = fill(&db, rows, now).await?;
    let fill_seconds = started.elapsed().as_secs_f64();

    let idle_writer = timed_writes(&db, people[0], None).await?;

    let (stop, stopped) = watch::channel(false);
    let writer = {
        let db = db.clone();
        let person = people[1];
        tokio::spawn(async move { timed_writes(&db, person, Some(stopped)).await })
    };
    let retention = RetentionConfig {
        status_checks_days: KEEP_DAYS,
        events_days: KEEP_DAYS,
        webhook_messages_days: KEEP_DAYS,
        bot_messages_days: KEEP_DAYS,
        channel_messages_days: 0,
        batch_size,
        ..RetentionConfig::default()
    };
    let mut tables = Vec::new();
    for (what, days) in retention::plan(&retention, false) {
        let Some(cutoff) = retention_cutoff(now, days) else {
            continue;
        };
        tables.push(prune_timed(&db, what, cutoff, batch_size, wal.as_deref()).await?);
    }
    // A closed channel also ends the writer: nothing to do if it is gone already.
    let _ = stop.send(true);
    let pruning_writer = writer.await.map_err(|error| {
        BenchError::Storage(storage::StorageError::TaskFailed(error.to_string()))
    })??;
    let cutoff = now - chrono::Duration::days(i64::from(KEEP_DAYS));
    let old_observations_left = status_checks::Entity::find()
        .filter(status_checks::Column::ObservedAt.lt(cutoff))
        .count(&db)
        .await?;
    // Millions of rows: the temporary SQLite file does not outlive the run.
    db.close().await?;
    std::fs::remove_dir_all(&dir)?;
    let wal_peak_bytes = tables.iter().filter_map(|t| t.wal_peak_bytes).max();
    Ok(RetentionReport {
        database: database.into(),
        batch_size,
        fill_seconds,
        tables,
        idle_writer,
        pruning_writer,
        old_observations_left,
        wal_peak_bytes,
    })
}

/// Prunes one table to the end, batch by batch, timing each and measuring the write-ahead log
/// file `wal` (SQLite) after each.
async fn prune_timed(
    db: &DatabaseConnection,
    what: Prunable,
    cutoff: DateTime<Utc>,
    batch_size: u64,
    wal: Option<&std::path::Path>,
) -> Result<TablePruning, BenchError> {
    let rows_before = count(db, what.table()).await?;
    let started = Instant::now();
    let (mut batches, mut longest, mut batch_started) = (0, Duration::ZERO, started);
    let mut wal_peak_bytes = None;
    let deleted = prune_in_batches(db, what, cutoff, batch_size, |_| {
        longest = longest.max(batch_started.elapsed());
        batches += 1;
        if let Some(wal) = wal {
            // Absent when the checkpoint removed it.
            let size = std::fs::metadata(wal).map_or(0, |file| file.len());
            wal_peak_bytes = wal_peak_bytes.max(Some(size));
        }
        batch_started = Instant::now();
    })
    .await?;
    Ok(TablePruning {
        table: what.table(),
        rows_before,
        deleted,
        batches,
        seconds: started.elapsed().as_secs_f64(),
        longest_batch_ms: longest.as_secs_f64() * 1000.0,
        wal_peak_bytes,
    })
}

async fn count(db: &DatabaseConnection, table: &str) -> Result<u64, BenchError> {
    let row = db
        .query_one(
            &Query::select()
                .expr_as(sea_orm::sea_query::Expr::cust("COUNT(*)"), Alias::new("n"))
                .from(Alias::new(table))
                .to_owned(),
        )
        .await?;
    let n: i64 = match row {
        Some(row) => row.try_get("", "n")?,
        None => 0,
    };
    Ok(u64::try_from(n).unwrap_or(0))
}

/// One observation every [`WRITER_INTERVAL`] through the storage actor's write path (one
/// transaction with its sessions and events), until `stop` turns true, or for
/// [`IDLE_WRITER_RUN`] without one.
async fn timed_writes(
    db: &DatabaseConnection,
    person: Uuid,
    stop: Option<watch::Receiver<bool>>,
) -> Result<WriterLatency, BenchError> {
    let started = Instant::now();
    let mut samples = Vec::new();
    loop {
        let done = match &stop {
            Some(stop) => *stop.borrow(),
            None => started.elapsed() >= IDLE_WRITER_RUN,
        };
        if done {
            break;
        }
        let at = Utc::now();
        let mut writes = PendingWrites::default();
        writes.push(NewObservation {
            id: Uuid::now_v7(),
            tracked_user_id: person,
            account_id: None,
            observation: Observation {
                observed_at: at,
                status: Status::Recently,
            },
            source: Source::Poll,
            recorded_at: at,
            sessions: Vec::new(),
            events: Vec::new(),
        });
        let write_started = Instant::now();
        storage::observations::write(db, &writes).await?;
        samples.push(write_started.elapsed().as_secs_f64() * 1000.0);
        tokio::time::sleep(WRITER_INTERVAL).await;
    }
    samples.sort_by(f64::total_cmp);
    Ok(WriterLatency {
        writes: samples.len(),
        p50: percentile(&samples, 0.5),
        p99: percentile(&samples, 0.99),
        max: samples.last().copied().unwrap_or(f64::NAN),
    })
}

/// Fills the tables: `rows` observations and a hundredth of that in each outbox table, spread
/// evenly over the last [`HISTORY_DAYS`] days. Returns the people.
async fn fill(
    db: &DatabaseConnection,
    rows: usize,
    now: DateTime<Utc>,
) -> Result<Vec<Uuid>, BenchError> {
    let span_ms = HISTORY_DAYS * 86_400_000;
    let at = |index: usize, of: usize| {
        now - chrono::Duration::milliseconds(span_ms)
            + chrono::Duration::milliseconds(
                i64::try_from(index as u128 * span_ms as u128 / of.max(1) as u128)
                    .unwrap_or(span_ms),
            )
    };
    let people: Vec<Uuid> = (0..PEOPLE).map(|_| Uuid::now_v7()).collect();
    insert_rows(
        db,
        "tracked_users",
        &[
            "id",
            "username",
            "visible_online",
            "notify",
            "is_active",
            "source",
            "created_at",
            "updated_at",
        ],
        PEOPLE,
        |index| {
            vec![
                people[index].into(),
                format!("bench_person_{index}").into(),
                true.into(),
                false.into(),
                true.into(),
                "api".into(),
                now.into(),
                now.into(),
            ]
        },
    )
    .await?;
    fill_observations(db, rows, now).await?;
    let outbox = rows / OUTBOX_SHARE;
    let endpoint = Uuid::now_v7();
    insert_rows(
        db,
        "webhooks",
        &[
            "id",
            "name",
            "url",
            "event_types",
            "status",
            "failure_count",
            "consecutive_failed_messages",
            "secret",
            "source",
            "created_at",
            "updated_at",
        ],
        1,
        |_| {
            vec![
                endpoint.into(),
                "bench".into(),
                "https://example.com/hook".into(),
                "[\"all\"]".into(),
                "active".into(),
                0.into(),
                0.into(),
                "whsec_bench".into(),
                "api".into(),
                now.into(),
                now.into(),
            ]
        },
    )
    .await?;
    let event_id = |index: usize| format!("evt_bench_{index:012}");
    insert_rows(
        db,
        "events",
        &["id", "event_type", "body", "fanned_out", "created_at"],
        outbox,
        |index| {
            vec![
                event_id(index).into(),
                "user_online".into(),
                "{\"type\":\"user_online\"}".into(),
                true.into(),
                at(index, outbox).into(),
            ]
        },
    )
    .await?;
    let message_id =
        |index: usize| Uuid::from_u128(0xbe4c_0000_0000_0000_0000_0000_0000_0000 | index as u128);
    insert_rows(
        db,
        "webhook_messages",
        &[
            "id",
            "webhook_id",
            "event_id",
            "status",
            "attempts",
            "next_attempt_at",
            "created_at",
            "completed_at",
        ],
        outbox,
        |index| {
            let done = at(index, outbox);
            vec![
                message_id(index).into(),
                endpoint.into(),
                event_id(index).into(),
                "delivered".into(),
                1.into(),
                done.into(),
                done.into(),
                Some(done).into(),
            ]
        },
    )
    .await?;
    insert_rows(
        db,
        "webhook_deliveries",
        &[
            "id",
            "webhook_id",
            "message_id",
            "event_id",
            "attempt",
            "request_body",
            "status_code",
            "latency_ms",
            "success",
            "triggered_at",
            "completed_at",
        ],
        outbox,
        |index| {
            let done = at(index, outbox);
            vec![
                Uuid::now_v7().into(),
                endpoint.into(),
                message_id(index).into(),
                event_id(index).into(),
                1.into(),
                "{\"type\":\"user_online\"}".into(),
                Some(200).into(),
                12.into(),
                true.into(),
                done.into(),
                done.into(),
            ]
        },
    )
    .await?;
    insert_rows(
        db,
        "bot_messages",
        &[
            "id",
            "chat_id",
            "dedupe_key",
            "kind",
            "text",
            "status",
            "attempts",
            "next_attempt_at",
            "created_at",
        ],
        outbox,
        |index| {
            let queued = at(index, outbox);
            vec![
                Uuid::now_v7().into(),
                1_i64.into(),
                event_id(index).into(),
                "user_online".into(),
                "bench_person is online".into(),
                "sent".into(),
                1.into(),
                queued.into(),
                queued.into(),
            ]
        },
    )
    .await?;
    Ok(people)
}

/// `rows` observations of the 1,000 people, round-robin, evenly over the history, one round of
/// polls in five online: generated by the database itself (a series on PostgreSQL, a recursive
/// query on SQLite), so that ten million rows take a minute or two, not the client's time to
/// bind 90 million values.
async fn fill_observations(
    db: &DatabaseConnection,
    rows: usize,
    now: DateTime<Utc>,
) -> Result<(), BenchError> {
    let start = now - chrono::Duration::days(HISTORY_DAYS);
    let span_ms = HISTORY_DAYS * 86_400_000;
    let people = PEOPLE;
    let postgres = db.get_database_backend() == sea_orm::DbBackend::Postgres;
    let mut from = 0;
    while from < rows {
        let to = rows.min(from + 1_000_000);
        let sql = if postgres {
            let start = start.to_rfc3339();
            format!(
                "INSERT INTO status_checks (id, tracked_user_id, observed_at, status, expires_at, \
                 was_online_at, source, account_id, created_at) \
                 SELECT gen_random_uuid(), p.id, o.at, \
                 CASE WHEN (g.i / {people}) % 5 = 0 THEN 'online' ELSE 'offline' END, \
                 CASE WHEN (g.i / {people}) % 5 = 0 THEN o.at + interval '5 minutes' END, \
                 NULL, 'poll', NULL, o.at \
                 FROM generate_series({from}::bigint, {last}::bigint) AS g(i) \
                 CROSS JOIN LATERAL (SELECT timestamptz '{start}' + \
                   (g.i * {span_ms} / {rows}) * interval '1 millisecond' AS at) o \
                 JOIN (SELECT id, row_number() OVER (ORDER BY id) - 1 AS k FROM tracked_users) p \
                   ON p.k = g.i % {people}",
                last = to - 1,
            )
        } else {
            let start_ms = start.timestamp_millis();
            format!(
                "WITH RECURSIVE g(i) AS (SELECT {from} UNION ALL SELECT i + 1 FROM g WHERE i < {last}), \
                 p AS (SELECT id, row_number() OVER (ORDER BY id) - 1 AS k FROM tracked_users), \
                 o AS (SELECT i, strftime('%Y-%m-%dT%H:%M:%f+00:00', \
                   ({start_ms} + i * {span_ms} / {rows}) / 1000.0, 'unixepoch') AS at FROM g) \
                 INSERT INTO status_checks (id, tracked_user_id, observed_at, status, expires_at, \
                   was_online_at, source, account_id, created_at) \
                 SELECT randomblob(16), p.id, o.at, \
                 CASE WHEN (o.i / {people}) % 5 = 0 THEN 'online' ELSE 'offline' END, \
                 CASE WHEN (o.i / {people}) % 5 = 0 THEN strftime('%Y-%m-%dT%H:%M:%f+00:00', \
                   ({start_ms} + o.i * {span_ms} / {rows}) / 1000.0 + 300, 'unixepoch') END, \
                 NULL, 'poll', NULL, o.at \
                 FROM o JOIN p ON p.k = o.i % {people}",
                last = to - 1,
            )
        };
        db.execute_unprepared(&sql).await?;
        from = to;
        eprintln!("  status_checks: {from} of {rows} rows");
    }
    Ok(())
}

/// Inserts `rows` rows made by `row`, many per statement and many statements per transaction.
async fn insert_rows(
    db: &DatabaseConnection,
    table: &str,
    columns: &[&str],
    rows: usize,
    row: impl Fn(usize) -> Vec<Value>,
) -> Result<(), BenchError> {
    let per_statement = (FILL_ROWS_PER_STATEMENT * 9 / columns.len()).max(1);
    let mut index = 0;
    while index < rows {
        let txn = storage::begin_write(db, "filling a table").await?;
        let end = rows.min(index + FILL_ROWS_PER_TRANSACTION);
        while index < end {
            let mut insert = Query::insert()
                .into_table(Alias::new(table))
                .columns(columns.iter().map(|column| Alias::new(*column)))
                .to_owned();
            for n in index..end.min(index + per_statement) {
                insert
                    .values(row(n).into_iter().map(Into::into))
                    .map_err(|error| sea_orm::DbErr::Custom(error.to_string()))?;
            }
            txn.execute(&insert).await?;
            index = end.min(index + per_statement);
        }
        txn.commit().await?;
        if rows >= 1_000_000 && index % 1_000_000 == 0 {
            eprintln!("  {table}: {index} of {rows} rows");
        }
    }
    Ok(())
}
