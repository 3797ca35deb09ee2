//! Seed 004 (the Mini App's WebSocket server), from its README alone: the endpoint
//! `/ws?user_id=&username=&init_data=` (also `/telegram/ws`), ping/pong, the `status` frame's
//! fields (`running`, `uptime` in seconds, `activeUsers`, `messagesProcessed`, `alertsSent`),
//! `live_out` frames (`{"type": "live_out", "data": {"id", "type", "name", ..., "expiresAt"}}`),
//! and the connection errors ("Missing user_id: 400", "Invalid init data: 401"). Where the seed
//! lets a connection in with no proof (`init_data` optional), tgwatch refuses it: a 401.

use std::time::Duration;

use serde_json::{Value, json};
use tgwatch_sandbox::Sandbox;

use crate::common::{self, TOKEN, spawn_mtproto_app};
use crate::live::{BOT_TOKEN, Client, init_data, spawn_live_with, try_connect_to};

/// Alice is online for the first 3000 s of service time (5 s of real time at 600x: time for a
/// second client to connect while she is, however loaded the machine), then offline: the gap
/// rule closes her session a few polls later.
const SCENARIO: &str = r#"
[[users]]
id = 1001
username = "alice_w"
first_name = "Alice"
online = [[0, 3000]]
"#;

const WAIT: Duration = Duration::from_secs(30);

/// The next `live_out` frame's `data` for which `wanted` holds.
async fn live_out(client: &mut Client, wanted: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no such live_out in time"
        );
        let frame = client.next("live_out").await;
        if wanted(&frame["data"]) {
            return frame["data"].clone();
        }
    }
}

#[actix_rt::test(system = "tgwatch_testkit::harness::TestSystem")]
async fn the_status_has_the_seeds_fields_and_counts_mini_app_users() {
    let app = spawn_live_with(SCENARIO, |_| {}).await;
    let mut admin = app.admin().await;
    let status = admin.next("status").await;
    assert_eq!(status["data"]["running"], true, "{status}");
    assert_eq!(
        status["data"]["activeUsers"], 0,
        "admins are not Mini App users"
    );

    // socket = new WebSocket(`wss://yourdomain.com/ws?user_id=${userId}&username=${username}&init_data=${initData}`)
    let mut user = app.mini_app(123_456_789).await;
    let deadline = tokio::time::Instant::now() + WAIT;
    let data = loop {
        let status = user.next("status").await;
        if status["data"]["activeUsers"] == 1 {
            break status["data"].clone();
        }
        assert!(tokio::time::Instant::now() < deadline, "{status}");
    };
    assert_eq!(data["running"], true);
    assert!(data["uptime"].is_u64(), "{data}");
    assert_eq!(data["uptime"], data["uptime_seconds"]);
    assert!(data["messagesProcessed"].is_u64(), "{data}");
    assert!(data["alertsSent"].is_u64(), "{data}");

    // socket.send(JSON.stringify({ type: "ping" }))
    user.send(json!({"type": "ping"})).await;
    user.next("pong").await;

    user.ws.close(None).await.expect("close");
    drop(user);
    while admin.next("status").await["data"]["activeUsers"] != 0 {
        assert!(tokio::time::Instant::now() < deadline, "still counted");
    }
}

#[actix_rt::test(system = "tgwatch_testkit::harness::TestSystem")]
async fn connections_that_prove_nothing_are_refused() {
    let app = spawn_live_with(SCENARIO, |_| {}).await;
    for path in ["/ws", "/telegram/ws"] {
        // The seed's own test client: ws://localhost:3001/ws?user_id=123456789&username=test
        assert_eq!(
            try_connect_to(&app.base, path, "user_id=123456789&username=test", None)
                .await
                .err(),
            Some(401),
            "{path}"
        );
        // Missing user_id: 400.
        assert_eq!(
            try_connect_to(&app.base, path, "username=test", Some(TOKEN))
                .await
                .err(),
            Some(400),
            "{path}"
        );
        // Invalid init data: 401.
        let forged = init_data(123_456_789, 5, "999:not-the-bot-token");
        assert_eq!(
            try_connect_to(
                &app.base,
                path,
                &format!("user_id=123456789&username=test&init_data={forged}"),
                None
            )
            .await
            .err(),
            Some(401),
            "{path}"
        );
        // Valid init data of the bot: in.
        let valid = init_data(123_456_789, 5, BOT_TOKEN);
        let mut client = try_connect_to(
            &app.base,
            path,
            &format!("user_id=123456789&username=test&init_data={valid}"),
            None,
        )
        .await
        .expect("a Mini App user connects");
        client.next("status").await;
    }
}

