//! The admin API: authentication, accounts, and every kind of bad input answered with a clear
//! 4xx that leaves the service running.

use crate::common;

use common::{TOKEN, spawn_app};
use serde_json::json;

const ONE_USER: &str = r#"
[[users]]
id = 1001
username = "alice_w"
online = [[0, 600]]
"#;

#[actix_rt::test(system = "tgwatch_testkit::harness::TestSystem")]
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
    // Open, but without the token it names no account and shows no configuration.
    let account = &health["account_states"][0];
    assert_eq!(account["status"], "active", "{health}");
    assert!(account["label"].is_null(), "{health}");
    assert!(account["status_reason"].is_null(), "{health}");
    assert!(health.get("config").is_none(), "{health}");
    // The admin sees them.
    let (status, detailed) = app.get("/api/health").await;
    assert_eq!(status, 200);
    assert_eq!(detailed["account_states"][0]["label"], "main", "{detailed}");
    assert!(detailed["config"].is_object(), "{detailed}");

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

#[actix_rt::test(system = "tgwatch_testkit::harness::TestSystem")]
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

#[actix_rt::test(system = "tgwatch_testkit::harness::TestSystem")]
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

#[actix_rt::test(system = "tgwatch_testkit::harness::TestSystem")]
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

/// A request made by hand: any method, any header, any length; answers status and JSON body.
async fn raw(
    app: &common::TestApp,
    method: reqwest::Method,
    path: &str,
    authorization: &str,
    body: Option<String>,
) -> (u16, serde_json::Value) {
    let mut request = app
        .client
        .request(method, format!("{}{path}", app.base))
        .header("authorization", authorization);
    if let Some(body) = body {
        request = request
            .header("content-type", "application/json")
            .body(body);
    }
    let response = request.send().await.expect("request");
    let status = response.status().as_u16();
    let text = response.text().await.expect("body");
    (
        status,
        serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)),
    )
}

/// Expected status, code and words of the message; what the service answered.
type Case = (
    u16,
    &'static str,
    Vec<&'static str>,
    (u16, serde_json::Value),
);

/// Every 4xx names the parameter and what it takes, echoes at most a little of the input, and
/// uses the JSON error shape; the HTTP edge cases get their own status.
#[actix_rt::test(system = "tgwatch_testkit::harness::TestSystem")]
async fn errors_name_the_parameter_and_what_it_takes() {
    let app = spawn_app(ONE_USER, |_| {}).await;
    let alice = app.track("alice_w").await;
    let long = "x".repeat(20_000);
    let bearer = format!("Bearer {TOKEN}");

    let cases: Vec<Case> = vec![
        (
            400,
            "invalid_query",
            vec!["`limit`", "whole number", "`abc`"],
            app.get("/api/accounts?limit=abc").await,
        ),
        (
            400,
            "invalid_query",
            vec!["`limit`", "whole number"],
            app.get("/api/tracked-users?limit=99999999999999999999999")
                .await,
        ),
        (
            400,
            "invalid_query",
            vec!["`cursor`", "UUID"],
            app.get("/api/channels?cursor=nope").await,
        ),
        (
            400,
            "invalid_query",
            vec!["`is_active`", "`true` or `false`"],
            app.get("/api/tracked-users?is_active=yes").await,
        ),
        (
            400,
            "invalid_query",
            vec!["`status`", "`active`", "`disabled`"],
            app.get("/api/webhooks?status=nope").await,
        ),
        (
            400,
            "invalid_query",
            vec!["`order`", "`asc`", "`desc`"],
            app.get("/api/logs?order=up").await,
        ),
        (
            400,
            "invalid_query",
            vec!["colour"],
            app.get("/api/online-statuses?colour=red").await,
        ),
        (
            404,
            "not_found",
            vec!["`id`", "UUID", "`abc`"],
            app.get("/api/tracked-users/abc").await,
        ),
        (
            404,
            "not_found",
            vec!["`id`", "UUID"],
            app.get(&format!("/api/tracked-users/{}/stats", &long[..100]))
                .await,
        ),
        (
            404,
            "not_found",
            vec!["`message_id`", "whole number", "`first`"],
            app.get(&format!("/api/channels/{alice}/messages/first"))
                .await,
        ),
        (
            405,
            "method_not_allowed",
            vec!["PUT", "/api/accounts"],
            raw(&app, reqwest::Method::PUT, "/api/accounts", &bearer, None).await,
        ),
        (
            404,
            "not_found",
            vec!["/api/nothing-here"],
            app.get("/api/nothing-here").await,
        ),
        (
            413,
            "payload_too_large",
            vec!["larger than"],
            raw(
                &app,
                reqwest::Method::POST,
                "/api/tracked-users",
                &bearer,
                Some(format!("{{\"username\":\"{}\"}}", "a".repeat(70_000))),
            )
            .await,
        ),
        (
            400,
            "invalid_query",
            vec!["`status`"],
            app.get(&format!("/api/online-statuses?status={long}"))
                .await,
        ),
        (
            400,
            "invalid_timestamp",
            vec!["`since`"],
            app.get(&format!("/api/logs?since={long}")).await,
        ),
        (
            400,
            "invalid_body",
            vec!["unknown variant"],
            app.post(
                "/api/online-statuses",
                &json!({"tracked_user_id": alice, "status": long}),
            )
            .await,
        ),
        (
            400,
            "invalid_body",
            vec!["`label`", "expected a string"],
            app.post("/api/accounts", &json!({"label": 42})).await,
        ),
        (
            400,
            "invalid_body",
            vec!["`notify`", "boolean"],
            app.post(
                "/api/tracked-users",
                &json!({"username": "bob_smith", "notify": "yes"}),
            )
            .await,
        ),
    ];
    for (index, (status, code, words, (got_status, body))) in cases.into_iter().enumerate() {
        assert_eq!(got_status, status, "case {index}: {body}");
        assert_eq!(body["error"]["code"], code, "case {index}: {body}");
        let message = body["error"]["message"].as_str().unwrap_or_default();
        for word in words {
            assert!(message.contains(word), "case {index}: {word} in {message}");
        }
        assert!(
            message.len() < 1_000,
            "case {index}: {} bytes",
            message.len()
        );
    }

    // The scheme of `Authorization` is case-insensitive.
    for scheme in ["bearer", "BEARER", "Bearer"] {
        let (status, body) = raw(
            &app,
            reqwest::Method::GET,
            "/api/accounts",
            &format!("{scheme} {TOKEN}"),
            None,
        )
        .await;
        assert_eq!(status, 200, "{scheme}: {body}");
    }
    let (status, _) = raw(
        &app,
        reqwest::Method::GET,
        "/api/accounts",
        "bearer wrong",
        None,
    )
    .await;
    assert_eq!(status, 401);

    // A URI longer than the server reads: 414 in the JSON shape.
    let (status, body) = app
        .get(&format!("/api/accounts?cursor={}", "x".repeat(40_000)))
        .await;
    assert_eq!(status, 414, "{body}");
    assert_eq!(body["error"]["code"], "uri_too_long", "{body}");

    // A Bot API channel id reads the same as a JSON number and as a string.
    let (number_status, number) = app
        .post("/api/channels", &json!({"channel": -1_001_500_000_001_i64}))
        .await;
    let (string_status, string) = app
        .post("/api/channels", &json!({"channel": "-1001500000001"}))
        .await;
    assert_eq!(number_status, string_status, "{number} / {string}");
    assert_eq!(number["error"]["code"], string["error"]["code"]);
    assert_ne!(number["error"]["code"], "invalid_channel", "{number}");
}

