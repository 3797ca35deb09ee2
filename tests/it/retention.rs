//! Retention (`[retention]`) on SQLite, or PostgreSQL with TGWATCH_TEST_DATABASE_URL: old rows
//! go in batches no larger than asked, young rows and what is still needed (each person's
//! gap-rule state, undelivered events, messages waiting for a retry and their attempts) stay;
//! the job follows an edit of the configuration file.

use crate::common;

use std::time::Duration;

use chrono::{DateTime, Utc};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, IntoActiveModel, PaginatorTrait,
    QueryFilter,
    sea_query::{Alias, Expr, ExprTrait, Query},
};
use tgwatch_core::{
    config::Origin,
    presence::{Source, StatusKind},
};
use tgwatch_store::{
    self as storage,
    entities::{
        bot_messages, channels, events, message_versions, messages, status_checks,
        webhook_deliveries, webhook_messages, webhooks,
    },
    observations,
    retention::{self, Prunable},
};
use uuid::Uuid;

const BATCH: u64 = 100;

fn check(user: Uuid, at: DateTime<Utc>, status: StatusKind) -> status_checks::ActiveModel {
    status_checks::Model {
        id: Uuid::now_v7(),
        tracked_user_id: user,
        observed_at: at,
        status,
        expires_at: None,
        was_online_at: None,
        source: Source::Poll,
        account_id: None,
        created_at: at,
    }
    .into_active_model()
}

/// Runs the job's batches of [`BATCH`]; returns each batch's size.
async fn prune_in_batches(
    db: &DatabaseConnection,
    what: Prunable,
    cutoff: DateTime<Utc>,
) -> Vec<u64> {
    let mut batches = Vec::new();
    let mut from = None;
    retention::prune_in_batches(db, what, cutoff, BATCH, |done| {
        batches.push(done.deleted);
        if done.deleted == BATCH {
            assert!(
                done.reached >= from,
                "each batch starts where the last one stopped"
            );
            from = done.reached;
        }
    })
    .await
    .expect("prune");
    batches
}

async fn count_of<E>(db: &DatabaseConnection) -> u64
where
    E: EntityTrait,
    E::Model: Sync,
{
    E::find().count(db).await.expect("count")
}

#[actix_rt::test(system = "tgwatch_testkit::harness::TestSystem")]
async fn old_observations_go_in_bounded_batches_and_the_gap_rule_state_stays() {
    let (db, _dir) = common::migrated_database().await;
    let now = Utc::now();
    let cutoff = now - chrono::Duration::days(30);
    let minutes = chrono::Duration::minutes;

    // Quiet: nothing seen for 40 days. Every row is old, but the newest instant (two rows) and
    // the newest online sighting are what the gap rule resumes from.
    let quiet = common::insert_tracked_user(&db, "quiet").await;
    let last_seen = now - chrono::Duration::days(40);
    let mut rows = Vec::new();
    for n in 1..=250 {
        let status = if n % 10 == 0 {
            StatusKind::Online
        } else {
            StatusKind::Offline
        };
        rows.push(check(quiet, last_seen - minutes(n), status));
    }
    rows.push(check(quiet, last_seen, StatusKind::Offline));
    rows.push(check(quiet, last_seen, StatusKind::Recently));
    // Busy: 300 old rows, 12 young ones (seen online yesterday).
    let busy = common::insert_tracked_user(&db, "busy").await;
    for n in 0..300 {
        rows.push(check(
            busy,
            now - chrono::Duration::days(35) - minutes(n),
            StatusKind::Online,
        ));
    }
    for n in 0..12 {
        rows.push(check(
            busy,
            now - chrono::Duration::days(1) + minutes(n),
            StatusKind::Online,
        ));
    }
    for chunk in rows.chunks(500) {
        status_checks::Entity::insert_many(chunk.to_vec())
            .exec_without_returning(&db)
            .await
            .expect("insert observations");
    }
    let state = |user| {
        let db = db.clone();
        async move {
            (
                observations::newest_before(&db, user, None, None)
                    .await
                    .unwrap(),
                observations::newest_before(&db, user, None, Some(StatusKind::Online))
                    .await
                    .unwrap(),
            )
        }
    };
    let before = (state(quiet).await, state(busy).await);

    let batches = prune_in_batches(&db, Prunable::StatusChecks, cutoff).await;
    // 250 - 1 (the newest online of quiet) + 300 = 549 rows: five full batches and one of 49.
    assert_eq!(batches, [100, 100, 100, 100, 100, 49], "{batches:?}");
    assert_eq!((state(quiet).await, state(busy).await), before);
    let left = |user: Uuid| {
        status_checks::Entity::find()
            .filter(status_checks::Column::TrackedUserId.eq(user))
            .count(&db)
    };
    assert_eq!(
        left(quiet).await.unwrap(),
        3,
        "newest instant (2) + newest online"
    );
    assert_eq!(left(busy).await.unwrap(), 12, "young rows stay");
    // Nothing more to take: a second run deletes nothing.
    assert_eq!(
        prune_in_batches(&db, Prunable::StatusChecks, cutoff).await,
        [0]
    );
}

