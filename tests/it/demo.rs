//! `tgwatch demo` as a new user meets it: the service over MTProto against the built-in sandbox,
//! people coming online and the demo channels' posts, edits and deletions stored, the bot's
//! notifications in the demo chat, webhooks delivered to the receiver on 127.0.0.1, a week of
//! history, and every login path, all seen through the admin API. (Always SQLite: the demo makes
//! its own database file.)

use crate::common;

use std::time::Duration;

use common::{Api, TOKEN};
use serde_json::{Value, json};
use tgwatch_core::{clock::Clock, config::Secret};
use tgwatch_sandbox::UserStatus;
use tgwatch_testkit::demo::{self, DemoWorld};

/// Long enough for start-up and a few of the channels' beats on a loaded machine.
const PATIENCE: Duration = Duration::from_secs(30);

/// The demo on a random port with the tests' admin token, serving.
async fn start_demo(tweak: impl FnOnce(&mut demo::Demo)) -> (Api, DemoWorld, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let speed = 60.0;
    let mut demo = demo::demo(dir.path(), "127.0.0.1:0".parse().unwrap(), speed);
    // The API as every test talks to it (the demo would make up a token of its own).
    demo.config.http.admin_token = Some(Secret::new(TOKEN));
    tweak(&mut demo);
    let (app, world) = demo::start(demo, Clock::fast(speed)).await.expect("demo");
    let api = Api {
        base: format!("http://127.0.0.1:{}", app.port()),
        client: reqwest::Client::new(),
    };
    actix_rt::spawn(app.run_until_stopped());
    (api, world, dir)
}

#[actix_rt::test(system = "tgwatch_testkit::harness::TestSystem")]
async fn the_demo_tracks_people_and_stores_its_channels_posts_edits_and_deletions() {
    let (api, _world, _dir) = start_demo(|demo| {
        demo.newsroom_beat = Duration::from_millis(40);
    })
    .await;

    api.eventually("/api/online-statuses?is_online=true", PATIENCE, |body| {
        body["items"]
            .as_array()
            .is_some_and(|items| !items.is_empty())
    })
    .await;

    // Both demo channels joined.
    let channels = api
        .eventually("/api/channels", PATIENCE, |body| {
            body["items"].as_array().is_some_and(|items| {
                items.len() == 2 && items.iter().all(|channel| channel["status"] == "active")
            })
        })
        .await;
    for channel in channels["items"].as_array().unwrap() {
        let id = channel["id"].as_str().unwrap();
        // Posts, an edit and a deletion.
        api.eventually(
            &format!("/api/channels/{id}/messages?limit=100"),
            PATIENCE,
            |body| {
                let items = body["items"].as_array().cloned().unwrap_or_default();
                items.len() >= 5
                    && items
                        .iter()
                        .any(|message| message["version"].as_i64() > Some(1))
                    && items.iter().any(|message| message["is_deleted"] == true)
            },
        )
        .await;
    }

    // Posts are dated on the service clock (60x), like every other time the service shows: a
    // post made after a moment of service time is dated after it, and not after the service's
    // now.
    let service_now = || async {
        let (status, health) = api.get("/api/health").await;
        assert_eq!(status, 200, "{health}");
        time(&health["service_time"])
    };
    let before = service_now().await;
    let id = channels["items"][0]["id"].as_str().unwrap();
    let newest = api
        .eventually(
            &format!("/api/channels/{id}/messages?limit=1&order=desc"),
            PATIENCE,
            |body| {
                body["items"][0]["date"]
                    .as_str()
                    .is_some_and(|_| time(&body["items"][0]["date"]) >= before)
            },
        )
        .await;
    let after = service_now().await;
    assert!(time(&newest["items"][0]["date"]) <= after, "{newest}");
}

