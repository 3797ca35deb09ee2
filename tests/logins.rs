//! Logins end to end: the service's HTTP login endpoints drive the REAL grammers client against
//! the sandbox over TCP. Sessions are sealed in the test database (SQLite, or PostgreSQL when
//! TGWATCH_TEST_DATABASE_URL is set).

#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use std::time::Duration;

use base64::Engine;
use common::{MtprotoApp, spawn_mtproto_app, start_mtproto_app};
use sea_orm::{ConnectionTrait, Statement};
use serde_json::{Value, json};
use tgwatch_sandbox::{AccountId, Sandbox, UserStatus};

const PHONE: &str = "+15550001000";
const ACCOUNT_USER: i64 = 5000;
const ALICE: i64 = 7000;
const BOB: i64 = 7001;
const WAIT: Duration = Duration::from_secs(20);

/// A sandbox with one Telegram account (phone [`PHONE`]) and two people to watch.
async fn sandbox(password: Option<(&str, &str)>) -> (Sandbox, AccountId) {
    let sandbox = Sandbox::start().await.unwrap();
    let account = sandbox
        .add_account(ACCOUNT_USER, 55, Some("watcher"), "Watcher")
        .unwrap();
    sandbox.set_phone(account, PHONE).unwrap();
    if let Some((password, hint)) = password {
        sandbox
            .set_password(account, Some(password), Some(hint))
            .unwrap();
    }
    sandbox
        .add_user(ALICE, 71, Some("alice_w"), "Alice")
        .unwrap();
    sandbox.add_user(BOB, 72, Some("bob_b"), "Bob").unwrap();
    sandbox.add_contact(account, ALICE).unwrap();
    (sandbox, account)
}

async fn add_account(app: &MtprotoApp) -> String {
    let (status, body) = app
        .post("/api/accounts", &json!({ "label": "main", "phone": PHONE }))
        .await;
    assert_eq!(status, 201, "{body}");
    body["id"].as_str().unwrap().to_owned()
}

async fn wait_logged_in(app: &MtprotoApp, id: &str) -> Value {
    app.eventually(&format!("/api/accounts/{id}/login/status"), WAIT, |body| {
        body["state"] == "logged_in"
    })
    .await
}

#[actix_rt::test]
async fn login_by_code_stores_a_sealed_session_that_survives_a_restart() {
    let (sandbox, _) = sandbox(None).await;
    let app = spawn_mtproto_app(&sandbox, |_| {}).await;
    let id = add_account(&app).await;

    let (status, body) = app.get(&format!("/api/accounts/{id}/login/status")).await;
    assert_eq!(
        (status, body["state"].as_str()),
        (200, Some("none")),
        "{body}"
    );
    // Before a login the account cannot resolve anyone, and says why.
    let (status, body) = app
        .post(
            "/api/tracked-users",
            &json!({ "username": "alice_w", "account_id": id }),
        )
        .await;
    assert!(status >= 400, "{status} {body}");

    let (status, body) = app
        .post(&format!("/api/accounts/{id}/login/phone"), &json!({}))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["state"], "code_sent");
    let code = sandbox.login_code(PHONE).expect("a code was sent");

    let wrong = if code == "11111" { "22222" } else { "11111" };
    let (status, body) = app
        .post(
            &format!("/api/accounts/{id}/login/code"),
            &json!({ "code": wrong }),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["code"], "invalid_code");
    let (status, body) = app
        .post(
            &format!("/api/accounts/{id}/login/code"),
            &json!({ "code": "12a" }),
        )
        .await;
    assert_eq!(status, 400, "{body}");

    let (status, body) = app
        .post(
            &format!("/api/accounts/{id}/login/code"),
            &json!({ "code": code }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["state"], "logged_in", "{body}");

    let (_, account) = app.get(&format!("/api/accounts/{id}")).await;
    assert_eq!(account["is_authorized"], true, "{account}");
    assert_eq!(account["telegram_user_id"], ACCOUNT_USER);
    let (status, session) = app.get(&format!("/api/accounts/{id}/session")).await;
    assert_eq!(status, 200);
    assert_eq!(session["has_session"], true);
    assert_eq!(session["has_api_hash"], true);
    assert_eq!(session["telegram_user_id"], ACCOUNT_USER);
    assert!(!session.to_string().contains("test-api-hash"));

    // The logged-in account resolves and polls; a pushed status reaches the sessions table.
    let alice = app.track("alice_w").await;
    sandbox
        .set_user_status(
            ALICE,
            UserStatus::Online {
                expires: (chrono::Utc::now().timestamp() + 300) as i32,
            },
        )
        .unwrap();
    app.eventually(
        &format!("/api/tracked-users/{alice}/sessions"),
        WAIT,
        |body| !body["sessions"].as_array().unwrap().is_empty(),
    )
    .await;

    // No auth key, api_hash or other secret in the database in the clear.
    let keys = app.issued_keys.lock().unwrap().clone();
    assert_eq!(keys.len(), 1);
    assert_no_secret_stored(&app, &keys[0], b"test-api-hash").await;
    let attempts = count(
        &app,
        "SELECT COUNT(*) AS n FROM auth_attempts WHERE status = 'failed'",
    )
    .await;
    assert_eq!(attempts, 1, "the wrong code is recorded");

    // A restart logs in from the stored session: no new code is asked for.
    app.server.stop(true).await;
    let sent_codes = sandbox.calls("auth.sendCode");
    let again = start_mtproto_app(&sandbox, app.config.clone(), app.dir.clone()).await;
    let bob = again.track("bob_b").await;
    assert!(!bob.is_empty());
    assert_eq!(sandbox.calls("auth.sendCode"), sent_codes);
    assert_eq!(again.issued_keys.lock().unwrap().len(), 0);
}

