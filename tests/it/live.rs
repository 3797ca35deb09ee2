//! The live WebSocket `/ws` end to end: the real service (scripted Telegram at 600x) with a real
//! WebSocket client (tokio-tungstenite), and broadcasts checked where they land: the sandbox's
//! fake Bot API, which records every method, chat, text and message_thread_id.

use crate::common;

use std::{collections::BTreeSet, time::Duration};

use common::{TOKEN, TestApp, spawn_app};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tgwatch_core::config::Secret;
use tgwatch_sandbox::bot_api::{BotApi, Sent};
use tokio::net::TcpStream;
use tokio_tungstenite::{
    MaybeTlsStream, WebSocketStream,
    tungstenite::{
        self, Message,
        client::IntoClientRequest,
        protocol::frame::{
            Frame,
            coding::{Data, OpCode},
        },
    },
};

pub(crate) const BOT_TOKEN: &str = "123456:test-token_ABC-def";
/// In `bot.admin_ids`.
const ADMIN: i64 = 9001;
/// The supergroup broadcasts go to, and its default forum topic.
const CHAT: i64 = -1_001_234_567_890;
const DEFAULT_THREAD: i64 = 47;

/// Alice comes online at the scenario's start (about 2.5 s real after the service starts).
/// Alice is online for 10 hours of service time (a minute of real time at 600x): still online
/// when a test that first spends seconds on other checks tracks her, however loaded the machine.
const SCENARIO: &str = r#"
[[users]]
id = 1001
username = "alice_w"
first_name = "Alice"
online = [[0, 36000]]
"#;

const WAIT: Duration = Duration::from_secs(10);

pub(crate) struct LiveTest {
    app: TestApp,
    bot: BotApi,
}

impl std::ops::Deref for LiveTest {
    type Target = TestApp;
    fn deref(&self) -> &TestApp {
        &self.app
    }
}

async fn spawn_live(tweak: impl FnOnce(&mut tgwatch_core::config::Config)) -> LiveTest {
    spawn_live_with(SCENARIO, tweak).await
}

/// The service on `scenario`, with the bot, broadcasts and a 100 ms status.
pub(crate) async fn spawn_live_with(
    scenario: &str,
    tweak: impl FnOnce(&mut tgwatch_core::config::Config),
) -> LiveTest {
    let bot = BotApi::start(BOT_TOKEN).await.expect("fake bot api");
    let url = bot.url();
    let app = spawn_app(scenario, |config| {
        config.bot.token = Some(Secret::new(BOT_TOKEN));
        config.bot.api_url = url;
        config.bot.admin_ids = vec![ADMIN];
        config.bot.polling_timeout_seconds = 1;
        config.live.status_interval_ms = 100;
        config.live.broadcast_chat_id = Some(CHAT);
        config.live.broadcast_thread_id = Some(DEFAULT_THREAD);
        config.live.broadcasts_per_minute = 30;
        tweak(config);
    })
    .await;
    LiveTest { app, bot }
}

/// Signed Mini App init data for `user_id`, `age_seconds` old, as the query parameter.
pub(crate) fn init_data(user_id: i64, age_seconds: i64, token: &str) -> String {
    let auth_date = (chrono::Utc::now().timestamp() - age_seconds).to_string();
    let user = json!({"id": user_id, "first_name": format!("User {user_id}"), "username": format!("user{user_id}")})
        .to_string();
    let data = common::telegram_init_data(
        &[
            ("query_id", "AAHdF6IQAAAAAN0XohDhrOrc"),
            ("user", &user),
            ("auth_date", &auth_date),
        ],
        token,
    );
    form_urlencoded::byte_serialize(data.as_bytes()).collect()
}