#[actix_rt::test(system = "tgwatch_testkit::harness::TestSystem")]
async fn a_tracked_person_online_is_live_until_the_session_ends() {
    let app = spawn_live_with(SCENARIO, |_| {}).await;
    let mut client = app.admin().await;
    let tracked = app.track("@alice_w").await;
    let id = format!("presence:{tracked}");

    let online = live_out(&mut client, |data| data["id"] == id.as_str()).await;
    assert_eq!(online["type"], "user-online", "{online}");
    assert_eq!(online["name"], "@alice_w is online");
    assert_eq!(online["username"], "alice_w");
    assert_eq!(online["telegramUserId"], 1001);
    let started = online["startedAt"].as_i64().expect("startedAt");
    assert!(online["expiresAt"].as_i64().expect("expiresAt") > started);
    assert!(online.get("endedAt").is_none());

    // A client that connects while she is online is told at once.
    let mut late = app.admin().await;
    let current = live_out(&mut late, |data| data["id"] == id.as_str()).await;
    assert_eq!(current["startedAt"], started);

    // When the gap rule closes the session: the same id, expiring at the session's end.
    let closed = live_out(&mut client, |data| {
        data["id"] == id.as_str() && data.get("endedAt").is_some()
    })
    .await;
    assert_eq!(closed["type"], "user-online");
    assert_eq!(closed["name"], "@alice_w was online");
    assert_eq!(closed["expiresAt"], closed["endedAt"]);
    assert!(closed["endedAt"].as_i64().unwrap() > started);
}

#[actix_rt::test(system = "tgwatch_testkit::harness::TestSystem")]
async fn a_new_channel_post_is_a_live_out() {
    let sandbox = Sandbox::start().await.unwrap();
    let account = sandbox
        .add_account(5000, 55, Some("watcher"), "Watcher")
        .unwrap();
    sandbox
        .add_channel(800, 81, Some("news_room"), "News room", "All the news")
        .unwrap();
    let app = spawn_mtproto_app(&sandbox, |_| {}).await;
    common::add_logged_in_account(&app, &sandbox, account, "main", 10).await;
    let (status, channel) = app
        .post("/api/channels", &json!({"channel": "@news_room"}))
        .await;
    assert_eq!(status, 201, "{channel}");
    let channel_id = channel["id"].as_str().unwrap();
    let mut client = try_connect_to(&app.base, "/ws", "user_id=0", Some(TOKEN))
        .await
        .expect("admin connects");
    client.next("hello").await;

    let posted = sandbox.post(800, "LIVE: Celtics -3.5 1H @ -108").unwrap();
    let post = live_out(&mut client, |data| data["type"] == "channel-post").await;
    assert_eq!(
        post["id"],
        format!("post:{channel_id}:{}", posted.id).as_str(),
        "{post}"
    );
    assert_eq!(post["name"], "@news_room: LIVE: Celtics -3.5 1H @ -108");
    assert_eq!(post["text"], "LIVE: Celtics -3.5 1H @ -108");
    assert_eq!(post["messageId"], posted.id);
    let posted_at = post["postedAt"].as_i64().expect("postedAt");
    assert_eq!(
        post["expiresAt"].as_i64().unwrap(),
        posted_at + 15 * 60 * 1000
    );
}
