//! The sandbox as a server of its own (`tgwatch-sandbox`, `tgwatch_testkit::sandbox_server`),
//! driven over its HTTP control API while a real tgwatch uses it: a session handed out by the
//! control API logs the service in, and posts, statuses and bans made over HTTP reach it.

use std::time::Duration;

use serde_json::{Value, json};
use tgwatch_testkit::sandbox_server::{SandboxServer, ServerOptions};
use tgwatch_testkit::scripted::{Scenario, ScenarioUser};

use crate::common::spawn_mtproto_app;

const WAIT: Duration = Duration::from_secs(20);

async fn control(
    client: &reqwest::Client,
    server: &SandboxServer,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let url = format!("http://{}/control{path}", server.control);
    let request = match body {
        Some(body) => client.post(url).json(&body),
        None => client.get(url),
    };
    let answer = request.send().await.expect("the control API answers");
    let status = answer.status().as_u16();
    (status, answer.json().await.expect("JSON"))
}

#[actix_rt::test(system = "tgwatch_testkit::harness::TestSystem")]
async fn a_service_logs_in_with_a_handed_out_session_and_sees_what_the_control_api_does() {
    let scenario = Scenario {
        users: vec![ScenarioUser {
            id: 7100,
            username: Some("alice_s".into()),
            first_name: Some("Alice".into()),
            online: Vec::new(),
            repeat_every: None,
            hidden: false,
            push: true,
        }],
        flood_waits: Vec::new(),
    };
    let server = SandboxServer::start(ServerOptions {
        scenario,
        port: 0,
        accounts: vec!["main".into(), "spare".into()],
        channels: vec!["news_s".into()],
        speed: 1.0,
    })
    .await
    .expect("the server starts");
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client");

    let (status, world) = control(&client, &server, "", None).await;
    assert_eq!(status, 200);
    assert_eq!(world["accounts"], json!(["main", "spare"]));
    assert_eq!(world["people"], json!(["alice_s"]));

    // The session the control API hands out logs the service in.
    let (status, session) =
        control(&client, &server, "/accounts/main/session?format=tgw1", None).await;
    assert_eq!(status, 200, "{session}");
    let app = spawn_mtproto_app(&server.sandbox, |_| {}).await;
    let (status, account) = app.post("/api/accounts", &json!({ "label": "main" })).await;
    assert_eq!(status, 201, "{account}");
    let id = account["id"].as_str().expect("id").to_owned();
    let (status, body) = app
        .post(
            &format!("/api/accounts/{id}/session/import"),
            &json!({ "session": session["session"] }),
        )
        .await;
    assert_eq!(status, 200, "{body}");

    // A status set over HTTP is pushed to the service.
    let alice = app.track("alice_s").await;
    let (status, body) = control(
        &client,
        &server,
        "/people/alice_s/status",
        Some(json!({ "online": true })),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    app.eventually(
        &format!("/api/tracked-users/{alice}/sessions"),
        WAIT,
        |body| !body["sessions"].as_array().expect("sessions").is_empty(),
    )
    .await;

    // Posts made over HTTP reach the channel the service joined.
    let (status, channel) = app
        .post("/api/channels", &json!({ "channel": "news_s" }))
        .await;
    assert_eq!(status, 201, "{channel}");
    let (status, posted) = control(
        &client,
        &server,
        "/channels/news_s/posts",
        Some(json!({ "count": 2, "text": "hello" })),
    )
    .await;
    assert_eq!((status, posted["ids"].clone()), (201, json!([1, 2])));
    let channel_id = channel["id"].as_str().expect("id");
    app.eventually(
        &format!("/api/channels/{channel_id}/messages"),
        WAIT,
        |body| {
            body["items"]
                .as_array()
                .is_some_and(|items| items.len() == 2)
        },
    )
    .await;

    // A ban over HTTP is noticed.
    let (status, _) = control(&client, &server, "/accounts/main/ban", Some(json!({}))).await;
    assert_eq!(status, 200);
    app.eventually(&format!("/api/accounts/{id}"), WAIT, |body| {
        body["status"] == "banned"
    })
    .await;

    // Mistakes are named.
    let (status, body) = control(&client, &server, "/accounts/ghost/ban", Some(json!({}))).await;
    assert_eq!(status, 404);
    assert!(
        body["error"]
            .as_str()
            .expect("error")
            .contains("main, spare")
    );
    let (status, body) = control(
        &client,
        &server,
        "/channels/news_s/posts",
        Some(json!({ "count": 0, "text": "x" })),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    let (status, _) = control(&client, &server, "/accounts/main/session?format=zip", None).await;
    assert_eq!(status, 400);
}