/// The tests' init-data signer (written from Telegram's documentation, not the service's code)
/// against a known answer computed once with Python's `hmac` and `hashlib`:
/// `hmac.new(hmac.new(b"WebAppData", token, sha256).digest(), check_string, sha256).hexdigest()`.
#[test]
fn the_tests_init_data_signer_gives_telegrams_known_answer() {
    let fields = [
        ("query_id", "AAHdF6IQAAAAAN0XohDhrOrc"),
        ("user", r#"{"id":9001,"first_name":"Ada","username":"ada"}"#),
        ("auth_date", "1767225600"),
    ];
    assert_eq!(
        common::telegram_init_data_hash(&fields, BOT_TOKEN),
        "f8a6dcd3973ceffb197b9e96aad73b75484e70611d5b1e8cb1b1508669f5b108"
    );
    assert!(
        common::telegram_init_data(&fields, BOT_TOKEN)
            .ends_with("&hash=f8a6dcd3973ceffb197b9e96aad73b75484e70611d5b1e8cb1b1508669f5b108")
    );
}

pub(crate) struct Client {
    pub(crate) ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

/// Connects to `path` (`/ws`, `/telegram/ws`) of the service at `base` with `query`, optionally
/// with the admin token in `Authorization`; the HTTP status of a refused handshake otherwise.
pub(crate) async fn try_connect_to(
    base: &str,
    path: &str,
    query: &str,
    bearer: Option<&str>,
) -> Result<Client, u16> {
    let url = format!("{}{path}?{query}", base.replacen("http", "ws", 1));
    let mut request = url.into_client_request().expect("request");
    if let Some(token) = bearer {
        request.headers_mut().insert(
            "authorization",
            format!("Bearer {token}").parse().expect("header"),
        );
    }
    match tokio_tungstenite::connect_async(request).await {
        Ok((ws, _)) => Ok(Client { ws }),
        Err(tungstenite::Error::Http(response)) => Err(response.status().as_u16()),
        Err(error) => panic!("connect: {error}"),
    }
}

impl LiveTest {
    /// Connects to `/ws` with `query`, optionally with the admin token in `Authorization`; the
    /// HTTP status of a refused handshake otherwise.
    pub(crate) async fn try_connect(
        &self,
        query: &str,
        bearer: Option<&str>,
    ) -> Result<Client, u16> {
        try_connect_to(&self.base, "/ws", query, bearer).await
    }

    pub(crate) async fn admin(&self) -> Client {
        self.try_connect("user_id=0", Some(TOKEN))
            .await
            .expect("admin connects")
    }

    pub(crate) async fn mini_app(&self, user_id: i64) -> Client {
        let query = format!(
            "user_id={user_id}&username=user{user_id}&init_data={}",
            init_data(user_id, 5, BOT_TOKEN)
        );
        self.try_connect(&query, None)
            .await
            .expect("mini app connects")
    }

    /// Gives `user_id` a role and permissions through the admin API.
    async fn person(&self, user_id: i64, role: &str, permissions: &[&str]) {
        let (status, body) = self
            .post(
                "/api/telegram-users",
                &json!({"telegram_user_id": user_id, "role": role, "permissions": permissions}),
            )
            .await;
        assert_eq!(status, 201, "{body}");
    }

    /// What the fake Bot API has been sent into the broadcast chat, once `n` calls arrived.
    async fn sent_to_chat(&self, n: usize) -> Vec<Sent> {
        self.bot
            .wait_for(WAIT, |sent| {
                sent.iter().filter(|s| s.chat_id == CHAT).count() >= n
            })
            .await
            .into_iter()
            .filter(|s| s.chat_id == CHAT)
            .collect()
    }
}

impl Client {
    pub(crate) async fn send(&mut self, value: Value) {
        self.send_text(&value.to_string()).await;
    }

    async fn send_text(&mut self, text: &str) {
        self.ws
            .send(Message::text(text.to_owned()))
            .await
            .expect("send");
    }

    /// The next frame of type `kind` (others are skipped), within `WAIT`.
    pub(crate) async fn next(&mut self, kind: &str) -> Value {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let frame = tokio::time::timeout_at(deadline, self.ws.next())
                .await
                .unwrap_or_else(|_| panic!("no `{kind}` frame within {WAIT:?}"))
                .expect("connection open")
                .expect("frame");
            if let Message::Text(text) = frame {
                let value: Value = serde_json::from_str(&text).expect("server frames are JSON");
                if value["type"] == kind {
                    return value;
                }
            }
        }
    }

    /// The next toast or error: the answer to an action.
    async fn answer(&mut self) -> Value {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let frame = tokio::time::timeout_at(deadline, self.ws.next())
                .await
                .expect("an answer in time")
                .expect("connection open")
                .expect("frame");
            if let Message::Text(text) = frame {
                let value: Value = serde_json::from_str(&text).expect("JSON");
                if value["type"] == "toast" || value["type"] == "error" {
                    return value;
                }
            }
        }
    }
}

