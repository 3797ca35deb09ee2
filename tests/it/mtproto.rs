//! The grammers adapter against the sandbox: the REAL grammers client over real TCP on
//! 127.0.0.1, first through the port directly, then through the whole service over HTTP.
//!
//! Every wait has a timeout, so that a protocol bug fails the test instead of hanging it.

use crate::common;

use std::{collections::HashMap, future::Future, sync::Arc, time::Duration};

use chrono::{DateTime, SubsecRound, Utc};
use serde_json::{Value, json};
use tgwatch_core::{
    clock::Clock,
    config::{AccountConfig, Config, Secret},
    presence::Status,
};
use tgwatch_sandbox::{AccountId, Ban, Sandbox, UserStatus};
use tgwatch_service::app::Application;
use tgwatch_telegram::{
    AccountIdentity, Connection, InputUser, TelegramConnector, TelegramError, Update, Username,
    grammers::GrammersConnector,
};

const API_ID: i32 = 1;
/// Generous for a loopback round trip, short enough that a hang fails fast.
const STEP: Duration = Duration::from_secs(5);

async fn within<T>(what: &str, future: impl Future<Output = T>) -> T {
    tokio::time::timeout(STEP, future)
        .await
        .unwrap_or_else(|_| panic!("timed out: {what}"))
}

fn identity(label: &str) -> AccountIdentity {
    AccountIdentity {
        label: label.into(),
        phone: None,
    }
}

fn at(seconds: i32) -> DateTime<Utc> {
    DateTime::from_timestamp(i64::from(seconds), 0).expect("valid timestamp")
}

/// A sandbox with one account and a connector that knows it as "main".
async fn start() -> (Sandbox, AccountId, GrammersConnector) {
    let sandbox = Sandbox::start().await.expect("sandbox starts");
    let account = sandbox
        .add_account(1000, 77, Some("watcher"), "Watcher")
        .expect("account");
    let connector = connector_for(&sandbox, account);
    (sandbox, account, connector)
}

fn connector_for(sandbox: &Sandbox, account: AccountId) -> GrammersConnector {
    let session = Arc::new(sandbox.session_for(account).expect("session"));
    GrammersConnector::new(API_ID, HashMap::from([("main".to_owned(), session)]))
}

async fn connect(connector: &GrammersConnector) -> Connection {
    match within("connect", connector.connect(&identity("main"))).await {
        Ok(connection) => connection,
        Err(error) => panic!("connect failed: {error}"),
    }
}

async fn connect_error(connector: &GrammersConnector, label: &str) -> TelegramError {
    match within("connect", connector.connect(&identity(label))).await {
        Ok(_) => panic!("connecting {label} should fail"),
        Err(error) => error,
    }
}

