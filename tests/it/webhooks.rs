//! Webhooks end to end: real HTTP receivers on 127.0.0.1, events from the presence pipeline.

use crate::common;

use std::time::Duration;

use common::{
    receiver::{Behaviour, Receiver},
    spawn_app,
};
use serde_json::{Value, json};
use tgwatch_core::signing::SigningSecret;

/// Alice comes online at 0 and leaves at 300; Bob is online twice.
const SCENARIO: &str = r#"
[[users]]
id = 1001
username = "alice_w"
online = [[0, 300]]

[[users]]
id = 1002
username = "bob_smith"
online = [[0, 200], [900, 1000]]
"#;

fn allow_loopback(config: &mut tgwatch_core::config::Config) {
    config.webhooks.allow_private_addresses = true;
    config.webhooks.poll_interval_ms = 20;
}

async fn create_webhook(app: &common::TestApp, body: Value) -> (String, SigningSecret) {
    let (status, created) = app.post("/api/webhooks", &body).await;
    assert_eq!(status, 201, "{created}");
    let secret =
        SigningSecret::parse(created["secret"].as_str().expect("secret once")).expect("secret");
    (created["id"].as_str().expect("id").to_owned(), secret)
}

async fn wait_for(timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + timeout;
    while !done() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "condition not met in {timeout:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The tests' signature check against the example of the Standard Webhooks specification (the
/// same value Python's hmac gives).
#[test]
fn the_tests_signature_check_gives_the_specifications_known_answer() {
    let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let (id, timestamp, body) = (
        "msg_p5jXN8AQM9LWM0D4loKWxJek",
        1_614_265_330,
        r#"{"test": 2432232314}"#,
    );
    let signature = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";
    assert!(common::standard_webhooks_signed(
        secret, id, timestamp, body, signature
    ));
    assert!(common::standard_webhooks_signed(
        secret,
        id,
        timestamp,
        body,
        &format!("v1,bm90IHRoaXMgb25l {signature}")
    ));
    assert!(!common::standard_webhooks_signed(
        secret,
        id,
        timestamp + 1,
        body,
        signature
    ));
}

#[actix_rt::test(system = "tgwatch_testkit::harness::TestSystem")]
async fn presence_events_arrive_signed_and_filtered() {
    let app = spawn_app(SCENARIO, allow_loopback).await;
    let receiver = Receiver::start(Behaviour::Ok);
    let alice = app.track("alice_w").await;
    app.track("bob_smith").await;
    let (webhook, secret) = create_webhook(
        &app,
        json!({"url": receiver.url, "event_types": ["user_online", "session_closed"], "tracked_user_id": alice}),
    )
    .await;
    let (status, listed) = app.get(&format!("/api/webhooks/{webhook}")).await;
    assert_eq!(status, 200);
    assert!(
        listed.get("secret").is_none(),
        "the secret is shown only once"
    );

    app.wait_until_second(700).await;
    wait_for(Duration::from_secs(5), || receiver.received().len() >= 2).await;
    let received = receiver.received();
    let types: Vec<String> = received
        .iter()
        .map(|r| {
            serde_json::from_str::<Value>(&r.body).expect("json")["type"]
                .as_str()
                .expect("type")
                .to_owned()
        })
        .collect();
    assert_eq!(
        types,
        vec!["user_online", "session_closed"],
        "only Alice, only the chosen types"
    );
    for message in &received {
        assert!(message.id.starts_with("msg_"));
        assert!(common::standard_webhooks_signed(
            &secret.expose(),
            &message.id,
            message.timestamp,
            &message.body,
            &message.signature
        ));
        let body: Value = serde_json::from_str(&message.body).expect("json");
        assert_eq!(body["data"]["user"]["username"], "alice_w");
        assert!(!common::standard_webhooks_signed(
            &secret.expose(),
            &message.id,
            message.timestamp,
            &message.body.replace("alice", "mallory"),
            &message.signature
        ));
    }
    let closed: Value = serde_json::from_str(&received[1].body).expect("json");
    let ended = closed["data"]["session"]["ended_at"]
        .as_str()
        .expect("ended");
    assert_eq!(common::timestamp(&json!(ended)), app.at(300));

    // Every attempt is recorded (just after the consumer answered).
    let deliveries = app
        .eventually(
            &format!("/api/webhooks/{webhook}/deliveries?success=true"),
            Duration::from_secs(5),
            |d| d["items"].as_array().is_some_and(|items| items.len() >= 2),
        )
        .await;
    let deliveries = deliveries["items"].as_array().expect("items");
    assert_eq!(deliveries.len(), 2);
    assert_eq!(deliveries[0]["status_code"], 204);
    assert_eq!(deliveries[0]["attempt"], 1);
}

#[actix_rt::test(system = "tgwatch_testkit::harness::TestSystem")]
async fn a_flaky_consumer_gets_everything_after_retries() {
    let app = spawn_app(SCENARIO, |config| {
        allow_loopback(config);
        config.webhooks.timeout_seconds = 1.0;
        // Service seconds at 600x: retries 0.1 s to 1 s apart in real time.
        config.webhooks.retry_schedule_seconds = vec![60.0, 120.0, 300.0, 600.0, 600.0, 600.0];
        config.webhooks.slow_down_seconds = 60.0;
    })
    .await;
    let receiver = Receiver::start(Behaviour::Flaky);
    app.track("alice_w").await;
    app.track("bob_smith").await;
    let (webhook, _) = create_webhook(&app, json!({"url": receiver.url})).await;
    for _ in 0..6 {
        let (status, _) = app
            .post(&format!("/api/webhooks/{webhook}/test"), &json!({}))
            .await;
        assert_eq!(status, 202);
    }
    app.wait_until_second(1400).await;
    // Every message eventually got a 2xx.
    let (_, messages) = app
        .get(&format!("/api/webhooks/{webhook}/deliveries?limit=1000"))
        .await;
    let attempts = messages["items"].as_array().expect("items").clone();
    let event_ids: std::collections::BTreeSet<String> = attempts
        .iter()
        .map(|a| a["event_id"].as_str().expect("id").to_owned())
        .collect();
    wait_for(Duration::from_secs(15), || {
        receiver.delivered_ids().is_superset(&event_ids)
    })
    .await;
    assert!(
        event_ids.len() >= 6 + 4,
        "6 tests and the presence events: {}",
        event_ids.len()
    );
    assert!(
        attempts.iter().any(|a| a["success"] == false),
        "some attempts failed"
    );
    assert!(
        attempts.iter().any(|a| a["attempt"].as_i64() >= Some(2)),
        "and were retried"
    );
    // Retries wait as scheduled (service seconds, ±20 % jitter, at least 60 s after a timeout).
    let schedule = [60.0, 120.0, 300.0, 600.0, 600.0, 600.0];
    for id in &event_ids {
        let mut tries: Vec<&Value> = attempts
            .iter()
            .filter(|a| a["event_id"] == json!(id))
            .collect();
        tries.sort_by_key(|a| a["attempt"].as_i64());
        for pair in tries.windows(2) {
            let failed_at = common::timestamp(&pair[0]["completed_at"]);
            let retried_at = common::timestamp(&pair[1]["triggered_at"]);
            let attempt = pair[0]["attempt"].as_i64().expect("attempt") as usize;
            let waited = (retried_at - failed_at).num_milliseconds() as f64 / 1000.0;
            assert!(
                waited >= schedule[attempt - 1] * 0.8,
                "retry {attempt} of {id} after {waited} s"
            );
        }
    }
    // Repeats of one message carry the same webhook-id and body.
    let received = receiver.received();
    for id in &event_ids {
        let copies: Vec<_> = received.iter().filter(|r| &r.id == id).collect();
        assert!(copies.windows(2).all(|w| w[0].body == w[1].body));
    }
}

#[actix_rt::test(system = "tgwatch_testkit::harness::TestSystem")]
async fn a_dead_consumer_is_disabled_with_an_alert() {
    let app = spawn_app(SCENARIO, |config| {
        allow_loopback(config);
        config.webhooks.retry_schedule_seconds = vec![30.0, 60.0];
        config.webhooks.disable_after_failed_messages = 1;
    })
    .await;
    let alive = Receiver::start(Behaviour::Ok);
    // Nothing listens on this port.
    let dead = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        format!("http://{}/hook", listener.local_addr().expect("addr"))
    };
    let (dead_id, _) = create_webhook(&app, json!({"url": dead})).await;
    create_webhook(&app, json!({"url": alive.url, "event_types": ["alert"]})).await;
    let (status, _) = app
        .post(&format!("/api/webhooks/{dead_id}/test"), &json!({}))
        .await;
    assert_eq!(status, 202);

    let path = format!("/api/webhooks/{dead_id}");
    let disabled = app
        .eventually(&path, Duration::from_secs(10), |w| {
            w["status"] == "disabled"
        })
        .await;
    assert!(
        disabled["status_reason"]
            .as_str()
            .expect("reason")
            .contains("every attempt failed")
    );
    let (_, attempts) = app
        .get(&format!("/api/webhooks/{dead_id}/deliveries"))
        .await;
    assert_eq!(
        attempts["items"].as_array().expect("items").len(),
        3,
        "first try and two retries"
    );
    // The alert reaches the other endpoint and the log.
    wait_for(Duration::from_secs(5), || {
        alive
            .received()
            .iter()
            .any(|r| r.body.contains("webhook_disabled"))
    })
    .await;
    let (_, logs) = app.get("/api/logs?level=critical").await;
    assert!(
        logs["items"]
            .as_array()
            .expect("items")
            .iter()
            .any(|l| l["message"].as_str().expect("m").contains("disabled"))
    );

    // While disabled, nothing is attempted: a test event waits.
    let (status, test) = app
        .post(&format!("/api/webhooks/{dead_id}/test"), &json!({}))
        .await;
    assert_eq!(status, 202, "{test}");
    let waiting = test["event_id"].as_str().expect("event id").to_owned();
    // 50 rounds of the dispatcher (poll_interval_ms = 20): a disabled endpoint gets no attempt.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (_, attempts) = app
        .get(&format!("/api/webhooks/{dead_id}/deliveries"))
        .await;
    assert_eq!(attempts["items"].as_array().expect("items").len(), 3);

    // Re-enabling resumes delivery: the waiting event is attempted (and fails again: nothing
    // listens yet).
    let (status, enabled) = app.patch(&path, &json!({"status": "active"})).await;
    assert_eq!((status, enabled["status"].clone()), (200, json!("active")));
    let attempts = app
        .eventually(
            &format!("/api/webhooks/{dead_id}/deliveries"),
            Duration::from_secs(10),
            // At least one attempt more; its retries may follow at once on a fast clock.
            |d| d["items"].as_array().is_some_and(|items| items.len() > 3),
        )
        .await;
    assert!(
        attempts["items"]
            .as_array()
            .expect("items")
            .iter()
            .any(|attempt| attempt["event_id"] == waiting.as_str() && attempt["success"] == false),
        "{attempts}"
    );
}