struct Outbox {
    webhook: Uuid,
    now: DateTime<Utc>,
}

impl Outbox {
    async fn event(&self, db: &DatabaseConnection, id: &str, age_days: i64, fanned_out: bool) {
        events::Entity::insert(
            events::Model {
                id: id.into(),
                event_type: "user_online".into(),
                body: "{}".into(),
                tracked_user_id: None,
                channel_id: None,
                fanned_out,
                created_at: self.now - chrono::Duration::days(age_days),
            }
            .into_active_model(),
        )
        .exec_without_returning(db)
        .await
        .expect("insert event");
    }

    /// A webhook message for `event` with `attempts` attempts, done `age_days` ago unless pending.
    async fn message(
        &self,
        db: &DatabaseConnection,
        event: &str,
        status: webhook_messages::DeliveryStatus,
        age_days: i64,
        attempts: i32,
    ) {
        let at = self.now - chrono::Duration::days(age_days);
        let id = Uuid::now_v7();
        webhook_messages::Entity::insert(
            webhook_messages::Model {
                id,
                webhook_id: self.webhook,
                event_id: event.into(),
                status,
                attempts,
                next_attempt_at: at,
                claimed_until: None,
                created_at: at,
                completed_at: (status != webhook_messages::DeliveryStatus::Pending).then_some(at),
            }
            .into_active_model(),
        )
        .exec_without_returning(db)
        .await
        .expect("insert webhook message");
        for attempt in 1..=attempts {
            webhook_deliveries::Entity::insert(
                webhook_deliveries::Model {
                    id: Uuid::now_v7(),
                    webhook_id: self.webhook,
                    message_id: id,
                    event_id: event.into(),
                    attempt,
                    request_body: "{}".into(),
                    status_code: Some(500),
                    response_body: None,
                    latency_ms: 3,
                    error: None,
                    success: false,
                    triggered_at: at,
                    completed_at: at,
                }
                .into_active_model(),
            )
            .exec_without_returning(db)
            .await
            .expect("insert delivery");
        }
    }

    async fn bot_message(
        &self,
        db: &DatabaseConnection,
        key: &str,
        status: bot_messages::MessageStatus,
        age_days: i64,
    ) {
        let at = self.now - chrono::Duration::days(age_days);
        bot_messages::Entity::insert(
            bot_messages::Model {
                id: Uuid::now_v7(),
                chat_id: 7,
                dedupe_key: key.into(),
                kind: "user_online".into(),
                text: "online".into(),
                status,
                attempts: 1,
                next_attempt_at: at,
                claimed_until: None,
                last_error: None,
                telegram_message_id: None,
                created_at: at,
                sent_at: None,
            }
            .into_active_model(),
        )
        .exec_without_returning(db)
        .await
        .expect("insert bot message");
    }
}

async fn event_ids(db: &DatabaseConnection) -> Vec<String> {
    let mut ids: Vec<String> = events::Entity::find()
        .all(db)
        .await
        .unwrap()
        .into_iter()
        .map(|event| event.id)
        .collect();
    ids.sort();
    ids
}

