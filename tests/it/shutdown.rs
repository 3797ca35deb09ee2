//! The stop of the real binary on SIGTERM (README, "Stopping"): every acknowledged write is in
//! the database afterwards, the live WebSockets are told "going away", webhook attempts in
//! flight are recorded or released, a stop that cannot finish ends within
//! `supervision.shutdown_timeout_seconds` with exit code 3, and `demo --seconds N` exits 0.

use crate::common;
use crate::deploy::{Host, exit_status, free_port, terminate, wait_healthy};

use std::{
    collections::{BTreeSet, HashSet},
    process::Stdio,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use common::{
    TOKEN,
    receiver::{Behaviour, Receiver},
};
use futures_util::StreamExt;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter, Statement,
};
use tgwatch_core::{
    clock::Clock,
    config::{AccountConfig, Config, Secret},
    signing::SigningSecret,
};
use tgwatch_store::entities::{channels, messages, webhook_deliveries, webhook_messages};
use tgwatch_testkit::{demo::SandboxFleet, scripted::Scenario};
use tokio::process::{Child, Command};
use tokio_tungstenite::tungstenite::{
    Message, client::IntoClientRequest, protocol::frame::coding::CloseCode,
};
use uuid::Uuid;

/// The sandbox's channel the service monitors during the burst.
const NEWS: i64 = 1_333_333_333;
/// Observations (over HTTP) and channel posts (in the sandbox) acknowledged before SIGTERM.
const BURST: usize = 40;

/// The service (`tgwatch run`) over MTProto against a sandbox held by this test: its account's
/// session is imported into the database first (sealed with the key file the service then
/// reads), as `bench channels` does, on SQLite or on PostgreSQL (TGWATCH_TEST_DATABASE_URL).
struct SandboxedService {
    host: Host,
    fleet: SandboxFleet,
    database_url: String,
    base: String,
    child: Child,
}

impl SandboxedService {
    async fn start() -> SandboxedService {
        let host = Host::new();
        let database_url = common::fresh_database(&host.state()).await;
        let mut config = Config::default();
        config.database.url = database_url.clone();
        config.telegram.api_id = Some(1);
        config.telegram.api_hash = Some(Secret::new("shutdown-api-hash"));
        config.security.master_key_file = host.state().join("tgwatch.key").display().to_string();
        config.accounts = vec![AccountConfig {
            label: "main".into(),
            phone: None,
            api_id: None,
            max_targets: 100,
            max_channels: 10,
        }];
        let scenario = Scenario::from_toml(
            "[[users]]\nid = 1001\nusername = \"alice_example\"\nonline = [[0, 60]]\nrepeat_every = 120\n",
        )
        .expect("scenario");
        let fleet = SandboxFleet::start(&config, &scenario, Clock::real())
            .await
            .expect("sandbox fleet");
        fleet
            .sandbox
            .add_channel(NEWS, 4242, Some("shutdown_news"), "Shutdown news", "")
            .expect("channel");
        // Buffers written every 3 s: the last writes of the burst are in them at SIGTERM, and only
        // the stop writes them.
        let file = host.root.path().join("etc/config.toml");
        std::fs::write(
            &file,
            "[telegram]\nwatchdog_seconds = 0.5\n\n[presence]\nflush_interval_ms = 3000\n\n\
             [[accounts]]\nlabel = \"main\"\n\n[[tracked_users]]\nusername = \"alice_example\"\n\n\
             [[channels]]\nchannel = \"@shutdown_news\"\n",
        )
        .expect("config");
        let port = free_port();
        let base = format!("http://127.0.0.1:{port}");
        let log = std::fs::File::create(host.root.path().join("service.log")).expect("log");
        let mut child = Command::new(env!("CARGO_BIN_EXE_tgwatch"))
            .arg("run")
            .arg("--config")
            .arg(&file)
            .current_dir(host.state())
            .env("TGWATCH_HTTP__BIND", format!("127.0.0.1:{port}"))
            .env("TGWATCH_HTTP__ADMIN_TOKEN", TOKEN)
            .env("TGWATCH_DATABASE__URL", &database_url)
            .env(
                "TGWATCH_SECURITY__MASTER_KEY_FILE",
                &config.security.master_key_file,
            )
            .env("TGWATCH_TELEGRAM__API_ID", "1")
            .env("TGWATCH_TELEGRAM__API_HASH", "shutdown-api-hash")
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .expect("start tgwatch");
        wait_healthy(&base, &mut child).await;
        SandboxedService {
            host,
            fleet,
            database_url,
            base,
            child,
        }
    }

