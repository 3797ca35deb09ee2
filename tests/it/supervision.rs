//! The supervision tree: a panicking actor is restarted in place (same address, work goes on,
//! nothing acknowledged lost), a restart storm parks an account and moves its work, a singleton
//! that keeps failing stops the service, and fault injection exists only when switched on.
//! The webhook, bot, live and channel actors are checked in their own modules' tests.

use crate::common;

use std::{sync::atomic::Ordering, time::Duration};

use common::{spawn_app, supervision_node};
use serde_json::{Value, json};
use tgwatch_core::config::{AccountConfig, Config};

/// Alice is online for the whole test: one session, polled again and again.
const SCENARIO: &str = r#"
[[users]]
id = 1001
username = "alice_o"
online = [[0, 1000000]]
"#;

const WITHIN: Duration = Duration::from_secs(1);
const WAIT: Duration = Duration::from_secs(15);

fn with_faults(config: &mut Config) {
    config.testing.fault_injection = true;
}

fn account(label: &str) -> AccountConfig {
    AccountConfig {
        label: label.into(),
        phone: None,
        api_id: None,
        max_targets: 1000,
        max_channels: 100,
    }
}

/// The person's observations from `source` (`poll`, `manual`, ...).
async fn observations(app: &common::TestApp, tracked: &str, source: &str) -> Vec<Value> {
    let (status, body) = app
        .get(&format!(
            "/api/online-statuses?tracked_user_id={tracked}&limit=1000"
        ))
        .await;
    assert_eq!(status, 200, "{body}");
    body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|item| item["source"] == source)
        .cloned()
        .collect()
}

