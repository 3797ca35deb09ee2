//! Logins end to end: the service's HTTP login endpoints drive the REAL grammers client against
//! the sandbox over TCP. Sessions are sealed in the test database (SQLite, or PostgreSQL when
//! TGWATCH_TEST_DATABASE_URL is set).

use crate::common;

use std::time::Duration;

use base64::Engine;
use common::{MtprotoApp, spawn_mtproto_app, start_mtproto_app};
use sea_orm::{ConnectionTrait, Statement};
use serde_json::{Value, json};
use tgwatch_sandbox::{AccountId, Sandbox, UserStatus};

pub(crate) const PHONE: &str = "+15550001000";
pub(crate) const ACCOUNT_USER: i64 = 5000;
const ALICE: i64 = 7000;
const BOB: i64 = 7001;
const WAIT: Duration = Duration::from_secs(20);

/// A sandbox with one Telegram account (phone [`PHONE`]) and two people to watch.
pub(crate) async fn sandbox(password: Option<(&str, &str)>) -> (Sandbox, AccountId) {
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

#[actix_rt::test(system = "tgwatch_testkit::harness::TestSystem")]
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
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("no_account_available")),
        "{body}"
    );

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

/// Every byte of the database is searched for the key and the api_hash, raw and in hex, base64
/// and base64url (at each of the three alignments a longer blob may put them at): on SQLite the
/// database file and its WAL, on PostgreSQL every column of every table (logs and
/// `auth_attempts` included), bytea as bytes and everything as text.
async fn assert_no_secret_stored(app: &MtprotoApp, auth_key: &[u8; 256], api_hash: &[u8]) {
    let db = sea_orm::Database::connect(&app.config.database.url)
        .await
        .unwrap();
    let mut stored: Vec<u8> = Vec::new();
    if app.config.database.url.starts_with("sqlite") {
        let mut files = 0;
        for entry in std::fs::read_dir(app.dir.path()).unwrap() {
            let path = entry.unwrap().path();
            if path.to_string_lossy().contains("test.db") {
                stored.extend(std::fs::read(&path).unwrap());
                files += 1;
            }
        }
        assert!(files >= 1, "the SQLite files were not found");
    } else {
        let backend = db.get_database_backend();
        let columns = db
            .query_all_raw(Statement::from_string(
                backend,
                "SELECT table_name::text AS t, column_name::text AS c, data_type::text AS d \
                 FROM information_schema.columns WHERE table_schema = 'public'",
            ))
            .await
            .unwrap();
        let mut tables = std::collections::BTreeSet::new();
        for column in columns {
            let table: String = column.try_get("", "t").unwrap();
            let name: String = column.try_get("", "c").unwrap();
            let kind: String = column.try_get("", "d").unwrap();
            let rows = db
                .query_all_raw(Statement::from_string(
                    backend,
                    format!("SELECT \"{name}\"::text AS v FROM \"{table}\""),
                ))
                .await
                .unwrap();
            for row in rows {
                let text: Option<String> = row.try_get("", "v").unwrap();
                stored.extend(text.unwrap_or_default().into_bytes());
            }
            if kind == "bytea" {
                let rows = db
                    .query_all_raw(Statement::from_string(
                        backend,
                        format!("SELECT \"{name}\" AS v FROM \"{table}\""),
                    ))
                    .await
                    .unwrap();
                for row in rows {
                    let bytes: Option<Vec<u8>> = row.try_get("", "v").unwrap();
                    stored.extend(bytes.unwrap_or_default());
                }
            }
            tables.insert(table);
        }
        for table in ["account_sessions", "auth_attempts", "logs", "accounts"] {
            assert!(
                tables.contains(table),
                "{table} was not scanned: {tables:?}"
            );
        }
    }
    let sessions = count(app, "SELECT COUNT(*) AS n FROM account_sessions").await;
    assert!(sessions >= 1, "no session stored: nothing to look for");
    for (what, secret) in [("auth key", &auth_key[..]), ("api_hash", api_hash)] {
        for (encoding, needle) in encodings(secret) {
            assert!(
                !contains(&stored, &needle),
                "the {what} is stored in the clear ({encoding})"
            );
        }
    }
}

