//! Operating the service: `/metrics`, config.toml reloaded while the service runs, and the
//! scheduled jobs (log retention).

use crate::common;

use std::{collections::BTreeMap, sync::atomic::Ordering, time::Duration};

use common::{TOKEN, receiver::Behaviour, receiver::Receiver, spawn_app, spawn_app_watching};
use sea_orm::{
    ConnectionTrait, Database,
    sea_query::{Alias, Query},
};
use serde_json::{Value, json};
use tgwatch_core::signing::SigningSecret;

/// Alice and Bob come online now and then; Carol is tracked through the API.
pub(crate) const USERS: &str = r#"
[[users]]
id = 1001
username = "alice_w"
online = [[0, 300], [900, 1200]]

[[users]]
id = 1002
username = "bob_smith"
online = [[100, 400]]

[[users]]
id = 1003
username = "carol_api"
online = [[0, 50]]
"#;

/// Account "main" gets a FLOOD_WAIT of 60 s at second 600.
const FLOOD_WAIT: &str = r#"
[[flood_waits]]
account = "main"
at = 600
seconds = 60
"#;

/// One sample line of the text format.
#[derive(Debug)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// A strict reader of the Prometheus text format: every line is a HELP, a TYPE or a sample of
/// a family declared before it; label values are quoted and escaped; values are numbers.
fn parse_exposition(text: &str) -> (BTreeMap<String, String>, Vec<Sample>) {
    assert!(text.ends_with('\n'), "the text ends with a line feed");
    let mut types = BTreeMap::new();
    let mut helps = BTreeMap::new();
    let mut samples = Vec::new();
    let is_name = |name: &str| {
        !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
            && !name.starts_with(|c: char| c.is_ascii_digit())
    };
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').expect("HELP name text");
            assert!(is_name(name), "{line}");
            assert!(!help.is_empty(), "{line}");
            assert!(
                helps.insert(name.to_owned(), help.to_owned()).is_none(),
                "one HELP: {line}"
            );
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("TYPE name kind");
            assert!(is_name(name), "{line}");
            assert!(["counter", "gauge", "histogram"].contains(&kind), "{line}");
            assert!(helps.contains_key(name), "HELP before TYPE: {line}");
            assert!(
                types.insert(name.to_owned(), kind.to_owned()).is_none(),
                "one TYPE: {line}"
            );
            continue;
        }
        assert!(!line.starts_with('#'), "no other comments: {line}");
        let (series, value) = line.rsplit_once(' ').expect("sample: series value");
        let value = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            "NaN" => f64::NAN,
            number => number
                .parse::<f64>()
                .unwrap_or_else(|_| panic!("value of {line}")),
        };
        let (name, labels) = match series.split_once('{') {
            None => (series, BTreeMap::new()),
            Some((name, rest)) => {
                let body = rest.strip_suffix('}').expect("labels end with }");
                (name, parse_labels(body, line))
            }
        };
        assert!(is_name(name), "{line}");
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|suffix| {
                name.strip_suffix(suffix)
                    .filter(|base| types.get(*base).is_some_and(|t| t == "histogram"))
            })
            .unwrap_or(name);
        assert!(
            types.contains_key(family),
            "sample of a declared family: {line}"
        );
        samples.push(Sample {
            name: name.to_owned(),
            labels,
            value,
        });
    }
    (types, samples)
}

fn parse_labels(mut body: &str, line: &str) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    while !body.is_empty() {
        let (name, rest) = body.split_once("=\"").expect("label=\"value\"");
        let mut value = String::new();
        let mut chars = rest.char_indices();
        let end = loop {
            match chars
                .next()
                .unwrap_or_else(|| panic!("unterminated label value: {line}"))
            {
                (_, '\\') => match chars.next().expect("escape") {
                    (_, '\\') => value.push('\\'),
                    (_, '"') => value.push('"'),
                    (_, 'n') => value.push('\n'),
                    (_, other) => panic!("bad escape \\{other} in {line}"),
                },
                (index, '"') => break index,
                (_, c) => value.push(c),
            }
        };
        labels.insert(name.to_owned(), value);
        body = &rest[end + 1..];
        body = body.strip_prefix(',').unwrap_or(body);
    }
    labels
}