#[actix_rt::test(system = "tgwatch_testkit::harness::TestSystem")]
async fn rotation_signs_with_both_secrets_and_test_redeliver_replay_work() {
    let app = spawn_app(SCENARIO, allow_loopback).await;
    let receiver = Receiver::start(Behaviour::Ok);
    let (webhook, old) = create_webhook(&app, json!({"url": receiver.url})).await;
    let (status, rotated) = app
        .post(
            &format!("/api/webhooks/{webhook}/rotate-secret"),
            &json!({}),
        )
        .await;
    assert_eq!(status, 200, "{rotated}");
    let new = SigningSecret::parse(rotated["secret"].as_str().expect("secret")).expect("secret");
    assert!(rotated["previous_secret_valid_until"].is_string());

    let (_, test) = app
        .post(&format!("/api/webhooks/{webhook}/test"), &json!({}))
        .await;
    let event_id = test["event_id"].as_str().expect("event").to_owned();
    wait_for(Duration::from_secs(5), || {
        receiver.delivered_ids().contains(&event_id)
    })
    .await;
    let message = receiver
        .received()
        .into_iter()
        .find(|r| r.id == event_id)
        .expect("received");
    assert!(common::standard_webhooks_signed(
        &old.expose(),
        &message.id,
        message.timestamp,
        &message.body,
        &message.signature
    ));
    assert!(common::standard_webhooks_signed(
        &new.expose(),
        &message.id,
        message.timestamp,
        &message.body,
        &message.signature
    ));

    // Redeliver sends the same message again, with the same id.
    // The attempt is recorded just after the consumer answered.
    let deliveries = app
        .eventually(
            &format!("/api/webhooks/{webhook}/deliveries"),
            Duration::from_secs(5),
            |d| d["items"].as_array().is_some_and(|items| !items.is_empty()),
        )
        .await;
    let delivery = deliveries["items"][0]["id"]
        .as_str()
        .expect("delivery")
        .to_owned();
    let (status, _) = app
        .post(
            &format!("/api/webhook-deliveries/{delivery}/redeliver"),
            &json!({}),
        )
        .await;
    assert_eq!(status, 202);
    wait_for(Duration::from_secs(5), || {
        receiver
            .received()
            .iter()
            .filter(|r| r.id == event_id)
            .count()
            == 2
    })
    .await;

    // Replay resends what the endpoint subscribed to in a period (test events are not replayed).
    app.track("alice_w").await;
    app.wait_until_second(700).await;
    let before = receiver.received().len();
    let since = (app.at(-100)).to_rfc3339().replace('+', "%2B");
    let (status, replayed) = app
        .post(
            &format!("/api/webhooks/{webhook}/replay?since={since}"),
            &json!({}),
        )
        .await;
    assert_eq!(status, 202, "{replayed}");
    let queued = replayed["queued"].as_u64().expect("queued") as usize;
    assert!(queued >= 3, "online, offline, closed: {queued}");
    wait_for(Duration::from_secs(5), || {
        receiver.received().len() >= before + queued
    })
    .await;
}