/// A secret's first bytes as they would appear stored: raw, hex (both cases), base64 and
/// base64url from each of the three byte offsets modulo 3.
fn encodings(secret: &[u8]) -> Vec<(&'static str, Vec<u8>)> {
    use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
    let head = &secret[..secret.len().min(32)];
    let hex: String = head.iter().map(|b| format!("{b:02x}")).collect();
    let mut found = vec![
        ("raw", head.to_vec()),
        ("hex", hex.clone().into_bytes()),
        ("HEX", hex.to_uppercase().into_bytes()),
    ];
    for skip in 0..3 {
        // Whole 3-byte groups only: their characters do not depend on what surrounds them.
        let part = &secret[skip..];
        let part = &part[..(part.len().min(30) / 3) * 3];
        found.push(("base64", STANDARD_NO_PAD.encode(part).into_bytes()));
        found.push(("base64url", URL_SAFE_NO_PAD.encode(part).into_bytes()));
    }
    found
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

#[actix_rt::test(system = "tgwatch_testkit::harness::TestSystem")]
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

    // And it logs in again, with a new code and the password, and works.
    let codes_before = sandbox.calls("auth.sendCode");
    let (status, body) = app
        .post(&format!("/api/accounts/{id}/login/phone"), &json!({}))
        .await;
    assert_eq!(
        (status, body["state"].as_str()),
        (200, Some("code_sent")),
        "{body}"
    );
    assert_eq!(sandbox.calls("auth.sendCode"), codes_before + 1);
    let code = sandbox.login_code(PHONE).unwrap();
    let (status, body) = app
        .post(
            &format!("/api/accounts/{id}/login/code"),
            &json!({ "code": code }),
        )
        .await;
    assert_eq!(
        (status, body["state"].as_str()),
        (200, Some("password_needed")),
        "{body}"
    );
    let (status, body) = app
        .post(
            &format!("/api/accounts/{id}/login/password"),
            &json!({ "password": "correct horse" }),
        )
        .await;
    assert_eq!(
        (status, body["state"].as_str()),
        (200, Some("logged_in")),
        "{body}"
    );
    let (_, session) = app.get(&format!("/api/accounts/{id}/session")).await;
    assert_eq!(session["has_session"], true, "{session}");
    assert_eq!(session["is_authorized"], true, "{session}");
    assert_eq!(session["telegram_user_id"], ACCOUNT_USER);
    // A new auth key: the reset threw the first one away.
    let keys = app.issued_keys.lock().unwrap().clone();
    assert_eq!(keys.len(), 2);
    assert_ne!(keys[0], keys[1]);
    assert_no_secret_stored(&app, &keys[1], b"test-api-hash").await;
    app.track("bob_b").await;
}

/// Wrong 2FA passwords count like wrong codes, and the limit also holds per client address:
/// another account asked from the same address is refused, from another address it is not.
#[actix_rt::test(system = "tgwatch_testkit::harness::TestSystem")]
async fn wrong_passwords_and_one_client_address_are_rate_limited() {
    const OTHER_PHONE: &str = "+15550002000";
    let (sandbox, _) = sandbox(Some(("correct horse", "a horse"))).await;
    let other = sandbox
        .add_account(ACCOUNT_USER + 1, 56, Some("watcher_two"), "Watcher two")
        .unwrap();
    sandbox.set_phone(other, OTHER_PHONE).unwrap();
    let app = spawn_mtproto_app(&sandbox, |config| config.logins.max_failures = 2).await;
    let id = add_account(&app).await;

    let started = std::time::Instant::now();
    app.post(&format!("/api/accounts/{id}/login/phone"), &json!({}))
        .await;
    let code = sandbox.login_code(PHONE).unwrap();
    let (status, body) = app
        .post(
            &format!("/api/accounts/{id}/login/code"),
            &json!({ "code": code }),
        )
        .await;
    assert_eq!(
        (status, body["state"].as_str()),
        (200, Some("password_needed")),
        "{body}"
    );
    for _ in 0..2 {
        let (status, body) = app
            .post(
                &format!("/api/accounts/{id}/login/password"),
                &json!({ "password": "wrong horse" }),
            )
            .await;
        assert_eq!(status, 422, "{body}");
        assert_eq!(body["error"]["code"], "invalid_password");
    }
    // Even the right password waits now.
    let (status, body) = app
        .post(
            &format!("/api/accounts/{id}/login/password"),
            &json!({ "password": "correct horse" }),
        )
        .await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["error"]["code"], "too_many_attempts");
    let wait = body["error"]["details"]["retry_after"].as_u64().unwrap();
    let since = started.elapsed().as_secs() + 1;
    assert!((15 * 60 - since..15 * 60).contains(&wait), "{body}");
    let (_, status_now) = app.get(&format!("/api/accounts/{id}/login/status")).await;
    assert_eq!(status_now["state"], "password_needed");

    // Another account, no failure of its own, asked from the same address (127.0.0.1).
    let (status, body) = app
        .post(
            "/api/accounts",
            &json!({ "label": "second", "phone": OTHER_PHONE }),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let second = body["id"].as_str().unwrap().to_owned();
    let (status, body) = app
        .post(&format!("/api/accounts/{second}/login/phone"), &json!({}))
        .await;
    assert_eq!(status, 200, "{body}");
    let code = sandbox.login_code(OTHER_PHONE).unwrap();
    let (status, body) = app
        .post(
            &format!("/api/accounts/{second}/login/code"),
            &json!({ "code": code }),
        )
        .await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["error"]["code"], "too_many_attempts");

    // From another address (127.0.0.2, loopback too) the same code goes through.
    let elsewhere = common::Api {
        base: app.base.clone(),
        client: reqwest::Client::builder()
            .local_address(std::net::IpAddr::from([127, 0, 0, 2]))
            .build()
            .unwrap(),
    };
    let (status, body) = elsewhere
        .post(
            &format!("/api/accounts/{second}/login/code"),
            &json!({ "code": code }),
        )
        .await;
    assert_eq!(
        (status, body["state"].as_str()),
        (200, Some("logged_in")),
        "{body}"
    );
    let failed_from_first_address = count(
        &app,
        "SELECT COUNT(*) AS n FROM auth_attempts WHERE status = 'failed' AND client_addr = '127.0.0.1'",
    )
    .await;
    assert_eq!(failed_from_first_address, 2);
}