#[actix_rt::test(system = "tgwatch_testkit::harness::TestSystem")]
async fn the_handshake_checks_who_connects() {
    let app = spawn_live(|_| {}).await;
    // Missing or bad user_id: 400 (before anything else).
    assert_eq!(app.try_connect("", Some(TOKEN)).await.err(), Some(400));
    assert_eq!(
        app.try_connect("user_id=abc", Some(TOKEN)).await.err(),
        Some(400)
    );
    // No credentials, a wrong admin token: 401.
    assert_eq!(app.try_connect("user_id=5", None).await.err(), Some(401));
    assert_eq!(
        app.try_connect("user_id=5", Some("not-the-token-at-all"))
            .await
            .err(),
        Some(401)
    );
    // The admin token in the query works too (browsers cannot set headers on a WebSocket).
    assert!(
        app.try_connect(&format!("user_id=0&token={TOKEN}"), None)
            .await
            .is_ok()
    );
    // Init data: forged (another bot's token), stale, someone else's: 401.
    let forged = init_data(5, 5, "654321:another-bot-token");
    assert_eq!(
        app.try_connect(&format!("user_id=5&init_data={forged}"), None)
            .await
            .err(),
        Some(401)
    );
    let stale = init_data(5, 86_401, BOT_TOKEN);
    assert_eq!(
        app.try_connect(&format!("user_id=5&init_data={stale}"), None)
            .await
            .err(),
        Some(401)
    );
    let alices = init_data(5, 5, BOT_TOKEN);
    assert_eq!(
        app.try_connect(&format!("user_id=6&init_data={alices}"), None)
            .await
            .err(),
        Some(401)
    );
    // A banned person: 403.
    app.person(66, "banned", &[]).await;
    let banned = init_data(66, 5, BOT_TOKEN);
    assert_eq!(
        app.try_connect(&format!("user_id=66&init_data={banned}"), None)
            .await
            .err(),
        Some(403)
    );
    // Valid: someone new is met like the bot meets people (bot.default_role = user).
    let mut client = app
        .try_connect(&format!("user_id=5&init_data={alices}"), None)
        .await
        .expect("valid init data connects");
    let hello = client.next("hello").await;
    assert_eq!(hello["user_id"], 5);
    assert_eq!(hello["role"], "user");
    assert_eq!(hello["can"]["broadcast"], false);
    let (status, people) = app.get("/api/telegram-users?telegram_user_id=5").await;
    assert_eq!(status, 200);
    assert_eq!(people["items"][0]["username"], "user5");
    // Not a WebSocket request at all: the upgrade fails, 500 (seed 004).
    let response = reqwest::Client::new()
        .get(format!("{}/ws?user_id=0", app.base))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("request");
    assert_eq!(response.status().as_u16(), 500);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["error"]["code"], "upgrade_failed");
    // The alias answers like /ws.
    let alias = format!(
        "{}/telegram/ws?user_id=0",
        app.base.replacen("http", "ws", 1)
    );
    let mut request = alias.into_client_request().expect("request");
    request.headers_mut().insert(
        "authorization",
        format!("Bearer {TOKEN}").parse().expect("header"),
    );
    assert!(tokio_tungstenite::connect_async(request).await.is_ok());
}

