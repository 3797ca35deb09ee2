//! The admin API: authentication, accounts, and every kind of bad input answered with a clear
//! 4xx that leaves the service running.

#![allow(clippy::expect_used, clippy::unwrap_used)] // a failing test may panic

mod common;

use common::{TOKEN, spawn_app};
use serde_json::json;

const ONE_USER: &str = r#"
[[users]]
id = 1001
username = "alice_w"
online = [[0, 600]]
"#;

#[actix_web::test]
async fn health_is_open_and_everything_else_needs_the_token() {
    let app = spawn_app(ONE_USER, |_| {}).await;
    let health = app
        .client
        .get(format!("{}/api/health", app.base))
        .send()
        .await
        .expect("health");
    assert_eq!(health.status(), 200);
    let health: serde_json::Value = health.json().await.expect("json");
    assert_eq!(health["status"], "ok");
    assert_eq!(health["database"], "ok");
    assert_eq!(health["accounts"]["active"], 1);

    let anonymous = app
        .client
        .get(format!("{}/api/accounts", app.base))
        .send()
        .await
        .expect("get");
    assert_eq!(anonymous.status(), 401);
    let body: serde_json::Value = anonymous.json().await.expect("json");
    assert_eq!(body["error"]["code"], "unauthorized");
    let wrong = app
        .client
        .get(format!("{}/api/accounts", app.base))
        .bearer_auth(format!("{TOKEN}x"))
        .send()
        .await
        .expect("get");
    assert_eq!(wrong.status(), 401);
}