#[actix_rt::test(system = "tgwatch_testkit::harness::TestSystem")]
async fn bad_webhooks_are_refused() {
    let app = spawn_app(SCENARIO, |_| {}).await;
    for (body, needle) in [
        (json!({"url": "http://127.0.0.1:9/hook"}), "private"),
        (json!({"url": "ftp://example.com/"}), "http"),
        (
            json!({"url": "https://93.184.216.34/", "event_types": ["everything"]}),
            "everything",
        ),
        (
            json!({"url": "https://93.184.216.34/", "event_types": []}),
            "at least one",
        ),
    ] {
        let (status, error) = app.post("/api/webhooks", &body).await;
        assert_eq!(status, 422, "{error}");
        assert!(
            error["error"]["message"]
                .as_str()
                .expect("message")
                .contains(needle),
            "{error}"
        );
    }
    let (status, _) = app
        .post(
            "/api/webhooks",
            &json!({"url": "https://93.184.216.34/", "secret": "x"}),
        )
        .await;
    assert_eq!(status, 400, "unknown field");
}

/// Python with the reference Standard Webhooks library (`standardwebhooks` 1.1.0) in a virtual
/// environment under the target directory, made on first use and kept for later runs.
fn python_with_standardwebhooks() -> std::path::PathBuf {
    common::python::venv("verify-webhooks-venv", &["standardwebhooks==1.1.0"])
}