const TWO_USERS: &str = r#"
[[users]]
id = 1001
username = "alice_w"
online = [[0, 100000]]

[[users]]
id = 1002
username = "bob_smith"
online = [[90000, 90100]]
"#;

/// Lists take `order=asc|desc` (asc by default), pages follow the order, and
/// `tracked-users?online=true` answers who is online now.
#[actix_rt::test(system = "tgwatch_testkit::harness::TestSystem")]
async fn lists_take_an_order_and_tracked_users_filter_on_online() {
    let app = spawn_app(TWO_USERS, |_| {}).await;
    let alice = app.track("alice_w").await;
    let bob = app.track("bob_smith").await;
    let ids = |body: &serde_json::Value| -> Vec<String> {
        body["items"]
            .as_array()
            .expect("items")
            .iter()
            .map(|item| item["id"].as_str().expect("id").to_owned())
            .collect()
    };

    let (_, default) = app.get("/api/tracked-users").await;
    assert_eq!(ids(&default), [alice.as_str(), bob.as_str()]);
    let (_, asc) = app.get("/api/tracked-users?order=asc").await;
    assert_eq!(ids(&asc), [alice.as_str(), bob.as_str()]);
    let (_, desc) = app.get("/api/tracked-users?order=desc&limit=1").await;
    assert_eq!(ids(&desc), [bob.as_str()]);
    let cursor = desc["next_cursor"].as_str().expect("a next page");
    let (_, next) = app
        .get(&format!(
            "/api/tracked-users?order=desc&limit=1&cursor={cursor}"
        ))
        .await;
    assert_eq!(ids(&next), [alice.as_str()]);
    assert!(next["next_cursor"].is_null(), "{next}");

    for path in [
        "/api/accounts",
        "/api/channels",
        "/api/telegram-users",
        "/api/online-statuses",
        "/api/logs",
        "/api/webhooks",
    ] {
        for order in ["asc", "desc"] {
            let (status, body) = app.get(&format!("{path}?order={order}")).await;
            assert_eq!(status, 200, "{path} {order}: {body}");
        }
    }
    let newest = app
        .eventually(
            "/api/online-statuses?order=desc&limit=1",
            std::time::Duration::from_secs(20),
            |body| !body["items"].as_array().expect("items").is_empty(),
        )
        .await;
    let (_, oldest) = app.get("/api/online-statuses?limit=1").await;
    assert!(
        common::timestamp(&newest["items"][0]["created_at"])
            >= common::timestamp(&oldest["items"][0]["created_at"])
    );

    let (status, body) = app
        .get(&format!("/api/tracked-users/{alice}/sessions?order=desc"))
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = app
        .get(&format!("/api/tracked-users/{alice}/stats?order=desc"))
        .await;
    assert_eq!(status, 400, "{body}");

    let online = app
        .eventually(
            "/api/tracked-users?online=true",
            std::time::Duration::from_secs(20),
            |body| !body["items"].as_array().expect("items").is_empty(),
        )
        .await;
    assert_eq!(ids(&online), [alice.as_str()]);
    let (_, offline) = app.get("/api/tracked-users?online=false").await;
    assert_eq!(ids(&offline), [bob.as_str()]);
}