fn value_of(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    samples
        .iter()
        .find(|s| {
            s.name == name
                && labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|s| s.value)
}

async fn scrape(app: &common::TestApp, token: Option<&str>) -> (u16, String, String) {
    let mut request = app.client.get(format!("{}/metrics", app.base));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("scrape");
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    (status, content_type, response.text().await.expect("body"))
}

#[actix_rt::test(system = "tgwatch_testkit::harness::TestSystem")]
async fn metrics_count_polls_calls_flood_waits_events_and_writes() {
    let app = spawn_app(&format!("{USERS}{FLOOD_WAIT}"), |_| {}).await;
    for user in ["alice_w", "bob_smith", "carol_api"] {
        app.track(user).await;
    }
    app.wait_until_second(1000).await;

    // No token needed by default, like /api/health.
    let (status, content_type, text) = scrape(&app, None).await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(content_type, "text/plain; version=0.0.4; charset=utf-8");
    let (types, samples) = parse_exposition(&text);
    assert_eq!(types["tgwatch_events_total"], "counter");
    assert_eq!(types["tgwatch_accounts"], "gauge");
    assert_eq!(types["tgwatch_db_write_duration_seconds"], "histogram");
    assert_eq!(types["tgwatch_poll_lateness_seconds"], "histogram");

    let counted = &app.telegram.counts();
    let calls = value_of(
        &samples,
        "tgwatch_telegram_calls_total",
        &[("method", "users.getUsers")],
    )
    .expect("getUsers calls");
    let polled = value_of(&samples, "tgwatch_users_polled_total", &[]).expect("users polled");
    // Calls refused by the FLOOD_WAIT are counted by the service, not by Telegram's answers.
    assert!(calls >= 3.0, "several poll rounds: {calls}");
    assert!(
        calls >= counted.get_users_calls.load(Ordering::Relaxed) as f64,
        "{calls} vs Telegram's {counted:?}"
    );
    assert!(polled >= calls, "each call asks about at least one user");
    // Every user asked about had their lateness taken as the call went out (a batch of at most
    // three may fall between the two reads of the scrape).
    let lateness_count =
        value_of(&samples, "tgwatch_poll_lateness_seconds_count", &[]).expect("lateness count");
    assert!(
        (lateness_count - polled).abs() <= 3.0,
        "{lateness_count} polls timed, {polled} users polled"
    );
    assert!(
        polled <= calls * 3.0,
        "at most the three tracked users per call"
    );
    assert_eq!(
        value_of(
            &samples,
            "tgwatch_telegram_calls_total",
            &[("method", "contacts.resolveUsername")]
        ),
        Some(3.0),
        "one resolution per tracked user"
    );
    let flood_waits = value_of(
        &samples,
        "tgwatch_flood_waits_total",
        &[("account", "main")],
    )
    .expect("flood wait of main");
    assert!(flood_waits >= 1.0);
    let flood_seconds = value_of(
        &samples,
        "tgwatch_flood_wait_seconds_total",
        &[("account", "main")],
    )
    .expect("flood wait seconds");
    assert!(
        (1.0..=60.0 * flood_waits).contains(&flood_seconds),
        "{flood_seconds}"
    );

    let online = value_of(&samples, "tgwatch_events_total", &[("type", "user_online")])
        .expect("user_online counted");
    assert!(online >= 2.0, "alice, bob and carol came online: {online}");
    assert_eq!(
        value_of(&samples, "tgwatch_events_total", &[("type", "new_message")]),
        Some(0.0),
        "every event type is listed"
    );
    assert_eq!(
        value_of(&samples, "tgwatch_accounts", &[("status", "active")]),
        Some(1.0)
    );
    assert_eq!(
        value_of(&samples, "tgwatch_actors_running", &[("kind", "target")]),
        Some(3.0)
    );
    assert_eq!(value_of(&samples, "tgwatch_database_up", &[]), Some(1.0));

    // The histogram: cumulative buckets ending in +Inf, which equals _count.
    let buckets: Vec<(f64, f64)> = samples
        .iter()
        .filter(|s| s.name == "tgwatch_db_write_duration_seconds_bucket")
        .map(|s| {
            let le = s.labels["le"].as_str();
            let bound = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().expect("le")
            };
            (bound, s.value)
        })
        .collect();
    assert!(buckets.len() >= 2);
    assert!(
        buckets
            .windows(2)
            .all(|w| w[0].0 < w[1].0 && w[0].1 <= w[1].1),
        "{buckets:?}"
    );
    let (last_bound, last_count) = *buckets.last().expect("+Inf");
    assert!(last_bound.is_infinite());
    let count = value_of(&samples, "tgwatch_db_write_duration_seconds_count", &[]).expect("count");
    let sum = value_of(&samples, "tgwatch_db_write_duration_seconds_sum", &[]).expect("sum");
    assert_eq!(last_count, count);
    assert!(count >= 3.0, "several batches written: {count}");
    assert!(
        sum > 0.0 && sum < count * 10.0,
        "plausible write times: {sum} s for {count}"
    );

    // With http.metrics_public = false the admin token is needed.
    let private = spawn_app(USERS, |config| config.http.metrics_public = false).await;
    let (status, _, _) = scrape(&private, None).await;
    assert_eq!(status, 401);
    let (status, _, _) = scrape(&private, Some("wrong-token-0123456789")).await;
    assert_eq!(status, 401);
    let (status, _, text) = scrape(&private, Some(TOKEN)).await;
    assert_eq!(status, 200);
    parse_exposition(&text);
}