/// Every byte of the database (the rows, and on SQLite the files too) is searched for the key.
async fn assert_no_secret_stored(app: &MtprotoApp, auth_key: &[u8; 256], api_hash: &[u8]) {
    let db = sea_orm::Database::connect(&app.config.database.url)
        .await
        .unwrap();
    let rows = db
        .query_all_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT session, api_hash FROM account_sessions",
        ))
        .await
        .unwrap();
    assert!(!rows.is_empty());
    let mut stored: Vec<u8> = Vec::new();
    for row in rows {
        stored.extend(row.try_get::<Vec<u8>>("", "session").unwrap());
        stored.extend(
            row.try_get::<Option<Vec<u8>>>("", "api_hash")
                .unwrap()
                .unwrap_or_default(),
        );
    }
    if app.config.database.url.starts_with("sqlite") {
        for entry in std::fs::read_dir(app.dir.path()).unwrap() {
            let path = entry.unwrap().path();
            if path.to_string_lossy().contains("test.db") {
                stored.extend(std::fs::read(&path).unwrap());
            }
        }
    }
    let hex: String = auth_key.iter().map(|b| format!("{b:02x}")).collect();
    assert!(
        !contains(&stored, &auth_key[..32]),
        "raw auth key bytes found"
    );
    assert!(
        !contains(&stored, &hex.as_bytes()[..32]),
        "hex auth key found"
    );
    assert!(!contains(&stored, api_hash), "api_hash found");
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}

async fn count(app: &MtprotoApp, sql: &str) -> i64 {
    let db = sea_orm::Database::connect(&app.config.database.url)
        .await
        .unwrap();
    let row = db
        .query_one_raw(Statement::from_string(db.get_database_backend(), sql))
        .await
        .unwrap()
        .unwrap();
    row.try_get::<i64>("", "n").unwrap()
}