/// The dashboard's way in: a single-use ticket, asked with the admin token, opens one admin
/// connection, so the token itself never goes into the WebSocket's URL.
#[actix_rt::test(system = "tgwatch_testkit::harness::TestSystem")]
async fn a_ticket_opens_one_admin_connection() {
    let app = spawn_live(|_| {}).await;
    let client = reqwest::Client::new();
    let ticket_url = format!("{}/api/live/ticket", app.base);
    let refused = client.post(&ticket_url).send().await.expect("request");
    assert_eq!(refused.status().as_u16(), 401, "a ticket needs the token");
    let answer = client
        .post(&ticket_url)
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("request");
    assert_eq!(answer.status().as_u16(), 200);
    let body: Value = answer.json().await.expect("json");
    let ticket = body["ticket"].as_str().expect("ticket").to_owned();
    let expires_at =
        chrono::DateTime::parse_from_rfc3339(body["expires_at"].as_str().expect("expires_at"))
            .expect("a timestamp");
    let lifetime = expires_at.signed_duration_since(chrono::Utc::now());
    assert!(
        (25..=30).contains(&lifetime.num_seconds()),
        "valid for 30 s: {lifetime}"
    );

    let mut admin = app
        .try_connect(&format!("user_id=0&ticket={ticket}"), None)
        .await
        .expect("the ticket connects");
    let hello = admin.next("hello").await;
    assert_eq!(hello["role"], "admin");
    // Used once: the same ticket opens nothing more; neither does a made-up one.
    assert_eq!(
        app.try_connect(&format!("user_id=0&ticket={ticket}"), None)
            .await
            .err(),
        Some(401)
    );
    assert_eq!(
        app.try_connect("user_id=0&ticket=0123abcd", None)
            .await
            .err(),
        Some(401)
    );
}

#[actix_rt::test(system = "tgwatch_testkit::harness::TestSystem")]
async fn status_ticks_and_presence_arrive_live() {
    let app = spawn_live(|_| {}).await;
    let mut client = app.admin().await;
    let hello = client.next("hello").await;
    assert_eq!(hello["role"], "admin");
    assert_eq!(hello["admin_token"], true);
    assert_eq!(hello["can"], json!({"broadcast": true, "pin": true}));

    // Status every 100 ms (`live.status_interval_ms`), with every figure. A timer never fires
    // early and skips the ticks it missed, so a window of 20 intervals holds at most 21 ticks
    // however loaded the machine; at least a quarter of them arrive unless it stalled for most of
    // the window (at the default of 1000 ms there would be 3 at most).
    let interval = Duration::from_millis(100);
    let first = client.next("status").await;
    let mut made: BTreeSet<String> = BTreeSet::new();
    let window_end = tokio::time::Instant::now() + interval * 20;
    let mut second = first.clone();
    while tokio::time::Instant::now() < window_end {
        let Ok(Some(Ok(Message::Text(text)))) =
            tokio::time::timeout_at(window_end, client.ws.next()).await
        else {
            continue;
        };
        let frame: Value = serde_json::from_str(&text).expect("JSON");
        if frame["type"] == "status" && frame["at"] != first["at"] {
            made.insert(frame["at"].as_str().expect("at").to_owned());
            second = frame;
        }
    }
    assert!(
        (5..=21).contains(&made.len()),
        "{} status frames in 20 intervals of {interval:?}: {made:?}",
        made.len()
    );
    let data = &second["data"];
    for key in [
        "running",
        "uptime_seconds",
        "accounts_active",
        "accounts_banned",
        "tracked_users",
        "online_now",
        "messages_processed",
        "webhooks_delivered",
        "webhooks_failed",
        "alerts_sent",
        "clients",
    ] {
        assert!(!data[key].is_null(), "status lacks {key}: {data}");
    }
    assert_eq!(data["running"], true);
    assert_eq!(data["accounts_active"], 1);
    assert_eq!(data["clients"], 1);
    // Another client comes and goes: counted while connected, not after.
    let mut other = app.admin().await;
    other.next("hello").await;
    let deadline = tokio::time::Instant::now() + WAIT;
    while client.next("status").await["data"]["clients"] != 2 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "never counted 2 clients"
        );
    }
    other.ws.close(None).await.expect("close");
    drop(other);
    while client.next("status").await["data"]["clients"] != 1 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the client that left is still counted"
        );
    }

    // Ping / pong.
    client.send(json!({"type": "ping"})).await;
    client.next("pong").await;

    // Alice is tracked and comes online: a presence frame, and the status counts her.
    app.track("@alice_w").await;
    let presence = client.next("presence").await;
    assert_eq!(presence["event"]["type"], "user_online");
    assert_eq!(presence["event"]["data"]["user"]["username"], "alice_w");
    assert!(presence["id"].as_str().expect("id").starts_with("msg_"));
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let status = client.next("status").await;
        if status["data"]["online_now"] == 1 && status["data"]["tracked_users"] == 1 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "status never counted Alice: {status}"
        );
    }
}