/// Every message, before and after a secret rotation, is checked by the reference Python
/// implementation of Standard Webhooks: with the one secret before, with each of the two after
/// (the header then carries two signatures).
#[actix_rt::test(system = "tgwatch_testkit::harness::TestSystem")]
async fn an_independent_library_verifies_every_signature() {
    let app = spawn_app(SCENARIO, allow_loopback).await;
    let receiver = Receiver::start(Behaviour::Ok);
    let (webhook, old) = create_webhook(&app, json!({"url": receiver.url})).await;
    app.track("alice_w").await;
    for _ in 0..3 {
        app.post(&format!("/api/webhooks/{webhook}/test"), &json!({}))
            .await;
    }
    app.wait_until_second(700).await;
    wait_for(Duration::from_secs(5), || receiver.received().len() >= 6).await;

    let (status, rotated) = app
        .post(
            &format!("/api/webhooks/{webhook}/rotate-secret"),
            &json!({}),
        )
        .await;
    assert_eq!(status, 200, "{rotated}");
    let new = SigningSecret::parse(rotated["secret"].as_str().expect("secret")).expect("secret");
    let mut after_rotation = std::collections::BTreeSet::new();
    for _ in 0..3 {
        let (_, test) = app
            .post(&format!("/api/webhooks/{webhook}/test"), &json!({}))
            .await;
        after_rotation.insert(test["event_id"].as_str().expect("event id").to_owned());
    }
    wait_for(Duration::from_secs(5), || {
        after_rotation.is_subset(&receiver.delivered_ids())
    })
    .await;

    let received = receiver.received();
    let messages: Vec<Value> = received
        .iter()
        .map(|m| {
            let secrets = if !after_rotation.contains(&m.id) {
                vec![old.expose()]
            } else {
                assert_eq!(
                    m.signature.split(' ').count(),
                    2,
                    "two signatures after a rotation: {}",
                    m.signature
                );
                vec![old.expose(), new.expose()]
            };
            json!({"id": m.id, "timestamp": m.timestamp, "signature": m.signature, "body": m.body, "secrets": secrets})
        })
        .collect();
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("messages.json");
    std::fs::write(&path, json!({"messages": messages}).to_string()).expect("write");
    // Installing and running Python blocks: off the service's thread.
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(python_with_standardwebhooks())
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/verify_webhooks.py"
            ))
            .arg(&path)
            .output()
            .expect("python runs")
    })
    .await
    .expect("python");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "Python's standardwebhooks refused a message: {stdout}{stderr}"
    );
    assert_eq!(
        stdout.trim(),
        format!(
            "verified {} messages, {} with two signatures",
            messages.len(),
            after_rotation.len()
        )
    );
}