/// The file the reload test starts from and edits: `extra` is appended.
pub(crate) fn config_file(database_url: &str, extra: &str) -> String {
    format!(
        r#"
[database]
url = "{database_url}"

[http]
bind = "127.0.0.1:0"
admin_token = "{TOKEN}"

[telegram]
clock_speed = {speed}

[presence]
batch_delay_seconds = 5
flush_interval_ms = 50

[webhooks]
allow_private_addresses = true
poll_interval_ms = 20

[reload]
interval_ms = 50

[[accounts]]
label = "main"
{extra}"#,
        speed = common::SPEED,
    )
}

/// 1-based number of the line that is exactly `line`.
fn line_of(text: &str, line: &str) -> usize {
    text.lines().position(|l| l == line).expect("line in file") + 1
}

fn items(body: &Value) -> Vec<Value> {
    body["items"].as_array().expect("items").clone()
}

#[actix_rt::test(system = "tgwatch_testkit::harness::TestSystem")]
async fn config_edits_apply_live_and_broken_edits_change_nothing() {
    let receiver = Receiver::start(Behaviour::Ok);
    let secret = SigningSecret::generate().expose();
    let (app, path) = spawn_app_watching(USERS, |url| config_file(url, "")).await;
    let database_url = app.database_url.clone();
    let write = |extra: &str| std::fs::write(&path, config_file(&database_url, extra)).unwrap();

    let (_, health) = app.get("/api/health").await;
    assert_eq!(health["config"]["watching"], true, "{health}");
    assert_eq!(health["config"]["last_error"], Value::Null);

    // Made through the API: the file never touches them.
    let carol = app.track("carol_api").await;
    let (status, api_hook) = app
        .post(
            "/api/webhooks",
            &json!({"url": receiver.url, "name": "api-hook"}),
        )
        .await;
    assert_eq!(status, 201, "{api_hook}");

    // Add a user, an endpoint and an account.
    let added = format!(
        r#"
[[accounts]]
label = "second"
max_targets = 5

[[tracked_users]]
username = "alice_w"
account = "main"

[[webhooks.endpoints]]
name = "cfg-hook"
url = "{url}"
events = ["user_online"]
secret = "{secret}"
"#,
        url = receiver.url
    );
    write(&added);
    let listed = app
        .eventually(
            "/api/tracked-users?username=alice_w",
            Duration::from_secs(10),
            |b| {
                items(b)
                    .first()
                    .is_some_and(|u| u["is_active"] == true && u["source"] == "config")
            },
        )
        .await;
    let alice = items(&listed)[0].clone();
    let hooks = app
        .eventually("/api/webhooks", Duration::from_secs(10), |b| {
            items(b).iter().any(|w| w["name"] == "cfg-hook")
        })
        .await;
    assert_eq!(items(&hooks).len(), 2, "{hooks}");
    let accounts = app
        .eventually("/api/accounts", Duration::from_secs(10), |b| {
            items(b)
                .iter()
                .any(|a| a["label"] == "second" && a["source"] == "config")
        })
        .await;
    let second = items(&accounts)
        .into_iter()
        .find(|a| a["label"] == "second")
        .expect("account from the file");
    assert_eq!(second["max_targets"], 5);

    // A changed limit applies.
    write(&added.replace("max_targets = 5", "max_targets = 7"));
    app.eventually(
        &format!("/api/accounts/{}", second["id"].as_str().unwrap()),
        Duration::from_secs(10),
        |a| a["max_targets"] == 7,
    )
    .await;
    let added = added.replace("max_targets = 5", "max_targets = 7");

    // Broken TOML: refused with its line, nothing changes.
    let broken = format!("{added}\n[[tracked_users]\nusername = \"bob_smith\"\n");
    write(&broken);
    let health = app
        .eventually("/api/health", Duration::from_secs(10), |h| {
            !h["config"]["last_error"].is_null()
        })
        .await;
    let error = &health["config"]["last_error"];
    let expected_line = line_of(&config_file(&database_url, &broken), "[[tracked_users]");
    assert_eq!(error["line"], json!(expected_line), "{error}");
    assert!(
        error["text"]
            .as_str()
            .unwrap()
            .contains(&format!("line {expected_line}")),
        "{error}"
    );
    let (_, logs) = app.get("/api/logs?level=error").await;
    assert!(
        items(&logs)
            .iter()
            .any(|l| l["message"].as_str().unwrap().contains("edit refused")),
        "{logs}"
    );

    // An unknown account label: refused with the line of the entry's `account`.
    let unknown =
        format!("{added}\n[[tracked_users]]\nusername = \"bob_smith\"\naccount = \"ghost\"\n");
    write(&unknown);
    let health = app
        .eventually("/api/health", Duration::from_secs(10), |h| {
            h["config"]["last_error"]["key"] == "tracked_users[1].account"
        })
        .await;
    let error = &health["config"]["last_error"];
    let ghost_line = line_of(&config_file(&database_url, &unknown), "account = \"ghost\"");
    assert_eq!(error["line"], json!(ghost_line), "{error}");
    assert!(
        error["message"].as_str().unwrap().contains("ghost"),
        "{error}"
    );
    let (_, bob) = app.get("/api/tracked-users?username=bob_smith").await;
    assert!(items(&bob).is_empty(), "a refused file adds nobody: {bob}");

    // Remove everything the file added, and change a key that needs a restart: the error
    // clears, the file's items stop, the API's stay.
    let mut file = config_file(&database_url, "");
    file = file.replace(
        "flush_interval_ms = 50",
        "flush_interval_ms = 50\ngap_seconds = 120",
    );
    std::fs::write(&path, file).unwrap();
    let health = app
        .eventually("/api/health", Duration::from_secs(10), |h| {
            h["config"]["last_error"].is_null()
        })
        .await;
    assert_eq!(
        health["config"]["restart_required"],
        json!(["presence.gap_seconds"])
    );
    let alice_id = alice["id"].as_str().unwrap();
    app.eventually(
        &format!("/api/tracked-users/{alice_id}"),
        Duration::from_secs(10),
        |u| u["is_active"] == false,
    )
    .await;
    let hooks = app
        .eventually("/api/webhooks", Duration::from_secs(10), |b| {
            !items(b).iter().any(|w| w["name"] == "cfg-hook")
        })
        .await;
    assert_eq!(items(&hooks).len(), 1);
    assert_eq!(
        items(&hooks)[0]["id"],
        api_hook["id"],
        "the API's endpoint stays"
    );
    let (_, carol) = app.get(&format!("/api/tracked-users/{carol}")).await;
    assert_eq!(carol["is_active"], true, "the API's user stays: {carol}");
    assert_eq!(carol["source"], "api");
    let second = app
        .eventually(
            &format!("/api/accounts/{}", second["id"].as_str().unwrap()),
            Duration::from_secs(10),
            |a| a["status"] == "inactive",
        )
        .await;
    assert_eq!(second["status_reason"], "removed from config.toml");
    let (_, main) = app.get("/api/accounts?status=active").await;
    assert_eq!(items(&main).len(), 1, "main stays: {main}");

    let (status, _, text) = scrape(&app, None).await;
    assert_eq!(status, 200);
    assert!(
        text.contains("tgwatch_config_reloads_total{result=\"rejected\"} 2\n"),
        "{text}"
    );
}