/// The bot, the webhooks and the past: a person coming online reaches the demo chat through
/// the sandbox Bot API and the receiver on 127.0.0.1 as a signed webhook; every person who shows
/// the status has a week of sessions from the first second.
#[actix_rt::test(system = "tgwatch_testkit::harness::TestSystem")]
async fn the_demo_notifies_its_chat_delivers_webhooks_to_loopback_and_has_a_week_of_history() {
    let (api, world, _dir) = start_demo(|_| {}).await;
    assert!(world.past_sessions > 24 * 7, "{}", world.past_sessions);

    // A week of history at once: statistics over 7 days of a person who shows the status.
    let people = api
        .eventually("/api/tracked-users?limit=100", PATIENCE, |body| {
            body["items"]
                .as_array()
                .is_some_and(|items| items.len() == 24)
        })
        .await;
    let person = people["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|person| person["username"] == "user00001")
        .expect("user00001 is tracked");
    let id = person["id"].as_str().unwrap();
    let (status, stats) = api
        .get(&format!("/api/tracked-users/{id}/stats?hours=168"))
        .await;
    assert_eq!(status, 200, "{stats}");
    assert!(stats["session_count"].as_u64() >= Some(7), "{stats}");
    let first = time(&stats["first_online"]);
    let (_, health) = api.get("/api/health").await;
    let now = time(&health["service_time"]);
    assert!(
        now - first >= chrono::Duration::days(6),
        "the past reaches back a week: {first} (now {now})"
    );
    let hours_with_time = stats["hourly_online_seconds"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|seconds| seconds.as_i64() > Some(0))
        .count();
    assert!(hours_with_time >= 3, "{stats}");

    // user00000 is a contact whose changes Telegram pushes, followed with `notify`: the demo
    // chat hears of it through the sandbox Bot API.
    world
        .sandbox
        .set_user_status(
            100_000,
            UserStatus::Online {
                expires: i32::try_from(chrono::Utc::now().timestamp() + 3_600).unwrap(),
            },
        )
        .expect("status");
    let sent = world
        .bot
        .wait_for(PATIENCE, |sent| {
            sent.iter().any(|message| {
                message.chat_id == demo::DEMO_ADMIN
                    && message
                        .text
                        .as_deref()
                        .is_some_and(|text| text.starts_with("🟢 @user00000 is online"))
            })
        })
        .await;
    assert!(
        sent.iter()
            .any(|message| message.chat_id == demo::DEMO_ADMIN
                && message
                    .text
                    .as_deref()
                    .is_some_and(|text| text.starts_with("🟢 @user00000"))),
        "{sent:?}"
    );

    // The same event, signed, at the receiver on 127.0.0.1, and in the endpoint's deliveries.
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let seen = world.receiver.deliveries();
        if seen
            .latest
            .iter()
            .any(|delivery| delivery.event_type.as_deref() == Some("user_online"))
        {
            assert_eq!(seen.valid_signatures, seen.total, "{seen:?}");
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{seen:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (_, hooks) = api.get("/api/webhooks").await;
    let hook = hooks["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|hook| hook["name"] == demo::DEMO_WEBHOOK)
        .expect("the demo's endpoint");
    assert_eq!(hook["url"], world.receiver.hook_url.as_str());
    let hook_id = hook["id"].as_str().unwrap();
    api.eventually(
        &format!("/api/webhooks/{hook_id}/deliveries"),
        PATIENCE,
        |body| {
            body["items"].as_array().is_some_and(|items| {
                items
                    .iter()
                    .any(|item| item["status_code"] == 204 && item["success"] == true)
            })
        },
    )
    .await;
    // The receiver's page shows them too.
    let page: Value = reqwest::get(&world.receiver.page_url)
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(page["total"].as_u64() > Some(0), "{page}");
}

/// Each logged-out account logs in its own way: the code of a test-DC phone, the same with the
/// 2FA password, and a QR code scanned with the demo phone (a route only the demo serves and
/// documents).
#[actix_rt::test(system = "tgwatch_testkit::harness::TestSystem")]
async fn every_login_path_of_the_demo_completes() {
    let (api, world, _dir) = start_demo(|_| {}).await;
    let id_of = |label: &str| {
        world
            .login_accounts
            .iter()
            .find(|(account, _)| account.label == label)
            .map(|(_, id)| id.to_string())
            .expect("a login account")
    };
    let logged_in = |id: String| {
        let api = &api;
        async move {
            api.eventually(
                &format!("/api/accounts/{id}/login/status"),
                PATIENCE,
                |body| body["state"] == "logged_in",
            )
            .await
        }
    };

    // The phone's code is its DC digit five times, as on Telegram's test DCs.
    let id = id_of("login-by-code");
    let (status, body) = api
        .post(&format!("/api/accounts/{id}/login/phone"), &json!({}))
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = api
        .post(
            &format!("/api/accounts/{id}/login/code"),
            &json!({"code": "22222"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    logged_in(id).await;

    let id = id_of("login-with-2fa");
    api.post(&format!("/api/accounts/{id}/login/phone"), &json!({}))
        .await;
    let (_, body) = api
        .post(
            &format!("/api/accounts/{id}/login/code"),
            &json!({"code": "22222"}),
        )
        .await;
    assert_eq!(body["state"], "password_needed", "{body}");
    let (status, body) = api
        .post(
            &format!("/api/accounts/{id}/login/password"),
            &json!({"password": "demo-2fa-password"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    logged_in(id).await;

    // The demo documents its scan route; the dashboard shows its button because of it.
    let (_, document) = api.get("/api/openapi.json").await;
    assert!(
        document["paths"]["/api/accounts/{id}/login/qr/demo-scan"]["post"].is_object(),
        "{}",
        document["paths"]
    );
    let id = id_of("login-by-qr");
    // Nothing to scan before the QR code is shown.
    let (status, body) = api
        .post(
            &format!("/api/accounts/{id}/login/qr/demo-scan"),
            &json!({}),
        )
        .await;
    assert_eq!(status, 409, "{body}");
    let (status, qr) = api.get(&format!("/api/accounts/{id}/login/qr")).await;
    assert_eq!(status, 200, "{qr}");
    let (status, body) = api
        .post(
            &format!("/api/accounts/{id}/login/qr/demo-scan"),
            &json!({}),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    logged_in(id.clone()).await;
    let (_, account) = api.get(&format!("/api/accounts/{id}")).await;
    assert_eq!(account["is_authorized"], true, "{account}");
}

fn time(value: &serde_json::Value) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339(value.as_str().expect("a timestamp"))
        .expect("RFC 3339")
        .to_utc()
}

/// `tgwatch demo --seconds N` in a temporary folder of its own: what it leaves there.
fn run_demo(extra: &[&str]) -> (tempfile::TempDir, std::process::Output) {
    let tmp = tempfile::tempdir().expect("temp dir");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_tgwatch"))
        .args(["demo", "--seconds", "3", "--bind", "127.0.0.1:0"])
        .args(extra)
        .env("TMPDIR", tmp.path())
        .output()
        .expect("run tgwatch demo");
    (tmp, output)
}

fn files_in(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(dir)
        .expect("read dir")
        .map(|entry| entry.expect("entry").path())
        .collect()
}

#[test]
fn the_demo_exits_cleanly_and_removes_its_files_unless_kept() {
    let (tmp, output) = run_demo(&[]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    // Leaving the runtime with a task that holds a database connection once panicked in sqlx.
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(stdout.contains("tgwatch demo:"), "it ran: {stdout}");
    // The banner: the dashboard with its token, the fake bot token, the login paths, and
    // quoted curl lines.
    let token = stdout
        .split("(token: ")
        .nth(1)
        .and_then(|rest| rest.split(')').next())
        .expect("the admin token is printed");
    assert!(
        stdout.contains(&format!("/#token={token}")),
        "the dashboard URL: {stdout}"
    );
    for expected in [
        demo::DEMO_BOT_TOKEN,
        "phone +9996621001, code 22222",
        "2FA password demo-2fa-password",
        "Scan with the demo phone",
        "/login/qr/demo-scan",
        "week of history",
        "curl -H 'Authorization: Bearer ",
        "/api/tracked-users?online=true'",
    ] {
        assert!(stdout.contains(expected), "{expected:?} in {stdout}");
    }
    // Periodic jobs that find nothing to do stay quiet: the banner is not buried.
    assert!(!stdout.contains("account health checked"), "{stdout}");
    assert!(!stderr.contains("account health checked"), "{stderr}");
    assert_eq!(
        files_in(tmp.path()),
        Vec::<std::path::PathBuf>::new(),
        "{stdout}"
    );

    let (tmp, output) = run_demo(&["--keep"]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    let kept = files_in(tmp.path());
    assert!(
        kept.iter()
            .any(|file| file.extension().is_some_and(|e| e == "db")),
        "{kept:?}"
    );
    assert!(
        kept.iter()
            .any(|file| file.extension().is_some_and(|e| e == "key")),
        "{kept:?}"
    );
    for file in &kept {
        assert!(
            stdout.contains(&file.display().to_string()),
            "{file:?}: {stdout}"
        );
    }
}
