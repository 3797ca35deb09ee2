//! Unique values: two identical requests at once, and every unique index hit through the API or
//! the config file. A duplicate is a 409 naming the field and carrying the record that holds the
//! value, never a 5xx; SQLite, or PostgreSQL with TGWATCH_TEST_DATABASE_URL.

use crate::common;

use std::time::Duration;

use common::{Api, TOKEN, add_logged_in_account, spawn_app, spawn_app_watching, spawn_mtproto_app};
use serde_json::{Value, json};
use tgwatch_store::{self as storage, accounts::NewAccount, webhooks::NewWebhook};

const USERS: &str = r#"
[[users]]
id = 1001
username = "alice_w"
online = [[0, 100000]]

[[users]]
id = 1002
username = "bob_smith"

[[users]]
id = 1003
username = "carol_x"
"#;

const WAIT: Duration = Duration::from_secs(20);

/// Sends the same POST twice at once; returns both answers, the success first.
async fn twice(api: &Api, path: &str, body: &Value) -> [(u16, Value); 2] {
    // Two open connections first, so that neither request waits for a connection to be made
    // and both reach the service together.
    tokio::join!(api.get("/api/accounts"), api.get("/api/accounts"));
    let (first, second) = tokio::join!(api.post(path, body), api.post(path, body));
    let mut answers = [first, second];
    answers.sort_by_key(|(status, _)| *status);
    answers
}

/// Exactly one created and one 409 that carries the created record.
fn one_created_one_conflict(what: &str, answers: &[(u16, Value); 2]) -> Value {
    let [(created_status, created), (conflict_status, conflict)] = answers;
    assert_eq!(*created_status, 201, "{what}: {created}");
    assert_eq!(*conflict_status, 409, "{what}: {conflict}");
    assert_eq!(
        conflict["error"]["details"]["existing"]["id"], created["id"],
        "{what}: {conflict}"
    );
    created.clone()
}

fn items(body: &Value) -> Vec<Value> {
    body["items"].as_array().expect("items").clone()
}

#[actix_rt::test(system = "tgwatch_testkit::harness::TestSystem")]
async fn two_identical_posts_at_once_give_one_201_and_one_409_with_the_existing_record() {
    let app = spawn_app(USERS, |config| {
        config.webhooks.allow_private_addresses = true;
    })
    .await;
    for round in 0..3 {
        let answers = twice(
            &app,
            "/api/accounts",
            &json!({ "label": format!("spare-{round}") }),
        )
        .await;
        let account = one_created_one_conflict("account", &answers);
        assert_eq!(answers[1].1["error"]["code"], "duplicate_label");
        assert_eq!(answers[1].1["error"]["details"]["field"], "label");
        assert_eq!(account["label"], format!("spare-{round}"));

        let answers = twice(
            &app,
            "/api/webhooks",
            &json!({ "url": "http://127.0.0.1:9/hook", "name": format!("hook-{round}") }),
        )
        .await;
        one_created_one_conflict("webhook", &answers);
        assert_eq!(answers[1].1["error"]["code"], "duplicate_name");
        assert!(
            answers[1].1["error"]["details"]["existing"]["secret"].is_null(),
            "the secret is shown once, to its creator"
        );

        let answers = twice(
            &app,
            "/api/telegram-users",
            &json!({ "telegram_user_id": 7000 + round }),
        )
        .await;
        one_created_one_conflict("telegram user", &answers);
        assert_eq!(answers[1].1["error"]["code"], "already_exists");
    }
    for username in ["alice_w", "bob_smith"] {
        let answers = twice(&app, "/api/tracked-users", &json!({ "username": username })).await;
        one_created_one_conflict(username, &answers);
        assert_eq!(answers[1].1["error"]["code"], "already_tracked");
    }
    // Untracked, then tracked again by two requests at once: the same record, once.
    let (_, listed) = app.get("/api/tracked-users?username=alice_w").await;
    let alice = items(&listed)[0]["id"].as_str().unwrap().to_owned();
    assert_eq!(
        app.delete(&format!("/api/tracked-users/{alice}")).await,
        204
    );
    let answers = twice(
        &app,
        "/api/tracked-users",
        &json!({ "username": "alice_w" }),
    )
    .await;
    let again = one_created_one_conflict("alice again", &answers);
    assert_eq!(again["id"], alice.as_str());

    let (_, accounts) = app.get("/api/accounts").await;
    assert_eq!(
        items(&accounts).len(),
        4,
        "main and three spares: {accounts}"
    );
    let (_, hooks) = app.get("/api/webhooks").await;
    assert_eq!(items(&hooks).len(), 3, "{hooks}");
    let (_, people) = app.get("/api/telegram-users").await;
    assert_eq!(items(&people).len(), 3, "{people}");
    let (_, tracked) = app.get("/api/tracked-users").await;
    assert_eq!(items(&tracked).len(), 2, "{tracked}");
}

