//! Runs the migrations up, down and up again on SQLite (always) and on a scratch
//! PostgreSQL database (when `TGWATCH_TEST_DATABASE_URL` is set), checking the tables,
//! the column defaults and the foreign-key actions along the way.

use migration::{Migrator, MigratorTrait};
use sea_orm_migration::SchemaManager;
use sea_orm_migration::sea_orm::prelude::Uuid;
use sea_orm_migration::sea_orm::{ConnectionTrait, Database, DatabaseConnection};
use sea_orm_migration::sea_query::{Alias, Expr, ExprTrait, Query};

type TestResult = Result<(), Box<dyn std::error::Error>>;

const TABLES: [&str; 5] = [
    "accounts",
    "tracked_users",
    "status_checks",
    "online_sessions",
    "logs",
];

async fn assert_tables(db: &DatabaseConnection, present: bool) -> TestResult {
    let manager = SchemaManager::new(db);
    for table in TABLES {
        assert_eq!(
            manager.has_table(table).await?,
            present,
            "table {table} should {}exist",
            if present { "" } else { "not " }
        );
    }
    Ok(())
}

async fn count(db: &DatabaseConnection, table: &str) -> Result<i64, Box<dyn std::error::Error>> {
    let stmt = Query::select()
        .expr_as(Expr::col(Alias::new("id")).count(), Alias::new("n"))
        .from(Alias::new(table))
        .to_owned();
    let row = db.query_one(&stmt).await?.ok_or("no row from COUNT")?;
    Ok(row.try_get::<i64>("", "n")?)
}

/// Inserts a few rows using only the NOT NULL columns without defaults, then checks the
/// defaults and the ON DELETE actions (SET NULL for tracked_users.account_id, CASCADE for
/// status_checks / online_sessions).
async fn smoke_rows(db: &DatabaseConnection) -> TestResult {
    let now = chrono_now();
    let account_id = Uuid::new_v4();
    let user_id = Uuid::new_v4();

    db.execute(
        &Query::insert()
            .into_table(Alias::new("accounts"))
            .columns([
                Alias::new("id"),
                Alias::new("label"),
                Alias::new("created_at"),
                Alias::new("updated_at"),
            ])
            .values_panic([account_id.into(), "main".into(), now.into(), now.into()])
            .to_owned(),
    )
    .await?;

    let row = db
        .query_one(
            &Query::select()
                .columns([
                    Alias::new("status"),
                    Alias::new("is_authorized"),
                    Alias::new("max_targets"),
                    Alias::new("max_channels"),
                    Alias::new("targets_count"),
                ])
                .from(Alias::new("accounts"))
                .and_where(Expr::col(Alias::new("id")).eq(account_id))
                .to_owned(),
        )
        .await?
        .ok_or("account row missing")?;
    assert_eq!(row.try_get::<String>("", "status")?, "active");
    assert!(!row.try_get::<bool>("", "is_authorized")?);
    assert_eq!(row.try_get::<i32>("", "max_targets")?, 1000);
    assert_eq!(row.try_get::<i32>("", "max_channels")?, 100);
    assert_eq!(row.try_get::<i32>("", "targets_count")?, 0);

    // Label is unique.
    let dup = db
        .execute(
            &Query::insert()
                .into_table(Alias::new("accounts"))
                .columns([
                    Alias::new("id"),
                    Alias::new("label"),
                    Alias::new("created_at"),
                    Alias::new("updated_at"),
                ])
                .values_panic([Uuid::new_v4().into(), "main".into(), now.into(), now.into()])
                .to_owned(),
        )
        .await;
    assert!(dup.is_err(), "duplicate account label must be rejected");

    db.execute(
        &Query::insert()
            .into_table(Alias::new("tracked_users"))
            .columns([
                Alias::new("id"),
                Alias::new("telegram_user_id"),
                Alias::new("account_id"),
                Alias::new("created_at"),
                Alias::new("updated_at"),
            ])
            .values_panic([
                user_id.into(),
                42_i64.into(),
                account_id.into(),
                now.into(),
                now.into(),
            ])
            .to_owned(),
    )
    .await?;
    db.execute(
        &Query::insert()
            .into_table(Alias::new("status_checks"))
            .columns([
                Alias::new("id"),
                Alias::new("tracked_user_id"),
                Alias::new("observed_at"),
                Alias::new("status"),
                Alias::new("source"),
                Alias::new("created_at"),
            ])
            .values_panic([
                Uuid::new_v4().into(),
                user_id.into(),
                now.into(),
                "online".into(),
                "poll".into(),
                now.into(),
            ])
            .to_owned(),
    )
    .await?;
    db.execute(
        &Query::insert()
            .into_table(Alias::new("online_sessions"))
            .columns([
                Alias::new("id"),
                Alias::new("tracked_user_id"),
                Alias::new("started_at"),
                Alias::new("last_online_at"),
                Alias::new("duration_seconds"),
                Alias::new("created_at"),
                Alias::new("updated_at"),
            ])
            .values_panic([
                Uuid::new_v4().into(),
                user_id.into(),
                now.into(),
                now.into(),
                0_i64.into(),
                now.into(),
                now.into(),
            ])
            .to_owned(),
    )
    .await?;

    // Deleting the account detaches the tracked user (SET NULL).
    db.execute(
        &Query::delete()
            .from_table(Alias::new("accounts"))
            .and_where(Expr::col(Alias::new("id")).eq(account_id))
            .to_owned(),
    )
    .await?;
    let row = db
        .query_one(
            &Query::select()
                .columns([Alias::new("account_id"), Alias::new("visible_online")])
                .from(Alias::new("tracked_users"))
                .and_where(Expr::col(Alias::new("id")).eq(user_id))
                .to_owned(),
        )
        .await?
        .ok_or("tracked user row missing")?;
    assert_eq!(row.try_get::<Option<Uuid>>("", "account_id")?, None);
    assert!(row.try_get::<bool>("", "visible_online")?);

    // Deleting the tracked user removes its checks and sessions (CASCADE).
    assert_eq!(count(db, "status_checks").await?, 1);
    assert_eq!(count(db, "online_sessions").await?, 1);
    db.execute(
        &Query::delete()
            .from_table(Alias::new("tracked_users"))
            .and_where(Expr::col(Alias::new("id")).eq(user_id))
            .to_owned(),
    )
    .await?;
    assert_eq!(count(db, "status_checks").await?, 0);
    assert_eq!(count(db, "online_sessions").await?, 0);
    Ok(())
}