#[actix_rt::test(system = "tgwatch_testkit::harness::TestSystem")]
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
    let first_failure = std::time::Instant::now();
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
    // Free again when the first failure leaves the 15-minute window.
    let wait = body["error"]["details"]["retry_after"].as_u64().unwrap();
    let since = first_failure.elapsed().as_secs() + 1;
    assert!((15 * 60 - since..15 * 60).contains(&wait), "{body}");
}

#[actix_rt::test(system = "tgwatch_testkit::harness::TestSystem")]
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

pub(crate) fn token_of(url: &str) -> Vec<u8> {
    let token = url
        .strip_prefix("tg://login?token=")
        .expect("a tg://login URL");
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .unwrap()
}

#[actix_rt::test(system = "tgwatch_testkit::harness::TestSystem")]
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

#[actix_rt::test(system = "tgwatch_testkit::harness::TestSystem")]
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
    // The service learns the token's end from its expiry time (30 s in the sandbox): it then
    // says so, and the next QR request gets a new token, which works.
    let expired = app
        .eventually(
            &format!("/api/accounts/{id}/login/status"),
            Duration::from_secs(60),
            |body| body["state"] != "qr_pending",
        )
        .await;
    assert_eq!(expired["state"], "qr_expired", "{expired}");
    assert_eq!(expired["is_authorized"], false, "{expired}");
    let (status, fresh) = app.get(&format!("/api/accounts/{id}/login/qr")).await;
    assert_eq!(status, 200, "{fresh}");
    assert_ne!(fresh["url"], qr["url"]);
    let (_, pending) = app.get(&format!("/api/accounts/{id}/login/status")).await;
    assert_eq!(pending["state"], "qr_pending", "{pending}");
    sandbox
        .accept_login_token(&token_of(fresh["url"].as_str().unwrap()), account)
        .unwrap();
    wait_logged_in(&app, &id).await;
}

/// A Telethon StringSession of the sandbox account (its DC address and pre-shared key, packed
/// as Telethon packs them) is imported and used.
#[actix_rt::test(system = "tgwatch_testkit::harness::TestSystem")]
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
    // The imported key is sealed like a key from a login.
    let key = sandbox.auth_key(account).unwrap();
    assert!(telethon.len() > 300);
    assert_no_secret_stored(&app, &key, b"test-api-hash").await;
}

/// Seed 003: an account's chats and their messages, read live through its session.
#[actix_rt::test(system = "tgwatch_testkit::harness::TestSystem")]
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
#[actix_rt::test(system = "tgwatch_testkit::harness::TestSystem")]
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
    tgwatch_telegram::stored_session::PersistedSession::from_data(&sandbox.fresh_session_data())
        .export()
        .unwrap()
}

