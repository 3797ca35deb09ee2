//! At-least-once delivery across crashes: the service is killed with SIGKILL at random moments
//! during a burst of events, each time while it holds claims on messages in flight, and
//! restarted; the leases the dead process held are claimed again only after they ran out, every
//! stored event still reaches the consumer, and repeats carry the same webhook-id and body.

use crate::common;

use std::{
    collections::{BTreeMap, BTreeSet},
    process::{Child, Command},
    time::Duration,
};

use chrono::{DateTime, Utc};
use common::receiver::{Behaviour, Receiver};
use rand::Rng;
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, PaginatorTrait, QueryFilter};
use tgwatch_core::signing::SigningSecret;
use tgwatch_store::entities::{events, webhook_deliveries, webhook_messages};

const USERS: usize = 100;

fn write_files(
    dir: &std::path::Path,
    database_url: &str,
    hook_url: &str,
    secret: &str,
) -> std::path::PathBuf {
    // Every user comes and goes every 400 s of service time (2/3 s real at 600x): three events
    // (online, offline, session closed) per user and cycle.
    let mut scenario = String::new();
    let mut tracked = String::new();
    for i in 0..USERS {
        let start = (i * 7 % 150) as i64;
        scenario.push_str(&format!(
            "[[users]]\nid = {}\nusername = \"crash{i:04}\"\nonline = [[{start}, {}]]\nrepeat_every = 400\n",
            9000 + i,
            start + 100
        ));
        tracked.push_str(&format!("[[tracked_users]]\nusername = \"crash{i:04}\"\n"));
    }
    std::fs::write(dir.join("scenario.toml"), scenario).expect("scenario");
    let config = format!(
        r#"
[database]
url = "{database_url}"

[http]
bind = "127.0.0.1:0"
admin_token = "crash-test-admin-token-123"

[presence]
batch_delay_seconds = 5
flush_interval_ms = 50

[telegram]
scenario = "{scenario}"
clock_speed = 600.0

[webhooks]
allow_private_addresses = true
poll_interval_ms = 20
# The consumer is slow (200 ms): room for enough requests in flight to keep up with the events.
max_in_flight_per_endpoint = 256
# Messages a killed process had claimed go out again when its lease ends (four times the timeout
# plus 5 s): keep it short for the test.
timeout_seconds = 2
retry_schedule_seconds = [5, 30, 60, 60, 60, 60, 60, 60, 60, 60]

[[webhooks.endpoints]]
name = "crash-consumer"
url = "{hook_url}"
secret = "{secret}"

[[accounts]]
label = "main"

{tracked}
"#,
        scenario = dir.join("scenario.toml").display(),
    );
    let path = dir.join("config.toml");
    std::fs::write(&path, config).expect("config");
    path
}

/// Starts the service; its output goes to `log`.
fn start(config: &std::path::Path, log: &std::path::Path) -> Child {
    let output = std::fs::File::create(log).expect("log file");
    Command::new(env!("CARGO_BIN_EXE_tgwatch"))
        .args(["run", "--config"])
        .arg(config)
        .env("RUST_LOG", "error")
        .stdout(output.try_clone().expect("log file"))
        .stderr(output)
        .spawn()
        .expect("start tgwatch")
}

/// Kills the run with SIGKILL, after checking from its log that it did not die on its own.
fn kill(service: &mut Child, log: &std::path::Path) {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    assert!(
        service.try_wait().expect("status").is_none(),
        "the service stopped before it was killed:\n{text}"
    );
    assert!(!text.contains("panicked"), "the service panicked:\n{text}");
    service.kill().expect("SIGKILL");
    service.wait().expect("reap");
}

/// Messages whose claim (lease) is held and not completed: (message, lease end).
async fn leased(db: &DatabaseConnection) -> BTreeSet<(uuid::Uuid, DateTime<Utc>)> {
    webhook_messages::Entity::find()
        .filter(webhook_messages::Column::Status.eq("pending"))
        .filter(webhook_messages::Column::ClaimedUntil.is_not_null())
        .all(db)
        .await
        .expect("webhook messages")
        .into_iter()
        .filter_map(|message| Some((message.id, message.claimed_until?)))
        .collect()
}