#[actix_rt::test(system = "tgwatch_testkit::harness::TestSystem")]
async fn broadcasts_and_pins_reach_the_bot_api_in_the_right_topic() {
    let app = spawn_live(|_| {}).await;
    // An admin by bot.admin_ids, signed in from the Mini App.
    let mut admin = app.mini_app(ADMIN).await;
    let hello = admin.next("hello").await;
    assert_eq!(hello["role"], "admin");
    assert_eq!(hello["can"], json!({"broadcast": true, "pin": true}));

    // Seed 004's broadcast, into topic 99.
    admin
        .send(json!({"action": "broadcast", "text": "LIVE: first", "thread_id": 99}))
        .await;
    let toast = admin.answer().await;
    assert_eq!(toast["type"], "toast", "{toast}");
    assert_eq!(toast["title"], "Message sent!");
    assert_eq!(toast["thread_id"], 99);
    let sent = app.sent_to_chat(1).await;
    assert_eq!(sent[0].method, "sendMessage");
    assert_eq!(sent[0].chat_id, CHAT);
    assert_eq!(sent[0].text.as_deref(), Some("LIVE: first"));
    assert_eq!(sent[0].message_thread_id, Some(99));
    assert_eq!(toast["message_id"], sent[0].message_id);

    // No thread named: the configured topic.
    admin
        .send(json!({"action": "broadcast", "text": "LIVE: second"}))
        .await;
    assert_eq!(admin.answer().await["type"], "toast");
    let sent = app.sent_to_chat(2).await;
    assert_eq!(sent[1].text.as_deref(), Some("LIVE: second"));
    assert_eq!(sent[1].message_thread_id, Some(DEFAULT_THREAD));

    // Seed 004's pin of the first message.
    let first_id = sent[0].message_id;
    admin
        .send(json!({"action": "pin", "data": {"messageId": first_id}, "thread_id": 99}))
        .await;
    let toast = admin.answer().await;
    assert_eq!(toast["title"], "Message pinned!", "{toast}");
    let sent = app.sent_to_chat(3).await;
    assert_eq!(sent[2].method, "pinChatMessage");
    assert_eq!(sent[2].message_id, first_id);

    // Send and pin: one message into topic 12, then its pin.
    admin
        .send(json!({"action": "send_and_pin", "text": "LIVE: pinned", "thread_id": 12}))
        .await;
    let toast = admin.answer().await;
    assert_eq!(toast["title"], "Message sent and pinned!", "{toast}");
    let sent = app.sent_to_chat(5).await;
    assert_eq!(sent[3].method, "sendMessage");
    assert_eq!(sent[3].text.as_deref(), Some("LIVE: pinned"));
    assert_eq!(sent[3].message_thread_id, Some(12));
    assert_eq!(sent[4].method, "pinChatMessage");
    assert_eq!(sent[4].message_id, sent[3].message_id);

    // A pin the Bot API refuses (no such message) is an error, and the session goes on.
    admin
        .send(json!({"action": "pin", "message_id": 999_999}))
        .await;
    let error = admin.answer().await;
    assert_eq!(error["code"], "telegram_error", "{error}");
    assert!(
        !error["message"].as_str().expect("text").contains(BOT_TOKEN),
        "the token never reaches clients"
    );
    admin.send(json!({"type": "ping"})).await;
    admin.next("pong").await;
}