/// The account's stored session row, opened with the service's key file.
pub(crate) async fn stored_row(
    app: &MtprotoApp,
    id: &str,
) -> tgwatch_store::account_sessions::StoredSessionRow {
    let key = std::fs::read_to_string(&app.config.security.master_key_file).unwrap();
    let vault = tgwatch_core::vault::Vault::new(
        tgwatch_core::vault::MasterKey::parse(&key, "key").unwrap(),
    );
    let db = tgwatch_store::connect(&app.config.database.url, 1)
        .await
        .unwrap();
    tgwatch_store::account_sessions::load(&db, &vault, id.parse().unwrap())
        .await
        .unwrap()
        .expect("a stored session")
}

fn home_key(row: &tgwatch_store::account_sessions::StoredSessionRow) -> Option<[u8; 256]> {
    let session =
        tgwatch_telegram::stored_session::PersistedSession::from_bytes(&row.session).unwrap();
    session
        .dc_options
        .iter()
        .find(|option| option.id == session.home_dc)
        .and_then(|option| option.auth_key)
}

/// An import that Telegram refuses (here a session that is not logged in) changes nothing: the
/// account stays logged in with its working session and api_hash, and keeps working.
#[actix_rt::test(system = "tgwatch_testkit::harness::TestSystem")]
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
#[actix_rt::test(system = "tgwatch_testkit::harness::TestSystem")]
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

/// The DC the account's stored session calls home.
async fn stored_home_dc(app: &MtprotoApp, id: &str) -> i32 {
    let row = stored_row(app, id).await;
    tgwatch_telegram::stored_session::PersistedSession::from_bytes(&row.session)
        .unwrap()
        .home_dc
}

/// An account that lives in DC 4 logs in from a session that starts in DC 2, as a new session
/// does on Telegram: by code the phone is sent to DC 4 (`PHONE_MIGRATE_4`), by QR the scan is
/// finished there (`auth.loginTokenMigrateTo`). The sealed session keeps DC 4 as its home, so
/// that the account works, and works again after a restart.
#[actix_rt::test(system = "tgwatch_testkit::harness::TestSystem")]
async fn a_login_that_moves_to_another_dc_keeps_that_dc_as_home() {
    for qr in [false, true] {
        let (sandbox, account) = sandbox(None).await;
        sandbox.set_home_dc(account, 4).unwrap();
        let app = spawn_mtproto_app(&sandbox, |_| {}).await;
        let id = add_account(&app).await;
        if qr {
            let (status, body) = app.get(&format!("/api/accounts/{id}/login/qr")).await;
            assert_eq!(status, 200, "{body}");
            sandbox
                .accept_login_token(&token_of(body["url"].as_str().unwrap()), account)
                .unwrap();
            wait_logged_in(&app, &id).await;
        } else {
            let (status, body) = app
                .post(&format!("/api/accounts/{id}/login/phone"), &json!({}))
                .await;
            assert_eq!((status, body["state"].as_str()), (200, Some("code_sent")));
            let code = sandbox.login_code(PHONE).expect("a code was sent");
            let (status, body) = app
                .post(
                    &format!("/api/accounts/{id}/login/code"),
                    &json!({ "code": code }),
                )
                .await;
            assert_eq!((status, body["state"].as_str()), (200, Some("logged_in")));
        }
        assert_eq!(stored_home_dc(&app, &id).await, 4, "qr: {qr}");
        app.track("alice_w").await;

        app.server.stop(true).await;
        let again = start_mtproto_app(&sandbox, app.config.clone(), app.dir.clone()).await;
        again.track("bob_b").await;
    }
}