fn chrono_now() -> sea_orm_migration::sea_orm::prelude::DateTimeUtc {
    sea_orm_migration::sea_orm::prelude::ChronoUtc::now()
}

async fn up_down_up(db: &DatabaseConnection) -> TestResult {
    Migrator::up(db, None).await?;
    assert_tables(db, true).await?;
    assert!(Migrator::get_pending_migrations(db).await?.is_empty());
    smoke_rows(db).await?;

    Migrator::down(db, None).await?;
    assert_tables(db, false).await?;

    Migrator::up(db, None).await?;
    assert_tables(db, true).await?;
    smoke_rows(db).await?;
    Ok(())
}

#[tokio::test]
async fn sqlite_up_down_up() -> TestResult {
    let db = Database::connect("sqlite::memory:").await?;
    up_down_up(&db).await
}

/// Replaces the database name in a `postgres://user@host:port/dbname?params` URL.
fn with_database(url: &str, name: &str) -> Result<String, Box<dyn std::error::Error>> {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let authority_start = base.find("://").ok_or("URL without scheme")? + 3;
    let host_part = match base[authority_start..].find('/') {
        Some(slash) => &base[..authority_start + slash],
        None => base,
    };
    let mut out = format!("{host_part}/{name}");
    if let Some(query) = query {
        out.push('?');
        out.push_str(query);
    }
    Ok(out)
}

#[tokio::test]
async fn postgres_up_down_up() -> TestResult {
    let Ok(admin_url) = std::env::var("TGWATCH_TEST_DATABASE_URL") else {
        eprintln!("TGWATCH_TEST_DATABASE_URL not set: skipping the PostgreSQL run");
        return Ok(());
    };
    let name = format!("tgwatch_mig_{}", Uuid::new_v4().simple());
    let admin = Database::connect(admin_url.as_str()).await?;
    admin
        .execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
        .await?;

    let result = async {
        let db = Database::connect(with_database(&admin_url, &name)?).await?;
        let outcome = up_down_up(&db).await;
        db.close().await?;
        outcome
    }
    .await;

    let dropped = admin
        .execute_unprepared(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
        .await;
    admin.close().await?;
    result?;
    dropped?;
    Ok(())
}