/// Each unique index a request can reach answers 409 naming the field, with the record that
/// holds the value.
#[actix_rt::test(system = "tgwatch_testkit::harness::TestSystem")]
async fn every_unique_index_a_request_reaches_is_a_409_naming_the_field() {
    let app = spawn_app(USERS, |_| {}).await;

    // accounts.label, by POST and by PATCH.
    let (status, spare) = app
        .post(
            "/api/accounts",
            &json!({ "label": "spare", "telegram_user_id": 555 }),
        )
        .await;
    assert_eq!(status, 201, "{spare}");
    let (status, other) = app
        .post("/api/accounts", &json!({ "label": "other" }))
        .await;
    assert_eq!(status, 201, "{other}");
    let (status, body) = app
        .post("/api/accounts", &json!({ "label": "spare" }))
        .await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"]["details"]["field"], "label");
    assert_eq!(body["error"]["details"]["existing"]["id"], spare["id"]);
    let other_path = format!("/api/accounts/{}", other["id"].as_str().unwrap());
    let (status, body) = app.patch(&other_path, &json!({ "label": "spare" })).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"]["code"], "duplicate_label");
    assert_eq!(body["error"]["details"]["existing"]["id"], spare["id"]);

    // One Telegram user is one account.
    let (status, body) = app
        .post(
            "/api/accounts",
            &json!({ "label": "third", "telegram_user_id": 555 }),
        )
        .await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"]["code"], "duplicate_telegram_user_id");
    assert_eq!(body["error"]["details"]["field"], "telegram_user_id");
    assert_eq!(body["error"]["details"]["existing"]["id"], spare["id"]);
    let (status, body) = app
        .patch(&other_path, &json!({ "telegram_user_id": 555 }))
        .await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"]["details"]["existing"]["id"], spare["id"]);

    // tracked_users.username, and tracked_users.telegram_user_id for a user tracked by name.
    let carol = app.track("carol_x").await;
    for body in [
        json!({ "username": "@Carol_X" }),
        json!({ "telegram_user_id": 1003 }),
    ] {
        let (status, answer) = app.post("/api/tracked-users", &body).await;
        assert_eq!(status, 409, "{body}: {answer}");
        assert_eq!(answer["error"]["code"], "already_tracked");
        assert_eq!(answer["error"]["details"]["existing"]["id"], carol.as_str());
    }

    // telegram_users.telegram_user_id.
    let (status, person) = app
        .post("/api/telegram-users", &json!({ "telegram_user_id": 42 }))
        .await;
    assert_eq!(status, 201, "{person}");
    let (status, body) = app
        .post(
            "/api/telegram-users",
            &json!({ "telegram_user_id": 42, "first_name": "Again" }),
        )
        .await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"]["details"]["field"], "telegram_user_id");
    assert_eq!(body["error"]["details"]["existing"]["id"], person["id"]);
}

/// The file declares a webhook; the API cannot make a second one with its name.
#[actix_rt::test(system = "tgwatch_testkit::harness::TestSystem")]
async fn a_webhook_name_the_file_declared_is_a_409_through_the_api() {
    let secret = tgwatch_core::signing::SigningSecret::generate().expose();
    let (app, _path) = spawn_app_watching(USERS, |url| {
        config_file(
            url,
            &format!(
                "[[webhooks.endpoints]]\nname = \"ops\"\nurl = \"http://127.0.0.1:9/ops\"\nsecret = \"{secret}\"\n"
            ),
        )
    })
    .await;
    let hooks = app
        .eventually("/api/webhooks", WAIT, |body| {
            items(body).iter().any(|hook| hook["name"] == "ops")
        })
        .await;
    let declared = items(&hooks)[0].clone();
    let (status, body) = app
        .post(
            "/api/webhooks",
            &json!({ "url": "http://127.0.0.1:9/other", "name": "ops" }),
        )
        .await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"]["code"], "duplicate_name");
    assert_eq!(body["error"]["details"]["field"], "name");
    assert_eq!(body["error"]["details"]["existing"]["id"], declared["id"]);
    assert_eq!(body["error"]["details"]["existing"]["source"], "config");
}