/// A failed delivery records what went wrong underneath reqwest's "error sending request":
/// connection refused, or the timeout.
#[actix_rt::test(system = "tgwatch_testkit::harness::TestSystem")]
async fn failed_deliveries_record_the_whole_cause() {
    let app = spawn_app(SCENARIO, |config| {
        allow_loopback(config);
        config.webhooks.timeout_seconds = 0.5;
        config.webhooks.retry_schedule_seconds = vec![3600.0];
    })
    .await;
    // Nothing listens on the first port; the second accepts connections and never answers.
    let refused = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        format!("http://{}/hook", listener.local_addr().expect("addr"))
    };
    let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let silent_url = format!("http://{}/hook", silent.local_addr().expect("addr"));

    for (url, cause) in [(refused, "refused"), (silent_url, "timed out")] {
        let (id, _) = create_webhook(&app, json!({ "url": url })).await;
        let (status, _) = app
            .post(&format!("/api/webhooks/{id}/test"), &json!({}))
            .await;
        assert_eq!(status, 202);
        let attempts = app
            .eventually(
                &format!("/api/webhooks/{id}/deliveries"),
                Duration::from_secs(20),
                |page| !page["items"].as_array().expect("items").is_empty(),
            )
            .await;
        let error = attempts["items"][0]["error"].as_str().expect("error");
        assert!(error.contains("error sending request"), "{error}");
        assert!(error.to_lowercase().contains(cause), "{cause}: {error}");
    }
}

