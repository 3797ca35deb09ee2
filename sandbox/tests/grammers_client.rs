//! The REAL grammers client against the sandbox, over real TCP on 127.0.0.1. No mocks.
//!
//! Every step runs under a timeout so that a protocol bug fails the test instead of hanging it.

#![allow(clippy::expect_used, clippy::unwrap_used)]

mod support;

use std::time::Duration;

use grammers_client::client::UpdateStream;
use grammers_client::session::storages::MemorySession;
use grammers_client::update::Update;
use grammers_client::{InvocationError, tl};
use support::{TestClient, rpc_error, within};
use tgwatch_sandbox::{AccountId, Ban, Sandbox, UserStatus};
use tokio::sync::mpsc;

fn input_user(id: i64, access_hash: i64) -> tl::enums::InputUser {
    tl::enums::InputUser::User(tl::types::InputUser {
        user_id: id,
        access_hash,
    })
}

/// Waits for the next `updateUserStatus` on the stream.
async fn next_status(stream: &mut UpdateStream) -> (i64, tl::enums::UserStatus) {
    loop {
        let update = within("pushed update", stream.next())
            .await
            .expect("update stream");
        if let Update::Raw(raw) = update
            && let tl::enums::Update::UserStatus(status) = raw.raw
        {
            return (status.user_id, status.status);
        }
    }
}

/// Forwards every pushed `updateUserStatus` from a stream consumed in the background.
fn spawn_status_consumer(
    stream: UpdateStream,
) -> mpsc::UnboundedReceiver<(i64, tl::enums::UserStatus)> {
    spawn_consumer(stream).0
}

/// Forwards every `updateUserStatus` and the text of every new private message from a stream
/// consumed in the background.
fn spawn_consumer(
    mut stream: UpdateStream,
) -> (
    mpsc::UnboundedReceiver<(i64, tl::enums::UserStatus)>,
    mpsc::UnboundedReceiver<String>,
) {
    let (tx, rx) = mpsc::unbounded_channel();
    let (messages_tx, messages_rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while !tx.is_closed() {
            match stream.next().await {
                Ok(Update::Raw(raw)) => {
                    if let tl::enums::Update::UserStatus(status) = raw.raw {
                        let _ = tx.send((status.user_id, status.status));
                    }
                }
                Ok(Update::NewMessage(message)) => {
                    let _ = messages_tx.send(message.text().to_owned());
                }
                Ok(_) => {}
                // A getDifference racing a connection close can fail; the stream retries it on
                // the next call, as tgwatch's consumer must.
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            }
        }
    });
    (rx, messages_rx)
}

async fn next_from(
    statuses: &mut mpsc::UnboundedReceiver<(i64, tl::enums::UserStatus)>,
) -> (i64, tl::enums::UserStatus) {
    within("pushed status", statuses.recv())
        .await
        .expect("the update stream ended")
}