/// Waits until `check` holds, polling every 10 ms, or fails after [`STEP`].
async fn eventually(what: &str, check: impl Fn() -> bool) {
    within(what, async {
        while !check() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_users_asks_for_a_batch_of_150_in_one_call() {
    let (sandbox, _, connector) = start().await;
    let statuses = [
        (
            UserStatus::Online {
                expires: 2_000_000_000,
            },
            Status::Online {
                expires: at(2_000_000_000),
            },
        ),
        (
            UserStatus::Offline {
                was_online: 1_700_000_000,
            },
            Status::Offline {
                was_online: Some(at(1_700_000_000)),
            },
        ),
        (UserStatus::Recently, Status::Recently),
        (UserStatus::LastWeek, Status::LastWeek),
        (UserStatus::LastMonth, Status::LastMonth),
        (UserStatus::Empty, Status::Unknown),
    ];
    for i in 0..150i64 {
        let id = 5000 + i;
        sandbox
            .add_user(id, id * 3, None, &format!("user{i}"))
            .expect("user");
        sandbox
            .set_user_status(id, statuses[i as usize % statuses.len()].0)
            .expect("status");
    }
    let connection = connect(&connector).await;

    let mut batch: Vec<InputUser> = (0..150i64)
        .map(|i| InputUser {
            id: 5000 + i,
            access_hash: (5000 + i) * 3,
        })
        .collect();
    batch[7].access_hash = 12345; // wrong: Telegram leaves the user out
    let users = within("get_users", connection.session.get_users(&batch))
        .await
        .expect("get_users");

    assert_eq!(users.len(), 149);
    for user in &users {
        assert_ne!(user.id, 5007, "a wrong access hash must be left out");
        let i = user.id - 5000;
        assert_eq!(
            user.status,
            statuses[i as usize % statuses.len()].1,
            "user {}",
            user.id
        );
        assert_eq!(user.access_hash, user.id * 3);
        assert_eq!(user.first_name, Some(format!("user{i}")));
    }
    assert_eq!(sandbox.calls("users.getUsers"), 1, "one call for the batch");

    // An empty batch costs nothing.
    let none = within("empty get_users", connection.session.get_users(&[]))
        .await
        .expect("get_users");
    assert!(none.is_empty());
    assert_eq!(sandbox.calls("users.getUsers"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resolve_username_finds_a_user_and_an_unknown_name_is_none() {
    let (sandbox, _, connector) = start().await;
    sandbox
        .add_user(2000, 4242, Some("Alice_W"), "Alice")
        .expect("user");
    sandbox
        .set_user_status(
            2000,
            UserStatus::Offline {
                was_online: 1_800_000_000,
            },
        )
        .expect("status");
    let connection = connect(&connector).await;

    let alice = within(
        "resolve alice",
        connection
            .session
            .resolve_username(&Username::parse("@alice_w").expect("username")),
    )
    .await
    .expect("resolve")
    .expect("alice exists");
    assert_eq!(alice.id, 2000);
    assert_eq!(alice.access_hash, 4242);
    assert_eq!(alice.username.as_deref(), Some("Alice_W"));
    assert_eq!(alice.first_name.as_deref(), Some("Alice"));
    assert_eq!(
        alice.status,
        Status::Offline {
            was_online: Some(at(1_800_000_000))
        }
    );

    let nobody = within(
        "resolve nobody",
        connection
            .session
            .resolve_username(&Username::parse("nobody_here").expect("username")),
    )
    .await
    .expect("an unknown username is not an error");
    assert_eq!(nobody, None);
    assert_eq!(sandbox.calls("contacts.resolveUsername"), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pushed_status_change_arrives_on_the_updates() {
    let (sandbox, account, connector) = start().await;
    sandbox.add_user(2000, 1, None, "Alice").expect("user");
    sandbox.add_contact(account, 2000).expect("contact");
    let mut connection = connect(&connector).await;
    // connect asked updates.getState, so the connection is live and registered for pushes.
    eventually("a live connection", || {
        sandbox.connection_count(account).expect("count") == 1
    })
    .await;

    let delivery = sandbox
        .set_user_status(
            2000,
            UserStatus::Online {
                expires: 2_000_000_000,
            },
        )
        .expect("status");
    assert_eq!(delivery.live, 1);
    let update = within("pushed online", connection.updates.recv())
        .await
        .expect("the updates go on");
    assert_eq!(
        update,
        Update::UserStatus {
            user_id: 2000,
            status: Status::Online {
                expires: at(2_000_000_000)
            }
        }
    );

    sandbox
        .set_user_status(
            2000,
            UserStatus::Offline {
                was_online: 1_999_999_000,
            },
        )
        .expect("status");
    let update = within("pushed offline", connection.updates.recv())
        .await
        .expect("the updates go on");
    assert_eq!(
        update,
        Update::UserStatus {
            user_id: 2000,
            status: Status::Offline {
                was_online: Some(at(1_999_999_000))
            }
        }
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flood_wait_reaches_the_caller_with_its_seconds() {
    let (sandbox, account, connector) = start().await;
    sandbox.add_user(2000, 1, None, "Alice").expect("user");
    let connection = connect(&connector).await;
    let alice = [InputUser {
        id: 2000,
        access_hash: 1,
    }];

    sandbox.inject_flood_wait(account, 17, 1).expect("flood");
    let error = within("flooded get_users", connection.session.get_users(&alice))
        .await
        .expect_err("FLOOD_WAIT");
    assert_eq!(error, TelegramError::FloodWait { seconds: 17 });
    // NoRetries: grammers did not sleep and retry by itself.
    assert_eq!(sandbox.calls("users.getUsers"), 1);

    let users = within(
        "get_users after the flood",
        connection.session.get_users(&alice),
    )
    .await
    .expect("get_users");
    assert_eq!(users.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ban_is_unauthorized_with_its_name_and_ends_the_updates() {
    let (sandbox, account, connector) = start().await;
    let connector = connector.with_watchdog_interval(Duration::from_millis(100));
    let mut connection = connect(&connector).await;

    sandbox.ban(account, Ban::UserDeactivatedBan).expect("ban");
    let error = within(
        "banned get_users",
        connection.session.get_users(&[InputUser {
            id: 1000,
            access_hash: 77,
        }]),
    )
    .await
    .expect_err("banned");
    assert_eq!(
        error,
        TelegramError::Unauthorized {
            reason: "USER_DEACTIVATED_BAN".into()
        }
    );
    // The watchdog notices too, and ends the updates with the reason, so the actor gives the
    // account up without a reconnect. (The update stream may notice at the same moment and say
    // so as well.)
    let mut last_updates = Vec::new();
    while let Some(update) = within("updates end", connection.updates.recv()).await {
        last_updates.push(update);
    }
    assert!(!last_updates.is_empty());
    assert!(last_updates.iter().all(|update| *update
        == Update::Unauthorized {
            reason: "USER_DEACTIVATED_BAN".into()
        }));
    drop(connection);

    // Connecting again is refused with the ban's name.
    assert_eq!(
        connect_error(&connector, "main").await,
        TelegramError::Unauthorized {
            reason: "USER_DEACTIVATED_BAN".into()
        }
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_without_a_session_is_not_logged_in_rather_than_banned() {
    let (_sandbox, _, connector) = start().await;
    assert_eq!(
        connect_error(&connector, "ghost").await,
        TelegramError::NotLoggedIn
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_dropped_connection_a_later_get_users_succeeds() {
    let (sandbox, account, connector) = start().await;
    sandbox.add_user(2000, 1, None, "Alice").expect("user");
    sandbox.add_contact(account, 2000).expect("contact");
    let mut connection = connect(&connector).await;
    let alice = [InputUser {
        id: 2000,
        access_hash: 1,
    }];
    within("get_users", connection.session.get_users(&alice))
        .await
        .expect("get_users");

    assert!(sandbox.drop_connections(account).expect("drop") >= 1);
    // A request racing the close fails as a connection error (Io or Dropped); a retry
    // reconnects.
    let mut failures = 0;
    let users = loop {
        match within("get_users after drop", connection.session.get_users(&alice)).await {
            Err(TelegramError::Connection(_)) if failures < 20 => {
                failures += 1;
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            other => break other.expect("get_users after the drop"),
        }
    };
    assert_eq!(users.len(), 1);

    // Pushes flow again over the new connection.
    sandbox
        .set_user_status(
            2000,
            UserStatus::Online {
                expires: 2_000_000_000,
            },
        )
        .expect("status");
    // The recreated connection is reported as a gap first (pushes may have been lost).
    let gap = within("the gap", connection.updates.recv())
        .await
        .expect("the updates go on");
    assert_eq!(gap, Update::Gap);
    let update = within("pushed after the drop", connection.updates.recv())
        .await
        .expect("the updates go on");
    assert!(matches!(update, Update::UserStatus { user_id: 2000, .. }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_watchdog_reconnects_a_quiet_account() {
    let (sandbox, account, connector) = start().await;
    let connector = connector.with_watchdog_interval(Duration::from_millis(100));
    let connection = connect(&connector).await;
    eventually("a live connection", || {
        sandbox.connection_count(account).expect("count") == 1
    })
    .await;

    // Nobody makes a request; the watchdog's getState brings the connection back.
    assert!(sandbox.drop_connections(account).expect("drop") >= 1);
    eventually("the watchdog reconnects", || {
        sandbox.connection_count(account).expect("count") == 1
    })
    .await;
    assert!(sandbox.connections_accepted() >= 2);

    // Dropping the connection stops its pool: the sandbox sees the socket close.
    drop(connection);
    eventually("the pool stops", || {
        sandbox.connection_count(account).expect("count") == 0
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_connect_replaces_the_previous_connection() {
    let (sandbox, account, connector) = start().await;
    let mut first = connect(&connector).await;
    let second = connect(&connector).await;
    // grammers must not run two pools over one session: the first one is stopped, and its
    // updates end.
    assert_eq!(
        within("first updates end", first.updates.recv()).await,
        None
    );
    let users = within(
        "get_users on the second",
        second.session.get_users(&[InputUser {
            id: 1000,
            access_hash: 77,
        }]),
    )
    .await
    .expect("get_users");
    assert_eq!(users.len(), 1);
    eventually("one live connection", || {
        sandbox.connection_count(account).expect("count") == 1
    })
    .await;
}

// --- The whole service, over HTTP -----------------------------------------------------------

struct Service {
    base: String,
    client: reqwest::Client,
    _dir: tempfile::TempDir,
}

impl Service {
    async fn get(&self, path: &str) -> (u16, Value) {
        let response = self
            .client
            .get(format!("{}{path}", self.base))
            .bearer_auth(common::TOKEN)
            .send()
            .await
            .expect("request");
        (
            response.status().as_u16(),
            response.json().await.unwrap_or(Value::Null),
        )
    }

    async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        let response = self
            .client
            .post(format!("{}{path}", self.base))
            .bearer_auth(common::TOKEN)
            .json(body)
            .send()
            .await
            .expect("request");
        (
            response.status().as_u16(),
            response.json().await.unwrap_or(Value::Null),
        )
    }

    /// Tracks `username` and returns its id, asking again until the account has connected in
    /// the background (tracking needs it to resolve the name) or `deadline` has passed.
    async fn track_once_connected(&self, username: &str, deadline: tokio::time::Instant) -> String {
        loop {
            let (status, body) = self
                .post("/api/tracked-users", &json!({ "username": username }))
                .await;
            if status == 201 {
                return body["id"].as_str().expect("id").to_owned();
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "tracking never succeeded: {status} {body}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Polls `path` until `done` holds for its body, for up to 10 s of real time.
    async fn eventually(&self, path: &str, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let (status, body) = self.get(path).await;
            if status == 200 && done(&body) {
                return body;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{path} never satisfied the condition; last answer {status}: {body}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

async fn spawn_service(
    connector: GrammersConnector,
    clock: Clock,
    tweak: impl FnOnce(&mut Config),
) -> Service {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut config = Config::default();
    config.database.url = common::fresh_database(dir.path()).await;
    config.http.bind = "127.0.0.1:0".parse().expect("address");
    config.http.admin_token = Some(Secret::new(common::TOKEN));
    config.telegram.clock_speed = common::SPEED;
    config.presence.batch_delay_seconds = 5;
    config.presence.flush_interval_ms = 50;
    config.accounts = vec![AccountConfig {
        label: "main".into(),
        phone: None,
        api_id: None,
        max_targets: 1000,
        max_channels: 100,
    }];
    tweak(&mut config);
    config.validate().expect("test config is valid");
    let connector: Arc<dyn TelegramConnector> = Arc::new(connector);
    let app = Application::build_with(config, clock, connector)
        .await
        .expect("service starts");
    let base = format!("http://127.0.0.1:{}", app.port());
    actix_rt::spawn(app.run_until_stopped());
    Service {
        base,
        client: reqwest::Client::new(),
        _dir: dir,
    }
}

/// Telegram's whole seconds for a service-clock moment.
fn unix(at: DateTime<Utc>) -> i32 {
    i32::try_from(at.timestamp()).expect("fits Telegram's i32")
}

fn polled<'a>(body: &'a Value, status: &str) -> Vec<&'a Value> {
    body["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|item| item["source"] == "poll" && item["status"] == status)
        .collect()
}

#[actix_rt::test(system = "tgwatch_testkit::harness::TestSystem")]
async fn the_service_polls_presence_through_grammers() {
    let (sandbox, _account, connector) = start().await;
    // Not a contact: everything the service learns comes from its polls.
    sandbox
        .add_user(2000, 4242, Some("alice_w"), "Alice")
        .expect("user");
    let clock = Clock::fast(common::SPEED);
    // Online for an hour of service time (6 s real) unless she leaves earlier, which she will.
    let expires = clock.now().trunc_subsecs(0) + chrono::Duration::hours(1);
    sandbox
        .set_user_status(
            2000,
            UserStatus::Online {
                expires: unix(expires),
            },
        )
        .expect("status");
    let service = spawn_service(connector, clock, |_| {}).await;

    let alice = service
        .track_once_connected(
            "alice_w",
            tokio::time::Instant::now() + Duration::from_secs(10),
        )
        .await;
    let statuses = format!("/api/online-statuses?tracked_user_id={alice}&limit=1000");

    // Polls see her online, with Telegram's expiry.
    let body = service
        .eventually(&statuses, |body| polled(body, "online").len() >= 2)
        .await;
    for item in polled(&body, "online") {
        assert_eq!(common::timestamp(&item["expires_at"]), expires, "{item}");
        assert_eq!(item["is_online"], json!(true));
    }

    // She leaves.
    let was_online = clock.now().trunc_subsecs(0);
    sandbox
        .set_user_status(
            2000,
            UserStatus::Offline {
                was_online: unix(was_online),
            },
        )
        .expect("status");
    let left_by = clock.now();

    let body = service
        .eventually(&statuses, |body| !polled(body, "offline").is_empty())
        .await;
    for item in polled(&body, "offline") {
        assert_eq!(
            common::timestamp(&item["was_online_at"]),
            was_online,
            "{item}"
        );
        assert_eq!(item["is_online"], json!(false));
    }

    // The polls fold into one session, closed when she left.
    let body = service
        .eventually(
            &format!("/api/tracked-users/{alice}/sessions?hours=2"),
            |body| {
                body["sessions"].as_array().is_some_and(|sessions| {
                    sessions.len() == 1 && sessions[0]["ended_at"].is_string()
                })
            },
        )
        .await;
    let session = &body["sessions"][0];
    let ended_at = common::timestamp(&session["ended_at"]);
    // An online poll may land in the instant between `was_online` and the change.
    assert!(
        ended_at >= was_online && ended_at <= left_by,
        "ended {ended_at}, left at {was_online}"
    );
    assert!(common::timestamp(&session["started_at"]) < was_online);
    assert_eq!(session["is_open"], json!(false));

    // Every poll was one batched users.getUsers call through grammers.
    assert!(sandbox.calls("users.getUsers") >= 3);
    assert_eq!(sandbox.calls("contacts.resolveUsername"), 1);
}

/// A status change pushed while the account was cut off is lost, as on Telegram (statuses carry
/// no pts, so no difference brings them back). After the gap the service polls everyone it
/// watches at once instead of waiting for their next scheduled poll (a day away here).
/// Alice (2000), a contact of the account, with her changes pushed.
fn alice_contact(sandbox: &Sandbox, account: AccountId) {
    sandbox
        .add_user(2000, 4242, Some("alice_w"), "Alice")
        .expect("user");
    sandbox.add_contact(account, 2000).expect("contact");
}

fn online_until_an_hour_after(at: DateTime<Utc>) -> UserStatus {
    UserStatus::Online {
        expires: unix(at + chrono::Duration::hours(1)),
    }
}

/// Tracks Alice and changes her status until a push of it reaches the service; her id.
async fn track_alice_until_pushed(service: &Service, sandbox: &Sandbox, clock: &Clock) -> String {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let alice = service.track_once_connected("alice_w", deadline).await;
    let statuses = format!("/api/online-statuses?tracked_user_id={alice}&limit=1000");
    loop {
        let delivery = sandbox
            .set_user_status(2000, online_until_an_hour_after(clock.now()))
            .expect("status");
        let (_, body) = service.get(&statuses).await;
        let pushed = body["items"]
            .as_array()
            .expect("items")
            .iter()
            .any(|item| item["source"] == "push");
        if pushed {
            assert_eq!(delivery.live, 1);
            return alice;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no push arrived: {body}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[actix_rt::test(system = "tgwatch_testkit::harness::TestSystem")]
async fn after_a_gap_in_the_pushes_everyone_is_polled_at_once() {
    let (sandbox, account, connector) = start().await;
    alice_contact(&sandbox, account);
    let clock = Clock::fast(common::SPEED);
    let connector = connector.with_watchdog_interval(Duration::from_millis(200));
    let service = spawn_service(connector, clock, |config| {
        // Ten years apart: no scheduled poll (the first falls anywhere in [0, max]) can stand
        // in for the poll after the gap.
        config.presence.poll_min_seconds = 315_360_000;
        config.presence.poll_max_seconds = 315_360_000;
        config.telegram.reconnect_min_seconds = 1;
    })
    .await;
    // Pushes reach the service...
    let alice = track_alice_until_pushed(&service, &sandbox, &clock).await;
    let statuses = format!("/api/online-statuses?tracked_user_id={alice}&limit=1000");

    // ...until the account is cut off, and Alice leaves meanwhile: that push is lost.
    sandbox.set_unreachable(account, true).expect("cut off");
    let was_online = clock.now().trunc_subsecs(0);
    let delivery = sandbox
        .set_user_status(
            2000,
            UserStatus::Offline {
                was_online: unix(was_online),
            },
        )
        .expect("status");
    assert_eq!((delivery.live, delivery.dropped), (0, 1));
    sandbox.set_unreachable(account, false).expect("back");

    // The service asks at once after the gap, and so learns she left.
    let body = service
        .eventually(&statuses, |body| !polled(body, "offline").is_empty())
        .await;
    let offline = polled(&body, "offline")[0];
    assert_eq!(common::timestamp(&offline["was_online_at"]), was_online);
}

/// Online (for an hour) or offline as of now, and the name of that status in the API.
fn online_or_offline_now(online: bool, clock: &Clock) -> (UserStatus, &'static str) {
    match online {
        true => (online_until_an_hour_after(clock.now()), "online"),
        false => (
            UserStatus::Offline {
                was_online: unix(clock.now()),
            },
            "offline",
        ),
    }
}

/// The service's `pushes` in health for its one account.
async fn pushes_in_health(service: &Service) -> (Value, Value) {
    let (_, health) = service.get("/api/health").await;
    (health["account_states"][0]["pushes"].clone(), health)
}

/// Another client on the account's own session (the same authorization) takes the pushes while
/// it is the connection last active: the service finds Alice's changes only by polling, and
/// health says so; once that client is gone, the pushes and health come back.
#[actix_rt::test(system = "tgwatch_testkit::harness::TestSystem")]
async fn pushes_taken_by_another_client_on_the_same_session_show_in_health() {
    let (sandbox, account, connector) = start().await;
    alice_contact(&sandbox, account);
    let clock = Clock::fast(common::SPEED);
    let service = spawn_service(connector, clock, |config| {
        // A poll every 0.1 s of real time.
        config.presence.poll_min_seconds = 60;
        config.presence.poll_max_seconds = 60;
    })
    .await;
    let alice = track_alice_until_pushed(&service, &sandbox, &clock).await;
    let statuses = format!("/api/online-statuses?tracked_user_id={alice}&limit=1000");
    let (pushes, health) = pushes_in_health(&service).await;
    assert_eq!(pushes, "arriving", "{health}");

    // A second program logged in with a copy of the session, and active after each poll.
    let other = connector_for(&sandbox, account);
    let mut other = connect(&other).await;
    let alice_input = InputUser {
        id: 2000,
        access_hash: 4242,
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let mut online = false;
    let health = loop {
        within(
            "the other client's request",
            other.session.get_users(&[alice_input]),
        )
        .await
        .expect("get_users");
        online = !online;
        let (status, kind) = online_or_offline_now(online, &clock);
        let (_, before) = service.get(&statuses).await;
        let polled_before = polled(&before, kind).len();
        sandbox.set_user_status(2000, status).expect("status");
        // The service's next poll finds the change (and makes its connection the active one).
        service
            .eventually(&statuses, |body| polled(body, kind).len() > polled_before)
            .await;
        let (pushes, health) = pushes_in_health(&service).await;
        if pushes == "stopped" {
            break health;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the stolen pushes never showed in health: {health}"
        );
    };
    assert_eq!(health["status"], "degraded", "{health}");
    let reasons = health["reasons"].to_string();
    assert!(
        reasons.contains("main") && reasons.contains("another client"),
        "{health}"
    );
    // The pushes did go to the other program.
    let mut taken = 0;
    while let Ok(update) = other.updates.try_recv() {
        taken += usize::from(matches!(update, Update::UserStatus { user_id: 2000, .. }));
    }
    assert!(taken >= 3, "the other client got {taken} of Alice's pushes");

    // The other program closes: every change is pushed to the service again.
    drop(other);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        online = !online;
        let (status, _) = online_or_offline_now(online, &clock);
        sandbox.set_user_status(2000, status).expect("status");
        tokio::time::sleep(Duration::from_millis(50)).await;
        let (pushes, health) = pushes_in_health(&service).await;
        if pushes == "arriving" {
            assert_eq!(health["status"], "ok", "{health}");
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the pushes never came back: {health}"
        );
    }
}

/// A FLOOD_WAIT answered to a poll, through the real grammers client, pauses the account in the
/// running service for the seconds Telegram asked (service time): it is shown as limited with
/// the reason, makes no call meanwhile, and polls again, active, once the wait is over.
#[actix_rt::test(system = "tgwatch_testkit::harness::TestSystem")]
async fn a_flood_wait_pauses_the_account_in_the_running_service() {
    /// 6,000 s of service time: 10 s of real time at 600x.
    const FLOOD_SECONDS: u32 = 6000;
    let (sandbox, account, connector) = start().await;
    sandbox
        .add_user(2000, 4242, Some("alice_w"), "Alice")
        .expect("user");
    let service = spawn_service(connector, Clock::fast(common::SPEED), |_| {}).await;
    service
        .track_once_connected(
            "alice_w",
            tokio::time::Instant::now() + Duration::from_secs(10),
        )
        .await;
    let (_, accounts) = service.get("/api/accounts").await;
    let id = accounts["items"][0]["id"].as_str().expect("id").to_owned();
    let polls = || {
        sandbox
            .account_calls(account, "users.getUsers")
            .expect("calls")
    };
    eventually("polls flowing", || polls() >= 2).await;

    let flooded = std::time::Instant::now();
    sandbox
        .inject_flood_wait(account, FLOOD_SECONDS, 1)
        .expect("flood");
    let limited = service
        .eventually(&format!("/api/accounts/{id}"), |body| {
            body["status"] == "limited"
        })
        .await;
    assert_eq!(
        limited["status_reason"],
        format!("FLOOD_WAIT of {FLOOD_SECONDS} s"),
        "{limited}"
    );
    // Not one call while paused (2 s, well inside the 10 s of the wait).
    let paused_at = polls();
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(polls(), paused_at, "polled during the FLOOD_WAIT");

    // Polling resumes once the wait is over, never before.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(40);
    while polls() == paused_at {
        assert!(
            tokio::time::Instant::now() < deadline,
            "polling never resumed after the FLOOD_WAIT"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let real_wait = Duration::from_secs_f64(f64::from(FLOOD_SECONDS) / common::SPEED);
    assert!(
        flooded.elapsed() >= real_wait,
        "polled again after {:?}, before the {real_wait:?} of the wait",
        flooded.elapsed()
    );
    let active = service
        .eventually(&format!("/api/accounts/{id}"), |body| {
            body["status"] == "active"
        })
        .await;
    assert_eq!(active["status_reason"], Value::Null, "{active}");
}