/// The webhook worker panics: it is restarted, its dispatcher starts again and delivers what
/// was committed meanwhile, once.
#[actix_rt::test(system = "tgwatch_testkit::harness::TestSystem")]
async fn a_panicking_dispatcher_restarts_and_delivers_everything_once() {
    let app = spawn_app(SCENARIO, |config| {
        allow_loopback(config);
        config.testing.fault_injection = true;
    })
    .await;
    let receiver = Receiver::start(Behaviour::Ok);
    let alice = app.track("alice_w").await;
    create_webhook(
        &app,
        json!({"url": receiver.url, "event_types": ["user_online", "session_closed"], "tracked_user_id": alice}),
    )
    .await;
    app.panic_and_wait_for_restart("webhooks", None, Duration::from_secs(1))
        .await;
    app.wait_until_second(100).await;
    wait_for(Duration::from_secs(5), || !receiver.received().is_empty()).await;
    // Once more while her session is open: the session's end still arrives.
    app.panic_and_wait_for_restart("webhooks", None, Duration::from_secs(1))
        .await;
    app.wait_until_second(700).await;
    wait_for(Duration::from_secs(5), || receiver.received().len() >= 2).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let types: Vec<String> = receiver
        .received()
        .iter()
        .map(|r| serde_json::from_str::<Value>(&r.body).expect("json")["type"].to_string())
        .collect();
    assert_eq!(types, vec!["\"user_online\"", "\"session_closed\""]);
}