#[actix_rt::test(system = "tgwatch_testkit::harness::TestSystem")]
async fn only_admins_and_permission_holders_may_broadcast() {
    let app = spawn_live(|_| {}).await;
    app.person(101, "user", &[]).await;
    app.person(102, "vip", &["all"]).await;
    app.person(103, "moderator", &["broadcast"]).await;

    // A plain user: refused, nothing sent.
    let mut user = app.mini_app(101).await;
    assert_eq!(user.next("hello").await["can"]["broadcast"], false);
    user.send(json!({"action": "broadcast", "text": "hi all"}))
        .await;
    let error = user.answer().await;
    assert_eq!(error["type"], "error");
    assert_eq!(error["code"], "permission_denied", "{error}");
    user.send(json!({"action": "pin", "data": {"messageId": 1}}))
        .await;
    assert_eq!(user.answer().await["code"], "permission_denied");

    // Seed 004's "all" permission: allowed (live.allow_all_broadcast defaults to true).
    let mut vip = app.mini_app(102).await;
    assert_eq!(vip.next("hello").await["can"]["broadcast"], true);
    vip.send(json!({"action": "broadcast", "text": "from the vip"}))
        .await;
    assert_eq!(vip.answer().await["type"], "toast");

    // The named permission grants that action only.
    let mut moderator = app.mini_app(103).await;
    moderator
        .send(json!({"action": "send_and_pin", "text": "and pin it"}))
        .await;
    let error = moderator.answer().await;
    assert_eq!(error["code"], "permission_denied", "{error}");
    moderator
        .send(json!({"action": "broadcast", "text": "from the moderator"}))
        .await;
    assert_eq!(moderator.answer().await["type"], "toast");

    // A role taken away applies to the next action, on the open connection.
    let (_, people) = app.get("/api/telegram-users?telegram_user_id=102").await;
    let id = people["items"][0]["id"].as_str().expect("id").to_owned();
    let (status, _) = app
        .patch(
            &format!("/api/telegram-users/{id}"),
            &json!({"permissions": []}),
        )
        .await;
    assert_eq!(status, 200);
    vip.send(json!({"action": "broadcast", "text": "again"}))
        .await;
    assert_eq!(vip.answer().await["code"], "permission_denied");

    let sent = app.sent_to_chat(2).await;
    let texts: Vec<_> = sent.iter().filter_map(|s| s.text.as_deref()).collect();
    assert_eq!(texts, ["from the vip", "from the moderator"]);
}