#[actix_rt::test(system = "tgwatch_testkit::harness::TestSystem")]
async fn an_emptied_file_is_refused_and_a_problem_names_its_cause_once() {
    let (app, path) = spawn_app_watching(USERS, |url| config_file(url, "")).await;
    let database_url = app.database_url.clone();
    let write = |extra: &str| std::fs::write(&path, config_file(&database_url, extra)).unwrap();
    let accounts = app
        .eventually("/api/accounts", Duration::from_secs(10), |b| {
            items(b).len() == 1
        })
        .await;
    let main = items(&accounts)[0]["id"].as_str().unwrap().to_owned();
    let (status, health) = app.get("/api/health").await;
    assert_eq!((status, &health["status"]), (200, &json!("ok")), "{health}");

    // A truncated file, then one of comments only: refused, said in health (200: the service
    // still serves), and nothing the file declared stops.
    for text in ["", "# tgwatch\n\n   \n# (deploy in progress)\n"] {
        std::fs::write(&path, text).unwrap();
        let health = app
            .eventually("/api/health", Duration::from_secs(10), |h| {
                !h["config"]["last_error"].is_null()
            })
            .await;
        assert_eq!(health["status"], "degraded", "{health}");
        let error = health["config"]["last_error"]["message"].as_str().unwrap();
        assert!(error.contains("empty or holds only comments"), "{error}");
        assert!(
            health["reasons"][0]
                .as_str()
                .unwrap()
                .contains("configuration file was refused"),
            "{health}"
        );
        let (_, account) = app.get(&format!("/api/accounts/{main}")).await;
        assert_eq!(account["status"], "active", "{account}");
        write("");
        app.eventually("/api/health", Duration::from_secs(10), |h| {
            h["config"]["last_error"].is_null() && h["status"] == "ok"
        })
        .await;
    }

    // The only account cannot work: a user the file adds cannot be tracked, and the problem
    // says why and names the user.
    let (status, body) = app
        .patch(
            &format!("/api/accounts/{main}"),
            &json!({"status": "inactive"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let alice = "\n[[tracked_users]]\nusername = \"alice_w\"\n";
    write(alice);
    let about_alice = |body: &Value| -> Vec<String> {
        items(body)
            .iter()
            .filter_map(|line| line["message"].as_str())
            .filter(|message| message.contains("@alice_w"))
            .map(str::to_owned)
            .collect()
    };
    let logs = app
        .eventually("/api/logs?level=error", Duration::from_secs(10), |b| {
            !about_alice(b).is_empty()
        })
        .await;
    let problem = &about_alice(&logs)[0];
    assert!(problem.contains("`main` is inactive"), "{problem}");
    assert!(!problem.contains("max_targets"), "{problem}");

    // An unrelated edit applies the file again: the same problem is not logged twice.
    let (_, before) = app.get("/api/health").await;
    write(&format!("{alice}\n[logs]\nretention_days = 20\n"));
    app.eventually("/api/health", Duration::from_secs(10), |h| {
        h["config"]["loaded_at"] != before["config"]["loaded_at"]
    })
    .await;
    let (_, logs) = app.get("/api/logs?level=error").await;
    assert_eq!(about_alice(&logs).len(), 1, "{logs}");
}

#[actix_rt::test(system = "tgwatch_testkit::harness::TestSystem")]
async fn health_shows_an_account_that_is_not_logged_in_as_not_running() {
    let sandbox = tgwatch_sandbox::Sandbox::start().await.expect("sandbox");
    let app = common::spawn_mtproto_app(&sandbox, |config| {
        config.accounts = vec![tgwatch_core::config::AccountConfig {
            label: "main".into(),
            phone: None,
            api_id: None,
            max_targets: 1000,
            max_channels: 100,
        }];
    })
    .await;
    let health = app
        .eventually("/api/health", Duration::from_secs(20), |h| {
            h["account_states"][0]["status"] == "inactive"
        })
        .await;
    let account = &health["account_states"][0];
    assert_eq!(account["running"], false, "{health}");
    assert_eq!(account["logged_in"], false, "{health}");
    assert!(
        account["status_reason"]
            .as_str()
            .unwrap()
            .contains("not logged in"),
        "{health}"
    );
}

#[actix_rt::test(system = "tgwatch_testkit::harness::TestSystem")]
async fn old_log_rows_are_deleted_in_batches_and_new_ones_kept() {
    let app = spawn_app(USERS, |config| {
        config.logs.retention_days = 30;
        config.logs.cleanup_batch_size = 100;
        // 600 service seconds: a second of real time.
        config.jobs.log_cleanup_interval_seconds = 600;
    })
    .await;
    let db = Database::connect(&app.database_url).await.expect("connect");
    let now = app.clock.now();
    let mut insert = Query::insert()
        .into_table(Alias::new("logs"))
        .columns([
            Alias::new("id"),
            Alias::new("created_at"),
            Alias::new("level"),
            Alias::new("message"),
        ])
        .to_owned();
    for n in 0..250 {
        let at = now - chrono::Duration::days(31) - chrono::Duration::minutes(n);
        insert.values_panic([
            uuid::Uuid::now_v7().into(),
            at.into(),
            "info".into(),
            format!("old-{n}").into(),
        ]);
    }
    for n in 0..3 {
        let at = now - chrono::Duration::days(29) + chrono::Duration::minutes(n);
        insert.values_panic([
            uuid::Uuid::now_v7().into(),
            at.into(),
            "info".into(),
            format!("recent-{n}").into(),
        ]);
    }
    db.execute(&insert).await.expect("insert logs");

    let all_logs = || async {
        let (_, body) = app.get("/api/logs?level=info&limit=1000").await;
        items(&body)
            .iter()
            .map(|l| l["message"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let messages = all_logs().await;
        if !messages.iter().any(|m| m.starts_with("old-")) {
            let recent = messages.iter().filter(|m| m.starts_with("recent-")).count();
            assert_eq!(recent, 3, "new rows are kept: {messages:?}");
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "old rows never deleted"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (_, _, text) = scrape(&app, None).await;
    assert!(text.contains("tgwatch_logs_deleted_total 250\n"), "{text}");
}

/// Every answer carries an `x-request-id`; an error object repeats it as `request_id`; a
/// caller's own id is kept when it is a short token and replaced otherwise.
#[actix_rt::test(system = "tgwatch_testkit::harness::TestSystem")]
async fn every_answer_carries_a_request_id_and_errors_repeat_it() {
    let app = common::spawn_app("", |_| {}).await;
    let send = |id: Option<&'static str>| {
        let mut request = app
            .client
            .get(format!("{}/api/tracked-users?limit=abc", app.base))
            .bearer_auth(common::TOKEN);
        if let Some(id) = id {
            request = request.header("x-request-id", id);
        }
        async move {
            let answer = request.send().await.expect("answer");
            let header = answer
                .headers()
                .get("x-request-id")
                .expect("x-request-id header")
                .to_str()
                .expect("ascii")
                .to_owned();
            let body: serde_json::Value = answer.json().await.expect("json");
            (header, body)
        }
    };
    let (first, body) = send(None).await;
    assert_eq!(first.len(), 32, "a new id: {first}");
    assert_eq!(body["error"]["request_id"], first.as_str(), "{body}");
    let (second, _) = send(None).await;
    assert_ne!(first, second, "each request has its own id");

    let (kept, body) = send(Some("trace-42.a_b")).await;
    assert_eq!(kept, "trace-42.a_b");
    assert_eq!(body["error"]["request_id"], "trace-42.a_b");
    let (replaced, _) = send(Some("forged\"} line")).await;
    assert_ne!(replaced, "forged\"} line");
    assert_eq!(replaced.len(), 32);

    // Refused by a middleware before any handler (no token; a URI over the limit): the id is
    // there too.
    let refused = app
        .client
        .get(format!("{}/api/logs", app.base))
        .send()
        .await
        .expect("answer");
    assert_eq!(refused.status().as_u16(), 401);
    let header = refused.headers()["x-request-id"]
        .to_str()
        .expect("ascii")
        .to_owned();
    let body: serde_json::Value = refused.json().await.expect("json");
    assert_eq!(body["error"]["request_id"], header.as_str(), "{body}");

    let long = app
        .client
        .get(format!("{}/api/logs?x={}", app.base, "a".repeat(40_000)))
        .bearer_auth(common::TOKEN)
        .send()
        .await
        .expect("answer");
    assert_eq!(long.status().as_u16(), 414);
    let header = long.headers()["x-request-id"]
        .to_str()
        .expect("ascii")
        .to_owned();
    let body: serde_json::Value = long.json().await.expect("json");
    assert_eq!(body["error"]["request_id"], header.as_str(), "{body}");

    let ok = app
        .client
        .get(format!("{}/livez", app.base))
        .send()
        .await
        .expect("answer");
    assert!(ok.headers().contains_key("x-request-id"));
}