/// The database itself tells a duplicate apart from a failure, on SQLite and on PostgreSQL,
/// and the API answers it as a conflict naming the field.
#[actix_rt::test(system = "tgwatch_testkit::harness::TestSystem")]
async fn the_database_names_the_unique_index_a_write_ran_into() {
    let (db, _dir) = common::migrated_database().await;
    let now = chrono::Utc::now();
    let hook = || NewWebhook {
        name: Some("night shift".into()),
        url: "http://127.0.0.1:9/".into(),
        event_types: vec!["all".into()],
        tracked_user_id: None,
        channel_id: None,
        secret: "whsec_x".into(),
        source: tgwatch_core::config::Origin::Api,
    };
    storage::webhooks::create(&db, hook(), now).await.unwrap();
    let error = storage::webhooks::create(&db, hook(), now)
        .await
        .unwrap_err();
    let violation = error.unique_violation().expect("a unique violation");
    assert!(violation.is("webhooks", "name"), "{violation:?}");

    let account = || NewAccount {
        label: "main".into(),
        phone: None,
        username: None,
        telegram_user_id: None,
        api_id: None,
        max_targets: None,
        max_channels: None,
        status: None,
    };
    storage::accounts::create(&db, account(), now)
        .await
        .unwrap();
    let error = storage::accounts::create(&db, account(), now)
        .await
        .unwrap_err();
    assert!(
        error
            .unique_violation()
            .is_some_and(|violation| violation.is("accounts", "label")),
        "{error}"
    );
    let answer = tgwatch_service::http::error::ApiError::from(error);
    assert_eq!(answer.status.as_u16(), 409);
    assert_eq!(answer.code, "duplicate");
    assert_eq!(answer.details.unwrap()["field"], "label");

    // Anything else is not a duplicate.
    let gone = storage::StorageError::Unavailable;
    assert!(gone.unique_violation().is_none());
    assert_eq!(
        tgwatch_service::http::error::ApiError::from(gone)
            .status
            .as_u16(),
        503
    );
}

/// Removed from config.toml, tracked again through the API: the API owns the row now, a later
/// save of the file leaves it alone, and the choices made before are kept.
#[actix_rt::test(system = "tgwatch_testkit::harness::TestSystem")]
async fn a_user_tracked_again_through_the_api_is_never_untracked_by_the_file() {
    let declared = "[[tracked_users]]\nusername = \"alice_w\"\nnotify = true\n";
    let (app, path) = spawn_app_watching(USERS, |url| config_file(url, declared)).await;
    let url = app.database_url.clone();
    let listed = app
        .eventually("/api/tracked-users?username=alice_w", WAIT, |body| {
            items(body)
                .first()
                .is_some_and(|user| user["is_active"] == true && user["source"] == "config")
        })
        .await;
    let alice = items(&listed)[0].clone();
    assert_eq!(alice["notify"], true);
    let alice_path = format!("/api/tracked-users/{}", alice["id"].as_str().unwrap());

    std::fs::write(&path, config_file(&url, "")).unwrap();
    app.eventually(&alice_path, WAIT, |user| user["is_active"] == false)
        .await;

    let (status, again) = app
        .post("/api/tracked-users", &json!({ "username": "alice_w" }))
        .await;
    assert_eq!(status, 201, "{again}");
    assert_eq!(again["id"], alice["id"], "the same record, history kept");
    assert_eq!(again["source"], "api");
    assert_eq!(again["notify"], true, "a choice made before is kept");

    // An unrelated save of the file.
    std::fs::write(
        &path,
        config_file(&url, "[[accounts]]\nlabel = \"second\"\n"),
    )
    .unwrap();
    app.eventually("/api/accounts", WAIT, |body| {
        items(body)
            .iter()
            .any(|account| account["label"] == "second")
    })
    .await;
    let (_, after) = app.get(&alice_path).await;
    assert_eq!(after["is_active"], true, "{after}");
    assert_eq!(after["source"], "api");
    assert_eq!(after["notify"], true);
}