#[actix_rt::test(system = "tgwatch_testkit::harness::TestSystem")]
async fn malformed_messages_get_an_error_and_the_connection_stays_up() {
    let app = spawn_live(|_| {}).await;
    let mut client = app.admin().await;
    client.next("hello").await;
    for (text, fragment) in [
        ("{nope", "not JSON"),
        ("[1, 2]", "type"),
        (r#"{"type": "dance"}"#, "unknown message type"),
        (r#"{"action": "broadcast"}"#, "`text`"),
        (
            r#"{"action": "broadcast", "text": "x", "thread_id": "47"}"#,
            "thread_id",
        ),
        (r#"{"action": "pin", "data": {}}"#, "messageId"),
    ] {
        client.send_text(text).await;
        let error = client.answer().await;
        assert_eq!(error["type"], "error", "{text}");
        assert_eq!(error["code"], "invalid_message", "{text}");
        assert!(
            error["message"]
                .as_str()
                .expect("message")
                .contains(fragment),
            "{text}: {error}"
        );
    }
    client
        .ws
        .send(Message::binary(vec![1, 2, 3]))
        .await
        .expect("send");
    assert_eq!(client.answer().await["code"], "invalid_message");
    // A message in two fragments is put together.
    for (part, fin) in [(&br#"{"type":"#[..], false), (&br#""ping"}"#[..], true)] {
        let opcode = if fin {
            OpCode::Data(Data::Continue)
        } else {
            OpCode::Data(Data::Text)
        };
        let mut frame = Frame::message(part.to_vec(), opcode, fin);
        frame.header_mut().is_final = fin;
        client.ws.send(Message::Frame(frame)).await.expect("send");
    }
    client.next("pong").await;
    // Still connected, still served.
    client.send(json!({"type": "ping"})).await;
    client.next("pong").await;
    client.next("status").await;
    assert!(app.bot.sent_to(CHAT).is_empty());
}

#[actix_rt::test(system = "tgwatch_testkit::harness::TestSystem")]
async fn broadcasts_are_rate_limited_per_person() {
    let app = spawn_live(|config| config.live.broadcasts_per_minute = 2).await;
    let mut admin = app.admin().await;
    let mut other = app.mini_app(ADMIN).await;
    let burst_started = std::time::Instant::now();
    for n in 0..2 {
        admin
            .send(json!({"action": "broadcast", "text": format!("update {n}")}))
            .await;
        assert_eq!(admin.answer().await["type"], "toast");
    }
    admin
        .send(json!({"action": "broadcast", "text": "one too many"}))
        .await;
    let error = admin.answer().await;
    assert_eq!(error["code"], "rate_limited", "{error}");
    // Two a minute refill one every 30 s: the wait is 30 s less the time since the burst began.
    let retry_after = error["retry_after"].as_u64().expect("retry_after");
    let since_burst = burst_started.elapsed().as_secs_f64().ceil() as u64;
    assert!(
        (30 - since_burst.min(29)..=30).contains(&retry_after),
        "{error} after {since_burst} s"
    );
    // Per person: another user still may.
    other
        .send(json!({"action": "broadcast", "text": "someone else"}))
        .await;
    assert_eq!(other.answer().await["type"], "toast");
    let sent = app.sent_to_chat(3).await;
    assert_eq!(sent.len(), 3);
    assert!(
        sent.iter()
            .all(|s| s.text.as_deref() != Some("one too many"))
    );
}

#[actix_rt::test(system = "tgwatch_testkit::harness::TestSystem")]
async fn the_admin_api_takes_mini_app_admins_only() {
    let app = spawn_live(|_| {}).await;
    app.person(101, "moderator", &["all"]).await;
    let board = |authorization: String| {
        let client = reqwest::Client::new();
        let url = format!("{}/api/dashboard/board", app.base);
        async move {
            client
                .get(url)
                .header("authorization", authorization)
                .send()
                .await
                .expect("request")
                .status()
                .as_u16()
        }
    };
    let signed = |user_id: i64, token: &str| {
        let user = json!({"id": user_id, "first_name": "X"}).to_string();
        common::telegram_init_data(
            &[
                ("user", user.as_str()),
                ("auth_date", &chrono::Utc::now().timestamp().to_string()),
            ],
            token,
        )
    };
    assert_eq!(
        board(format!("tma {}", signed(ADMIN, BOT_TOKEN))).await,
        200
    );
    assert_eq!(board(format!("tma {}", signed(101, BOT_TOKEN))).await, 403);
    assert_eq!(
        board(format!("tma {}", signed(ADMIN, "654321:another-bot-token"))).await,
        401
    );
    assert_eq!(board(format!("Bearer {TOKEN}")).await, 200);
}

/// The live worker panics: it is restarted, connected clients stay connected, status ticks go
/// on and events committed meanwhile are still shown.
#[actix_rt::test(system = "tgwatch_testkit::harness::TestSystem")]
async fn a_panicking_live_worker_restarts_and_its_clients_keep_their_feed() {
    let app = spawn_live(|config| config.testing.fault_injection = true).await;
    let mut client = app.admin().await;
    client.next("hello").await;
    client.next("status").await;

    app.panic_and_wait_for_restart("live", None, Duration::from_secs(1))
        .await;
    let restarted_at = chrono::Utc::now();
    // Ticks made after the restart reach the same connection.
    let deadline = tokio::time::Instant::now() + WAIT;
    while common::timestamp(&client.next("status").await["at"]) <= restarted_at {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no status tick after the restart"
        );
    }
    app.track("@alice_w").await;
    let presence = client.next("presence").await;
    assert_eq!(presence["event"]["type"], "user_online");
}