#[actix_rt::test(system = "tgwatch_testkit::harness::TestSystem")]
async fn every_event_is_delivered_across_sigkills() {
    let dir = tempfile::tempdir().expect("dir");
    let database_url = common::fresh_database(dir.path()).await;
    let receiver = Receiver::start(Behaviour::Slow(Duration::from_millis(200)));
    let secret = SigningSecret::generate();
    let config = write_files(dir.path(), &database_url, &receiver.url, &secret.expose());

    // The tables exist before the first run (which would make them) so that it can be watched.
    let db = tgwatch_store::connect(&database_url, 4).await.expect("db");
    tgwatch_store::migrate(&db).await.expect("migrate");
    let mut rng = rand::rng();
    // Leases each killed run held when it died, with their end.
    let mut dead_leases: Vec<(uuid::Uuid, DateTime<Utc>)> = Vec::new();
    // Four kills of a run holding leases. A kill may land just after the last claim in flight
    // was recorded (the consumer answers in 200 ms; a loaded machine can be slower than that
    // between seeing a claim and the kill): such a run counts as a crash, not as one of the four.
    let mut kills_holding_leases = 0;
    let mut run = 0;
    while kills_holding_leases < 4 {
        assert!(
            run < 12,
            "only {kills_holding_leases} of {run} kills caught the service holding a lease"
        );
        let log = dir.path().join(format!("run-{run}.log"));
        let attempts_before = webhook_deliveries::Entity::find()
            .count(&db)
            .await
            .expect("deliveries");
        let leases_before = leased(&db).await;
        let mut service = start(&config, &log);
        tokio::time::sleep(Duration::from_millis(rng.random_range(2000..4000))).await;
        // Kill it while it holds claims of its own (the consumer takes 200 ms per request, so
        // some are in flight while events flow).
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while leased(&db).await.is_subset(&leases_before) {
            assert!(
                tokio::time::Instant::now() < deadline,
                "run {run} claimed nothing in 30 s:\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        kill(&mut service, &log);
        let held: Vec<_> = leased(&db)
            .await
            .difference(&leases_before)
            .copied()
            .collect();
        if !held.is_empty() {
            kills_holding_leases += 1;
        }
        let attempts = webhook_deliveries::Entity::find()
            .count(&db)
            .await
            .expect("deliveries");
        eprintln!(
            "run {run}: {} attempts recorded before the kill, {} leases held at it",
            attempts - attempts_before,
            held.len()
        );
        dead_leases.extend(held);
        run += 1;
    }
    let last_log = dir.path().join("run-last.log");
    let mut service = start(&config, &last_log);

    // Let the last run go on until thousands of events are stored (how long that takes depends
    // on the machine); everything stored must arrive, however many kills it went through.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let stored: BTreeSet<String> = loop {
        let stored: BTreeSet<String> = events::Entity::find()
            .all(&db)
            .await
            .expect("events")
            .into_iter()
            .map(|event| event.id)
            .collect();
        if stored.len() >= 2000 {
            break stored;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "only {} events in a minute",
            stored.len()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let missing = stored.difference(&receiver.delivered_ids()).count();
        if missing == 0 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{missing} of {} events never arrived",
            stored.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Every message a killed run held was claimed again, after its lease ran out, and delivered.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    for (message, lease_end) in &dead_leases {
        let delivered = loop {
            let successes = webhook_deliveries::Entity::find()
                .filter(webhook_deliveries::Column::MessageId.eq(*message))
                .filter(webhook_deliveries::Column::Success.eq(true))
                .all(&db)
                .await
                .expect("deliveries");
            if !successes.is_empty() {
                break successes;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "message {message}, leased until {lease_end} by a killed run, was never delivered"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        for attempt in delivered {
            assert!(
                attempt.triggered_at >= *lease_end,
                "message {message} was sent again at {} while a killed run's lease held it until {lease_end}",
                attempt.triggered_at
            );
        }
    }
    kill(&mut service, &last_log);

    let mut bodies: BTreeMap<String, String> = BTreeMap::new();
    let mut repeats = 0;
    for message in receiver.received() {
        assert!(common::standard_webhooks_signed(
            &secret.expose(),
            &message.id,
            message.timestamp,
            &message.body,
            &message.signature
        ));
        if let Some(first) = bodies.insert(message.id.clone(), message.body.clone()) {
            repeats += 1;
            assert_eq!(
                first, message.body,
                "a repeat carries the same body under the same id"
            );
        }
    }
    eprintln!(
        "{} events, {} repeats, {} leases reclaimed after {run} SIGKILLs",
        stored.len(),
        repeats,
        dead_leases.len()
    );
}
