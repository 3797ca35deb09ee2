//! The Telegram bot end to end: the real service (scripted Telegram at 600x) with its bot pointed
//! at the sandbox's fake Bot API, which the real teloxide long-polls. Tests type commands as
//! people of each role and read what the bot sent.

use crate::common;

use std::time::{Duration, Instant};

use common::{TestApp, spawn_app};
use serde_json::{Value, json};
use tgwatch_core::config::Secret;
use tgwatch_sandbox::bot_api::{BotApi, Person, Sent};

const BOT_TOKEN: &str = "123456:test-token_ABC-def";
/// In `bot.admin_ids`.
const ADMIN: i64 = 9001;
const ALICE: &str = "alice_w";

/// Alice comes online at second 1800 of the scenario (3 s real after it starts, after the
/// commands of a test's first part) and stays 10 minutes.
const SCENARIO: &str = r#"
[[users]]
id = 1001
username = "alice_w"
first_name = "Alice"
online = [[1800, 2400]]

[[users]]
id = 1002
username = "bob_b"
first_name = "Bob"
"#;

struct BotTest {
    app: TestApp,
    bot: BotApi,
}

impl std::ops::Deref for BotTest {
    type Target = TestApp;
    fn deref(&self) -> &TestApp {
        &self.app
    }
}

/// The service with its bot on a fresh fake Bot API, limits raised so tests need not wait for
/// Telegram's one message a second per chat.
async fn spawn_bot(
    scenario: &str,
    tweak: impl FnOnce(&mut tgwatch_core::config::Config),
) -> BotTest {
    let bot = BotApi::start(BOT_TOKEN).await.expect("fake bot api");
    let url = bot.url();
    let app = spawn_app(scenario, |config| {
        config.bot.token = Some(Secret::new(BOT_TOKEN));
        config.bot.api_url = url;
        config.bot.admin_ids = vec![ADMIN];
        config.bot.polling_timeout_seconds = 1;
        config.bot.poll_interval_ms = 50;
        config.bot.retry_schedule_seconds = vec![5.0];
        config.bot.messages_per_chat_per_second = 100;
        config.bot.messages_per_chat_per_minute = 1000;
        config.bot.messages_per_group_per_minute = 1000;
        config.bot.messages_per_second = 1000;
        tweak(config);
    })
    .await;
    BotTest { app, bot }
}

const WAIT: Duration = Duration::from_secs(10);

impl BotTest {
    /// `from` types `text` in `chat` and the bot's next `replies` messages there come back.
    async fn ask_in(&self, from: i64, chat: i64, text: &str, replies: usize) -> Vec<Sent> {
        let before = self.bot.sent_to(chat).len();
        self.bot.send_text(from, chat, text);
        let sent = self
            .bot
            .wait_for(WAIT, |sent| {
                sent.iter().filter(|s| s.chat_id == chat).count() >= before + replies
            })
            .await;
        let new: Vec<Sent> = sent
            .into_iter()
            .filter(|s| s.chat_id == chat)
            .skip(before)
            .collect();
        assert!(new.len() >= replies, "no reply to {text:?}");
        new
    }

    /// The text of the one reply to `text` in a private chat.
    async fn ask(&self, from: i64, text: &str) -> String {
        let reply = self.ask_in(from, from, text, 1).await;
        reply[0].text.clone().expect("a text reply")
    }