/// A new account over MTProto is not logged in: the answer says so. A phone is a phone, and a
/// login code or password has a bound.
#[actix_rt::test(system = "tgwatch_testkit::harness::TestSystem")]
async fn a_new_account_answers_its_real_status_and_its_phone_and_login_input_are_bounded() {
    let sandbox = tgwatch_sandbox::Sandbox::start().await.unwrap();
    let app = spawn_mtproto_app(&sandbox, |_| {}).await;
    let (status, created) = app
        .post(
            "/api/accounts",
            &json!({ "label": "fresh", "phone": "+15550003000" }),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["status"], "inactive", "{created}");
    assert!(
        created["status_reason"]
            .as_str()
            .unwrap()
            .contains("not logged in"),
        "{created}"
    );
    let (_, stored) = app
        .get(&format!(
            "/api/accounts/{}",
            created["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(stored["status"], created["status"]);

    for phone in [json!("hello"), json!("1".repeat(60_000)), json!("+1 555")] {
        let (status, body) = app
            .post("/api/accounts", &json!({ "label": "bad", "phone": phone }))
            .await;
        assert_eq!(status, 422, "{body}");
        assert_eq!(body["error"]["details"]["field"], "phone");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains("7 to 15 digits"), "{message}");
        assert!(message.len() < 200, "the error does not echo the input");
    }
    let (_, accounts) = app.get("/api/accounts").await;
    assert_eq!(items(&accounts).len(), 1, "{accounts}");

    // What a login takes is bounded the same way, and the error says the bound.
    let login = format!("/api/accounts/{}/login", created["id"].as_str().unwrap());
    let (status, body) = app
        .post(&format!("{login}/phone"), &json!({ "phone": "hello" }))
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["details"]["field"], "phone");
    let (status, body) = app
        .post(
            &format!("{login}/code"),
            &json!({ "code": "1".repeat(60_000) }),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("at most 10"),
        "{body}"
    );
    let (status, body) = app
        .post(
            &format!("{login}/password"),
            &json!({ "password": "p".repeat(2_000) }),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("1 to 1024"),
        "{body}"
    );
}

/// Two requests for one channel at once: one joins and stores it, the other is told it is
/// monitored; Telegram sees one join per channel.
#[actix_rt::test(system = "tgwatch_testkit::harness::TestSystem")]
async fn one_channel_asked_for_twice_at_once_is_joined_once() {
    const CHANNELS: i64 = 3;
    let sandbox = tgwatch_sandbox::Sandbox::start().await.unwrap();
    let account = sandbox.add_account(5000, 50, None, "Watcher").unwrap();
    for index in 0..CHANNELS {
        let name = format!("news_{index}");
        sandbox
            .add_channel(101 + index, 1001 + index, Some(&name), &name, "")
            .unwrap();
    }
    let app = spawn_mtproto_app(&sandbox, |_| {}).await;
    add_logged_in_account(&app, &sandbox, account, "main", 10).await;
    let joins_before = sandbox.calls("channels.joinChannel");

    for index in 0..CHANNELS {
        let name = format!("@news_{index}");
        let answers = twice(&app, "/api/channels", &json!({ "channel": name })).await;
        let channel = one_created_one_conflict(&name, &answers);
        assert_eq!(answers[1].1["error"]["code"], "already_monitored");
        let (_, assignments) = app
            .get(&format!(
                "/api/channels/{}/assignments",
                channel["id"].as_str().unwrap()
            ))
            .await;
        assert_eq!(items(&assignments).len(), 1, "{assignments}");
    }
    assert_eq!(
        sandbox.calls("channels.joinChannel") - joins_before,
        CHANNELS as u64,
        "one join per channel"
    );
    let (_, listed) = app.get("/api/channels").await;
    assert_eq!(items(&listed).len(), CHANNELS as usize, "{listed}");
}

/// A watched configuration file for the scripted service: `extra` is appended.
fn config_file(database_url: &str, extra: &str) -> String {
    format!(
        "[database]\nurl = \"{database_url}\"\n\
         [http]\nbind = \"127.0.0.1:0\"\nadmin_token = \"{TOKEN}\"\n\
         [telegram]\nclock_speed = {speed}\n\
         [webhooks]\nallow_private_addresses = true\n\
         [reload]\ninterval_ms = 50\n\
         [[accounts]]\nlabel = \"main\"\n\
         {extra}",
        speed = common::SPEED,
    )
}
