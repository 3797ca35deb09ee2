//! `tgwatch demo` as a new user meets it: the service over MTProto against the built-in sandbox,
//! people coming online and the demo channels' posts, edits and deletions stored, all seen
//! through the admin API. (Always SQLite: the demo makes its own database file.)

use crate::common;

use std::time::Duration;

use common::{Api, TOKEN};
use tgwatch_core::{clock::Clock, config::Secret};
use tgwatch_testkit::demo;

/// Long enough for start-up and a few of the channels' beats on a loaded machine.
const PATIENCE: Duration = Duration::from_secs(30);

#[actix_rt::test]
async fn the_demo_tracks_people_and_stores_its_channels_posts_edits_and_deletions() {
    let dir = tempfile::tempdir().expect("temp dir");
    let speed = 60.0;
    let mut demo = demo::demo(dir.path(), "127.0.0.1:0".parse().unwrap(), speed);
    demo.newsroom_beat = Duration::from_millis(40);
    // The API as every test talks to it (the demo would make up a token of its own).
    demo.config.http.admin_token = Some(Secret::new(TOKEN));
    let (app, _sandbox) = demo::start(demo, Clock::fast(speed)).await.expect("demo");
    let api = Api {
        base: format!("http://127.0.0.1:{}", app.port()),
        client: reqwest::Client::new(),
    };
    actix_rt::spawn(app.run_until_stopped());

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
