//! Several instances on one database (README, "Several instances"): `GET /api/cluster`, the
//! SQLite single-instance lock, and (on PostgreSQL) three instances of the real binary sharing
//! one sandbox Telegram, one of them killed in the middle of the work.

use crate::common;
use crate::deploy::{Host, exit_status, free_port, terminate, wait_healthy};

use std::{
    collections::{BTreeMap, BTreeSet},
    path::Path,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use common::{
    receiver::{Behaviour, Receiver},
    spawn_app,
};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
use tgwatch_core::{
    clock::Clock,
    config::{AccountConfig, Config},
    signing::SigningSecret,
};
use tgwatch_sandbox::bot_api::BotApi;
use tgwatch_service::app::{Application, StartupError};
use tgwatch_store::entities::{
    bot_messages, channels, events, messages, online_sessions, webhook_messages,
};
use tgwatch_telegram::TelegramConnector;
use tgwatch_testkit::{demo::SandboxFleet, sandbox_player, scripted::Scenario};
use uuid::Uuid;

/// One instance is the whole cluster: it leads and holds every account.
#[actix_rt::test(system = "tgwatch_testkit::harness::TestSystem")]
async fn a_lone_instance_leads_and_holds_every_account() {
    let app = spawn_app("", |_| {}).await;
    let (status, accounts) = app.get("/api/accounts").await;
    assert_eq!(status, 200, "{accounts}");
    let main = accounts["items"][0]["id"]
        .as_str()
        .expect("an account")
        .to_owned();
    let (status, cluster) = app.get("/api/cluster").await;
    assert_eq!(status, 200, "{cluster}");
    let instances = cluster["instances"].as_array().expect("instances");
    assert_eq!(instances.len(), 1, "{cluster}");
    let me = &instances[0];
    assert_eq!(me["leader"], true, "{cluster}");
    assert_eq!(me["accounts"], serde_json::json!([main]), "{cluster}");
    assert_eq!(me["id"], cluster["this_instance"], "{cluster}");
    assert_eq!(cluster["lease_seconds"], 30, "{cluster}");
    for field in ["host", "started_at", "heartbeat_at"] {
        assert!(me[field].is_string(), "{field}: {cluster}");
    }
}

/// A second instance on the same SQLite file is refused at start, saying why and what to do.
#[actix_rt::test(system = "tgwatch_testkit::harness::TestSystem")]
async fn a_second_instance_on_one_sqlite_file_is_refused() {
    let app = spawn_app("", |_| {}).await;
    if !app.database_url.starts_with("sqlite:") {
        return; // PostgreSQL takes several instances: see the test below.
    }
    let mut config = Config::default();
    config.database.url = app.database_url.clone();
    config.http.bind = "127.0.0.1:0".parse().expect("address");
    config.http.admin_token = Some(tgwatch_core::config::Secret::new(common::TOKEN));
    let connector: Arc<dyn TelegramConnector> = app.telegram.clone();
    let second = Application::build_with(config, Clock::fast(common::SPEED), connector).await;
    let error = match second {
        Ok(_) => panic!("a second instance started on the same SQLite file"),
        Err(error) => error,
    };
    assert!(matches!(error, StartupError::Cluster(_)), "{error}");
    let message = error.to_string();
    assert!(message.contains("another tgwatch is running"), "{message}");
    assert!(message.contains("use PostgreSQL"), "{message}");
    // The first one serves on.
    let (status, _) = app.get("/api/cluster").await;
    assert_eq!(status, 200);
}

/// The bot's notifications claimed and not sent yet: those a bot stopping now may have sent
/// without recording it.
async fn claimed_notifications(db: &sea_orm::DatabaseConnection) -> BTreeSet<Uuid> {
    bot_messages::Entity::find()
        .filter(bot_messages::Column::ClaimedUntil.is_not_null())
        .filter(bot_messages::Column::SentAt.is_null())
        .all(db)
        .await
        .expect("bot messages")
        .into_iter()
        .map(|message| message.id)
        .collect()
}

/// Instances of the cluster test: its accounts, people and channels.
const INSTANCES: usize = 3;
const ACCOUNTS: usize = 6;
const PEOPLE: usize = 12;
const CHANNELS: i64 = 3;
/// The channels' Telegram ids in the sandbox.
const FIRST_CHANNEL: i64 = 1_444_000_000;
/// `[cluster] lease_seconds` of the test: short, so that a failover takes seconds.
const LEASE_SECONDS: u64 = 3;
/// The bot of the cluster test (on the sandbox's fake Bot API) and the admin whose chat is
/// told when someone comes online.
const BOT_TOKEN: &str = "424242:cluster-bot-token";
const ADMIN: i64 = 9001;
const ONLINE: &str = "🟢 @person";

/// One `tgwatch run` of the cluster test.
struct Instance {
    base: String,
    child: tokio::process::Child,
    log: std::path::PathBuf,
}

impl Instance {
    async fn start(host: &Host, name: &str, file: &Path, database_url: &str) -> Instance {
        let port = free_port();
        let base = format!("http://127.0.0.1:{port}");
        let log = host.root.path().join(format!("{name}.log"));
        let output = std::fs::File::create(&log).expect("log");
        let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_tgwatch"))
            .arg("run")
            .arg("--config")
            .arg(file)
            .current_dir(host.state())
            .env("TGWATCH_HTTP__BIND", format!("127.0.0.1:{port}"))
            .env("TGWATCH_HTTP__ADMIN_TOKEN", common::TOKEN)
            .env("TGWATCH_DATABASE__URL", database_url)
            .env(
                "TGWATCH_SECURITY__MASTER_KEY_FILE",
                host.state().join("tgwatch.key"),
            )
            .env("TGWATCH_TELEGRAM__API_ID", "1")
            .env("TGWATCH_TELEGRAM__API_HASH", "cluster-api-hash")
            .stdout(output.try_clone().expect("log"))
            .stderr(output)
            .kill_on_drop(true)
            .spawn()
            .expect("start tgwatch");
        wait_healthy(&base, &mut child).await;
        Instance { base, child, log }
    }

    fn api(&self) -> common::Api {
        common::Api {
            base: self.base.clone(),
            client: reqwest::Client::new(),
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn kill(&self) {
        let pid =
            rustix::process::Pid::from_raw(self.child.id().expect("running") as i32).expect("pid");
        rustix::process::kill_process(pid, rustix::process::Signal::KILL).expect("SIGKILL");
    }
}

/// `GET /api/cluster` of `api`: each live instance's id with the accounts it holds, and the
/// leaders.
async fn holdings(api: &common::Api) -> (BTreeMap<String, BTreeSet<String>>, Vec<String>) {
    let (status, cluster) = api.get("/api/cluster").await;
    assert_eq!(status, 200, "{cluster}");
    let mut held = BTreeMap::new();
    let mut leaders = Vec::new();
    for instance in cluster["instances"].as_array().expect("instances") {
        let id = instance["id"].as_str().expect("id").to_owned();
        let accounts = instance["accounts"]
            .as_array()
            .expect("accounts")
            .iter()
            .map(|account| account.as_str().expect("account id").to_owned())
            .collect();
        if instance["leader"] == true {
            leaders.push(id.clone());
        }
        held.insert(id, accounts);
    }
    (held, leaders)
}

/// Waits until `check` holds for the cluster as `api` sees it; returns how long that took.
async fn wait_for_cluster(
    api: &common::Api,
    within: Duration,
    what: &str,
    check: impl Fn(&BTreeMap<String, BTreeSet<String>>, &[String]) -> bool,
) -> Duration {
    let started = tokio::time::Instant::now();
    loop {
        let (held, leaders) = holdings(api).await;
        if check(&held, &leaders) {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < within,
            "{what}: not within {within:?}: {held:?}, leaders {leaders:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Three instances of the binary on one PostgreSQL database share one sandbox Telegram at clock
/// speed 1 with a 3 s lease. They share out the accounts; the leader is SIGKILLed while the
/// channels post and the people come and go. Its accounts are held by the survivors within the
/// lease time + 5 s, every channel post is stored exactly once (those posted while nobody
/// listened are caught up from history), nobody gets two sessions at once, every event reaches
/// the webhook consumer (repeats only of messages in flight at the kill), another instance
/// leads, and a SIGTERM hands an instance's accounts over at once.
#[actix_rt::test(system = "tgwatch_testkit::harness::TestSystem")]
async fn three_instances_share_the_work_and_survive_a_sigkill() {
    let host = Host::new();
    let database_url = common::fresh_database(&host.state()).await;
    if !database_url.starts_with("postgres") {
        eprintln!("several instances need PostgreSQL (TGWATCH_TEST_DATABASE_URL): skipped");
        return;
    }
    let mut config = Config::default();
    config.database.url = database_url.clone();
    config.telegram.api_id = Some(1);
    config.telegram.api_hash = Some(tgwatch_core::config::Secret::new("cluster-api-hash"));
    config.security.master_key_file = host.state().join("tgwatch.key").display().to_string();
    config.accounts = (0..ACCOUNTS)
        .map(|index| AccountConfig {
            label: format!("account{index}"),
            phone: None,
            api_id: None,
            max_targets: 100,
            max_channels: 1,
        })
        .collect();
    // Everyone is online 2 s of every 7: an offline spell (5 s) longer than the gap (3 s) ends
    // each session.
    let scenario: String = (0..PEOPLE)
        .map(|index| {
            format!(
                "[[users]]\nid = {}\nusername = \"person{index:02}\"\nonline = [[{}, {}]]\nrepeat_every = 7\n",
                7000 + index,
                index % 5,
                index % 5 + 2
            )
        })
        .collect();
    let scenario = Scenario::from_toml(&scenario).expect("scenario");
    let fleet = SandboxFleet::start(&config, &scenario, Clock::real())
        .await
        .expect("sandbox fleet");
    for channel in 0..CHANNELS {
        fleet
            .sandbox
            .add_channel(
                FIRST_CHANNEL + channel,
                4242 + channel,
                Some(&format!("cluster_news{channel}")),
                "Cluster news",
                "",
            )
            .expect("channel");
    }
    let player = sandbox_player::play(
        fleet.sandbox.clone(),
        scenario,
        Clock::real(),
        chrono::Utc::now(),
    );
    let receiver = Receiver::start(Behaviour::Ok);
    let secret = SigningSecret::generate();
    let bot = BotApi::start(BOT_TOKEN).await.expect("fake bot api");
    let mut file_text = format!(
        "[bot]\ntoken = \"{BOT_TOKEN}\"\napi_url = \"{}\"\nadmin_ids = [{ADMIN}]\n\
         polling_timeout_seconds = 1\npoll_interval_ms = 50\nmessages_per_chat_per_second = 100\n\
         messages_per_chat_per_minute = 1000\nmessages_per_group_per_minute = 1000\n\
         messages_per_second = 1000\n\n\
         [telegram]\nwatchdog_seconds = 0.5\n\n\
         [presence]\npoll_min_seconds = 1\npoll_max_seconds = 2\ngap_seconds = 3\n\
         batch_delay_seconds = 1\nflush_interval_ms = 100\n\n\
         [cluster]\nlease_seconds = {LEASE_SECONDS}\n\n\
         [webhooks]\nallow_private_addresses = true\npoll_interval_ms = 50\ntimeout_seconds = 2\n\n\
         [[webhooks.endpoints]]\nname = \"cluster-consumer\"\nurl = \"{}\"\nsecret = \"{}\"\n\n",
        bot.url(),
        receiver.url,
        secret.expose()
    );
    for account in &config.accounts {
        file_text.push_str(&format!(
            "[[accounts]]\nlabel = \"{}\"\nmax_channels = 1\n\n",
            account.label
        ));
    }
    for index in 0..PEOPLE {
        file_text.push_str(&format!(
            "[[tracked_users]]\nusername = \"person{index:02}\"\nnotify = true\n\n"
        ));
    }
    for channel in 0..CHANNELS {
        file_text.push_str(&format!(
            "[[channels]]\nchannel = \"@cluster_news{channel}\"\n\n"
        ));
    }
    let file = host.root.path().join("etc/config.toml");
    std::fs::write(&file, file_text).expect("config");

    // The first instance applies the file (it holds every account then), the others join.
    let first = Instance::start(&host, "first", &file, &database_url).await;
    let api = first.api();
    api.eventually(
        "/api/tracked-users?limit=100",
        Duration::from_secs(60),
        |body| {
            body["items"].as_array().is_some_and(|items| {
                items.len() == PEOPLE
                    && items.iter().all(|item| !item["telegram_user_id"].is_null())
            })
        },
    )
    .await;
    api.eventually("/api/channels", Duration::from_secs(60), |body| {
        body["items"].as_array().is_some_and(|items| {
            items.len() == CHANNELS as usize && items.iter().all(|item| item["status"] == "active")
        })
    })
    .await;
    let mut instances = vec![first];
    for name in ["second", "third"] {
        instances.push(Instance::start(&host, name, &file, &database_url).await);
    }
    let balanced = wait_for_cluster(
        &api,
        Duration::from_secs(20),
        "balanced",
        |held, leaders| {
            held.len() == INSTANCES
                && held
                    .values()
                    .all(|accounts| accounts.len() == ACCOUNTS / INSTANCES)
                && leaders.len() == 1
        },
    )
    .await;
    eprintln!("three instances hold two accounts each {balanced:?} after the third started");

    // The admin's chat asks for notifications (the leader's bot answers); everyone who comes
    // online from now on is told about once.
    bot.send_text(ADMIN, ADMIN, "/start");
    bot.send_text(ADMIN, ADMIN, "/notify on");
    let answered = bot
        .wait_for(Duration::from_secs(20), |sent| {
            sent.iter().any(|sent| {
                sent.text
                    .as_deref()
                    .is_some_and(|text| text.starts_with("Notifications in this chat: on."))
            })
        })
        .await;
    assert!(
        answered.iter().any(|sent| sent
            .text
            .as_deref()
            .is_some_and(|text| text.starts_with("Notifications in this chat: on."))),
        "the bot never answered /notify on: {answered:?}"
    );
    let notifying_since = chrono::Utc::now();

    // Channel posts from now until the end, every one recorded as the sandbox numbered it.
    let stop_posting = Arc::new(AtomicBool::new(false));
    let posted = Arc::new(Mutex::new(Vec::new()));
    let poster = {
        let (sandbox, posted, stop) = (fleet.sandbox.clone(), posted.clone(), stop_posting.clone());
        tokio::spawn(async move {
            let mut number = 0_i64;
            while !stop.load(Ordering::SeqCst) {
                let channel = FIRST_CHANNEL + number % CHANNELS;
                let post = sandbox
                    .post(channel, &format!("post {number}"))
                    .expect("post");
                posted.lock().unwrap().push((channel, post.id));
                number += 1;
                tokio::time::sleep(Duration::from_millis(30)).await;
            }
        })
    };
    tokio::time::sleep(Duration::from_secs(3)).await;

    // SIGKILL the leader in the middle of the posts and the polls.
    let (held, leaders) = holdings(&api).await;
    let victim_id = leaders[0].clone();
    let victim_accounts = held[&victim_id].clone();
    let mut victim = None;
    for (index, instance) in instances.iter().enumerate() {
        let (_, cluster) = instance.api().get("/api/cluster").await;
        if cluster["this_instance"] == victim_id.as_str() {
            victim = Some(index);
        }
    }
    let victim = instances.remove(victim.expect("the leader is one of ours"));
    victim.kill();
    let killed_at = tokio::time::Instant::now();
    // What was claimed at that moment (by anyone): only these may reach the consumer twice.
    let db = sea_orm::Database::connect(&database_url).await.unwrap();
    let in_flight: BTreeSet<String> = webhook_messages::Entity::find()
        .filter(webhook_messages::Column::ClaimedUntil.is_not_null())
        .all(&db)
        .await
        .unwrap()
        .into_iter()
        .map(|message| message.event_id)
        .collect();
    let mut bot_in_flight = claimed_notifications(&db).await;

    let survivor = instances[0].api();
    let failover = wait_for_cluster(
        &survivor,
        Duration::from_secs(LEASE_SECONDS + 5),
        "the killed instance's accounts held by the survivors",
        |held, leaders| {
            !held.contains_key(&victim_id)
                && victim_accounts
                    .iter()
                    .all(|account| held.values().any(|accounts| accounts.contains(account)))
                && leaders.len() == 1
        },
    )
    .await;
    eprintln!(
        "failover: the killed instance's {} accounts held by survivors {:?} after SIGKILL",
        victim_accounts.len(),
        killed_at.elapsed()
    );
    assert!(failover <= Duration::from_secs(LEASE_SECONDS + 5));

    tokio::time::sleep(Duration::from_secs(3)).await;
    stop_posting.store(true, Ordering::SeqCst);
    poster.await.unwrap();
    let posted = posted.lock().unwrap().clone();

    // Every post stored exactly once, those of the outage caught up from history.
    let channel_ids: BTreeMap<Uuid, i64> = channels::Entity::find()
        .all(&db)
        .await
        .unwrap()
        .into_iter()
        .filter_map(|channel| Some((channel.id, channel.telegram_channel_id?)))
        .collect();
    let expected: BTreeSet<(i64, i32)> = posted.iter().copied().collect();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let stored = loop {
        let rows = messages::Entity::find().all(&db).await.unwrap();
        let stored: Vec<(i64, i32)> = rows
            .iter()
            .map(|row| (channel_ids[&row.channel_id], row.telegram_message_id))
            .collect();
        if stored.len() >= expected.len() || tokio::time::Instant::now() > deadline {
            break stored;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let distinct: BTreeSet<(i64, i32)> = stored.iter().copied().collect();
    assert_eq!(stored.len(), distinct.len(), "a post stored twice");
    let missing: Vec<_> = expected.difference(&distinct).collect();
    assert!(
        missing.is_empty(),
        "{} of {} posts never stored: {missing:?}\n{}",
        missing.len(),
        expected.len(),
        instances[0].log()
    );

    // Nobody has two sessions at once.
    let sessions = online_sessions::Entity::find()
        .order_by_asc(online_sessions::Column::StartedAt)
        .all(&db)
        .await
        .unwrap();
    assert!(!sessions.is_empty(), "no session at all");
    let mut last_end: BTreeMap<Uuid, chrono::DateTime<chrono::Utc>> = BTreeMap::new();
    for session in &sessions {
        if let Some(end) = last_end.get(&session.tracked_user_id) {
            assert!(
                session.started_at >= *end,
                "two sessions at once for {}: {sessions:#?}",
                session.tracked_user_id
            );
        }
        let end = session
            .ended_at
            .unwrap_or(chrono::DateTime::<chrono::Utc>::MAX_UTC);
        last_end.insert(session.tracked_user_id, end);
    }

    // Every event reaches the consumer; a repeat only of what was claimed at the kill.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let events: BTreeSet<String> = loop {
        let events: BTreeSet<String> = tgwatch_store::entities::events::Entity::find()
            .all(&db)
            .await
            .unwrap()
            .into_iter()
            .map(|event| event.id)
            .collect();
        if events.is_subset(&receiver.delivered_ids()) || tokio::time::Instant::now() > deadline {
            break events;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let delivered = receiver.delivered_ids();
    let undelivered: Vec<_> = events.difference(&delivered).collect();
    assert!(undelivered.is_empty(), "never delivered: {undelivered:?}");
    let mut times: BTreeMap<String, usize> = BTreeMap::new();
    for received in receiver.received() {
        if (200..300).contains(&received.answered) {
            *times.entry(received.id).or_default() += 1;
        }
    }
    let repeated: Vec<&String> = times
        .iter()
        .filter(|(_, times)| **times > 1)
        .map(|(id, _)| id)
        .collect();
    assert!(
        repeated.iter().all(|id| in_flight.contains(*id)),
        "delivered twice though not in flight at the kill: {repeated:?}"
    );
    eprintln!(
        "{} posts stored once each, {} sessions, {} events delivered ({} repeated)",
        expected.len(),
        sessions.len(),
        events.len(),
        repeated.len()
    );

    // A SIGTERM hands the accounts over at once, well before the lease would run out.
    let stopping = instances.remove(0);
    let last = instances.remove(0);
    // What the stopping instance's bot (if it leads) may leave claimed mid-send.
    bot_in_flight.extend(claimed_notifications(&db).await);
    terminate(&stopping.child);
    let handed_at = tokio::time::Instant::now();
    let mut stopping = stopping;
    let status = exit_status(&mut stopping.child).await;
    assert_eq!(status.code(), Some(0), "{}", stopping.log());
    let last_api = last.api();
    wait_for_cluster(
        &last_api,
        Duration::from_secs(LEASE_SECONDS),
        "every account on the last instance after the other's SIGTERM",
        |held, leaders| {
            held.len() == 1
                && held.values().all(|accounts| accounts.len() == ACCOUNTS)
                && leaders.len() == 1
        },
    )
    .await;
    eprintln!(
        "SIGTERM handover: every account on the last instance {:?} after SIGTERM",
        handed_at.elapsed()
    );

    // The bot told the admin once about everyone who came online once the chat asked: every
    // such event became one message, and each went out, across the leader's SIGKILL and the
    // SIGTERM (a message left claimed by a bot that died or stopped goes out once its claim's
    // lease, the cluster's 3 s, runs out). Only a message claimed at the kill or the SIGTERM may
    // have gone out twice (sent, then cut off before it was recorded). Checked once nobody
    // comes online any more, so that what the fake Bot API saw and what the outbox says are
    // read at rest.
    player.abort();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let came_online: BTreeSet<String> = events::Entity::find()
        .filter(events::Column::EventType.eq("user_online"))
        .filter(events::Column::CreatedAt.gt(notifying_since + chrono::Duration::seconds(1)))
        .all(&db)
        .await
        .unwrap()
        .into_iter()
        .map(|event| event.id)
        .collect();
    assert!(
        !came_online.is_empty(),
        "nobody came online after /notify on"
    );
    let online_sent = || -> Vec<i64> {
        bot.sent_to(ADMIN)
            .into_iter()
            .filter(|sent| {
                sent.text
                    .as_deref()
                    .is_some_and(|text| text.starts_with(ONLINE))
            })
            .map(|sent| sent.message_id)
            .collect()
    };
    let told = |queued: &[bot_messages::Model], event: &String| {
        queued
            .iter()
            .any(|message| &message.dedupe_key == event && message.sent_at.is_some())
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let (queued, sent_online) = loop {
        let before = online_sent();
        let queued: Vec<bot_messages::Model> = bot_messages::Entity::find()
            .filter(bot_messages::Column::ChatId.eq(ADMIN))
            .filter(bot_messages::Column::Kind.eq("user_online"))
            .all(&db)
            .await
            .unwrap();
        let settled = came_online.iter().all(|event| told(&queued, event));
        let at_rest = before == online_sent();
        if (settled && at_rest) || tokio::time::Instant::now() > deadline {
            break (queued, before);
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    let untold: Vec<&String> = came_online
        .iter()
        .filter(|event| !told(&queued, event))
        .collect();
    assert!(
        untold.is_empty(),
        "came online, never told: {untold:?}\n{queued:#?}"
    );
    // Each message the outbox marks sent went out under the id it records, and no other
    // "online" message went out: a message sent twice would be one more.
    let marked_sent: Vec<i64> = queued
        .iter()
        .filter(|message| message.sent_at.is_some())
        .filter_map(|message| message.telegram_message_id.map(i64::from))
        .collect();
    for id in &marked_sent {
        assert!(
            sent_online.contains(id),
            "message {id} is marked sent but did not go out"
        );
    }
    let unrecorded = sent_online.len() - marked_sent.len();
    assert!(
        unrecorded <= bot_in_flight.len(),
        "{} online messages went out for {} marked sent ({} claimed at the kill and the SIGTERM)",
        sent_online.len(),
        marked_sent.len(),
        bot_in_flight.len()
    );
    eprintln!(
        "the bot told the admin of {} comings online, each once ({} claimed at the kill and \
         the SIGTERM, {unrecorded} of them sent twice)",
        came_online.len(),
        bot_in_flight.len()
    );
}

/// The live feed across instances: what one instance commits and announces reaches the feed
/// of another through `LISTEN/NOTIFY`, every event once, and never comes back to its own.
#[actix_rt::test(system = "tgwatch_testkit::harness::TestSystem")]
async fn announced_events_reach_the_other_instances_feed_once() {
    use tgwatch_core::events::{Event, EventType};
    use tgwatch_service::{feed::Feed, relay::Relay};

    let (db, url, _dir) = common::migrated_database_and_url().await;
    let (feed_a, feed_b) = (Feed::default(), Feed::default());
    let relay_a = Relay::new(db.clone(), &url, Uuid::now_v7(), feed_a.clone());
    let relay_b = Relay::new(db.clone(), &url, Uuid::now_v7(), feed_b.clone());
    let (Some(relay_a), Some(relay_b)) = (relay_a, relay_b) else {
        assert!(url.starts_with("sqlite"), "no relay on {url}");
        eprintln!("skipped: one instance on SQLite has nothing to relay");
        return;
    };
    let (_listener_a, _listener_b) = (relay_a.spawn_listener(), relay_b.spawn_listener());
    let (mut seen_a, mut seen_b) = (feed_a.subscribe(), feed_b.subscribe());
    let event = |n: usize| {
        Event::new(
            EventType::UserOnline,
            chrono::Utc::now(),
            serde_json::json!({ "n": n }),
        )
    };

    // The listener connects in the background: announce one event until it arrives.
    let probe = event(0);
    tgwatch_store::webhooks::write_events(&db, std::slice::from_ref(&probe))
        .await
        .unwrap();
    loop {
        relay_a.announce(std::slice::from_ref(&probe));
        match tokio::time::timeout(Duration::from_millis(200), seen_b.recv()).await {
            Ok(received) => {
                assert_eq!(received.unwrap().id, probe.id);
                break;
            }
            Err(_) => continue,
        }
    }
    while let Ok(Ok(_)) = tokio::time::timeout(Duration::from_millis(200), seen_b.recv()).await {}

    // More events than one notification holds: several payloads in one statement.
    let events: Vec<Event> = (1..=250).map(event).collect();
    tgwatch_store::webhooks::write_events(&db, &events)
        .await
        .unwrap();
    relay_a.announce(&events);
    let mut received = Vec::new();
    while received.len() < events.len() {
        let next = tokio::time::timeout(Duration::from_secs(10), seen_b.recv())
            .await
            .expect("every announced event reaches the other instance")
            .unwrap();
        received.push(next.id.clone());
    }
    let sent: BTreeSet<String> = events.iter().map(|event| event.id.clone()).collect();
    assert_eq!(received.iter().cloned().collect::<BTreeSet<_>>(), sent);
    assert_eq!(received.len(), sent.len(), "each event once");
    assert!(
        tokio::time::timeout(Duration::from_millis(300), seen_b.recv())
            .await
            .is_err(),
        "nothing more"
    );
    assert!(
        seen_a.try_recv().is_err(),
        "an instance's own announcements do not come back to its feed"
    );
}