#[actix_rt::test(system = "tgwatch_testkit::harness::TestSystem")]
async fn delivered_outbox_rows_go_and_undelivered_ones_and_their_attempts_stay() {
    use bot_messages::MessageStatus as Bot;
    use webhook_messages::DeliveryStatus as Hook;
    let (db, _dir) = common::migrated_database().await;
    let now = Utc::now();
    let cutoff = now - chrono::Duration::days(30);
    let webhook = Uuid::now_v7();
    webhooks::Entity::insert(
        webhooks::Model {
            id: webhook,
            name: Some("hook".into()),
            url: "https://example.com/hook".into(),
            event_types: "[\"all\"]".into(),
            tracked_user_id: None,
            channel_id: None,
            status: webhooks::EndpointStatus::Active,
            status_reason: None,
            failure_count: 0,
            consecutive_failed_messages: 0,
            failing_since: None,
            last_triggered: None,
            secret: "whsec_x".into(),
            previous_secret: None,
            previous_secret_until: None,
            source: Origin::Api,
            created_at: now,
            updated_at: now,
        }
        .into_active_model(),
    )
    .exec_without_returning(&db)
    .await
    .unwrap();
    let outbox = Outbox { webhook, now };
    outbox.event(&db, "e1_old_delivered", 40, true).await;
    outbox
        .message(&db, "e1_old_delivered", Hook::Delivered, 40, 2)
        .await;
    outbox.event(&db, "e2_old_failed", 40, true).await;
    outbox
        .message(&db, "e2_old_failed", Hook::Failed, 39, 7)
        .await;
    // Still waiting for its retry: the message, its attempt and its event stay.
    outbox.event(&db, "e3_old_pending", 40, true).await;
    outbox
        .message(&db, "e3_old_pending", Hook::Pending, 40, 1)
        .await;
    // Not fanned out yet: no consumer has it.
    outbox.event(&db, "e4_old_not_fanned_out", 40, false).await;
    outbox.event(&db, "e5_young", 2, true).await;
    outbox.message(&db, "e5_young", Hook::Delivered, 2, 1).await;
    // Delivered long ago, but the message was done yesterday (a redelivery).
    outbox.event(&db, "e6_old_redelivered", 40, true).await;
    outbox
        .message(&db, "e6_old_redelivered", Hook::Delivered, 1, 1)
        .await;
    // Fanned out to the webhooks (none wanted it), never taken by the bot.
    outbox.event(&db, "e7_old_bot_unseen", 40, true).await;
    // 230 more delivered events, to see the batches.
    for n in 0..230 {
        let id = format!("e9_bulk_{n:03}");
        outbox.event(&db, &id, 45, true).await;
        outbox.message(&db, &id, Hook::Delivered, 45, 1).await;
    }
    for n in 0..120 {
        outbox
            .bot_message(&db, &format!("sent-{n}"), Bot::Sent, 40)
            .await;
    }
    outbox.bot_message(&db, "refused", Bot::Failed, 40).await;
    outbox.bot_message(&db, "waiting", Bot::Pending, 40).await;
    outbox.bot_message(&db, "young", Bot::Sent, 3).await;

    // In the job's order: attempts, messages, events (the bot is on: it must have taken them).
    let deliveries = prune_in_batches(&db, Prunable::WebhookDeliveries, cutoff).await;
    assert_eq!(deliveries, [100, 100, 39], "2 + 7 + 230 attempts");
    let messages = prune_in_batches(&db, Prunable::WebhookMessages, cutoff).await;
    assert_eq!(messages, [100, 100, 32], "1 + 1 + 230 messages");
    let with_bot = Prunable::Events { bot_enabled: true };
    assert_eq!(
        prune_in_batches(&db, with_bot, cutoff).await,
        [0],
        "the bot took none"
    );
    db.execute(
        &Query::update()
            .table(Alias::new("events"))
            .value(Alias::new("bot_fanned_out"), true)
            .and_where(Expr::col(Alias::new("id")).ne("e7_old_bot_unseen"))
            .to_owned(),
    )
    .await
    .unwrap();
    let events = prune_in_batches(&db, with_bot, cutoff).await;
    assert_eq!(events, [100, 100, 32], "e1, e2 and the 230");
    assert_eq!(
        event_ids(&db).await,
        [
            "e3_old_pending",
            "e4_old_not_fanned_out",
            "e5_young",
            "e6_old_redelivered",
            "e7_old_bot_unseen"
        ]
    );
    // Without a bot, nobody else waits for e7.
    let without_bot = Prunable::Events { bot_enabled: false };
    assert_eq!(prune_in_batches(&db, without_bot, cutoff).await, [1]);

    let mut left: Vec<(String, Hook)> = webhook_messages::Entity::find()
        .all(&db)
        .await
        .unwrap()
        .into_iter()
        .map(|m| (m.event_id, m.status))
        .collect();
    left.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        left,
        [
            ("e3_old_pending".to_owned(), Hook::Pending),
            ("e5_young".to_owned(), Hook::Delivered),
            ("e6_old_redelivered".to_owned(), Hook::Delivered),
        ]
    );
    let attempts = webhook_deliveries::Entity::find().all(&db).await.unwrap();
    let mut attempt_events: Vec<&str> = attempts.iter().map(|a| a.event_id.as_str()).collect();
    attempt_events.sort();
    assert_eq!(
        attempt_events,
        ["e3_old_pending", "e5_young", "e6_old_redelivered"]
    );

    let bot = prune_in_batches(&db, Prunable::BotMessages, cutoff).await;
    assert_eq!(bot, [100, 21], "120 sent and the refused one");
    let mut keys: Vec<String> = bot_messages::Entity::find()
        .all(&db)
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.dedupe_key)
        .collect();
    keys.sort();
    assert_eq!(keys, ["waiting", "young"]);
}

