//! `tgwatch demo` as a new user meets it: the service over MTProto against the built-in sandbox,
//! people coming online and the demo channels' posts, edits and deletions stored, all seen
//! through the admin API. (Always SQLite: the demo makes its own database file.)

#![allow(clippy::expect_used, clippy::unwrap_used)] // a failing test may panic

use std::time::Duration;

use serde_json::Value;
use tgwatch::{clock::Clock, demo};

/// Asks `path` until `check` accepts the answer, for up to 30 s.
async fn eventually(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    path: &str,
    what: &str,
    check: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let body: Value = client
            .get(format!("{base}{path}"))
            .bearer_auth(token)
            .send()
            .await
            .expect("request")
            .json()
            .await
            .expect("json");
        if check(&body) {
            return body;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: never came; last answer {body}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[actix_rt::test]
async fn the_demo_tracks_people_and_stores_its_channels_posts_edits_and_deletions() {
    let dir = tempfile::tempdir().expect("temp dir");
    let speed = 60.0;
    let mut demo = demo::demo(dir.path(), "127.0.0.1:0".parse().unwrap(), speed);
    demo.newsroom_beat = Duration::from_millis(40);
    let token = demo
        .config
        .http
        .admin_token
        .as_ref()
        .unwrap()
        .expose()
        .to_owned();
    let (app, _sandbox) = demo::start(demo, Clock::fast(speed)).await.expect("demo");
    let base = format!("http://127.0.0.1:{}/api", app.port());
    actix_rt::spawn(app.run_until_stopped());
    let client = reqwest::Client::new();

    eventually(
        &client,
        &base,
        &token,
        "/online-statuses?is_online=true",
        "someone online",
        |body| {
            body["items"]
                .as_array()
                .is_some_and(|items| !items.is_empty())
        },
    )
    .await;

    let channels = eventually(
        &client,
        &base,
        &token,
        "/channels",
        "both demo channels joined",
        |body| {
            body["items"].as_array().is_some_and(|items| {
                items.len() == 2 && items.iter().all(|channel| channel["status"] == "active")
            })
        },
    )
    .await;
    for channel in channels["items"].as_array().unwrap() {
        let id = channel["id"].as_str().unwrap();
        eventually(
            &client,
            &base,
            &token,
            &format!("/channels/{id}/messages?limit=100"),
            "posts, an edit and a deletion",
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
}