    /// What the service logged so far, for failure messages.
    fn log(&self) -> String {
        std::fs::read_to_string(self.host.root.path().join("service.log")).unwrap_or_default()
    }

    fn api(&self) -> common::Api {
        common::Api {
            base: self.base.clone(),
            client: reqwest::Client::new(),
        }
    }
}

/// Posts observations of `person` from four writers, a second apart in service time, until
/// `stopping`; returns the times of those answered 201. A 503 before the stop is a loaded
/// machine's "try again", not the stop: the writer tries again.
fn observation_writers(
    api: &common::Api,
    person: &str,
    acknowledged: &Arc<Mutex<Vec<chrono::DateTime<chrono::Utc>>>>,
    stopping: &Arc<AtomicBool>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let start = chrono::Utc::now() - chrono::Duration::hours(1);
    (0..4)
        .map(|writer| {
            let (api, person, acknowledged, stopping) = (
                common::Api {
                    base: api.base.clone(),
                    client: reqwest::Client::new(),
                },
                person.to_owned(),
                acknowledged.clone(),
                stopping.clone(),
            );
            tokio::spawn(async move {
                let mut step = 0;
                while step < 10_000 {
                    let at = start + chrono::Duration::seconds(step * 4 + writer);
                    let body = serde_json::json!({
                        "tracked_user_id": person,
                        "is_online": step % 2 == 0,
                        "observed_at": at.to_rfc3339(),
                    });
                    let sent = api
                        .client
                        .post(format!("{}/api/online-statuses", api.base))
                        .bearer_auth(TOKEN)
                        .json(&body)
                        .send()
                        .await;
                    let stopped = stopping.load(Ordering::SeqCst);
                    match sent.map(|answer| answer.status().as_u16()) {
                        Ok(201) => {
                            acknowledged.lock().unwrap().push(at);
                            step += 1;
                        }
                        // Refused or cut off while stopping: not acknowledged, nothing is owed.
                        Ok(503) | Err(_) if stopped => return,
                        Ok(503) => tokio::time::sleep(Duration::from_millis(50)).await,
                        Ok(other) => panic!("unexpected answer {other} during the burst"),
                        Err(error) => panic!("the service failed before SIGTERM: {error}"),
                    }
                }
            })
        })
        .collect()
}

async fn manual_observation_times(db: &DatabaseConnection) -> HashSet<i64> {
    db.query_all_raw(Statement::from_string(
        db.get_database_backend(),
        "SELECT observed_at FROM status_checks WHERE source = 'manual'",
    ))
    .await
    .unwrap()
    .iter()
    .map(|row| {
        row.try_get::<chrono::DateTime<chrono::Utc>>("", "observed_at")
            .unwrap()
            .timestamp()
    })
    .collect()
}