/// Events are written with their webhook messages, in the same transaction: one per active
/// endpoint that wants the event; a transaction rolled back leaves neither. Events written
/// without their messages (by an earlier version) are fanned out by the dispatcher's timer.
#[actix_rt::test(system = "tgwatch_testkit::harness::TestSystem")]
async fn events_are_written_with_the_messages_of_the_endpoints_that_want_them() {
    use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, TransactionTrait};
    use std::collections::BTreeSet;
    use tgwatch_core::{
        config::Origin,
        events::{Event, EventType},
    };
    use tgwatch_store::{
        self as storage,
        entities::{events, webhook_messages, webhooks},
        webhooks::{EndpointStatus, NewWebhook},
    };

    let (db, _dir) = common::migrated_database().await;
    let alice = common::insert_tracked_user(&db, "alice_w").await;
    let now = chrono::SubsecRound::trunc_subsecs(chrono::Utc::now(), 6);
    let endpoint = |name: &str, types: &[&str], tracked_user_id| NewWebhook {
        name: Some(name.to_owned()),
        url: format!("http://127.0.0.1:9/{name}"),
        event_types: types.iter().map(|t| t.to_string()).collect(),
        tracked_user_id,
        channel_id: None,
        secret: SigningSecret::generate().expose(),
        source: Origin::Api,
    };
    let everything = storage::webhooks::create(&db, endpoint("all", &["all"], None), now)
        .await
        .unwrap();
    let offline_only =
        storage::webhooks::create(&db, endpoint("offline", &["user_offline"], None), now)
            .await
            .unwrap();
    let alice_only = storage::webhooks::create(&db, endpoint("alice", &["all"], Some(alice)), now)
        .await
        .unwrap();
    let disabled = storage::webhooks::create(&db, endpoint("disabled", &["all"], None), now)
        .await
        .unwrap();
    let mut row: webhooks::ActiveModel = disabled.clone().into();
    row.status = Set(EndpointStatus::Disabled);
    storage::webhooks::save(&db, row).await.unwrap();

    let event = |event_type, tracked_user_id| {
        let mut event = Event::new(event_type, now, json!({}));
        event.tracked_user_id = tracked_user_id;
        event
    };
    let alice_online = event(EventType::UserOnline, Some(alice));
    let someone_offline = event(EventType::UserOffline, None);
    storage::webhooks::write_events(&db, &[alice_online.clone(), someone_offline.clone()])
        .await
        .unwrap();

    let queued = |db: sea_orm::DatabaseConnection| async move {
        webhook_messages::Entity::find()
            .all(&db)
            .await
            .unwrap()
            .into_iter()
            .map(|message| {
                assert_eq!(message.status.as_str(), "pending");
                (message.webhook_id, message.event_id)
            })
            .collect::<BTreeSet<_>>()
    };
    let expected: BTreeSet<_> = [
        (everything.id, alice_online.id.clone()),
        (everything.id, someone_offline.id.clone()),
        (offline_only.id, someone_offline.id.clone()),
        (alice_only.id, alice_online.id.clone()),
    ]
    .into();
    assert_eq!(queued(db.clone()).await, expected);
    let written = events::Entity::find().all(&db).await.unwrap();
    assert_eq!(written.len(), 2);
    assert!(written.iter().all(|event| event.fanned_out));

    // Rolled back: no event, no message.
    let txn = db.begin().await.unwrap();
    storage::webhooks::insert_events(&txn, &[event(EventType::UserOnline, Some(alice))])
        .await
        .unwrap();
    txn.rollback().await.unwrap();
    assert_eq!(events::Entity::find().all(&db).await.unwrap().len(), 2);
    assert_eq!(queued(db.clone()).await, expected);

    // An event written without its messages gets them from the fan-out, once.
    let left = event(EventType::UserOffline, None);
    events::Entity::insert(events::ActiveModel {
        id: Set(left.id.clone()),
        event_type: Set(left.event_type.as_str().to_owned()),
        body: Set(left.body.clone()),
        tracked_user_id: Set(None),
        channel_id: Set(None),
        fanned_out: Set(false),
        created_at: Set(now),
    })
    .exec_without_returning(&db)
    .await
    .unwrap();
    // What a second instance read before the first committed its fan-out.
    let read_by_another_instance = events::Entity::find()
        .filter(events::Column::FannedOut.eq(false))
        .all(&db)
        .await
        .unwrap();
    assert_eq!(storage::webhooks::fan_out(&db, 1000, now).await.unwrap(), 1);
    assert_eq!(storage::webhooks::fan_out(&db, 1000, now).await.unwrap(), 0);
    let mut expected = expected;
    expected.insert((everything.id, left.id.clone()));
    expected.insert((offline_only.id, left.id.clone()));
    assert_eq!(queued(db.clone()).await, expected);
    let left_row = events::Entity::find()
        .filter(events::Column::Id.eq(left.id.clone()))
        .one(&db)
        .await
        .unwrap()
        .unwrap();
    assert!(left_row.fanned_out);

    // The first instance delivers them (a delivered message leaves the queue); the second,
    // acting on what it read before, queues nothing again.
    webhook_messages::Entity::delete_many()
        .filter(webhook_messages::Column::EventId.eq(left.id.clone()))
        .exec(&db)
        .await
        .unwrap();
    storage::webhooks::fan_out_events(&db, &read_by_another_instance, now)
        .await
        .unwrap();
    let left_queued = webhook_messages::Entity::find()
        .filter(webhook_messages::Column::EventId.eq(left.id.clone()))
        .all(&db)
        .await
        .unwrap();
    assert!(left_queued.is_empty(), "queued again: {left_queued:?}");
}