async fn account_id(app: &common::TestApp, label: &str) -> String {
    let (_, accounts) = app.get("/api/accounts").await;
    accounts["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|account| account["label"] == label)
        .unwrap_or_else(|| panic!("no account {label}: {accounts}"))["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[actix_rt::test(system = "tgwatch_testkit::harness::TestSystem")]
async fn the_storage_actor_restarts_in_place_with_every_acknowledged_observation() {
    let app = spawn_app(SCENARIO, |config| {
        with_faults(config);
        // Observations wait in the actor's buffer when the panic comes.
        config.presence.flush_interval_ms = 2_000;
    })
    .await;
    let alice = app.track("alice_o").await;

    let post = || async {
        let (status, body) = app
            .post(
                "/api/online-statuses",
                &json!({ "tracked_user_id": alice, "is_online": true }),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        body["id"].as_str().unwrap().to_owned()
    };
    let mut acknowledged = Vec::new();
    for _ in 0..30 {
        acknowledged.push(post().await);
    }
    let took = app
        .panic_and_wait_for_restart("storage", None, WITHIN)
        .await;
    for _ in 0..30 {
        acknowledged.push(post().await);
    }

    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let stored: Vec<String> = observations(&app, &alice, "manual")
            .await
            .iter()
            .map(|item| item["id"].as_str().unwrap().to_owned())
            .collect();
        let missing: Vec<&String> = acknowledged
            .iter()
            .filter(|id| !stored.contains(id))
            .collect();
        if missing.is_empty() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "acknowledged observations never stored after the restart ({took:?}): {missing:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (_, tree) = app.get("/api/supervision").await;
    let storage = supervision_node(&tree, "storage", None).unwrap();
    assert_eq!(storage["state"], "running", "{storage}");
    assert_eq!(storage["restarts"], 1);
    assert!(
        storage["last_reason"]
            .as_str()
            .unwrap()
            .contains("injected fault"),
        "{storage}"
    );
    assert!(storage["last_restart_at"].is_string(), "{storage}");
}

#[actix_rt::test(system = "tgwatch_testkit::harness::TestSystem")]
async fn a_restarted_person_keeps_its_open_session_and_is_polled_again() {
    let app = spawn_app(SCENARIO, |config| {
        with_faults(config);
        // At 600x the 3-minute gap is 0.3 s of real time, which a loaded machine can stall
        // for between two polls: a 10-hour gap keeps the session open unless the state is lost.
        config.presence.gap_seconds = 36_000;
    })
    .await;
    let alice = app.track("alice_o").await;
    // Polled and online: her session is open.
    app.eventually(
        &format!("/api/tracked-users/{alice}/sessions?hours=24"),
        WAIT,
        |body| body["sessions"].as_array().is_some_and(|s| s.len() == 1),
    )
    .await;
    let polls_before = observations(&app, &alice, "poll").await.len();

    app.panic_and_wait_for_restart("target", Some(&alice), WITHIN)
        .await;
    // The same actor, at the same address, takes a manual observation...
    let (status, body) = app
        .post(
            "/api/online-statuses",
            &json!({ "tracked_user_id": alice, "is_online": true }),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    // ...and its polls go on.
    let deadline = tokio::time::Instant::now() + WAIT;
    while observations(&app, &alice, "poll").await.len() < polls_before + 3 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no polls after the restart"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The gap-rule state came back from the database: still the one session, extended.
    let (_, sessions) = app
        .get(&format!("/api/tracked-users/{alice}/sessions?hours=24"))
        .await;
    assert_eq!(
        sessions["sessions"].as_array().unwrap().len(),
        1,
        "{sessions}"
    );
    assert!(sessions["sessions"][0]["ended_at"].is_null(), "{sessions}");
}

#[actix_rt::test(system = "tgwatch_testkit::harness::TestSystem")]
async fn a_restarted_account_reconnects_and_polls_again() {
    let app = spawn_app(SCENARIO, with_faults).await;
    let alice = app.track("alice_o").await;
    let main = account_id(&app, "main").await;
    let deadline = tokio::time::Instant::now() + WAIT;
    while observations(&app, &alice, "poll").await.is_empty() {
        assert!(tokio::time::Instant::now() < deadline, "never polled");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let connects_before = app.telegram.counts().connects.load(Ordering::Relaxed);

    app.panic_and_wait_for_restart("account", Some(&main), WITHIN)
        .await;
    let restarted_at = app.clock.now();
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let after = observations(&app, &alice, "poll")
            .await
            .iter()
            .filter(|item| common::timestamp(&item["observed_at"]) > restarted_at)
            .count();
        if after >= 2 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no polls after the account's restart"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        app.telegram.counts().connects.load(Ordering::Relaxed) > connects_before,
        "the restarted account connects again"
    );
    let (_, account) = app.get(&format!("/api/accounts/{main}")).await;
    assert_eq!(account["status"], "active", "{account}");
}

#[actix_rt::test(system = "tgwatch_testkit::harness::TestSystem")]
async fn a_restart_storm_parks_the_account_raises_the_alert_and_moves_its_people() {
    let app = spawn_app(SCENARIO, |config| {
        with_faults(config);
        config.accounts = vec![account("first"), account("second")];
        config.telegram.restart_limit = 2;
        config.telegram.restart_window_seconds = 1_000_000;
    })
    .await;
    let first = account_id(&app, "first").await;
    let second = account_id(&app, "second").await;
    let (status, body) = app
        .post(
            "/api/tracked-users",
            &json!({ "username": "alice_o", "account_id": first }),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let alice = body["id"].as_str().unwrap().to_owned();

    for _ in 0..3 {
        app.panic_and_wait_for_restart("account", Some(&first), WITHIN)
            .await;
    }
    let (_, tree) = app.get("/api/supervision").await;
    assert_eq!(
        supervision_node(&tree, "account", Some(&first)).unwrap()["state"],
        "parked",
        "{tree}"
    );
    let untouched = supervision_node(&tree, "account", Some(&second)).unwrap();
    assert_eq!(untouched["restarts"], 0, "{untouched}");
    assert_eq!(untouched["state"], "running", "{untouched}");

    let account = app
        .eventually(&format!("/api/accounts/{first}"), WAIT, |account| {
            account["status"] == "inactive"
        })
        .await;
    assert!(
        account["status_reason"]
            .as_str()
            .is_some_and(|reason| reason.contains("parked")),
        "{account}"
    );
    app.eventually(&format!("/api/tracked-users/{alice}"), WAIT, |person| {
        person["account_id"] == second.as_str()
    })
    .await;
    let (_, logs) = app.get("/api/logs?level=critical&source=supervisor").await;
    assert!(
        logs["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|line| line["context"]["kind"] == "restart_storm"),
        "{logs}"
    );
    let (_, alerts) = app.get("/api/logs?level=critical").await;
    assert!(
        alerts["items"].as_array().unwrap().iter().any(|line| {
            line["account_id"] == first.as_str()
                && line["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("parked"))
        }),
        "{alerts}"
    );
    // The moved person is polled by the second account.
    let moved_at = app.clock.now();
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let by_second = observations(&app, &alice, "poll")
            .await
            .iter()
            .filter(|item| {
                item["account_id"] == second.as_str()
                    && common::timestamp(&item["observed_at"]) > moved_at
            })
            .count();
        if by_second > 0 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the second account never polled the moved person"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[actix_rt::test(system = "tgwatch_testkit::harness::TestSystem")]
async fn storage_failing_beyond_its_intensity_stops_the_service() {
    let app = spawn_app(SCENARIO, |config| {
        with_faults(config);
        config.supervision.restart_limit = 1;
        config.supervision.restart_window_seconds = 1_000_000;
    })
    .await;
    app.panic_and_wait_for_restart("storage", None, WITHIN)
        .await;
    let (status, body) = app
        .post("/api/faults/panic", &json!({ "actor": "storage" }))
        .await;
    assert_eq!(status, 202, "{body}");
    // The service stops cleanly: it refuses to be ready, then stops answering.
    let client = reqwest::Client::new();
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let ready = client
            .get(format!("{}/readyz", app.base))
            .timeout(Duration::from_secs(1))
            .send()
            .await;
        if ready.is_err() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the service never stopped"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[actix_rt::test(system = "tgwatch_testkit::harness::TestSystem")]
async fn fault_injection_is_absent_unless_switched_on() {
    let app = spawn_app(SCENARIO, |_| {}).await;
    let (status, body) = app
        .post("/api/faults/panic", &json!({ "actor": "storage" }))
        .await;
    assert_eq!(status, 404, "{body}");
    let (_, document) = app.get("/api/openapi.json").await;
    assert!(document["paths"]["/api/supervision"].is_object());
    assert!(document["paths"]["/api/faults/panic"].is_null());

    // The tree needs the token, like the rest of /api.
    let refused = reqwest::Client::new()
        .get(format!("{}/api/supervision", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
    let (status, tree) = app.get("/api/supervision").await;
    assert_eq!(status, 200);
    assert_eq!(tree["kind"], "service");
    for kind in ["storage", "channels", "webhooks", "live", "fleet"] {
        assert!(
            supervision_node(&tree, kind, None).is_some(),
            "{kind}: {tree}"
        );
    }
    assert!(supervision_node(&tree, "account", None).is_some(), "{tree}");

    let faulty = spawn_app(SCENARIO, with_faults).await;
    let (_, document) = faulty.get("/api/openapi.json").await;
    assert!(document["paths"]["/api/faults/panic"]["post"].is_object());
    for (body, status, code) in [
        (json!({ "actor": "account" }), 400, "id_required"),
        (
            json!({ "actor": "target", "id": "0190a1b2-0000-7000-8000-000000000000" }),
            404,
            "not_found",
        ),
        (json!({ "actor": "bot" }), 404, "not_found"),
        (json!({ "actor": "everything" }), 400, "invalid_body"),
    ] {
        let (got, answer) = faulty.post("/api/faults/panic", &body).await;
        assert_eq!(got, status, "{body}: {answer}");
        assert_eq!(answer["error"]["code"], code, "{answer}");
    }
}

/// Restart latency, panic to running again, over 100 injections into one person's actor:
/// `cargo nextest run -E 'test(restart_latency)' --no-capture` prints p50 and p99.
#[actix_rt::test(system = "tgwatch_testkit::harness::TestSystem")]
async fn restart_latency_over_a_hundred_injections() {
    let app = spawn_app(SCENARIO, |config| {
        with_faults(config);
        config.supervision.restart_limit = 1_000;
    })
    .await;
    let alice = app.track("alice_o").await;
    let mut took = Vec::with_capacity(100);
    for _ in 0..100 {
        took.push(
            app.panic_and_wait_for_restart("target", Some(&alice), WITHIN)
                .await,
        );
    }
    took.sort();
    let (p50, p99) = (took[49], took[98]);
    eprintln!(
        "restart latency over 100 injections: p50 {p50:?}, p99 {p99:?}, max {:?}",
        took[99]
    );
    assert!(p99 < WITHIN, "p99 {p99:?}");
    let (_, tree) = app.get("/api/supervision").await;
    let node = supervision_node(&tree, "target", Some(&alice)).unwrap();
    assert_eq!(node["restarts"], 100, "{node}");
    assert_eq!(node["state"], "running", "{node}");
}
