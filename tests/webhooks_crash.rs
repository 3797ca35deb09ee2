//! At-least-once delivery across crashes: the service is killed with SIGKILL at random moments
//! during a burst of events and restarted; every stored event still reaches the consumer, and
//! repeats carry the same webhook-id and body.

#![allow(clippy::expect_used, clippy::unwrap_used)] // a failing test may panic

mod common;

use std::{
    collections::{BTreeMap, BTreeSet},
    process::{Child, Command, Stdio},
    time::Duration,
};

use common::receiver::{Behaviour, Receiver};
use rand::Rng;
use sea_orm::EntityTrait;
use tgwatch::{storage::entities::events, webhooks::signing::SigningSecret};

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
# Messages a killed process had claimed go out again when its lease ends (twice the timeout
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

fn start(config: &std::path::Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_tgwatch"))
        .args(["run", "--config"])
        .arg(config)
        .env("RUST_LOG", "error")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start tgwatch")
}

#[actix_web::test]
async fn every_event_is_delivered_across_sigkills() {
    let dir = tempfile::tempdir().expect("dir");
    let database_url = common::fresh_database(dir.path()).await;
    let receiver = Receiver::start(Behaviour::Ok);
    let secret = SigningSecret::generate();
    let config = write_files(dir.path(), &database_url, &receiver.url, &secret.expose());

    let mut rng = rand::rng();
    for _ in 0..4 {
        let mut service = start(&config);
        tokio::time::sleep(Duration::from_millis(rng.random_range(2000..4000))).await;
        service.kill().expect("SIGKILL");
        service.wait().expect("reap");
    }
    let mut service = start(&config);

    // Let the last run go on until thousands of events are stored (how long that takes depends
    // on the machine); everything stored must arrive, however many kills it went through.
    let db = sea_orm::Database::connect(&database_url).await.expect("db");
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
    service.kill().expect("SIGKILL");
    service.wait().expect("reap");

    let mut bodies: BTreeMap<String, String> = BTreeMap::new();
    let mut repeats = 0;
    for message in receiver.received() {
        assert!(secret.verify(
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
        "{} events, {} repeats after 4 SIGKILLs",
        stored.len(),
        repeats
    );
}