#[actix_web::test]
async fn accounts_can_be_created_filtered_changed_and_removed() {
    let app = spawn_app(ONE_USER, |_| {}).await;
    let (status, created) = app
        .post(
            "/api/accounts",
            &json!({"label": "spare", "phone": "+15550100", "max_targets": 5}),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().expect("id").to_owned();
    assert_eq!(created["status"], "active");
    assert_eq!(created["max_targets"], 5);

    let (status, duplicate) = app.post("/api/accounts", &json!({"label": "spare"})).await;
    assert_eq!(status, 409);
    assert_eq!(duplicate["error"]["code"], "duplicate_label");

    let (status, patched) = app
        .patch(
            &format!("/api/accounts/{id}"),
            &json!({"status": "inactive"}),
        )
        .await;
    assert_eq!(status, 200, "{patched}");
    assert_eq!(patched["is_active"], false);
    let (_, active) = app.get("/api/accounts?is_active=true").await;
    let labels: Vec<_> = active["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|a| a["label"].clone())
        .collect();
    assert_eq!(labels, vec![json!("main")]);

    assert_eq!(app.delete(&format!("/api/accounts/{id}")).await, 204);
    let (status, _) = app.get(&format!("/api/accounts/{id}")).await;
    assert_eq!(status, 404);
}

#[actix_web::test]
async fn tracked_users_go_to_the_chosen_or_least_loaded_account() {
    let app = spawn_app(
        "[[users]]\nid = 1\nusername = \"first_user\"\n[[users]]\nid = 2\nusername = \"second_user\"\n",
        |_| {},
    )
    .await;
    let (_, spare) = app.post("/api/accounts", &json!({"label": "spare"})).await;
    let spare_id = spare["id"].as_str().expect("id").to_owned();
    let (_, main) = app.get("/api/accounts?status=active").await;
    let main_id = main["items"][0]["id"].as_str().expect("id").to_owned();

    let (status, first) = app
        .post(
            "/api/tracked-users",
            &json!({"username": "first_user", "account_id": main_id}),
        )
        .await;
    assert_eq!(status, 201, "{first}");
    assert_eq!(first["account_id"], json!(main_id));
    assert_eq!(first["telegram_user_id"], 1);
    // main has one target now, spare none: the next one goes to spare.
    let (status, second) = app
        .post("/api/tracked-users", &json!({"username": "second_user"}))
        .await;
    assert_eq!(status, 201, "{second}");
    assert_eq!(second["account_id"], json!(spare_id));

    let (_, listed) = app
        .get(&format!("/api/tracked-users?account_id={spare_id}"))
        .await;
    assert_eq!(listed["items"].as_array().expect("items").len(), 1);
    let (_, account) = app.get(&format!("/api/accounts/{spare_id}")).await;
    assert_eq!(account["targets_count"], 1);
}

#[actix_web::test]
async fn bad_input_gets_a_clear_error_and_changes_nothing() {
    let app = spawn_app(ONE_USER, |_| {}).await;
    let alice = app.track("alice_w").await;

    let cases: Vec<(u16, &str, (u16, serde_json::Value))> = vec![
        (400, "invalid_body", app.post_raw("/api/tracked-users", "{not json").await),
        (400, "invalid_body", app.post("/api/tracked-users", &json!({"username": "bob_smith", "colour": "red"})).await),
        (400, "invalid_body", app.post("/api/accounts", &json!({"label": 42})).await),
        (422, "invalid_username", app.post("/api/tracked-users", &json!({"username": "no spaces please"})).await),
        (422, "user_not_found", app.post("/api/tracked-users", &json!({"username": "nobody_here"})).await),
        (400, "missing_field", app.post("/api/tracked-users", &json!({})).await),
        (409, "already_tracked", app.post("/api/tracked-users", &json!({"username": "ALICE_W"})).await),
        (422, "unknown_account", app.post("/api/tracked-users", &json!({"username": "bob_smith", "account_id": "018f0000-0000-7000-8000-000000000000"})).await),
        (400, "invalid_window", app.get(&format!("/api/tracked-users/{alice}/stats?hours=0")).await),
        (400, "invalid_window", app.get(&format!("/api/tracked-users/{alice}/stats?hours=100000")).await),
        (400, "invalid_window", app.get(&format!("/api/tracked-users/{alice}/stats?from=2026-02-01&to=2026-01-01")).await),
        (400, "invalid_timestamp", app.get(&format!("/api/tracked-users/{alice}/sessions?from=yesterday")).await),
        (400, "invalid_query", app.get(&format!("/api/tracked-users/{alice}/stats?hours=abc")).await),
        (400, "invalid_query", app.get("/api/online-statuses?colour=red").await),
        (400, "invalid_query", app.get("/api/online-statuses?limit=0").await),
        (400, "invalid_timestamp", app.get("/api/online-statuses?created_at_after=2026-02-01&created_at_before=2026-01-01").await),
        (404, "not_found", app.get("/api/tracked-users/018f0000-0000-7000-8000-000000000000").await),
        (404, "not_found", app.get("/api/tracked-users/not-a-uuid").await),
        (404, "not_found", app.get("/api/nothing-here").await),
        (400, "invalid_body", app.post("/api/online-statuses", &json!({"tracked_user_id": alice})).await),
        (400, "invalid_body", app.post("/api/online-statuses", &json!({"tracked_user_id": alice, "status": "offline", "expires_at": "2026-01-01T00:00:00Z"})).await),
        (400, "invalid_body", app.post("/api/online-statuses", &json!({"tracked_user_id": alice, "status": "asleep"})).await),
        (400, "invalid_timestamp", app.post("/api/online-statuses", &json!({"tracked_user_id": alice, "is_online": true, "observed_at": "2999-01-01T00:00:00Z"})).await),
        (422, "unknown_tracked_user", app.post("/api/online-statuses", &json!({"tracked_user_id": "018f0000-0000-7000-8000-000000000000", "is_online": true})).await),
    ];
    for (index, (status, code, (got_status, body))) in cases.into_iter().enumerate() {
        assert_eq!(got_status, status, "case {index}: {body}");
        assert_eq!(body["error"]["code"], code, "case {index}: {body}");
        let message = body["error"]["message"].as_str().unwrap_or_default();
        assert!(
            message.len() > 10,
            "case {index}: the message says what to fix: {body}"
        );
    }

    // The unknown field is named, and the conflict shows the existing record.
    let (_, unknown) = app
        .post(
            "/api/tracked-users",
            &json!({"username": "bob_smith", "colour": "red"}),
        )
        .await;
    assert!(
        unknown["error"]["message"]
            .as_str()
            .expect("message")
            .contains("colour"),
        "{unknown}"
    );
    let (_, conflict) = app
        .post("/api/tracked-users", &json!({"username": "alice_w"}))
        .await;
    assert_eq!(conflict["error"]["details"]["existing"]["id"], json!(alice));

    // Nothing half-written, and the service still answers.
    let (_, users) = app.get("/api/tracked-users").await;
    assert_eq!(users["items"].as_array().expect("items").len(), 1);
    let (status, health) = app.get("/api/health").await;
    assert_eq!((status, health["status"].clone()), (200, json!("ok")));
}