/// SIGTERM in the middle of a burst of acknowledged writes, manual observations over HTTP and
/// channel posts the sandbox delivered to the service's connection: exit 0, every one of them in
/// the database afterwards, and the live WebSocket closed with 1001 "going away".
#[tokio::test]
async fn sigterm_during_a_burst_keeps_every_acknowledged_observation_and_channel_post() {
    let mut service = SandboxedService::start().await;
    let api = service.api();
    let people = api
        .eventually("/api/tracked-users", Duration::from_secs(30), |body| {
            body["items"]
                .as_array()
                .is_some_and(|items| !items.is_empty())
        })
        .await;
    let alice = people["items"][0]["id"].as_str().unwrap().to_owned();
    api.eventually("/api/channels", Duration::from_secs(30), |body| {
        body["items"][0]["status"] == "active"
    })
    .await;
    let mut request = format!("{}/ws?user_id=0", service.base.replacen("http", "ws", 1))
        .into_client_request()
        .unwrap();
    request
        .headers_mut()
        .insert("authorization", format!("Bearer {TOKEN}").parse().unwrap());
    let (mut socket, _) = tokio_tungstenite::connect_async(request).await.unwrap();

    let stopping = Arc::new(AtomicBool::new(false));
    let observations = Arc::new(Mutex::new(Vec::new()));
    let writers = observation_writers(&api, &alice, &observations, &stopping);
    // Posts the sandbox pushed to the service's live connection (what Telegram acknowledges
    // to a poster) until the stop; the poster ends before SIGTERM is sent.
    let posts = Arc::new(Mutex::new(Vec::new()));
    let poster = {
        let (sandbox, posts, stopping) = (
            service.fleet.sandbox.clone(),
            posts.clone(),
            stopping.clone(),
        );
        tokio::spawn(async move {
            let mut number = 0;
            while !stopping.load(Ordering::SeqCst) {
                let posted = sandbox.post(NEWS, &format!("post {number}")).expect("post");
                if posted.delivery.live > 0 {
                    posts.lock().unwrap().push(posted.id);
                }
                number += 1;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while observations.lock().unwrap().len() < BURST || posts.lock().unwrap().len() < BURST {
        assert!(
            tokio::time::Instant::now() < deadline,
            "not {BURST} of each acknowledged within 60 s: {} observations, {} posts",
            observations.lock().unwrap().len(),
            posts.lock().unwrap().len()
        );
        if let Some(finished) = writers.iter().position(|writer| writer.is_finished()) {
            panic!("writer {finished} stopped before SIGTERM");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    stopping.store(true, Ordering::SeqCst);
    poster.await.unwrap();
    terminate(&service.child);

    // The WebSocket is told why it closes.
    let close = tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(message) = socket.next().await {
            match message {
                Ok(Message::Close(frame)) => return frame,
                Ok(_) => {}
                Err(error) => panic!("{error} before a close frame:\n{}", service.log()),
            }
        }
        None
    })
    .await
    .expect("the WebSocket closes within 20 s of SIGTERM")
    .expect("a close frame with a reason");
    assert_eq!(close.code, CloseCode::Away, "{close:?}");
    assert_eq!(close.reason.as_str(), "the service is stopping");

    let status = exit_status(&mut service.child).await;
    for writer in writers {
        writer.await.unwrap();
    }
    assert_eq!(
        status.code(),
        Some(0),
        "SIGTERM is a clean stop: {status}\n{}",
        service.log()
    );

    let db = sea_orm::Database::connect(&service.database_url)
        .await
        .unwrap();
    let stored = manual_observation_times(&db).await;
    let observations = observations.lock().unwrap().clone();
    let lost: Vec<_> = observations
        .iter()
        .filter(|at| !stored.contains(&at.timestamp()))
        .collect();
    assert!(observations.len() >= BURST);
    assert!(lost.is_empty(), "acknowledged but not stored: {lost:?}");

    let channel = channels::Entity::find()
        .filter(channels::Column::TelegramChannelId.eq(NEWS))
        .one(&db)
        .await
        .unwrap()
        .expect("the channel's row");
    let stored: BTreeSet<i32> = messages::Entity::find()
        .filter(messages::Column::ChannelId.eq(channel.id))
        .all(&db)
        .await
        .unwrap()
        .into_iter()
        .map(|message| message.telegram_message_id)
        .collect();
    let posts = posts.lock().unwrap().clone();
    let lost: Vec<_> = posts.iter().filter(|id| !stored.contains(id)).collect();
    assert!(posts.len() >= BURST);
    assert!(
        lost.is_empty(),
        "delivered to the service but not stored: {lost:?} of {}",
        posts.len()
    );
    drop(service.host);
}

/// `tgwatch run` on the scripted Telegram with one person changing status every second (real
/// time), so events flow to the webhook endpoint at `hook_url`; `webhook_keys` go into
/// `[webhooks]`, `sections` before it. Returns the service and the database.
async fn run_with_webhooks(
    host: &Host,
    hook_url: &str,
    webhook_keys: &str,
    sections: &str,
) -> (Child, DatabaseConnection) {
    host.write_scripted_config();
    let file = host.root.path().join("etc/config.toml");
    let text = std::fs::read_to_string(&file)
        .unwrap()
        .replace("[telegram]\n", "[telegram]\nclock_speed = 60.0\n");
    let secret = SigningSecret::generate();
    std::fs::write(
        &file,
        format!(
            "{text}\n{sections}\n[webhooks]\nallow_private_addresses = true\npoll_interval_ms = 20\n{webhook_keys}\n\
             [[webhooks.endpoints]]\nname = \"slow\"\nurl = \"{hook_url}\"\nsecret = \"{}\"\n",
            secret.expose()
        ),
    )
    .unwrap();
    let database_url = common::fresh_database(&host.state()).await;
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut child = Command::new(env!("CARGO_BIN_EXE_tgwatch"))
        .arg("run")
        .arg("--config")
        .arg(&file)
        .current_dir(host.state())
        .env("TGWATCH_HTTP__BIND", format!("127.0.0.1:{port}"))
        .env("TGWATCH_HTTP__ADMIN_TOKEN", TOKEN)
        .env("TGWATCH_DATABASE__URL", &database_url)
        .env(
            "TGWATCH_SECURITY__MASTER_KEY_FILE",
            host.state().join("tgwatch.key"),
        )
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    wait_healthy(&base, &mut child).await;
    let db = sea_orm::Database::connect(&database_url).await.unwrap();
    (child, db)
}

/// Messages claimed and not done: the attempts in flight.
async fn claimed(db: &DatabaseConnection) -> BTreeSet<Uuid> {
    webhook_messages::Entity::find()
        .filter(webhook_messages::Column::Status.eq("pending"))
        .filter(webhook_messages::Column::ClaimedUntil.is_not_null())
        .all(db)
        .await
        .unwrap()
        .into_iter()
        .map(|message| message.id)
        .collect()
}

/// The messages claimed once there are at least `at_least` of them.
async fn wait_for_claims(db: &DatabaseConnection, at_least: usize) -> BTreeSet<Uuid> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let claimed = claimed(db).await;
        if claimed.len() >= at_least {
            return claimed;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "fewer than {at_least} webhook messages claimed within 30 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn attempts_of(db: &DatabaseConnection, message: Uuid) -> usize {
    webhook_deliveries::Entity::find()
        .filter(webhook_deliveries::Column::MessageId.eq(message))
        .all(db)
        .await
        .unwrap()
        .len()
}

/// A message's row, which must still be pending (its attempt cut off or never made).
async fn pending_message(db: &DatabaseConnection, message: Uuid) -> webhook_messages::Model {
    let row = webhook_messages::Entity::find_by_id(message)
        .one(db)
        .await
        .unwrap()
        .expect("the message");
    assert_eq!(
        row.status,
        webhook_messages::DeliveryStatus::Pending,
        "{row:?}"
    );
    row
}

/// SIGTERM while the consumer takes a second and a half to answer: the stop waits for the
/// attempts in flight, writes them, and exits 0 with no claim left behind.
#[actix_rt::test(system = "tgwatch_testkit::harness::TestSystem")]
async fn sigterm_records_the_webhook_attempts_in_flight() {
    let host = Host::new();
    let receiver = Receiver::start(Behaviour::Slow(Duration::from_millis(1500)));
    let (mut child, db) =
        run_with_webhooks(&host, &receiver.url, "timeout_seconds = 30\n", "").await;
    let in_flight = wait_for_claims(&db, 1).await;
    terminate(&child);
    let status = exit_status(&mut child).await;
    assert_eq!(status.code(), Some(0), "a clean stop: {status}");
    for message in &in_flight {
        assert!(
            attempts_of(&db, *message).await >= 1,
            "the attempt in flight at SIGTERM on {message} was not recorded"
        );
    }
    assert!(claimed(&db).await.is_empty(), "no claim is left behind");
    assert!(receiver.delivered_ids().len() >= in_flight.len());
}

/// One request at a time per endpoint and a consumer that never answers: the message in flight
/// never ends, and the one claimed ahead waits behind it for good. SIGTERM cuts the first off
/// and gives both claims back (exit 3: the stop could not finish), and neither was recorded as
/// attempted: the one waiting was never sent.
#[actix_rt::test(system = "tgwatch_testkit::harness::TestSystem")]
async fn sigterm_releases_the_messages_claimed_ahead() {
    use tgwatch_core::events::{Event, EventType};

    let host = Host::new();
    let receiver = Receiver::start(Behaviour::Slow(Duration::from_secs(3600)));
    let (mut child, db) = run_with_webhooks(
        &host,
        &receiver.url,
        "timeout_seconds = 3600\nmax_in_flight_per_endpoint = 1\n",
        "[supervision]\nshutdown_timeout_seconds = 2\n",
    )
    .await;
    // More messages than the window, whatever the scripted person does meanwhile.
    let events: Vec<Event> = (0..2)
        .map(|n| {
            Event::new(
                EventType::Alert,
                chrono::Utc::now(),
                serde_json::json!({ "n": n }),
            )
        })
        .collect();
    tgwatch_store::webhooks::write_events(&db, &events)
        .await
        .unwrap();
    // One in flight, one claimed ahead.
    let held = wait_for_claims(&db, 2).await;
    terminate(&child);
    let status = exit_status(&mut child).await;
    assert_eq!(
        status.code(),
        Some(3),
        "the attempt in flight cannot end: {status}"
    );
    assert!(claimed(&db).await.is_empty(), "no claim is left behind");
    for message in &held {
        let row = pending_message(&db, *message).await;
        assert_eq!(attempts_of(&db, *message).await, 0, "{row:?}");
    }
}

/// A consumer that never answers, with a webhook timeout of an hour: the stop cannot finish.
/// It ends within `shutdown_timeout_seconds` (2) and a margin, with exit code 3, and the claims
/// of the attempts it cut off are released (not left for the hours-long lease), so nothing is
/// lost: the next run sends them at once.
#[actix_rt::test(system = "tgwatch_testkit::harness::TestSystem")]
async fn a_stop_that_cannot_finish_exits_3_within_the_timeout_and_releases_its_claims() {
    let host = Host::new();
    let receiver = Receiver::start(Behaviour::Slow(Duration::from_secs(3600)));
    let (mut child, db) = run_with_webhooks(
        &host,
        &receiver.url,
        "timeout_seconds = 3600\n",
        "[supervision]\nshutdown_timeout_seconds = 2\n",
    )
    .await;
    let in_flight = wait_for_claims(&db, 1).await;
    let signalled = std::time::Instant::now();
    terminate(&child);
    let status = exit_status(&mut child).await;
    let took = signalled.elapsed();
    assert_eq!(status.code(), Some(3), "an unfinished stop: {status}");
    assert!(
        took < Duration::from_secs(2 + 3),
        "the stop took {took:?}, past shutdown_timeout_seconds = 2 and a margin"
    );
    for message in &in_flight {
        let row = pending_message(&db, *message).await;
        assert_eq!(row.claimed_until, None, "its claim is released: {row:?}");
    }
}

/// `tgwatch demo --seconds 1`, twenty times, four at once: each exits 0 and nothing panics
/// (leaving the runtime with a database connection once panicked inside sqlx).
#[tokio::test]
async fn demo_seconds_exits_cleanly_twenty_times() {
    let run = || async {
        let tmp = tempfile::tempdir().expect("temp dir");
        let output = tokio::time::timeout(
            Duration::from_secs(60),
            Command::new(env!("CARGO_BIN_EXE_tgwatch"))
                .args(["demo", "--seconds", "1", "--bind", "127.0.0.1:0"])
                .env("TMPDIR", tmp.path())
                .kill_on_drop(true)
                .output(),
        )
        .await
        .expect("the demo ends within 60 s")
        .expect("run tgwatch demo");
        let log = format!(
            "{}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        (output.status, log)
    };
    let runs: Vec<_> = futures_util::stream::iter(0..20)
        .map(|_| run())
        .buffer_unordered(4)
        .collect()
        .await;
    for (status, log) in &runs {
        assert_eq!(status.code(), Some(0), "{log}");
        assert!(!log.contains("panicked"), "{log}");
        assert!(log.contains("stopped cleanly"), "{log}");
    }
}

/// After the stop, the bot polls no more: a command sent then is not fetched, let alone
/// answered, though the process (here, the test's) goes on.
#[actix_rt::test(system = "tgwatch_testkit::harness::TestSystem")]
async fn the_stop_ends_the_bots_polling() {
    const BOT_TOKEN: &str = "123456:shutdown-token_ABC";
    let bot = tgwatch_sandbox::bot_api::BotApi::start(BOT_TOKEN)
        .await
        .expect("fake bot api");
    let dir = tempfile::tempdir().expect("temp dir");
    let mut config = Config::default();
    config.database.url = common::fresh_database(dir.path()).await;
    config.http.bind = "127.0.0.1:0".parse().unwrap();
    config.http.admin_token = Some(Secret::new(TOKEN));
    config.bot.token = Some(Secret::new(BOT_TOKEN));
    config.bot.api_url = bot.url();
    config.bot.polling_timeout_seconds = 1;
    let clock = Clock::real();
    let telegram = tgwatch_testkit::scripted::ScriptedTelegram::start(Scenario::default(), clock);
    let app = tgwatch_service::app::Application::build_with(config, clock, telegram)
        .await
        .expect("service starts");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = actix_rt::spawn(app.run_until(async {
        let _ = stopped.await;
    }));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while bot.calls("getUpdates") < 2 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the bot never polled"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.send(()).unwrap();
    running
        .await
        .unwrap()
        .expect("a clean stop within the timeout");
    let (polls, sent) = (bot.calls("getUpdates"), bot.sent().len());
    bot.send_text(42, 42, "/help");
    // Longer than a long poll (polling_timeout_seconds = 1): a bot still polling would have
    // fetched the command and answered it by now.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        bot.calls("getUpdates"),
        polls,
        "the bot polled after the stop"
    );
    assert_eq!(bot.sent().len(), sent, "the bot answered after the stop");
}