#[actix_rt::test]
async fn login_with_2fa_asks_for_the_password_and_refuses_a_wrong_one() {
    let (sandbox, _) = sandbox(Some(("correct horse", "a horse"))).await;
    let app = spawn_mtproto_app(&sandbox, |_| {}).await;
    let id = add_account(&app).await;

    app.post(
        &format!("/api/accounts/{id}/login/phone"),
        &json!({ "phone": PHONE }),
    )
    .await;
    let code = sandbox.login_code(PHONE).unwrap();
    let (status, body) = app
        .post(
            &format!("/api/accounts/{id}/login/code"),
            &json!({ "code": code }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["state"], "password_needed");
    assert_eq!(body["password_hint"], "a horse");

    let (status, body) = app
        .post(
            &format!("/api/accounts/{id}/login/password"),
            &json!({ "password": "wrong horse" }),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["code"], "invalid_password");
    let (_, body) = app.get(&format!("/api/accounts/{id}/login/status")).await;
    assert_eq!(
        body["state"], "password_needed",
        "a wrong password keeps the step"
    );

    let (status, body) = app
        .post(
            &format!("/api/accounts/{id}/login/password"),
            &json!({ "password": "correct horse" }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["state"], "logged_in");
    app.track("alice_w").await;

    // Logged in: a new login must reset first; the reset logs the account out.
    let (status, body) = app
        .post(&format!("/api/accounts/{id}/login/phone"), &json!({}))
        .await;
    assert_eq!(status, 409, "{body}");
    let (status, _) = app
        .post(&format!("/api/accounts/{id}/session/reset"), &json!({}))
        .await;
    assert_eq!(status, 200);
    let (_, session) = app.get(&format!("/api/accounts/{id}/session")).await;
    assert_eq!(session["has_session"], false);
    assert_eq!(session["is_authorized"], false);
}

#[actix_rt::test]
async fn wrong_codes_are_rate_limited_and_expired_codes_say_so() {
    let (sandbox, _) = sandbox(None).await;
    let app = spawn_mtproto_app(&sandbox, |config| config.logins.max_failures = 2).await;
    let id = add_account(&app).await;

    let (status, body) = app
        .post(
            &format!("/api/accounts/{id}/login/code"),
            &json!({ "code": "12345" }),
        )
        .await;
    assert_eq!(status, 409, "a code before asking for one: {body}");

    app.post(&format!("/api/accounts/{id}/login/phone"), &json!({}))
        .await;
    sandbox.expire_login_codes();
    let code = sandbox.login_code(PHONE).unwrap();
    let (status, body) = app
        .post(
            &format!("/api/accounts/{id}/login/code"),
            &json!({ "code": code }),
        )
        .await;
    assert_eq!(status, 410, "{body}");
    assert_eq!(body["error"]["code"], "code_expired");

    app.post(&format!("/api/accounts/{id}/login/phone"), &json!({}))
        .await;
    let code = sandbox.login_code(PHONE).unwrap();
    let wrong = if code == "11111" { "22222" } else { "11111" };
    let (status, _) = app
        .post(
            &format!("/api/accounts/{id}/login/code"),
            &json!({ "code": wrong }),
        )
        .await;
    assert_eq!(status, 422);
    // Two failures (the expired code counts): the limit of 2 is reached.
    let (status, body) = app
        .post(
            &format!("/api/accounts/{id}/login/code"),
            &json!({ "code": code }),
        )
        .await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["error"]["code"], "too_many_attempts");
    let wait = body["error"]["details"]["retry_after"].as_u64().unwrap();
    assert!((1..=15 * 60).contains(&wait), "{body}");
}

#[actix_rt::test]
async fn flood_wait_on_send_code_is_a_429_with_the_wait() {
    let (sandbox, _) = sandbox(None).await;
    let app = spawn_mtproto_app(&sandbox, |_| {}).await;
    let id = add_account(&app).await;
    sandbox.inject_method_flood_wait("auth.sendCode", 120, 1);
    let (status, body) = app
        .post(&format!("/api/accounts/{id}/login/phone"), &json!({}))
        .await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["error"]["code"], "flood_wait");
    assert_eq!(body["error"]["details"]["retry_after"], 120);
    // The next try goes through.
    let (status, body) = app
        .post(&format!("/api/accounts/{id}/login/phone"), &json!({}))
        .await;
    assert_eq!(status, 200, "{body}");
}

fn token_of(url: &str) -> Vec<u8> {
    let token = url
        .strip_prefix("tg://login?token=")
        .expect("a tg://login URL");
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .unwrap()
}

