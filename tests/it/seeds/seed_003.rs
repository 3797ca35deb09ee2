//! Seed 003 (Telethon integration, a Django app under `/telegram/`), from its README alone:
//! "Использование" (phone code, then the code with the optional 2FA password in one call; QR
//! code and its status; chats and a chat's messages), the session endpoints, `user/info/`, and
//! the `AuthAttempt` model (`attempt_type` qr/phone/2fa, `status`
//! pending/success/failed/timeout, `error_message`). "Все API endpoints требуют авторизации
//! пользователя": tgwatch's admin token stands in for the Django login.
//!
//! Against the sandbox Telegram over MTProto (the real grammers client), with the phone and 2FA
//! conventions of `tests/it/logins.rs`.

use std::time::Duration;

use serde_json::{Value, json};

use crate::common::{self, MtprotoApp, spawn_mtproto_app};
use crate::logins::{ACCOUNT_USER, PHONE, sandbox, token_of};

const WAIT: Duration = Duration::from_secs(20);

async fn add_account(app: &MtprotoApp, label: &str, phone: Option<&str>) -> String {
    let (status, body) = app
        .post("/api/accounts", &json!({ "label": label, "phone": phone }))
        .await;
    assert_eq!(status, 201, "{body}");
    body["id"].as_str().unwrap().to_owned()
}

/// `/telegram/session/status/` until the account is logged in and takes work.
async fn wait_logged_in(app: &MtprotoApp) -> Value {
    app.eventually("/telegram/session/status/", WAIT, |body| {
        body["state"] == "logged_in"
    })
    .await
}