/// Waits until `count` update streams of the account have asked for their starting state.
/// grammers sends `updates.getState` from the stream's first `next()`, in the consumer's task:
/// on a loaded machine it can arrive after later requests and make its connection the active one.
async fn until_streams_started(sandbox: &Sandbox, account: AccountId, count: u64) {
    within("the streams' updates.getState", async {
        while sandbox
            .account_calls(account, "updates.getState")
            .expect("account")
            < count
        {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
}

async fn start_with_account() -> (Sandbox, AccountId) {
    let sandbox = Sandbox::start().await.expect("sandbox starts");
    let account = sandbox
        .add_account(1000, 77, Some("watcher"), "Watcher")
        .expect("account");
    (sandbox, account)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connects_authorized_and_get_me_returns_the_self_user() {
    let (sandbox, account) = start_with_account().await;
    let tc = TestClient::connect(&sandbox, account);

    assert!(
        within("is_authorized", tc.client.is_authorized())
            .await
            .expect("is_authorized")
    );
    let me = within("get_me", tc.client.get_me()).await.expect("get_me");
    assert_eq!(me.id().bare_id(), Some(1000));
    assert!(me.is_self());
    assert_eq!(me.first_name(), Some("Watcher"));
    assert_eq!(me.username(), Some("watcher"));

    // One connection, set up with invokeWithLayer(initConnection(help.getConfig)).
    assert_eq!(sandbox.connections_accepted(), 1);
    assert_eq!(sandbox.calls("help.getConfig"), 1);
    assert_eq!(sandbox.calls("updates.getState"), 1);
    assert_eq!(sandbox.calls("users.getUsers"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_users_returns_statuses_for_a_batch_of_150_and_leaves_out_wrong_hashes() {
    let (sandbox, account) = start_with_account().await;
    let statuses = [
        UserStatus::Online {
            expires: 2_000_000_000,
        },
        UserStatus::Offline {
            was_online: 1_700_000_000,
        },
        UserStatus::Recently,
        UserStatus::LastWeek,
        UserStatus::LastMonth,
        UserStatus::Empty,
    ];
    for i in 0..150i64 {
        let id = 5000 + i;
        sandbox
            .add_user(id, id * 3, None, &format!("user{i}"))
            .expect("user");
        sandbox
            .set_user_status(id, statuses[i as usize % statuses.len()])
            .expect("status");
    }
    let tc = TestClient::connect(&sandbox, account);

    // 150 users is ~3 KB of request: grammers gzips it, so this also covers gzip_packed.
    let mut request: Vec<_> = (0..150i64)
        .map(|i| input_user(5000 + i, (5000 + i) * 3))
        .collect();
    request[7] = input_user(5007, 12345); // wrong access hash
    let users = within(
        "users.getUsers",
        tc.client
            .invoke(&tl::functions::users::GetUsers { id: request }),
    )
    .await
    .expect("getUsers");

    assert_eq!(users.len(), 149);
    for user in users {
        let tl::enums::User::User(user) = user else {
            panic!("empty user");
        };
        assert_ne!(user.id, 5007, "a wrong access hash must be left out");
        let i = user.id - 5000;
        let expected = match statuses[i as usize % statuses.len()] {
            UserStatus::Online { expires } => {
                tl::enums::UserStatus::Online(tl::types::UserStatusOnline { expires })
            }
            UserStatus::Offline { was_online } => {
                tl::enums::UserStatus::Offline(tl::types::UserStatusOffline { was_online })
            }
            UserStatus::Recently => {
                tl::enums::UserStatus::Recently(tl::types::UserStatusRecently { by_me: false })
            }
            UserStatus::LastWeek => {
                tl::enums::UserStatus::LastWeek(tl::types::UserStatusLastWeek { by_me: false })
            }
            UserStatus::LastMonth => {
                tl::enums::UserStatus::LastMonth(tl::types::UserStatusLastMonth { by_me: false })
            }
            UserStatus::Empty => tl::enums::UserStatus::Empty,
        };
        assert_eq!(user.status, Some(expected), "user {}", user.id);
        assert_eq!(user.access_hash, Some(user.id * 3));
        assert_eq!(user.first_name, Some(format!("user{i}")));
    }
    assert_eq!(sandbox.calls("users.getUsers"), 1);
    assert_eq!(
        sandbox
            .account_calls(account, "users.getUsers")
            .expect("calls"),
        1
    );

    // Over the limit is refused rather than silently truncated.
    let too_many: Vec<_> = (0..201i64).map(|i| input_user(5000 + i % 150, 0)).collect();
    let error = rpc_error(
        within(
            "users.getUsers 201",
            tc.client
                .invoke(&tl::functions::users::GetUsers { id: too_many }),
        )
        .await,
    );
    assert_eq!((error.code, error.name.as_str()), (400, "LIMIT_INVALID"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resolve_username_finds_a_user_and_an_unknown_name_fails_fast() {
    let (sandbox, account) = start_with_account().await;
    sandbox
        .add_user(2000, 4242, Some("Alice"), "Alice")
        .expect("user");
    let tc = TestClient::connect(&sandbox, account);

    let peer = within("resolve alice", tc.client.resolve_username("alice"))
        .await
        .expect("resolve")
        .expect("alice exists");
    let grammers_client::peer::Peer::User(user) = peer else {
        panic!("expected a user");
    };
    assert_eq!(user.id().bare_id(), Some(2000));
    assert_eq!(user.username(), Some("Alice"));

    // grammers turns USERNAME_NOT_OCCUPIED into Ok(None)...
    let missing = within("resolve nobody", tc.client.resolve_username("nobody"))
        .await
        .expect("resolve");
    assert!(missing.is_none());
    // ...which is the sandbox's 400 underneath.
    let error = rpc_error(
        within(
            "raw resolve nobody",
            tc.client.invoke(&tl::functions::contacts::ResolveUsername {
                username: "nobody".into(),
                referer: None,
            }),
        )
        .await,
    );
    assert_eq!(
        (error.code, error.name.as_str()),
        (400, "USERNAME_NOT_OCCUPIED")
    );
    assert_eq!(sandbox.calls("contacts.resolveUsername"), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_status_change_is_pushed_to_contacts_as_a_raw_update() {
    let (sandbox, account) = start_with_account().await;
    sandbox.add_user(2000, 1, None, "Alice").expect("user");
    sandbox.add_user(3000, 1, None, "Bob").expect("user");
    sandbox.add_contact(account, 2000).expect("contact");
    let mut tc = TestClient::connect(&sandbox, account);
    let mut stream = tc.stream().await;
    // A first request opens the connection, which registers it for pushes.
    within("get_me", tc.client.get_me()).await.expect("get_me");

    // Bob is not a contact: nobody is told.
    let delivery = sandbox
        .set_user_status(3000, UserStatus::Online { expires: 1 })
        .expect("status");
    assert_eq!((delivery.live, delivery.queued), (0, 0));

    let delivery = sandbox
        .set_user_status(
            2000,
            UserStatus::Online {
                expires: 2_000_000_000,
            },
        )
        .expect("status");
    assert_eq!((delivery.live, delivery.queued), (1, 0));
    let (user, status) = next_status(&mut stream).await;
    assert_eq!(user, 2000);
    assert_eq!(
        status,
        tl::enums::UserStatus::Online(tl::types::UserStatusOnline {
            expires: 2_000_000_000
        })
    );

    sandbox
        .set_user_status(
            2000,
            UserStatus::Offline {
                was_online: 1_900_000_000,
            },
        )
        .expect("status");
    let (user, status) = next_status(&mut stream).await;
    assert_eq!(user, 2000);
    assert_eq!(
        status,
        tl::enums::UserStatus::Offline(tl::types::UserStatusOffline {
            was_online: 1_900_000_000
        })
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flood_wait_reaches_the_caller_with_its_seconds() {
    let (sandbox, account) = start_with_account().await;
    let tc = TestClient::connect(&sandbox, account);
    within("get_me", tc.client.get_me()).await.expect("get_me");

    sandbox.inject_flood_wait(account, 17, 2).expect("flood");
    for _ in 0..2 {
        let error = rpc_error(within("flooded get_me", tc.client.get_me()).await);
        assert_eq!(error.code, 420);
        assert_eq!(error.name, "FLOOD_WAIT");
        assert_eq!(error.value, Some(17));
    }
    // The injection is used up.
    within("get_me after flood", tc.client.get_me())
        .await
        .expect("get_me");
    assert_eq!(sandbox.calls("users.getUsers"), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ban_answers_401_with_its_name() {
    let sandbox = Sandbox::start().await.expect("sandbox");
    for (i, name) in [
        "USER_DEACTIVATED_BAN",
        "AUTH_KEY_UNREGISTERED",
        "SESSION_REVOKED",
    ]
    .into_iter()
    .enumerate()
    {
        let account = sandbox
            .add_account(1000 + i as i64, 1, None, "Banned")
            .expect("account");
        let tc = TestClient::connect(&sandbox, account);
        within("get_me", tc.client.get_me()).await.expect("get_me");

        sandbox
            .ban(account, name.parse::<Ban>().expect("ban name"))
            .expect("ban");
        let error = rpc_error(within("banned get_me", tc.client.get_me()).await);
        assert_eq!((error.code, error.name.as_str()), (401, name));
        // grammers reads a 401 on updates.getState as "not logged in".
        assert!(
            !within("is_authorized", tc.client.is_authorized())
                .await
                .expect("is_authorized")
        );

        // A fresh connection of a banned account still connects, then fails per request.
        let fresh = TestClient::connect(&sandbox, account);
        let error = rpc_error(within("fresh banned get_me", fresh.client.get_me()).await);
        assert_eq!((error.code, error.name.as_str()), (401, name));
    }
    assert!("NOT_A_BAN".parse::<Ban>().is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_drop_connections_the_update_stream_reconnects_and_pushes_keep_flowing() {
    let (sandbox, account) = start_with_account().await;
    sandbox.add_user(2000, 1, None, "Alice").expect("user");
    sandbox.add_contact(account, 2000).expect("contact");
    let mut tc = TestClient::connect(&sandbox, account);
    // Consumed in the background, as tgwatch's account actor does: the stream is what notices
    // a closed connection and asks updates.getDifference (which reconnects).
    let (mut statuses, mut messages) = spawn_consumer(tc.stream().await);
    within("get_me", tc.client.get_me()).await.expect("get_me");

    sandbox
        .set_user_status(2000, UserStatus::Online { expires: 10 })
        .expect("status");
    assert_eq!(next_from(&mut statuses).await.0, 2000);

    // The connection is dropped and the account kept off the network while Alice goes offline
    // and writes: the status change is lost (statuses carry no pts, as on Telegram), the
    // message waits in the account's update log.
    sandbox.set_unreachable(account, true).expect("unreachable");
    assert_eq!(sandbox.connection_count(account).expect("count"), 0);
    let delivery = sandbox
        .set_user_status(2000, UserStatus::Offline { was_online: 20 })
        .expect("status");
    assert_eq!(
        (delivery.live, delivery.queued, delivery.dropped),
        (0, 0, 1)
    );
    let (_, delivery) = sandbox
        .send_private_message(2000, account, "while you were away")
        .expect("message");
    assert_eq!((delivery.live, delivery.queued), (0, 1));
    sandbox.set_unreachable(account, false).expect("reachable");

    // The stream reconnects by itself and gets the message from updates.getDifference; the
    // status change is not replayed.
    let text = within("the missed message", messages.recv())
        .await
        .expect("the update stream ended");
    assert_eq!(text, "while you were away");
    assert!(sandbox.calls("updates.getDifference") >= 1);
    let accepted_after_reconnect = sandbox.connections_accepted();
    assert!(accepted_after_reconnect >= 2);

    // The next request succeeds, on the same new connection...
    let me = within("get_me after drop", tc.client.get_me())
        .await
        .expect("get_me after the reconnect");
    assert_eq!(me.id().bare_id(), Some(1000));
    assert_eq!(sandbox.connections_accepted(), accepted_after_reconnect);

    // ...and live pushes flow over it; the first status the stream sees is the new one.
    let delivery = sandbox
        .set_user_status(2000, UserStatus::Online { expires: 30 })
        .expect("status");
    assert_eq!((delivery.live, delivery.queued), (1, 0));
    let (_, status) = next_from(&mut statuses).await;
    assert_eq!(
        status,
        tl::enums::UserStatus::Online(tl::types::UserStatusOnline { expires: 30 })
    );
    assert_eq!(sandbox.connection_count(account).expect("count"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_drop_connections_a_plain_client_reconnects_on_its_next_request() {
    let (sandbox, account) = start_with_account().await;
    let tc = TestClient::connect(&sandbox, account);
    within("get_me", tc.client.get_me()).await.expect("get_me");

    assert_eq!(sandbox.drop_connections(account).expect("drop"), 1);
    // A request racing the close fails, as it would against Telegram: grammers either sends it
    // on the dead socket (`Io`) or hands it to the connection task that is just exiting
    // (`Dropped`, also for requests made in the instant before grammers has noticed that the
    // task ended). With NoRetries retrying is the caller's job; a retry reconnects.
    let mut failures = 0;
    let me = loop {
        match within("get_me after drop", tc.client.get_me()).await {
            Err(InvocationError::Io(_) | InvocationError::Dropped(_)) if failures < 20 => {
                failures += 1;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            other => break other.expect("get_me after the drop"),
        }
    };
    assert_eq!(me.id().bare_id(), Some(1000));
    assert_eq!(sandbox.connections_accepted(), 2);
    assert_eq!(sandbox.connection_count(account).expect("count"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_methods_get_method_not_implemented_instead_of_a_hang() {
    let (sandbox, account) = start_with_account().await;
    let tc = TestClient::connect(&sandbox, account);
    let error = rpc_error(
        within(
            "help.getNearestDc",
            tc.client.invoke(&tl::functions::help::GetNearestDc {}),
        )
        .await,
    );
    assert_eq!(
        (error.code, error.name.as_str()),
        (400, "METHOD_NOT_IMPLEMENTED")
    );
    // The connection stays usable.
    within("get_me", tc.client.get_me()).await.expect("get_me");
    assert_eq!(sandbox.calls("help.getNearestDc"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_full_user_and_raw_session_data() {
    let (sandbox, account) = start_with_account().await;
    sandbox
        .add_user(2000, 99, Some("alice"), "Alice")
        .expect("user");
    let tc = TestClient::connect(&sandbox, account);

    let full = within(
        "users.getFullUser",
        tc.client.invoke(&tl::functions::users::GetFullUser {
            id: input_user(2000, 99),
        }),
    )
    .await
    .expect("getFullUser");
    let tl::enums::users::UserFull::Full(full) = full;
    let tl::enums::UserFull::Full(user_full) = full.full_user;
    assert_eq!(user_full.id, 2000);
    assert_eq!(full.users.len(), 1);

    let error = rpc_error(
        within(
            "users.getFullUser wrong hash",
            tc.client.invoke(&tl::functions::users::GetFullUser {
                id: input_user(2000, 98),
            }),
        )
        .await,
    );
    assert_eq!((error.code, error.name.as_str()), (400, "USER_ID_INVALID"));

    // The seeded session: home DC 2 at the sandbox's address, every DC at its own listener with
    // the account's key.
    let data = sandbox.session_data_for(account).expect("session data");
    assert_eq!(data.home_dc, 2);
    assert_eq!(sandbox.dc_addr(2), Some(sandbox.addr()));
    let key = sandbox.auth_key(account).expect("key");
    for dc in 1..=5 {
        let option = &data.dc_options[&dc];
        assert_eq!(
            Some(std::net::SocketAddr::V4(option.ipv4)),
            sandbox.dc_addr(dc)
        );
        assert_eq!(option.auth_key, Some(key));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pings_are_answered_with_pongs() {
    let (sandbox, account) = start_with_account().await;
    let tc = TestClient::connect(&sandbox, account);
    let tl::enums::Pong::Pong(pong) = within(
        "ping",
        tc.client.invoke(&tl::functions::Ping { ping_id: 31337 }),
    )
    .await
    .expect("ping");
    assert_eq!(pong.ping_id, 31337);
    // grammers' own keepalive, sent every minute on a live connection.
    let tl::enums::Pong::Pong(pong) = within(
        "ping_delay_disconnect",
        tc.client.invoke(&tl::functions::PingDelayDisconnect {
            ping_id: 4242,
            disconnect_delay: 75,
        }),
    )
    .await
    .expect("ping_delay_disconnect");
    assert_eq!(pong.ping_id, 4242);
    // Pings are MTProto service messages, not API calls: they are not counted.
    assert_eq!(sandbox.calls("ping"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_auth_key_fails_the_request_instead_of_hanging() {
    let (sandbox, account) = start_with_account().await;
    let mut data = sandbox.session_data_for(account).expect("session data");
    for option in data.dc_options.values_mut() {
        option.auth_key = Some([7; 256]);
    }
    let tc = TestClient::on_session(MemorySession::from(data));

    // The sandbox answers transport error -404; grammers then tries a key exchange, which the
    // sandbox refuses the same way, so the call fails.
    let result = within("get_me with an unknown key", tc.client.get_me()).await;
    assert!(result.is_err(), "{result:?}");
}

fn online(expires: i32) -> tl::enums::UserStatus {
    tl::enums::UserStatus::Online(tl::types::UserStatusOnline { expires })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_authorization_gets_its_own_copy_of_every_push() {
    let (sandbox, account) = start_with_account().await;
    sandbox.add_user(2000, 1, None, "Alice").expect("user");
    sandbox.add_contact(account, 2000).expect("contact");
    let mut service = TestClient::connect(&sandbox, account);
    let mut service_statuses = spawn_status_consumer(service.stream().await);
    within("get_me", service.client.get_me())
        .await
        .expect("get_me");

    // The same account logged in on another device, active after the service.
    let mut phone = TestClient::on_session(MemorySession::from(
        sandbox.new_authorization(account).expect("authorization"),
    ));
    let mut phone_statuses = spawn_status_consumer(phone.stream().await);
    within("get_me", phone.client.get_me())
        .await
        .expect("get_me");

    let delivery = sandbox
        .set_user_status(2000, UserStatus::Online { expires: 10 })
        .expect("status");
    assert_eq!((delivery.live, delivery.dropped), (2, 0));
    assert_eq!(next_from(&mut service_statuses).await, (2000, online(10)));
    assert_eq!(next_from(&mut phone_statuses).await, (2000, online(10)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pushes_go_to_the_keys_most_recently_active_connection_that_takes_updates() {
    let (sandbox, account) = start_with_account().await;
    sandbox.add_user(2000, 1, None, "Alice").expect("user");
    sandbox.add_contact(account, 2000).expect("contact");
    // Two clients on one auth key (one authorization).
    let mut first = TestClient::connect(&sandbox, account);
    let mut first_statuses = spawn_status_consumer(first.stream().await);
    let mut second = TestClient::connect(&sandbox, account);
    let mut second_statuses = spawn_status_consumer(second.stream().await);
    until_streams_started(&sandbox, account, 2).await;
    let get_me_without_updates = tl::functions::InvokeWithoutUpdates {
        query: tl::functions::users::GetUsers {
            id: vec![tl::enums::InputUser::UserSelf],
        },
    };
    within(
        "second connects",
        second.client.invoke(&get_me_without_updates),
    )
    .await
    .expect("wrapped get_me");
    within("first get_me", first.client.get_me())
        .await
        .expect("get_me");
    // Requests in invokeWithoutUpdates do not make the second the active one.
    within(
        "wrapped get_me",
        second.client.invoke(&get_me_without_updates),
    )
    .await
    .expect("wrapped get_me");
    let delivery = sandbox
        .set_user_status(2000, UserStatus::Online { expires: 1 })
        .expect("status");
    assert_eq!(delivery.live, 1);
    assert_eq!(next_from(&mut first_statuses).await, (2000, online(1)));

    // A plain request does.
    within("second get_me", second.client.get_me())
        .await
        .expect("get_me");
    sandbox
        .set_user_status(2000, UserStatus::Online { expires: 2 })
        .expect("status");
    // The second's first push is the second status: it never got the first.
    assert_eq!(next_from(&mut second_statuses).await, (2000, online(2)));

    within("first get_me", first.client.get_me())
        .await
        .expect("get_me");
    sandbox
        .set_user_status(2000, UserStatus::Online { expires: 3 })
        .expect("status");
    // The first's next push is the third status: it never got the second.
    assert_eq!(next_from(&mut first_statuses).await, (2000, online(3)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_changes_are_pushed_as_update_short() {
    let (sandbox, account) = start_with_account().await;
    sandbox.add_user(2000, 1, None, "Alice").expect("user");
    sandbox.add_contact(account, 2000).expect("contact");
    let mut tc = TestClient::connect(&sandbox, account);
    let mut raw = tc.raw_updates();
    within("get_me", tc.client.get_me()).await.expect("get_me");
    sandbox
        .set_user_status(2000, UserStatus::Online { expires: 5 })
        .expect("status");
    let updates = within("the raw push", raw.recv()).await.expect("a push");
    let tl::enums::Updates::UpdateShort(short) = updates else {
        panic!("expected updateShort, got {updates:?}");
    };
    assert!(matches!(
        short.update,
        tl::enums::Update::UserStatus(tl::types::UpdateUserStatus { user_id: 2000, .. })
    ));
}