#[actix_rt::test]
async fn qr_login_with_and_without_2fa() {
    let (sandbox, account) = sandbox(None).await;
    let app = spawn_mtproto_app(&sandbox, |_| {}).await;
    let id = add_account(&app).await;

    let (status, qr) = app.get(&format!("/api/accounts/{id}/login/qr")).await;
    assert_eq!(status, 200, "{qr}");
    assert!(qr["svg"].as_str().unwrap().starts_with("<?xml"));
    let url = qr["url"].as_str().unwrap();
    // Asking again while it is valid gives the same code.
    let (_, again) = app.get(&format!("/api/accounts/{id}/login/qr")).await;
    assert_eq!(again["url"], url);
    let (_, status) = app.get(&format!("/api/accounts/{id}/login/status")).await;
    assert_eq!(status["state"], "qr_pending");

    sandbox.accept_login_token(&token_of(url), account).unwrap();
    wait_logged_in(&app, &id).await;
    app.track("alice_w").await;

    // The same with 2FA on: the scan leads to the password step.
    let (sandbox, account) = self::sandbox(Some(("pw", "hint"))).await;
    let app = spawn_mtproto_app(&sandbox, |_| {}).await;
    let id = add_account(&app).await;
    let (_, qr) = app.get(&format!("/api/accounts/{id}/login/qr")).await;
    sandbox
        .accept_login_token(&token_of(qr["url"].as_str().unwrap()), account)
        .unwrap();
    app.eventually(&format!("/api/accounts/{id}/login/status"), WAIT, |body| {
        body["state"] == "password_needed"
    })
    .await;
    let (status, body) = app
        .post(
            &format!("/api/accounts/{id}/login/password"),
            &json!({ "password": "pw" }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["state"], "logged_in");
    let attempts = count(
        &app,
        "SELECT COUNT(*) AS n FROM auth_attempts WHERE kind = 'qr' AND status = 'success'",
    )
    .await;
    assert_eq!(attempts, 1);
}

#[actix_rt::test]
async fn an_expired_qr_token_cannot_be_scanned() {
    let (sandbox, account) = sandbox(None).await;
    let app = spawn_mtproto_app(&sandbox, |_| {}).await;
    let id = add_account(&app).await;
    let (_, qr) = app.get(&format!("/api/accounts/{id}/login/qr")).await;
    sandbox.expire_login_tokens();
    assert!(
        sandbox
            .accept_login_token(&token_of(qr["url"].as_str().unwrap()), account)
            .is_err()
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (_, status) = app.get(&format!("/api/accounts/{id}/login/status")).await;
    assert_ne!(status["state"], "logged_in");
}

/// A Telethon StringSession of the sandbox account (its DC address and pre-shared key, packed
/// as Telethon packs them) is imported and used.
#[actix_rt::test]
async fn a_telethon_session_imports_and_connects() {
    let (sandbox, account) = sandbox(None).await;
    let app = spawn_mtproto_app(&sandbox, |_| {}).await;
    let id = add_account(&app).await;

    let telethon = common::telethon_string(&sandbox, account);

    let (status, body) = app
        .post(
            &format!("/api/accounts/{id}/session/import"),
            &json!({ "telethon": "1notbase64!" }),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = app
        .post(
            &format!("/api/accounts/{id}/session/import"),
            &json!({ "telethon": telethon }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    app.track("alice_w").await;
}

/// Seed 003: an account's chats and their messages, read live through its session.
#[actix_rt::test]
async fn an_accounts_chats_and_messages_are_read_through_its_session() {
    let (sandbox, account) = sandbox(None).await;
    sandbox
        .add_channel(800, 81, Some("news_room"), "News room", "All the news")
        .unwrap();
    sandbox.join(account, 800).unwrap();
    for text in ["first", "second", "third"] {
        sandbox.post(800, text).unwrap();
    }
    let app = spawn_mtproto_app(&sandbox, |_| {}).await;
    let id = add_account(&app).await;
    let telethon = common::telethon_string(&sandbox, account);
    let (status, body) = app
        .post(
            &format!("/api/accounts/{id}/session/import"),
            &json!({ "telethon": telethon }),
        )
        .await;
    assert_eq!(status, 200, "{body}");

    let chats = app
        .eventually(&format!("/api/accounts/{id}/chats"), WAIT, |body| {
            !body["items"].as_array().unwrap().is_empty()
        })
        .await;
    let chat = &chats["items"][0];
    assert_eq!(chat["kind"], "channel");
    assert_eq!(chat["title"], "News room");
    assert_eq!(chat["username"], "news_room");
    let chat_id = chat["chat_id"].as_i64().unwrap();

    let (status, page) = app
        .get(&format!(
            "/api/accounts/{id}/chats/{chat_id}/messages?limit=2"
        ))
        .await;
    assert_eq!(status, 200, "{page}");
    let texts: Vec<&str> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|message| message["text"].as_str().unwrap())
        .collect();
    assert_eq!(texts, ["third", "second"], "newest first");
    let before = page["next_before_id"].as_i64().unwrap();
    let (_, older) = app
        .get(&format!(
            "/api/accounts/{id}/chats/{chat_id}/messages?before_id={before}"
        ))
        .await;
    assert_eq!(older["items"][0]["text"], "first");

    let (status, _) = app.get(&format!("/api/accounts/{id}/chats?limit=0")).await;
    assert_eq!(status, 400);
    let (status, _) = app
        .get(&format!("/api/accounts/{}/chats", uuid::Uuid::new_v4()))
        .await;
    assert_eq!(status, 404);
}

/// A chat the account is not in (`0`, a basic group it never saw, a channel it never joined) is
/// a 404 naming Telegram's refusal, not a gateway failure.
#[actix_rt::test]
async fn chats_the_account_cannot_see_are_not_found() {
    let (sandbox, account) = sandbox(None).await;
    sandbox
        .add_channel(801, 82, Some("closed_room"), "Closed room", "Not joined")
        .unwrap();
    sandbox.post(801, "hidden").unwrap();
    let app = spawn_mtproto_app(&sandbox, |_| {}).await;
    let id = common::add_logged_in_account(&app, &sandbox, account, "main", 10).await;

    for chat_id in ["0", "-1", "-1000000000801", "-1001234567890", "7001"] {
        let (status, body) = app
            .get(&format!("/api/accounts/{id}/chats/{chat_id}/messages"))
            .await;
        assert_eq!(status, 404, "{chat_id}: {body}");
        assert_eq!(body["error"]["code"], "not_found", "{chat_id}: {body}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains("_INVALID"), "{chat_id}: {message}");
    }
}

/// The sandbox account's key in a `tgw1:` string of a session that Telegram does not know as
/// logged in.
fn session_not_logged_in(sandbox: &Sandbox) -> String {
    tgwatch::telegram::stored_session::PersistedSession::from_data(&sandbox.fresh_session_data())
        .export()
        .unwrap()
}

/// The account's stored session row, opened with the service's key file.
async fn stored_row(
    app: &MtprotoApp,
    id: &str,
) -> tgwatch::storage::account_sessions::StoredSessionRow {
    let key = std::fs::read_to_string(&app.config.security.master_key_file).unwrap();
    let vault = tgwatch::vault::Vault::new(tgwatch::vault::MasterKey::parse(&key, "key").unwrap());
    let db = tgwatch::storage::connect(&app.config.database.url, 1)
        .await
        .unwrap();
    tgwatch::storage::account_sessions::load(&db, &vault, id.parse().unwrap())
        .await
        .unwrap()
        .expect("a stored session")
}

fn home_key(row: &tgwatch::storage::account_sessions::StoredSessionRow) -> Option<[u8; 256]> {
    let session =
        tgwatch::telegram::stored_session::PersistedSession::from_bytes(&row.session).unwrap();
    session
        .dc_options
        .iter()
        .find(|option| option.id == session.home_dc)
        .and_then(|option| option.auth_key)
}

/// An import that Telegram refuses (here a session that is not logged in) changes nothing: the
/// account stays logged in with its working session and api_hash, and keeps working.
#[actix_rt::test]
async fn a_failed_session_import_keeps_the_working_session() {
    let (sandbox, account) = sandbox(None).await;
    let app = spawn_mtproto_app(&sandbox, |_| {}).await;
    let id = add_account(&app).await;
    let import = format!("/api/accounts/{id}/session/import");
    let (status, body) = app
        .post(
            &import,
            &json!({
                "telethon": common::telethon_string(&sandbox, account),
                "api_hash": "working-hash",
            }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    wait_logged_in(&app, &id).await;

    let (status, body) = app
        .post(
            &import,
            &json!({ "session": session_not_logged_in(&sandbox), "api_hash": "other-hash" }),
        )
        .await;
    assert!((400..600).contains(&status), "{status}: {body}");

    let (status, body) = app.get(&format!("/api/accounts/{id}")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["is_authorized"], true, "{body}");
    let (_, login) = app.get(&format!("/api/accounts/{id}/login/status")).await;
    assert_eq!(login["state"], "logged_in", "{login}");
    let row = stored_row(&app, &id).await;
    assert!(row.authorized_at.is_some());
    assert_eq!(row.api_hash.as_deref(), Some("working-hash"));
    assert_eq!(home_key(&row), Some(sandbox.auth_key(account).unwrap()));
    // Still connected with it.
    app.track("alice_w").await;
}

/// A Telethon session whose DC address is IPv6 connects to that address and port (the sandbox
/// on [::1], on a port of its own), not to the DC's built-in IPv4 address.
#[actix_rt::test]
async fn a_telethon_session_with_an_ipv6_address_connects_there() {
    let (sandbox, account) = sandbox(None).await;
    let Some(v6) = sandbox.addr_v6() else {
        panic!("this machine has no IPv6 loopback");
    };
    let mut packed = vec![tgwatch_sandbox::HOME_DC as u8];
    packed.extend_from_slice(&std::net::Ipv6Addr::LOCALHOST.octets());
    packed.extend_from_slice(&v6.port().to_be_bytes());
    packed.extend_from_slice(&sandbox.auth_key(account).unwrap());
    let telethon = format!(
        "1{}",
        base64::engine::general_purpose::URL_SAFE.encode(&packed)
    );

    let app = spawn_mtproto_app(&sandbox, |_| {}).await;
    let id = add_account(&app).await;
    let (status, body) = app
        .post(
            &format!("/api/accounts/{id}/session/import"),
            &json!({ "telethon": telethon }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    wait_logged_in(&app, &id).await;
    app.track("alice_w").await;
    app.eventually(&format!("/api/accounts/{id}/chats"), WAIT, |_| true)
        .await;
}