#[actix_rt::test(system = "tgwatch_testkit::harness::TestSystem")]
async fn old_channel_posts_go_with_their_versions_and_young_ones_stay() {
    let (db, _dir) = common::migrated_database().await;
    let now = Utc::now();
    let channel = Uuid::now_v7();
    channels::Entity::insert(
        channels::Model {
            id: channel,
            telegram_channel_id: Some(55),
            access_hash: None,
            username: Some("news".into()),
            invite_hash: None,
            title: None,
            about: None,
            member_count: None,
            tags: "[]".into(),
            is_active: true,
            status: channels::ChannelStatus::Active,
            status_reason: None,
            account_id: None,
            last_message_id: 150,
            last_event_at: None,
            source: Origin::Api,
            date_joined: Some(now),
            created_at: now,
            updated_at: now,
        }
        .into_active_model(),
    )
    .exec_without_returning(&db)
    .await
    .unwrap();
    let mut posts = Vec::new();
    let mut versions = Vec::new();
    for n in 0..150 {
        let id = Uuid::now_v7();
        let date = if n < 140 {
            now - chrono::Duration::days(400) + chrono::Duration::minutes(n.into())
        } else {
            now - chrono::Duration::days(10)
        };
        posts.push(
            messages::Model {
                id,
                channel_id: channel,
                telegram_message_id: n + 1,
                date,
                text: format!("post {n}"),
                sender_id: None,
                sender_name: None,
                media_type: None,
                media_ref: None,
                edit_date: None,
                version: 2,
                is_deleted: false,
                deleted_at: None,
                created_at: date,
                updated_at: date,
            }
            .into_active_model(),
        );
        versions.push(
            message_versions::Model {
                id: Uuid::now_v7(),
                message_id: id,
                version: 1,
                text: "before the edit".into(),
                media_type: None,
                media_ref: None,
                edit_date: None,
                recorded_at: date,
            }
            .into_active_model(),
        );
    }
    messages::Entity::insert_many(posts)
        .exec_without_returning(&db)
        .await
        .unwrap();
    message_versions::Entity::insert_many(versions)
        .exec_without_returning(&db)
        .await
        .unwrap();

    let cutoff = now - chrono::Duration::days(365);
    let batches = prune_in_batches(&db, Prunable::ChannelMessages, cutoff).await;
    assert_eq!(batches, [100, 40]);
    assert_eq!(count_of::<messages::Entity>(&db).await, 10);
    assert_eq!(
        count_of::<message_versions::Entity>(&db).await,
        10,
        "versions went along"
    );
}

