//! The channel half of the grammers adapter against the sandbox: the REAL grammers client over
//! real TCP on 127.0.0.1, through the port (`TelegramSession` and the `Update`s of a
//! `Connection`) as the service uses it.
//!
//! Every wait has a timeout, so that a protocol bug fails the test instead of hanging it.

use std::{collections::HashMap, future::Future, sync::Arc, time::Duration};

use tgwatch_sandbox::{AccountId, MediaKind as SandboxMedia, Sandbox};
use tgwatch_telegram::{
    AccountIdentity, ChannelMessage, ChannelRef, ChatKind, Connection, InputChannel, InviteHash,
    MediaKind, TelegramConnector, TelegramError, USERNAME_NOT_A_CHANNEL, Update, Username,
    grammers::GrammersConnector,
};

const API_ID: i32 = 1;
/// Generous for a loopback round trip, short enough that a hang fails fast.
const STEP: Duration = Duration::from_secs(5);

const NEWS: i64 = 1_111_111_111;
const NEWS_HASH: i64 = 4242;
const SECRET: i64 = 1_222_222_222;
const SECRET_HASH: i64 = 5353;

async fn within<T>(what: &str, future: impl Future<Output = T>) -> T {
    tokio::time::timeout(STEP, future)
        .await
        .unwrap_or_else(|_| panic!("timed out: {what}"))
}

/// A sandbox with one account, a public channel `@news_room` and a private one with an invite,
/// and a connector that knows the account as "main".
async fn start() -> (Sandbox, AccountId, GrammersConnector) {
    let sandbox = Sandbox::start().await.expect("sandbox starts");
    let account = sandbox
        .add_account(1000, 77, Some("watcher"), "Watcher")
        .expect("account");
    sandbox
        .add_channel(
            NEWS,
            NEWS_HASH,
            Some("news_room"),
            "News Room",
            "All the news",
        )
        .expect("channel");
    sandbox
        .add_channel(SECRET, SECRET_HASH, None, "Secret", "Invite only")
        .expect("channel");
    sandbox.add_invite(SECRET, "AbCd_-12").expect("invite");
    let session = Arc::new(sandbox.session_for(account).expect("session"));
    let connector = GrammersConnector::new(API_ID, HashMap::from([("main".to_owned(), session)]));
    (sandbox, account, connector)
}