    /// Sends something that must get no answer: the bot must take the update (confirm it to the
    /// Bot API with a higher offset) within the deadline, and nothing may come after it.
    async fn ignored(&self, from: i64, chat: i64, text: &str) {
        let before = self.bot.sent_to(chat).len();
        self.bot.send_text(from, chat, text);
        let deadline = Instant::now() + WAIT;
        while self.bot.pending_updates() > 0 {
            assert!(
                Instant::now() < deadline,
                "the bot never took {text:?} from {from} ({} updates unconfirmed)",
                self.bot.pending_updates()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // Taken; its handler may still be running: give it time to (wrongly) answer.
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert_eq!(
            self.bot.sent_to(chat).len(),
            before,
            "{text:?} from {from} got an answer: {:?}",
            self.bot.sent_to(chat).last()
        );
    }

    async fn wait_for_text(&self, chat: i64, prefix: &str, timeout: Duration) -> Sent {
        let sent = self
            .bot
            .wait_for(timeout, |sent| {
                sent.iter().any(|s| {
                    s.chat_id == chat && s.text.as_deref().is_some_and(|t| t.starts_with(prefix))
                })
            })
            .await;
        sent.into_iter()
            .find(|s| s.chat_id == chat && s.text.as_deref().is_some_and(|t| t.starts_with(prefix)))
            .unwrap_or_else(|| {
                panic!(
                    "no {prefix:?} in chat {chat}; it got {:?}",
                    self.bot.sent_to(chat)
                )
            })
    }

    fn texts_to(&self, chat: i64) -> Vec<String> {
        self.bot
            .sent_to(chat)
            .into_iter()
            .filter_map(|s| s.text)
            .collect()
    }
}

/// The usage lines the bot answers with, as a user reads them.
const STATS_USAGE: &str = "/stats 24, /stats 72 @user, /stats 7d @user (1 hour to 365 days)";
const NOTIFY_USAGE: &str = "/notify on, /notify off, /notify on @user, /notify off @user";

#[actix_rt::test(system = "tgwatch_testkit::harness::TestSystem")]
async fn commands_answer_by_role() {
    let t = spawn_bot(SCENARIO, |_| {}).await;

    // The command menu is set for ordinary users (no admin commands in it).
    t.bot.wait_for(WAIT, |_| !t.bot.commands().is_empty()).await;
    let menu: Vec<String> = t.bot.commands().into_iter().map(|(c, _)| c).collect();
    assert_eq!(
        menu,
        [
            "start", "help", "status", "stats", "track", "untrack", "list", "notify", "channels",
            "digest"
        ]
    );
    assert_eq!(t.bot.calls("deleteWebhook"), 1);

    // A stranger becomes a user (bot.default_role) and learns the chat id.
    assert_eq!(
        t.ask(1001, "/start").await,
        "Hello, User 1001! This chat is now registered with tgwatch.\nChat id: 1001\nYour role: user\nYou will get a message here when a followed user comes online. /list shows who is followed; /help lists the commands."
    );
    assert_eq!(
        t.ask(1001, "/start").await,
        "Hello, User 1001! This chat is registered with tgwatch (again).\nChat id: 1001\nYour role: user\nYou will get a message here when a followed user comes online. /list shows who is followed; /help lists the commands."
    );
    let help = t.ask(1001, "/help").await;
    assert_eq!(
        help,
        "tgwatch bot. Your role: user.\n\
         /start: register this chat for notifications and show its id\n\
         /help: list the commands\n\
         /status: who is online now: /status [@user]\n\
         /stats: online time, sessions and a chart: /stats <hours> [@user]\n\
         /track: start tracking someone: /track @user\n\
         /untrack: stop tracking someone: /untrack @user\n\
         /list: tracked users and this chat's notifications\n\
         /notify: online notifications in this chat: /notify on|off [@user]\n\
         /channels: monitored channels\n\
         /digest: a daily summary in this chat: /digest on|off\n\
         Times are UTC."
    );
}

#[actix_rt::test(system = "tgwatch_testkit::harness::TestSystem")]
async fn bad_input_gets_short_helpful_answers() {
    let t = spawn_bot(SCENARIO, |_| {}).await;
    // Unknown commands, bad arguments and chatter get short, helpful answers.
    assert_eq!(
        t.ask(1001, "/frobnicate now").await,
        "I don't know /frobnicate. /help lists the commands."
    );
    assert_eq!(
        t.ask(1001, "hello bot").await,
        "I only understand commands. /help lists them."
    );
    assert_eq!(
        t.ask(1001, "/stats").await,
        format!("For how many hours?\nUsage: {}", STATS_USAGE)
    );
    assert_eq!(
        t.ask(1001, "/stats 9000").await,
        format!(
            "`9000` is not a number of hours from 1 to 8760 (a year), like 24, 72h or 7d.\nUsage: {}",
            STATS_USAGE
        )
    );
    assert_eq!(
        t.ask(1001, "/stats 24 @x").await,
        format!(
            "`@x` is not a Telegram username: it must be 5 to 32 characters long\nUsage: {}",
            STATS_USAGE
        )
    );
    assert_eq!(
        t.ask(1001, "/track").await,
        "Whom? Give a username.\nUsage: /track @user"
    );
    assert_eq!(
        t.ask(1001, "/notify maybe").await,
        format!("`maybe` is neither on nor off.\nUsage: {}", NOTIFY_USAGE)
    );
    assert_eq!(
        t.ask(1001, "/digest").await,
        "On or off?\nUsage: /digest on or /digest off"
    );
    assert_eq!(
        t.ask(1001, "/status").await,
        "Nobody is tracked yet. Start with /track @user."
    );
    assert_eq!(
        t.ask(1001, "/status @nobody_here").await,
        "@nobody_here is not tracked (see /list)."
    );
    assert_eq!(
        t.ask(1001, "/channels").await,
        "No channels are monitored yet."
    );
    assert_eq!(
        t.ask(1001, "/accounts").await,
        "/accounts is for admins; your role is user."
    );
}

#[actix_rt::test(system = "tgwatch_testkit::harness::TestSystem")]
async fn admins_banned_and_vip() {
    let t = spawn_bot(SCENARIO, |_| {}).await;
    t.ask(1001, "/start").await;
    // The admin of the config file sees the fleet.
    let help = t.ask(ADMIN, "/help").await;
    assert!(
        help.starts_with("tgwatch bot. Your role: admin.\n"),
        "{help}"
    );
    assert!(help.contains("\n/accounts: the fleet's accounts and their health (admins)\n"));
    let accounts = t.ask(ADMIN, "/accounts").await;
    let (_, listed) = t.get("/api/accounts").await;
    let main = &listed["items"][0];
    assert!(
        accounts.starts_with(&format!(
            "Accounts (1):\n• main: {}{}, {}/1000 users",
            main["status"].as_str().unwrap(),
            if main["is_authorized"] == true {
                ""
            } else {
                ", not logged in"
            },
            main["targets_count"]
        )),
        "{accounts}"
    );

    // A banned person gets no answer at all; a vip is a user in the bot.
    let (status, _) = t
        .post(
            "/api/telegram-users",
            &json!({"telegram_user_id": 666, "role": "banned"}),
        )
        .await;
    assert_eq!(status, 201);
    t.ignored(666, 666, "/start").await;
    t.ignored(666, 666, "/help").await;
    let (status, _) = t
        .patch("/api/telegram-users/1001", &json!({"role": "vip"}))
        .await;
    assert_eq!(status, 200);
    assert!(
        t.ask(1001, "/help")
            .await
            .starts_with("tgwatch bot. Your role: vip.\n")
    );
    assert_eq!(
        t.ask(1001, "/accounts").await,
        "/accounts is for admins; your role is vip."
    );
}

#[actix_rt::test(system = "tgwatch_testkit::harness::TestSystem")]
async fn groups_topics_and_who_the_bot_met() {
    let t = spawn_bot(SCENARIO, |_| {}).await;
    t.ask(1001, "/start").await;
    t.ask(ADMIN, "/start").await;
    // In a group only commands for this bot count; replies in a forum topic stay in the topic.
    let group = -1_000_000_000_042;
    let carol = Person::numbered(1003);
    let before = t.bot.sent_to(group).len();
    t.bot
        .send_message(&carol, group, Some(77), "/start@tgwatch_test_bot");
    let sent = t
        .bot
        .wait_for(WAIT, |s| {
            s.iter().filter(|s| s.chat_id == group).count() > before
        })
        .await;
    let reply = sent.iter().rev().find(|s| s.chat_id == group).unwrap();
    assert_eq!(reply.message_thread_id, Some(77));
    assert!(
        reply
            .text
            .as_deref()
            .unwrap()
            .contains(&format!("Chat id: {group}\n"))
    );
    t.ignored(1003, group, "just chatting").await;
    t.ignored(1003, group, "/start@another_bot").await;

    // Everyone the bot met is in the API, with the role that applies.
    let (_, users) = t.get("/api/telegram-users?role=user").await;
    let ids: Vec<i64> = users["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["telegram_user_id"].as_i64().unwrap())
        .collect();
    assert_eq!(
        ids,
        vec![1001, ADMIN, 1003],
        "the admin is stored as a user"
    );
    let (_, admin) = t.get(&format!("/api/telegram-users/{ADMIN}")).await;
    assert_eq!(admin["role"], "user");
    assert_eq!(admin["effective_role"], "admin");
    assert_eq!(admin["first_name"], format!("User {ADMIN}"));
}

#[actix_rt::test(system = "tgwatch_testkit::harness::TestSystem")]
async fn telegram_users_api() {
    let t = spawn_bot(SCENARIO, |_| {}).await;
    let (status, created) = t
        .post(
            "/api/telegram-users",
            &json!({"telegram_user_id": 5005, "username": "mod_person", "role": "moderator", "permissions": ["pin", "broadcast", "pin"]}),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["permissions"], json!(["broadcast", "pin"]));
    assert_eq!(created["effective_role"], "moderator");
    let id = created["id"].as_str().unwrap().to_owned();

    let (status, conflict) = t
        .post("/api/telegram-users", &json!({"telegram_user_id": 5005}))
        .await;
    assert_eq!(status, 409);
    assert_eq!(conflict["error"]["details"]["existing"]["id"], id.as_str());
    for (body, field) in [
        (json!({"telegram_user_id": 1, "role": "root"}), "role"),
        (
            json!({"telegram_user_id": 1, "permissions": ["Not Allowed"]}),
            "permissions",
        ),
    ] {
        let (status, error) = t.post("/api/telegram-users", &body).await;
        assert_eq!(status, 422, "{error}");
        assert_eq!(error["error"]["details"]["field"], field);
    }
    let (status, _) = t
        .post("/api/telegram-users", &json!({"telegram_user_id": -4}))
        .await;
    assert_eq!(status, 400);
    let (status, _) = t
        .post(
            "/api/telegram-users",
            &json!({"telegram_user_id": 6, "colour": "red"}),
        )
        .await;
    assert_eq!(status, 400, "unknown fields are refused");
    t.post("/api/telegram-users", &json!({"telegram_user_id": 6006}))
        .await;

    // Filters, and both kinds of id in the path.
    let (_, page) = t.get("/api/telegram-users?role=moderator").await;
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
    let (_, page) = t.get("/api/telegram-users?telegram_user_id=6006").await;
    assert_eq!(page["items"][0]["role"], "user");
    let (status, _) = t.get("/api/telegram-users?role=root").await;
    assert_eq!(status, 422);
    let (_, by_uuid) = t.get(&format!("/api/telegram-users/{id}")).await;
    let (_, by_telegram_id) = t.get("/api/telegram-users/5005").await;
    assert_eq!(by_uuid, by_telegram_id);
    let (_, page) = t.get("/api/telegram-users?limit=1").await;
    assert!(page["next_cursor"].is_string());

    let (status, patched) = t
        .patch(
            &format!("/api/telegram-users/{id}"),
            &json!({"role": "admin", "permissions": [], "username": null}),
        )
        .await;
    assert_eq!(status, 200, "{patched}");
    assert_eq!(
        (
            &patched["role"],
            &patched["permissions"],
            &patched["username"]
        ),
        (&json!("admin"), &json!([]), &Value::Null)
    );
    assert_eq!(t.delete(&format!("/api/telegram-users/{id}")).await, 204);
    let (status, _) = t.get("/api/telegram-users/5005").await;
    assert_eq!(status, 404);
    let (status, _) = t.get("/api/telegram-users/not-an-id").await;
    assert_eq!(status, 404);

    // Bearer-token protected like the rest of /api.
    let status = reqwest::get(format!("{}/api/telegram-users", t.base))
        .await
        .unwrap()
        .status();
    assert_eq!(status, 401);
}

#[actix_rt::test(system = "tgwatch_testkit::harness::TestSystem")]
async fn tracking_from_the_bot_and_one_notification_per_session() {
    let t = spawn_bot(SCENARIO, |_| {}).await;
    t.ask(1001, "/start").await;
    t.ask(1002, "/start").await;

    assert_eq!(
        t.ask(1001, "/track @Alice_W").await,
        "Now tracking @alice_w. You will get a message here when they come online (/notify off @alice_w stops that)."
    );
    assert_eq!(
        t.ask(1001, "/track alice_w").await,
        "@alice_w is already tracked. Notifications about them in this chat: on."
    );
    assert_eq!(
        t.ask(1001, "/track @nobody_here").await,
        "Telegram has no user @nobody_here."
    );
    // Bob's chat follows nobody: the user's own `notify` flag is off (tracked from the bot).
    assert_eq!(
        t.ask(1001, "/list").await,
        "Tracked users (1):\n• @alice_w: notifications on\n"
    );
    assert_eq!(
        t.ask(1002, "/list").await,
        "Tracked users (1):\n• @alice_w: notifications off\n"
    );
    let status = t.ask(1001, "/status").await;
    assert!(
        status.starts_with("⚪ @alice_w: offline") || status == "❔ @alice_w: no status yet",
        "{status}"
    );

    // She comes online: one message in the chat that follows her, none in the other.
    let online = t
        .wait_for_text(
            1001,
            "🟢 @alice_w is online (since ",
            Duration::from_secs(15),
        )
        .await;
    assert!(online.text.unwrap().ends_with(" UTC)"));
    let status = t.ask(1001, "/status @alice_w").await;
    assert!(status.starts_with("🟢 @alice_w: online since "), "{status}");

    // Past her session and the gap that closes it: still exactly one notification, although
    // every poll while she was online saw her online.
    t.wait_until_second(2400 + 180 + 130).await;
    let (_, tracked) = t.get("/api/tracked-users?username=alice_w").await;
    let alice = tracked["items"][0]["id"].as_str().unwrap().to_owned();
    let sessions = t
        .eventually(
            &format!("/api/tracked-users/{alice}/sessions?hours=2"),
            WAIT,
            |body| body["sessions"][0]["ended_at"].is_string(),
        )
        .await;
    assert_eq!(sessions["sessions"].as_array().unwrap().len(), 1);
    let (_, polls) = t
        .get(&format!(
            "/api/online-statuses?tracked_user_id={alice}&is_online=true"
        ))
        .await;
    assert!(polls["items"].as_array().unwrap().len() >= 3, "{polls}");
    let notifications = t
        .texts_to(1001)
        .into_iter()
        .filter(|text| text.starts_with("🟢 @alice_w is online"))
        .count();
    assert_eq!(notifications, 1);
    assert!(
        !t.texts_to(1002).iter().any(|t| t.contains("is online")),
        "{:?}",
        t.texts_to(1002)
    );
    // Offline and session messages are off by default.
    assert!(!t.texts_to(1001).iter().any(|t| t.contains("went offline")));

    // /stats: the figures of the API, and a real PNG chart.
    let (_, stats) = t
        .get(&format!("/api/tracked-users/{alice}/stats?hours=24"))
        .await;
    let online_seconds = stats["online_seconds"].as_i64().unwrap();
    let replies = t.ask_in(1001, 1001, "/stats 24 @alice_w", 2).await;
    let text = replies[0].text.as_deref().unwrap();
    // Her one session lasted at most the scenario's 10 minutes: shown in whole minutes.
    assert!((60..=600).contains(&online_seconds), "{stats}");
    let length = format!("{} min", online_seconds / 60);
    assert!(
        text.starts_with(&format!(
            "📊 @alice_w, last 24 h\nOnline: {length} ({:.1} % of the time)\nSessions: 1 (average {length}, longest {length})\nFirst online: ",
            online_seconds as f64 / 86_400.0 * 100.0
        )),
        "{text} vs {stats}"
    );
    assert_eq!(replies[1].method, "sendPhoto");
    assert_eq!(replies[1].text.as_deref(), Some("@alice_w, last 24 h"));
    let png = replies[1].photo.as_deref().expect("photo bytes");
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "PNG signature");
    assert_eq!(&png[12..16], b"IHDR");
    let width = u32::from_be_bytes(png[16..20].try_into().unwrap());
    let height = u32::from_be_bytes(png[20..24].try_into().unwrap());
    assert_eq!((width, height), (1000, 460));

    // All users at once: a line each and one chart with a lane each.
    let (status, _) = t
        .post("/api/tracked-users", &json!({"username": "bob_b"}))
        .await;
    assert_eq!(status, 201);
    let replies = t.ask_in(1001, 1001, "/stats 3d", 2).await;
    assert_eq!(
        replies[0].text.as_deref().unwrap(),
        format!(
            "📊 Last 3 days\n• @alice_w: online {length} in 1 session (longest {length})\n• @bob_b: not seen online\nAdd a user for details: /stats 72 @user"
        )
    );
    assert_eq!(replies[1].text.as_deref(), Some("2 users, last 3 days"));
    let png = replies[1].photo.as_deref().expect("photo bytes");
    let height = u32::from_be_bytes(png[20..24].try_into().unwrap());
    assert_eq!(height, 490, "a lane more");

    assert_eq!(
        t.ask(1001, "/untrack @alice_w").await,
        "Stopped tracking @alice_w. Their history is kept."
    );
    assert!(
        t.ask(1001, "/status")
            .await
            .starts_with("⚪ @bob_b: offline")
    );
    assert_eq!(
        t.ask(1001, "/untrack @alice_w").await,
        "@alice_w is not tracked (see /list)."
    );
}

#[actix_rt::test(system = "tgwatch_testkit::harness::TestSystem")]
async fn failures_and_rate_limits_lose_nothing() {
    let t = spawn_bot(SCENARIO, |config| {
        config.bot.notify_offline = true;
        config.bot.notify_session_summary = true;
    })
    .await;
    t.ask(1001, "/start").await;
    // Tracked through the API with `notify`: every chat with notifications on hears of her.
    let (status, body) = t
        .post(
            "/api/tracked-users",
            &json!({"username": ALICE, "notify": true}),
        )
        .await;
    assert_eq!(status, 201, "{body}");

    // A reply that meets a 429 waits Telegram's time and goes out.
    t.bot.rate_limit_next("sendMessage", 1);
    let asked = Instant::now();
    assert_eq!(
        t.ask(1001, "/notify on").await,
        "Notifications in this chat: on. /list shows whom they cover."
    );
    assert!(
        asked.elapsed() >= Duration::from_millis(900),
        "{:?}",
        asked.elapsed()
    );

    // Then the Bot API fails three times and asks to slow down once when she comes online.
    let calls_before = t.bot.calls("sendMessage");
    t.bot.fail_next("sendMessage", 3);
    t.bot.rate_limit_next("sendMessage", 1);
    let online = t
        .wait_for_text(1001, "🟢 @alice_w is online", Duration::from_secs(20))
        .await;
    let log: Vec<_> = t
        .bot
        .log()
        .into_iter()
        .filter(|call| call.method == "sendMessage")
        .skip(calls_before)
        .collect();
    let statuses: Vec<u16> = log.iter().map(|call| call.status).take(5).collect();
    assert_eq!(statuses, vec![400, 400, 400, 429, 200]);
    assert!(
        log[4].at - log[3].at >= Duration::from_millis(900),
        "the 429's retry_after was honoured: {:?}",
        log[4].at - log[3].at
    );
    assert!(online.text.is_some());

    // Her offline message and the session summary follow, in order, each once.
    t.wait_for_text(1001, "⏹ @alice_w was online ", Duration::from_secs(20))
        .await;
    let presence: Vec<String> = t
        .texts_to(1001)
        .into_iter()
        .filter(|text| text.contains("@alice_w"))
        .collect();
    assert_eq!(presence.len(), 3, "{presence:?}");
    assert!(
        presence[0].starts_with("🟢 @alice_w is online (since "),
        "{presence:?}"
    );
    assert!(presence[1].starts_with("⚪ @alice_w went offline (last seen "));
    assert!(presence[2].starts_with("⏹ @alice_w was online "));
}

#[actix_rt::test(system = "tgwatch_testkit::harness::TestSystem")]
async fn a_chat_that_blocked_the_bot_is_left_alone() {
    let t = spawn_bot(SCENARIO, |config| config.bot.notify_offline = true).await;
    t.ask(1002, "/start").await;
    let (status, _) = t
        .post("/api/tracked-users", &json!({"username": ALICE}))
        .await;
    assert_eq!(status, 201);
    assert_eq!(
        t.ask(1002, "/notify on @alice_w").await,
        "Notifications about @alice_w in this chat: on."
    );
    // By the time she comes online, Bob has blocked the bot.
    t.bot.fail_next_with(
        "sendMessage",
        1,
        403,
        "Forbidden: bot was blocked by the user",
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while !t.bot.log().iter().any(|call| call.status == 403) {
        assert!(Instant::now() < deadline, "no notification was tried");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Her going offline is not queued for the blocked chat, and the refused message is not
    // tried again.
    t.wait_until_second(2400 + 200).await;
    let (_, offline) = t
        .get("/api/online-statuses?username=alice_w&is_online=false&limit=1000")
        .await;
    assert!(
        offline["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|o| common::timestamp(&o["observed_at"]) >= t.at(2400)),
        "she was seen offline: {offline}"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let sends: Vec<u16> = t
        .bot
        .log()
        .into_iter()
        .filter(|call| call.method == "sendMessage")
        .map(|call| call.status)
        .collect();
    assert_eq!(
        sends,
        vec![200, 200, 403],
        "two replies, then the refused notification"
    );
    // A new /start makes the chat active again.
    assert!(
        t.ask(1002, "/start")
            .await
            .contains("This chat is registered with tgwatch (again).")
    );
}

#[actix_rt::test(system = "tgwatch_testkit::harness::TestSystem")]
async fn alerts_reach_admins_only() {
    let t = spawn_bot(SCENARIO, |config| {
        config.webhooks.allow_private_addresses = true;
        config.webhooks.retry_schedule_seconds = vec![];
        config.webhooks.disable_after_failed_messages = 1;
    })
    .await;
    t.ask(ADMIN, "/start").await;
    t.ask(1001, "/start").await;
    // An endpoint nothing listens on: its test message fails, the endpoint is disabled, and
    // the `alert` event reaches the admin's chat.
    let dead = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}/hook", listener.local_addr().unwrap())
    };
    let (status, webhook) = t.post("/api/webhooks", &json!({"url": dead})).await;
    assert_eq!(status, 201, "{webhook}");
    let id = webhook["id"].as_str().unwrap();
    let (status, _) = t
        .post(&format!("/api/webhooks/{id}/test"), &json!({}))
        .await;
    assert_eq!(status, 202);
    let alert = t
        .wait_for_text(ADMIN, "⚠️ Webhook ", Duration::from_secs(15))
        .await;
    assert_eq!(
        alert.text.unwrap(),
        format!(
            "⚠️ Webhook {dead} was disabled: {}. PATCH /api/webhooks/{id} {{\"status\": \"active\"}} enables it again.",
            t.get(&format!("/api/webhooks/{id}")).await.1["status_reason"]
                .as_str()
                .unwrap()
        )
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !t.texts_to(1001).iter().any(|text| text.contains("Webhook")),
        "{:?}",
        t.texts_to(1001)
    );
}

#[actix_rt::test(system = "tgwatch_testkit::harness::TestSystem")]
async fn digest_and_notification_switches() {
    // A digest hour far from now, so that none falls due while the test runs (an hour of
    // service time passes in 6 s).
    let hour = (chrono::Timelike::hour(&chrono::Utc::now()) + 12) % 24;
    let t = spawn_bot(SCENARIO, |config| config.bot.digest_hour = hour).await;
    t.ask(1001, "/start").await;
    let (status, _) = t
        .post("/api/tracked-users", &json!({"username": ALICE}))
        .await;
    assert_eq!(status, 201);

    assert_eq!(
        t.ask(1001, "/notify off").await,
        "Notifications in this chat: off. /notify on turns them back on."
    );
    assert_eq!(
        t.ask(1001, "/notify on @alice_w").await,
        "Notifications about @alice_w in this chat: on. This chat's notifications are off, though: /notify on."
    );
    assert_eq!(
        t.ask(1001, "/list").await,
        "Tracked users (1):\n• @alice_w: notifications on\nThis chat's notifications are off (/notify on)."
    );
    assert_eq!(
        t.ask(1001, "/notify off @bob_b").await,
        "@bob_b is not tracked (see /list)."
    );

    // The first digest comes at once (the reply and it may cross), then daily.
    let replies = t.ask_in(1001, 1001, "/digest on", 2).await;
    let texts: Vec<&str> = replies.iter().filter_map(|s| s.text.as_deref()).collect();
    let switched = format!(
        "Daily digest in this chat: on, every day at {hour:02}:00 UTC. Today's comes right away."
    );
    assert!(texts.contains(&switched.as_str()), "{texts:?}");
    let digest = texts
        .iter()
        .find(|text| text.starts_with("📋 Daily digest: the 24 hours to "))
        .unwrap_or_else(|| panic!("no digest in {texts:?}"));
    assert!(
        digest.ends_with("\n• @alice_w: not seen online"),
        "{digest}"
    );
    // Switching off and on again the same day sends no second one.
    assert_eq!(
        t.ask(1001, "/digest off").await,
        "Daily digest in this chat: off."
    );
    assert_eq!(
        t.ask(1001, "/digest on").await,
        format!("Daily digest in this chat: on, every day at {hour:02}:00 UTC.")
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let digests = t
        .texts_to(1001)
        .iter()
        .filter(|t| t.starts_with("📋"))
        .count();
    assert_eq!(digests, 1);
}

#[actix_rt::test(system = "tgwatch_testkit::harness::TestSystem")]
async fn the_bot_notifies_once_per_session_across_two_sessions() {
    // Two visits 600 s apart: far more than the gap (180 s) plus a poll interval (125 s), so
    // two sessions, each seen online by several polls.
    const TWO_VISITS: &str = r#"
[[users]]
id = 1001
username = "alice_w"
first_name = "Alice"
online = [[1800, 2100], [2700, 3000]]
"#;
    const ONLINE: &str = "🟢 @alice_w is online (since ";
    let t = spawn_bot(TWO_VISITS, |_| {}).await;
    t.ask(1001, "/start").await;
    assert!(
        t.ask(1001, "/track @alice_w")
            .await
            .starts_with("Now tracking @alice_w.")
    );
    let notifications = |t: &BotTest| {
        t.texts_to(1001)
            .into_iter()
            .filter(|text| text.starts_with(ONLINE))
            .count()
    };

    t.wait_for_text(1001, ONLINE, Duration::from_secs(30)).await;
    // Past her second visit and the gap that closes it.
    t.wait_until_second(3000 + 180 + 130).await;
    let (_, tracked) = t.get("/api/tracked-users?username=alice_w").await;
    let alice = tracked["items"][0]["id"].as_str().unwrap().to_owned();
    let sessions = t
        .eventually(
            &format!("/api/tracked-users/{alice}/sessions?hours=2"),
            Duration::from_secs(30),
            |body| {
                body["sessions"]
                    .as_array()
                    .and_then(|s| s.last())
                    .is_some_and(|last| last["ended_at"].is_string())
            },
        )
        .await;
    assert_eq!(
        sessions["sessions"].as_array().unwrap().len(),
        2,
        "{sessions}"
    );
    t.bot
        .wait_for(Duration::from_secs(30), |sent| {
            sent.iter()
                .filter(|s| s.text.as_deref().is_some_and(|t| t.starts_with(ONLINE)))
                .count()
                >= 2
        })
        .await;
    assert_eq!(notifications(&t), 2, "{:?}", t.texts_to(1001));
    // Every poll while she was online saw her online: more polls than notifications.
    let (_, polls) = t
        .get(&format!(
            "/api/online-statuses?tracked_user_id={alice}&is_online=true"
        ))
        .await;
    assert!(polls["items"].as_array().unwrap().len() >= 4, "{polls}");
}

/// The bot's worker panics: it is restarted, answers commands again and the notification of a
/// session that began meanwhile still comes, once.
#[actix_rt::test(system = "tgwatch_testkit::harness::TestSystem")]
async fn a_panicking_bot_restarts_and_its_notifications_go_on() {
    let t = spawn_bot(SCENARIO, |config| config.testing.fault_injection = true).await;
    t.ask(1001, "/start").await;
    t.ask(1001, "/track @alice_w").await;
    // Commands are answered after each restart (Alice may be online by then: her badge shows).
    let lists = |t: &BotTest| {
        t.texts_to(1001)
            .iter()
            .filter(|text| text.starts_with("Tracked users (1):\n• @alice_w"))
            .count()
    };

    t.panic_and_wait_for_restart("bot", None, Duration::from_secs(1))
        .await;
    t.bot.send_text(1001, 1001, "/list");
    t.bot.wait_for(WAIT, |_| lists(&t) == 1).await;
    assert_eq!(lists(&t), 1, "{:?}", t.texts_to(1001));
    t.wait_for_text(
        1001,
        "🟢 @alice_w is online (since ",
        Duration::from_secs(30),
    )
    .await;
    // Restarted again while she is online: no second notification for the same session.
    t.panic_and_wait_for_restart("bot", None, Duration::from_secs(1))
        .await;
    t.bot.send_text(1001, 1001, "/list");
    t.bot.wait_for(WAIT, |_| lists(&t) == 2).await;
    assert_eq!(lists(&t), 2, "{:?}", t.texts_to(1001));
    let online = t
        .texts_to(1001)
        .into_iter()
        .filter(|text| text.starts_with("🟢 @alice_w is online"))
        .count();
    assert_eq!(online, 1, "{:?}", t.texts_to(1001));
}

/// A notification cut off while it was sent (the bot's worker died in the middle of the call)
/// stays claimed only for the cluster's lease: the restarted bot sends it then, once.
#[actix_rt::test(system = "tgwatch_testkit::harness::TestSystem")]
async fn a_notification_cut_off_mid_send_goes_out_once_its_claim_runs_out() {
    const LEASE: Duration = Duration::from_secs(2);
    const ONLINE: &str = "🟢 @alice_w is online (since ";
    let t = spawn_bot(SCENARIO, |config| {
        config.testing.fault_injection = true;
        config.cluster.lease_seconds = LEASE.as_secs();
    })
    .await;
    t.ask(1001, "/start").await;
    assert!(
        t.ask(1001, "/track @alice_w")
            .await
            .starts_with("Now tracking @alice_w.")
    );
    // Her notification's call hangs: the worker panics while it waits.
    let calls = t.bot.calls("sendMessage");
    t.bot.hang_next("sendMessage", Duration::from_secs(60));
    let deadline = Instant::now() + Duration::from_secs(30);
    while t.bot.calls("sendMessage") == calls {
        assert!(
            Instant::now() < deadline,
            "her notification was never tried"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let cut_off = Instant::now();
    t.panic_and_wait_for_restart("bot", None, Duration::from_secs(5))
        .await;
    t.wait_for_text(1001, ONLINE, Duration::from_secs(20)).await;
    let waited = cut_off.elapsed();
    assert!(
        waited < LEASE + Duration::from_secs(5),
        "sent again {waited:?} after it was cut off (lease {LEASE:?})"
    );
    // The call cut off never reached Telegram; the one after the lease did, once.
    tokio::time::sleep(LEASE * 2).await;
    let online = t
        .texts_to(1001)
        .into_iter()
        .filter(|text| text.starts_with(ONLINE))
        .count();
    assert_eq!(online, 1, "{:?}", t.texts_to(1001));
    eprintln!("cut off, sent again {waited:?} later (lease {LEASE:?})");
}