/// A log line sink for the test's own subscriber.
#[derive(Clone, Default)]
struct CapturedLog(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for CapturedLog {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Whether `secret` stands in `text` as a value of its own (not inside a longer word or
/// number: a 5-digit code may well occur inside a hex id or a fraction).
fn stands_in(text: &str, secret: &str) -> bool {
    let part_of_word = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric() || c == '.');
    text.match_indices(secret).any(|(at, _)| {
        !part_of_word(text[..at].chars().next_back())
            && !part_of_word(text[at + secret.len()..].chars().next())
    })
}

/// Every handler has a span (`#[instrument]`) inside the request's, with the ids that matter
/// and nothing else: a whole login (code, a wrong and a right 2FA password, an api_hash of its
/// own), a Telethon session import and the admin token leave none of their secrets in the log,
/// captured in the JSON format with every span's fields, at debug.
#[actix_rt::test(system = "tgwatch_testkit::harness::TestSystem")]
async fn the_log_of_a_login_carries_handler_spans_and_no_secret() {
    use tracing_subscriber::fmt::format::FmtSpan;
    let log = CapturedLog::default();
    let sink = log.clone();
    // Global: the handlers run on the HTTP server's worker threads. nextest gives each test a
    // process of its own, so this subscriber is the first and only one.
    tracing_subscriber::fmt()
        .json()
        .with_current_span(true)
        .with_span_list(true)
        .with_span_events(FmtSpan::CLOSE)
        .with_env_filter("debug,sqlx=warn,sea_orm=warn")
        .with_writer(move || sink.clone())
        .try_init()
        .expect("the first subscriber of this process (run the suite with cargo nextest)");

    let (sandbox, _) = sandbox(Some(("correct horse", "a horse"))).await;
    let second = sandbox
        .add_account(ACCOUNT_USER + 1, 56, Some("second"), "Second")
        .unwrap();
    let app = spawn_mtproto_app(&sandbox, |_| {}).await;
    let id = add_account(&app).await;
    let api_hash = "0123456789abcdef0123456789abcdef";
    let (status, body) = app
        .post(
            &format!("/api/accounts/{id}/login/phone"),
            &json!({ "phone": PHONE, "api_hash": api_hash }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let code = sandbox.login_code(PHONE).unwrap();
    let (status, body) = app
        .post(
            &format!("/api/accounts/{id}/login/code"),
            &json!({ "code": code }),
        )
        .await;
    assert_eq!(
        (status, &body["state"]),
        (200, &json!("password_needed")),
        "{body}"
    );
    for (password, expected) in [("wrong horse", 422), ("correct horse", 200)] {
        let (status, body) = app
            .post(
                &format!("/api/accounts/{id}/login/password"),
                &json!({ "password": password }),
            )
            .await;
        assert_eq!(status, expected, "{body}");
    }
    wait_logged_in(&app, &id).await;
    let (status, body) = app
        .post("/api/accounts", &json!({ "label": "second" }))
        .await;
    assert_eq!(status, 201, "{body}");
    let second_id = body["id"].as_str().unwrap().to_owned();
    let telethon = common::telethon_string(&sandbox, second);
    let (status, body) = app
        .post(
            &format!("/api/accounts/{second_id}/session/import"),
            &json!({ "telethon": telethon }),
        )
        .await;
    assert_eq!(status, 200, "{body}");

    let text = String::from_utf8(log.0.lock().unwrap().clone()).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|error| panic!("{error}: {line}")))
        .collect();
    // The password step's span closed with the account's id, inside the request's span.
    let closed = lines
        .iter()
        .find(|line| {
            line["span"]["name"] == "login.submit_password" && line["fields"]["message"] == "close"
        })
        .unwrap_or_else(|| panic!("no span of the password step in {text}"));
    assert_eq!(closed["span"]["account_id"], json!(id), "{closed}");
    assert_eq!(closed["spans"][0]["name"], "request", "{closed}");
    assert!(closed["spans"][0]["request_id"].is_string(), "{closed}");
    let import = lines
        .iter()
        .find(|line| line["span"]["name"] == "login.import")
        .unwrap_or_else(|| panic!("no span of the import in {text}"));
    assert_eq!(import["span"]["account_id"], json!(second_id), "{import}");

    assert!(
        !stands_in(&text, &code),
        "the code {code} is in the log:\n{text}"
    );
    let mut secrets = vec![
        common::TOKEN.to_owned(),
        "correct horse".to_owned(),
        "wrong horse".to_owned(),
        api_hash.to_owned(),
        "test-api-hash".to_owned(),
        telethon.clone(),
        // Any long part of the session string (its base64 holds the auth key).
        telethon[1..41].to_owned(),
    ];
    for key in app.issued_keys.lock().unwrap().iter() {
        for (encoding, encoded) in encodings(key) {
            if encoding != "raw" {
                secrets.push(String::from_utf8(encoded).unwrap());
            }
        }
    }
    for secret in &secrets {
        assert!(
            !text.contains(secret.as_str()),
            "`{secret}` is in the log:\n{text}"
        );
    }
    assert!(!text.contains("horse"), "no password, even in part");
}