#[actix_rt::test(system = "tgwatch_testkit::harness::TestSystem")]
async fn every_endpoint_needs_the_login() {
    let (sandbox, _) = sandbox(None).await;
    let app = spawn_mtproto_app(&sandbox, |_| {}).await;
    add_account(&app, "main", Some(PHONE)).await;
    let client = reqwest::Client::new();
    for (method, path) in [
        ("GET", "/telegram/session/status/"),
        ("POST", "/telegram/auth/phone/"),
        ("POST", "/telegram/auth/verify/"),
        ("GET", "/telegram/auth/qr/"),
        ("GET", "/telegram/auth/qr/status/"),
        ("GET", "/telegram/chats/"),
        ("GET", "/telegram/chats/123456789/messages/"),
        ("GET", "/telegram/user/info/"),
        ("POST", "/telegram/session/reset/"),
        ("GET", "/telegram/session/info/"),
    ] {
        let url = format!("{}{}", app.base, path);
        let request = match method {
            "GET" => client.get(&url),
            _ => client.post(&url).json(&json!({})),
        };
        let response = request.send().await.unwrap();
        assert_eq!(response.status().as_u16(), 401, "{method} {path}");
    }
    // The main page itself loads without a token: it asks for it.
    let page = client
        .get(format!("{}{}", app.base, "/telegram/"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status().as_u16(), 200);
    let html = page.text().await.unwrap();
    assert!(
        html.contains("tg-phone-form") && html.contains("tg-chats"),
        "{html}"
    );
}

/// "Авторизация по телефону": the code is sent, then the code and the 2FA password go in one
/// call; every try is an `AuthAttempt`.
#[actix_rt::test(system = "tgwatch_testkit::harness::TestSystem")]
async fn login_by_phone_with_the_code_and_the_password_in_one_call() {
    let (sandbox, _) = sandbox(Some(("correct horse", "a horse"))).await;
    let app = spawn_mtproto_app(&sandbox, |_| {}).await;
    let id = add_account(&app, "main", None).await;

    let (status, body) = app.get("/telegram/session/status/").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["is_authorized"], false);

    // await fetch('/telegram/auth/phone/', {method: 'POST', body: JSON.stringify({phone})})
    let (status, body) = app
        .post("/telegram/auth/phone/", &json!({ "phone": PHONE }))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["state"], "code_sent");
    let code = sandbox.login_code(PHONE).expect("a code was sent");

    // A wrong code is refused and recorded.
    let wrong = if code == "11111" { "22222" } else { "11111" };
    let (status, body) = app
        .post(
            "/telegram/auth/verify/",
            &json!({ "phone": PHONE, "code": wrong, "password": "correct horse" }),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["code"], "invalid_code");

    // body: JSON.stringify({phone, code, password})
    let (status, body) = app
        .post(
            "/telegram/auth/verify/",
            &json!({ "phone": PHONE, "code": code, "password": "correct horse" }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body["state"] == "logged_in" || body["state"] == "logging_in",
        "{body}"
    );
    assert_eq!(body["is_authorized"], true, "{body}");
    let status = wait_logged_in(&app).await;
    assert_eq!(status["is_authorized"], true);
    assert_eq!(status["account_id"], id.as_str());
    assert_eq!(status["account"], "main");

    // "информация о сессии", "информация о пользователе" (from Telegram).
    let (status, info) = app.get("/telegram/session/info/").await;
    assert_eq!(status, 200, "{info}");
    assert_eq!(info["has_session"], true);
    assert_eq!(info["telegram_user_id"], ACCOUNT_USER);
    assert_eq!(info["encrypted_at_rest"], true);
    let user = app.eventually("/telegram/user/info/", WAIT, |_| true).await;
    assert_eq!(user["telegram_id"], ACCOUNT_USER);
    assert_eq!(user["first_name"], "Watcher");
    assert_eq!(user["last_name"], Value::Null);
    assert_eq!(user["username"], "watcher");
    assert_eq!(user["phone"], PHONE.trim_start_matches('+'));

    // AuthAttempt: attempt_type, status, error_message, created_at.
    let (status, attempts) = app.get(&format!("/api/accounts/{id}/auth-attempts")).await;
    assert_eq!(status, 200, "{attempts}");
    let rows: Vec<(&str, &str, bool)> = attempts["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| {
            assert!(row["created_at"].is_string(), "{row}");
            (
                row["attempt_type"].as_str().unwrap(),
                row["status"].as_str().unwrap(),
                row["error_message"].is_string(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        [
            ("phone", "failed", true),
            ("phone", "success", false),
            ("2fa", "success", false),
        ],
        "{attempts}"
    );
    let (_, newest) = app
        .get(&format!(
            "/api/accounts/{id}/auth-attempts?order=desc&limit=1"
        ))
        .await;
    assert_eq!(newest["items"][0]["attempt_type"], "2fa", "{newest}");
    assert!(newest["next_cursor"].is_string(), "{newest}");
}

/// The password may also come in a second call, and a code for another phone is refused.
#[actix_rt::test(system = "tgwatch_testkit::harness::TestSystem")]
async fn the_password_can_follow_in_a_second_call() {
    let (sandbox, _) = sandbox(Some(("pw", "hint"))).await;
    let app = spawn_mtproto_app(&sandbox, |_| {}).await;
    add_account(&app, "main", Some(PHONE)).await;
    let (status, body) = app.post("/telegram/auth/phone/", &json!({})).await;
    assert_eq!(status, 200, "{body}");
    let code = sandbox.login_code(PHONE).expect("a code was sent");
    let (status, body) = app
        .post(
            "/telegram/auth/verify/",
            &json!({ "phone": "+15550009999", "code": code }),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "phone_mismatch");
    let (status, body) = app
        .post("/telegram/auth/verify/", &json!({ "code": code }))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["state"], "password_needed");
    assert_eq!(body["password_hint"], "hint");
    let (status, body) = app
        .post(
            "/telegram/auth/verify/",
            &json!({ "phone": PHONE, "code": code, "password": "pw" }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    wait_logged_in(&app).await;
}

/// "Авторизация по QR коду": `data.url`, then the status until the scan.
#[actix_rt::test(system = "tgwatch_testkit::harness::TestSystem")]
async fn login_by_qr_code() {
    let (sandbox, account) = sandbox(None).await;
    let app = spawn_mtproto_app(&sandbox, |_| {}).await;
    let id = add_account(&app, "main", None).await;

    // const response = await fetch('/telegram/auth/qr/'); const qrUrl = data.url;
    let (status, data) = app.get("/telegram/auth/qr/").await;
    assert_eq!(status, 200, "{data}");
    let url = data["url"].as_str().unwrap();
    assert!(url.starts_with("tg://login?token="), "{url}");
    let (status, body) = app.get("/telegram/auth/qr/status/").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["state"], "qr_pending");

    sandbox.accept_login_token(&token_of(url), account).unwrap();
    app.eventually("/telegram/auth/qr/status/", WAIT, |body| {
        body["state"] == "logged_in"
    })
    .await;
    let (_, attempts) = app.get(&format!("/api/accounts/{id}/auth-attempts")).await;
    assert_eq!(attempts["items"][0]["attempt_type"], "qr", "{attempts}");
    assert_eq!(attempts["items"][0]["status"], "success", "{attempts}");
}

/// "Получение чатов и сообщений", the session reset, and `?account=` when there are several.
#[actix_rt::test(system = "tgwatch_testkit::harness::TestSystem")]
async fn chats_messages_and_session_reset_of_the_chosen_account() {
    let (sandbox, account) = sandbox(None).await;
    sandbox
        .add_channel(800, 81, Some("news_room"), "News room", "All the news")
        .unwrap();
    sandbox.join(account, 800).unwrap();
    for text in ["first", "second", "third"] {
        sandbox.post(800, text).unwrap();
    }
    let app = spawn_mtproto_app(&sandbox, |_| {}).await;
    let id = common::add_logged_in_account(&app, &sandbox, account, "main", 10).await;

    // const chats = await fetch('/telegram/chats/').then(r => r.json());
    let chats = app
        .eventually("/telegram/chats/", WAIT, |body| {
            !body["items"].as_array().unwrap().is_empty()
        })
        .await;
    let chat = &chats["items"][0];
    assert_eq!(chat["title"], "News room");
    let chat_id = chat["chat_id"].as_i64().unwrap();
    // fetch('/telegram/chats/123456789/messages/')
    let (status, page) = app
        .get(&format!("/telegram/chats/{chat_id}/messages/"))
        .await;
    assert_eq!(status, 200, "{page}");
    let texts: Vec<&str> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|message| message["text"].as_str().unwrap())
        .collect();
    assert_eq!(texts, ["third", "second", "first"]);
    let (status, body) = app.get("/telegram/chats/123456789/messages/").await;
    assert_eq!(status, 404, "{body}");

    // A second account: the account must now be named, by label or by id.
    add_account(&app, "spare", None).await;
    let (status, body) = app.get("/telegram/chats/").await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "account_required");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("main") && message.contains("spare"),
        "{message}"
    );
    let (status, body) = app.get("/telegram/chats/?account=ghost").await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "unknown_account");
    let (status, by_label) = app.get("/telegram/chats/?account=main").await;
    assert_eq!(status, 200, "{by_label}");
    assert_eq!(by_label["items"][0]["chat_id"], chat_id);
    let (status, _) = app.get(&format!("/telegram/chats/?account={id}")).await;
    assert_eq!(status, 200);
    let (_, spare) = app.get("/telegram/session/status/?account=spare").await;
    assert_eq!(spare["is_authorized"], false, "{spare}");

    // "сброс сессии": the account must log in again.
    let (status, body) = app
        .post("/telegram/session/reset/?account=main", &json!({}))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["had_session"], true);
    let (_, status) = app.get("/telegram/session/status/?account=main").await;
    assert_eq!(status["is_authorized"], false, "{status}");
    let (_, info) = app.get("/telegram/session/info/?account=main").await;
    assert_eq!(info["has_session"], false, "{info}");
}