/// Deleting an endpoint deletes its messages and its deliveries, and no other endpoint's; an
/// attempt of its message that ends after the deletion is recorded with the rest of its batch
/// instead of failing it.
#[actix_rt::test(system = "tgwatch_testkit::harness::TestSystem")]
async fn a_deleted_endpoint_takes_its_messages_and_deliveries_and_its_late_attempts_fail_nothing() {
    use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
    use tgwatch_core::{
        config::Origin,
        events::{Event, EventType},
    };
    use tgwatch_store::{
        self as storage,
        entities::{webhook_deliveries, webhook_messages},
        webhooks::{AttemptRecord, DisablePolicy, NewWebhook},
    };

    let (db, _dir) = common::migrated_database().await;
    let now = chrono::SubsecRound::trunc_subsecs(chrono::Utc::now(), 6);
    let endpoint = |name: &str| NewWebhook {
        name: Some(name.to_owned()),
        url: format!("http://127.0.0.1:9/{name}"),
        event_types: vec!["all".to_owned()],
        tracked_user_id: None,
        channel_id: None,
        secret: SigningSecret::generate().expose(),
        source: Origin::Api,
    };
    let doomed = storage::webhooks::create(&db, endpoint("doomed"), now)
        .await
        .unwrap();
    let kept = storage::webhooks::create(&db, endpoint("kept"), now)
        .await
        .unwrap();
    let events: Vec<Event> = (0..3)
        .map(|_| Event::new(EventType::UserOnline, now, json!({})))
        .collect();
    storage::webhooks::write_events(&db, &events).await.unwrap();
    let claims = storage::webhooks::claim(&db, now, now + chrono::Duration::minutes(1), |_| 10)
        .await
        .unwrap();
    assert_eq!(claims.claimed.len(), 6, "three events for each endpoint");
    let delivered = |claimed: &storage::webhooks::Claimed| AttemptRecord {
        message_id: claimed.message.id,
        webhook_id: claimed.message.webhook_id,
        event_id: claimed.message.event_id.clone(),
        attempt: 1,
        request_body: claimed.body.clone(),
        status_code: Some(204),
        response_body: Some(String::new()),
        latency_ms: 1,
        error: None,
        success: true,
        triggered_at: now,
        completed_at: now,
        next_attempt_at: None,
        gone: false,
    };
    let policy = DisablePolicy {
        after_failing_for: chrono::Duration::hours(1),
        after_failed_messages: 10,
    };
    let (of_doomed, of_kept): (Vec<_>, Vec<_>) = claims
        .claimed
        .iter()
        .partition(|claimed| claimed.message.webhook_id == doomed.id);
    let first: Vec<AttemptRecord> = [of_doomed[0], of_kept[0]].map(delivered).into();
    storage::webhooks::record_attempts(&db, &first, policy, now)
        .await
        .unwrap();

    storage::webhooks::delete(&db, doomed.id).await.unwrap();
    let messages_of = |id| {
        webhook_messages::Entity::find()
            .filter(webhook_messages::Column::WebhookId.eq(id))
            .count(&db)
    };
    let deliveries_of = |id| {
        webhook_deliveries::Entity::find()
            .filter(webhook_deliveries::Column::WebhookId.eq(id))
            .count(&db)
    };
    assert_eq!(messages_of(doomed.id).await.unwrap(), 0);
    assert_eq!(deliveries_of(doomed.id).await.unwrap(), 0);
    // A delivered message leaves the queue; its delivery row stays.
    assert_eq!(messages_of(kept.id).await.unwrap(), 2);
    assert_eq!(deliveries_of(kept.id).await.unwrap(), 1);

    // Attempts that were in flight at the deletion end in one batch with the kept endpoint's.
    let late: Vec<AttemptRecord> = [of_doomed[1], of_kept[1]].map(delivered).into();
    storage::webhooks::record_attempts(&db, &late, policy, now)
        .await
        .expect("a deleted endpoint's late attempt must not fail the batch");
    assert_eq!(deliveries_of(kept.id).await.unwrap(), 2);
}