async fn connect(connector: &GrammersConnector) -> Connection {
    let identity = AccountIdentity {
        label: "main".into(),
        phone: None,
    };
    match within("connect", connector.connect(&identity)).await {
        Ok(connection) => connection,
        Err(error) => panic!("connect failed: {error}"),
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

/// The next update about channels (statuses and gaps are skipped).
async fn next_channel_update(connection: &mut Connection) -> Update {
    loop {
        let update = within("channel update", connection.updates.recv())
            .await
            .expect("the updates go on");
        // Statuses, and the gap a reconnect reports (posts come back through the difference).
        if !matches!(update, Update::UserStatus { .. } | Update::Gap) {
            return update;
        }
    }
}

fn news() -> InputChannel {
    InputChannel {
        id: NEWS,
        access_hash: NEWS_HASH,
    }
}

fn texts(messages: &[ChannelMessage]) -> Vec<(i32, &str)> {
    messages
        .iter()
        .map(|message| (message.id, message.text.as_str()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn join_by_username_and_by_invite() {
    let (sandbox, account, connector) = start().await;
    sandbox
        .set_channel_subscribers(NEWS, 99)
        .expect("subscribers");
    sandbox
        .add_user(3000, 1, Some("alice_w"), "Alice")
        .expect("user");
    let connection = connect(&connector).await;
    let session = &connection.session;

    let by_name = ChannelRef::parse("https://t.me/News_Room").expect("reference");
    let channel = within("join by username", session.join_channel(&by_name))
        .await
        .expect("joined");
    assert_eq!((channel.id, channel.access_hash), (NEWS, NEWS_HASH));
    assert_eq!(channel.title, "News Room");
    assert_eq!(channel.username.as_deref(), Some("news_room"));
    assert_eq!(channel.participants_count, Some(100));
    assert!(sandbox.joined(account, NEWS));
    assert_eq!(sandbox.calls("channels.joinChannel"), 1);

    // Joining again is not an error, and needs no join call: the resolved channel says the
    // account is a member.
    let again = within("join again", session.join_channel(&by_name))
        .await
        .expect("joined again");
    assert_eq!(again.id, NEWS);
    assert_eq!(sandbox.calls("channels.joinChannel"), 1);

    let by_invite = ChannelRef::parse("https://t.me/+AbCd_-12").expect("reference");
    let secret = within("join by invite", session.join_channel(&by_invite))
        .await
        .expect("joined");
    assert_eq!((secret.id, secret.access_hash), (SECRET, SECRET_HASH));
    assert_eq!(secret.username, None);
    assert!(sandbox.joined(account, SECRET));
    // Again: Telegram says USER_ALREADY_PARTICIPANT, and the invite's preview names the channel.
    let secret_again = within("join by invite again", session.join_channel(&by_invite))
        .await
        .expect("joined again");
    assert_eq!(secret_again.id, SECRET);
    assert_eq!(sandbox.calls("messages.checkChatInvite"), 1);

    // By id, with a known access hash.
    let by_id = ChannelRef::Id(news());
    assert_eq!(
        within("join by id", session.join_channel(&by_id))
            .await
            .expect("joined")
            .id,
        NEWS
    );

    // What does not exist comes out as a not-found RPC error, with Telegram's name.
    for (reference, name) in [
        (
            ChannelRef::Username(Username::parse("nobody_here").expect("username")),
            "USERNAME_NOT_OCCUPIED",
        ),
        (
            ChannelRef::Username(Username::parse("alice_w").expect("username")),
            USERNAME_NOT_A_CHANNEL,
        ),
        (
            ChannelRef::Invite(InviteHash::parse("+unknown").expect("hash")),
            "INVITE_HASH_INVALID",
        ),
        (
            ChannelRef::Id(InputChannel {
                id: NEWS,
                access_hash: 1,
            }),
            "CHANNEL_INVALID",
        ),
        (
            ChannelRef::Id(InputChannel {
                id: 1_333_333_333,
                access_hash: 1,
            }),
            "CHANNEL_INVALID",
        ),
    ] {
        let error = within("join what is not there", session.join_channel(&reference))
            .await
            .expect_err("not there");
        assert!(error.is_not_found(), "{reference}: {error:?}");
        assert_eq!(
            error,
            TelegramError::Rpc {
                code: 400,
                name: name.into()
            },
            "{reference}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn channel_history_catches_up_oldest_first_after_an_id() {
    let (sandbox, account, connector) = start().await;
    sandbox.join(account, NEWS).expect("join");
    for i in 1..=250 {
        sandbox.post(NEWS, &format!("post {i}")).expect("post");
    }
    sandbox.delete(NEWS, &[5, 120]).expect("delete");
    sandbox
        .post_media(NEWS, "photo", SandboxMedia::Photo { id: 9001 })
        .expect("post");
    sandbox
        .post_media(
            NEWS,
            "file",
            SandboxMedia::Document {
                id: 9002,
                mime_type: "application/pdf".into(),
                file_name: "report.pdf".into(),
            },
        )
        .expect("post");
    let connection = connect(&connector).await;
    let session = &connection.session;

    let first = within(
        "history from the start",
        session.channel_history(news(), 0, 6),
    )
    .await
    .expect("history");
    assert_eq!(
        texts(&first),
        [
            (1, "post 1"),
            (2, "post 2"),
            (3, "post 3"),
            (4, "post 4"),
            (6, "post 6"),
            (7, "post 7")
        ]
    );
    assert!(first.iter().all(|message| message.channel_id == NEWS));
    assert!(first.iter().all(|message| message.sender_id.is_none()));

    // Across pages of 100, skipping the deleted post.
    let calls = sandbox.calls("messages.getHistory");
    let rest = within(
        "history after 100",
        session.channel_history(news(), 100, 500),
    )
    .await
    .expect("history");
    assert_eq!(rest.len(), 151);
    assert_eq!(rest.first().map(|m| m.id), Some(101));
    assert!(rest.windows(2).all(|pair| pair[0].id < pair[1].id));
    assert!(rest.iter().all(|message| message.id != 120));
    assert_eq!(sandbox.calls("messages.getHistory") - calls, 2);

    let last_two = &rest[rest.len() - 2..];
    assert_eq!(texts(last_two), [(251, "photo"), (252, "file")]);
    let photo = last_two[0].media.as_ref().expect("photo");
    assert_eq!(photo.kind, MediaKind::Photo);
    assert!(
        photo.reference.starts_with("photo:9001:"),
        "{}",
        photo.reference
    );
    let file = last_two[1].media.as_ref().expect("file");
    assert_eq!(file.kind, MediaKind::Document);
    assert!(
        file.reference.starts_with("document:9002:"),
        "{}",
        file.reference
    );

    // Up to date: nothing, in one call.
    let calls = sandbox.calls("messages.getHistory");
    let none = within(
        "history at the end",
        session.channel_history(news(), 252, 10),
    )
    .await
    .expect("history");
    assert!(none.is_empty());
    assert_eq!(sandbox.calls("messages.getHistory") - calls, 1);

    // A private channel the account is not in.
    let error = within(
        "private history",
        session.channel_history(
            InputChannel {
                id: SECRET,
                access_hash: SECRET_HASH,
            },
            0,
            10,
        ),
    )
    .await
    .expect_err("private");
    assert!(error.is_not_found(), "{error:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn posts_edits_and_deletions_arrive_as_updates() {
    let (sandbox, account, connector) = start().await;
    let mut connection = connect(&connector).await;
    let joined = within(
        "join",
        connection
            .session
            .join_channel(&ChannelRef::parse("@news_room").expect("reference")),
    )
    .await
    .expect("joined");
    assert_eq!(joined.id, NEWS);
    // connect asked updates.getState, so the connection is live and registered for pushes.
    eventually("a live connection", || {
        sandbox.connection_count(account).expect("count") == 1
    })
    .await;

    let posted = sandbox.post(NEWS, "breaking").expect("post");
    assert_eq!(posted.delivery.live, 1);
    let Update::ChannelMessageNew(message) = next_channel_update(&mut connection).await else {
        panic!("expected a new post");
    };
    assert_eq!((message.channel_id, message.id), (NEWS, posted.id));
    assert_eq!(message.text, "breaking");
    assert_eq!(message.edit_date, None);
    assert!(message.date.timestamp() > 1_700_000_000);

    let photo = sandbox
        .post_media(NEWS, "look", SandboxMedia::Photo { id: 5 })
        .expect("post");
    let Update::ChannelMessageNew(message) = next_channel_update(&mut connection).await else {
        panic!("expected a new post");
    };
    assert_eq!(message.id, photo.id);
    assert_eq!(
        message.media.map(|media| media.kind),
        Some(MediaKind::Photo)
    );

    sandbox
        .edit(NEWS, posted.id, "breaking, updated")
        .expect("edit");
    let Update::ChannelMessageEdited(message) = next_channel_update(&mut connection).await else {
        panic!("expected an edit");
    };
    assert_eq!((message.channel_id, message.id), (NEWS, posted.id));
    assert_eq!(message.text, "breaking, updated");
    assert!(message.edit_date.is_some());

    sandbox
        .delete(NEWS, &[posted.id, photo.id])
        .expect("delete");
    assert_eq!(
        next_channel_update(&mut connection).await,
        Update::ChannelMessagesDeleted {
            channel_id: NEWS,
            ids: vec![posted.id, photo.id]
        }
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn posts_made_while_disconnected_arrive_after_the_reconnect() {
    let (sandbox, account, connector) = start().await;
    sandbox.join(account, NEWS).expect("join");
    // The watchdog's request is what reconnects a quiet account.
    let connector = connector.with_watchdog_interval(Duration::from_millis(100));
    let mut connection = connect(&connector).await;
    eventually("a live connection", || {
        sandbox.connection_count(account).expect("count") == 1
    })
    .await;
    sandbox.post(NEWS, "one").expect("post");
    assert!(matches!(
        next_channel_update(&mut connection).await,
        Update::ChannelMessageNew(ChannelMessage { id: 1, .. })
    ));

    // Cut off while the posts are made: a reconnect in between (the watchdog's, on a loaded
    // machine) would have them pushed instead of missed.
    sandbox.set_unreachable(account, true).expect("cut off");
    sandbox.post(NEWS, "two").expect("post");
    sandbox.post(NEWS, "three").expect("post");
    sandbox.set_unreachable(account, false).expect("back");

    // grammers reconnects, asks updates.getDifference, is told the channel moved, and asks
    // updates.getChannelDifference: the posts arrive like pushed ones.
    for (id, text) in [(2, "two"), (3, "three")] {
        let update = next_channel_update(&mut connection).await;
        let Update::ChannelMessageNew(message) = update else {
            panic!("expected post {id}, got {update:?}");
        };
        assert_eq!((message.id, message.text.as_str()), (id, text));
    }
    assert!(sandbox.calls("updates.getChannelDifference") >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn channel_info_has_about_and_participants() {
    let (sandbox, account, connector) = start().await;
    sandbox
        .set_channel_subscribers(SECRET, 10)
        .expect("subscribers");
    sandbox.join(account, SECRET).expect("join");
    let connection = connect(&connector).await;

    let info = within(
        "channel_info",
        connection.session.channel_info(InputChannel {
            id: SECRET,
            access_hash: SECRET_HASH,
        }),
    )
    .await
    .expect("info");
    assert_eq!((info.id, info.access_hash), (SECRET, SECRET_HASH));
    assert_eq!(info.title, "Secret");
    assert_eq!(info.username, None);
    assert_eq!(info.about.as_deref(), Some("Invite only"));
    assert_eq!(info.participants_count, Some(11));

    let error = within(
        "channel_info wrong hash",
        connection.session.channel_info(InputChannel {
            id: SECRET,
            access_hash: 1,
        }),
    )
    .await
    .expect_err("wrong hash");
    assert_eq!(
        error,
        TelegramError::Rpc {
            code: 400,
            name: "CHANNEL_INVALID".into()
        }
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dialogs_list_the_joined_channels_and_chat_history_reads_them() {
    let (sandbox, account, connector) = start().await;
    sandbox.join(account, NEWS).expect("join");
    sandbox.join(account, SECRET).expect("join");
    for i in 1..=5 {
        sandbox.post(NEWS, &format!("news {i}")).expect("post");
    }
    sandbox.post(SECRET, "psst").expect("post");
    let connection = connect(&connector).await;
    let session = &connection.session;

    let dialogs = within("dialogs", session.dialogs(50))
        .await
        .expect("dialogs");
    let listed: Vec<_> = dialogs
        .iter()
        .map(|dialog| {
            (
                dialog.id,
                dialog.kind,
                dialog.title.as_str(),
                dialog.username.as_deref(),
                dialog.last_message_id,
            )
        })
        .collect();
    // Most recent first.
    assert_eq!(
        listed,
        [
            (SECRET, ChatKind::Channel, "Secret", None, Some(1)),
            (
                NEWS,
                ChatKind::Channel,
                "News Room",
                Some("news_room"),
                Some(5)
            ),
        ]
    );
    assert!(
        dialogs
            .iter()
            .all(|dialog| dialog.last_message_date.is_some())
    );
    assert_eq!(dialogs[1].chat_id, -1_001_111_111_111);

    // A page at a time.
    let one = within("one dialog", session.dialogs(1))
        .await
        .expect("dialogs");
    assert_eq!(one.len(), 1);

    // The chat's messages, newest first, by its one-number id.
    let news_chat = dialogs[1].chat_id;
    let newest = within("chat history", session.chat_history(news_chat, 0, 3))
        .await
        .expect("history");
    let ids: Vec<i32> = newest.iter().map(|message| message.id).collect();
    assert_eq!(ids, [5, 4, 3]);
    assert!(newest.iter().all(|m| m.chat_id == news_chat && !m.outgoing));
    let older = within("older chat history", session.chat_history(news_chat, 3, 10))
        .await
        .expect("history");
    let ids: Vec<i32> = older.iter().map(|message| message.id).collect();
    assert_eq!(ids, [2, 1]);

    // A fresh connection has no access hashes cached: it finds the chat among the dialogs.
    drop(connection);
    let connection = connect(&connector).await;
    let dialogs_calls = sandbox.calls("messages.getDialogs");
    let secret_chat = ChatKind::Channel.chat_id(SECRET);
    let secret = within(
        "chat history, uncached",
        connection.session.chat_history(secret_chat, 0, 10),
    )
    .await
    .expect("history");
    assert_eq!(secret.len(), 1);
    assert_eq!(secret[0].text, "psst");
    assert_eq!(sandbox.calls("messages.getDialogs") - dialogs_calls, 1);

    // A chat that is not among them.
    let error = within(
        "unknown chat",
        connection
            .session
            .chat_history(ChatKind::Channel.chat_id(1_999_999_999), 0, 10),
    )
    .await
    .expect_err("unknown");
    assert!(error.is_not_found(), "{error:?}");
}