/// `[retention]` applies live: with `status_checks_days = 0` the old rows stay through several
/// runs; once the file says 30 days they go, and `/metrics` counts them.
#[actix_rt::test(system = "tgwatch_testkit::harness::TestSystem")]
async fn the_retention_job_follows_an_edit_of_the_file_and_counts_what_it_pruned() {
    let keep = "[retention]\nstatus_checks_days = 0\ninterval_seconds = 300\n";
    let (app, path) = common::spawn_app_watching(crate::operations::USERS, |url| {
        crate::operations::config_file(url, keep)
    })
    .await;
    let user = app.track("alice_w").await;
    let user = Uuid::parse_str(&user).unwrap();
    let db = storage::connect(&app.database_url, 2).await.unwrap();
    let now = app.clock.now();
    let old: Vec<_> = (0..150)
        .map(|n| {
            check(
                user,
                now - chrono::Duration::days(60) - chrono::Duration::minutes(n),
                StatusKind::Offline,
            )
        })
        .collect();
    status_checks::Entity::insert_many(old)
        .exec_without_returning(&db)
        .await
        .unwrap();
    let old_rows = || {
        status_checks::Entity::find()
            .filter(status_checks::Column::ObservedAt.lt(now - chrono::Duration::days(59)))
            .count(&db)
    };
    // Three runs of the job at 600x: 1.5 s.
    let start = app.clock.now();
    while app.clock.now() < start + chrono::Duration::seconds(900) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(old_rows().await.unwrap(), 150, "0 days keeps everything");

    std::fs::write(
        &path,
        crate::operations::config_file(
            &app.database_url,
            "[retention]\nstatus_checks_days = 30\ninterval_seconds = 300\nbatch_size = 40\n",
        ),
    )
    .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while old_rows().await.unwrap() > 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "old rows never pruned"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let response = app
        .client
        .get(format!("{}/metrics", app.base))
        .send()
        .await
        .unwrap();
    let text = response.text().await.unwrap();
    assert!(
        text.contains("tgwatch_retention_deleted_total{table=\"status_checks\"} 150\n"),
        "{text}"
    );
    assert!(
        text.contains("tgwatch_retention_deleted_total{table=\"messages\"} 0\n"),
        "{text}"
    );
    // Alice's own observations since she was tracked are young: they stay.
    let (_, newest) = app.get(&format!("/api/tracked-users/{user}")).await;
    assert_ne!(newest["last_status"], serde_json::Value::Null, "{newest}");
}

/// On SQLite, pruning while another writer keeps committing: each batch rewrites hundreds of
/// pages, and without a checkpoint of its own the write-ahead log would never be restarted
/// (the automatic ones never find it fully copied back) and would grow by every batch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_write_ahead_log_stays_small_while_pruning_beside_another_writer() {
    if std::env::var("TGWATCH_TEST_DATABASE_URL").is_ok() {
        eprintln!("skipped: a SQLite-only test (PostgreSQL has no write-ahead log file to watch)");
        return;
    }
    let (db, dir) = common::migrated_database().await;
    let now = Utc::now();
    let mut people = Vec::new();
    for index in 0..200 {
        people.push(common::insert_tracked_user(&db, &format!("person_{index}")).await);
    }
    // 60,000 old observations, each person's spread over the same hour, so that every batch
    // deletes rows of many people (pages all over the table and its indexes).
    let old = now - chrono::Duration::days(60);
    let rows: Vec<_> = (0..60_000)
        .map(|index| {
            let at = old + chrono::Duration::milliseconds(index * 50);
            check(
                people[index as usize % people.len()],
                at,
                StatusKind::Offline,
            )
        })
        .collect();
    for chunk in rows.chunks(3000) {
        status_checks::Entity::insert_many(chunk.to_vec())
            .exec_without_returning(&db)
            .await
            .expect("insert old observations");
    }

    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (db, stop, person) = (db.clone(), stop.clone(), people[0]);
        tokio::spawn(async move {
            let mut writes = 0;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                status_checks::Entity::insert(check(person, Utc::now(), StatusKind::Online))
                    .exec_without_returning(&db)
                    .await
                    .expect("the other writer's insert");
                writes += 1;
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            writes
        })
    };
    let wal = dir.path().join("test.db-wal");
    let cutoff = now - chrono::Duration::days(30);
    let (mut peak, mut batches) = (0_u64, 0);
    retention::prune_in_batches(&db, Prunable::StatusChecks, cutoff, 500, |_| {
        batches += 1;
        peak = std::cmp::max(peak, std::fs::metadata(&wal).map_or(0, |file| file.len()));
    })
    .await
    .expect("prune");
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let writes = writer.await.expect("the other writer");
    assert!(
        writes > 0 && batches >= 100,
        "{writes} writes, {batches} batches"
    );
    // Without the checkpoints it reaches about 10 MB here (every batch's pages).
    assert!(
        peak < 2_000_000,
        "the write-ahead log reached {peak} bytes over {batches} batches"
    );
}
