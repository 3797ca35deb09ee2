//! Migrations that reshape tables with rows in them, run on the database of the test run.

use crate::common;

use migration::{Migrator, MigratorTrait};
use sea_orm::{ConnectionTrait, DatabaseConnection};

/// Migrates `db` up to, not including, the migration named `name`; returns how many
/// migrations, from the newest down, undo it and those after it.
async fn migrate_until(db: &DatabaseConnection, name: &str) -> u32 {
    let migrations = Migrator::migrations();
    let before = migrations
        .iter()
        .position(|migration| migration.name() == name)
        .expect("the migration exists");
    Migrator::up(db, Some(u32::try_from(before).unwrap()))
        .await
        .expect("migrating up to it");
    u32::try_from(migrations.len() - before).unwrap()
}

async fn count(db: &DatabaseConnection, table: &str) -> i64 {
    let row = db
        .query_one_raw(sea_orm::Statement::from_string(
            db.get_database_backend(),
            format!("SELECT COUNT(*) AS n FROM {table}"),
        ))
        .await
        .unwrap()
        .unwrap();
    row.try_get("", "n").unwrap()
}

/// The webhook tables lose their foreign keys (on SQLite by being rebuilt) with every row kept,
/// and get them back on the way down.
#[actix_rt::test(system = "tgwatch_testkit::harness::TestSystem")]
async fn webhook_messages_lose_their_foreign_keys_and_keep_their_rows() {
    const NAME: &str = "m20261206_000070_lean_webhook_messages";
    let dir = tempfile::tempdir().unwrap();
    let url = common::fresh_database(dir.path()).await;
    let db = tgwatch_store::connect(&url, 2).await.unwrap();
    let back_to_before_it = migrate_until(&db, NAME).await;

    let now = "'2026-12-06 10:00:00+00:00'";
    let webhook = "'0193a000-0000-7000-8000-000000000001'";
    for statement in [
        format!(
            "INSERT INTO webhooks (id, url, event_types, secret, created_at, updated_at) \
             VALUES ({webhook}, 'http://127.0.0.1:9/', '[\"all\"]', 'whsec_x', {now}, {now})"
        ),
        format!(
            "INSERT INTO events (id, event_type, body, created_at) \
             VALUES ('evt_1', 'user_online', '{{}}', {now})"
        ),
        format!(
            "INSERT INTO webhook_messages (id, webhook_id, event_id, next_attempt_at, created_at) \
             VALUES ('0193a000-0000-7000-8000-000000000002', {webhook}, 'evt_1', {now}, {now})"
        ),
        format!(
            "INSERT INTO webhook_deliveries (id, webhook_id, message_id, event_id, attempt, \
             request_body, latency_ms, success, triggered_at, completed_at) VALUES \
             ('0193a000-0000-7000-8000-000000000003', {webhook}, \
             '0193a000-0000-7000-8000-000000000002', 'evt_1', 1, '{{}}', 3, true, {now}, {now})"
        ),
    ] {
        db.execute_unprepared(&statement).await.unwrap();
    }
    let orphan_message = format!(
        "INSERT INTO webhook_messages (id, webhook_id, event_id, next_attempt_at, created_at) \
         VALUES ('0193a000-0000-7000-8000-000000000004', \
         '0193a000-0000-7000-8000-0000000000ff', 'evt_gone', {now}, {now})"
    );
    assert!(
        db.execute_unprepared(&orphan_message).await.is_err(),
        "before the migration a message needs its endpoint and event"
    );

    Migrator::up(&db, None).await.expect("migrating up");
    assert_eq!(count(&db, "webhook_messages").await, 1);
    assert_eq!(count(&db, "webhook_deliveries").await, 1);
    db.execute_unprepared(&orphan_message)
        .await
        .expect("after the migration nothing checks the endpoint and event");
    let duplicate = format!(
        "INSERT INTO webhook_messages (id, webhook_id, event_id, next_attempt_at, created_at) \
         VALUES ('0193a000-0000-7000-8000-000000000005', {webhook}, 'evt_1', {now}, {now})"
    );
    assert!(
        db.execute_unprepared(&duplicate).await.is_err(),
        "a message is still unique per endpoint and event"
    );

    db.execute_unprepared(
        "DELETE FROM webhook_messages WHERE id = '0193a000-0000-7000-8000-000000000004'",
    )
    .await
    .unwrap();
    Migrator::down(&db, Some(back_to_before_it))
        .await
        .expect("migrating down");
    assert_eq!(count(&db, "webhook_messages").await, 1);
    assert_eq!(count(&db, "webhook_deliveries").await, 1);
    assert!(
        db.execute_unprepared(&orphan_message).await.is_err(),
        "down brings the foreign keys back"
    );
    Migrator::up(&db, None).await.expect("migrating up again");
    assert_eq!(count(&db, "webhook_messages").await, 1);
}
