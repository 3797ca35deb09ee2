//! Channels in the sandbox, driven by the REAL grammers client over real TCP on 127.0.0.1:
//! joining (by username and by invite), history, full info, dialogs, and posts, edits and
//! deletions pushed live or replayed by `updates.getChannelDifference` after a dropped
//! connection.
//!
//! Every step runs under a timeout so that a protocol bug fails the test instead of hanging it.

#![allow(clippy::expect_used, clippy::unwrap_used)]

mod support;

use std::time::Duration;

use grammers_client::client::UpdateStream;
use grammers_client::media::Media;
use grammers_client::peer::Peer;
use grammers_client::sender::RpcError;
use grammers_client::session::types::{PeerAuth, PeerId, PeerRef};
use grammers_client::update::Update;
use grammers_client::{InvocationError, tl};
use support::{TestClient, within};
use tgwatch_sandbox::{AccountId, MediaKind, Sandbox};
use tokio::sync::mpsc;

const NEWS: i64 = 1_111_111_111;
const NEWS_HASH: i64 = 4242;
const SECRET: i64 = 1_222_222_222;
const SECRET_HASH: i64 = 5353;

/// Calls that must succeed, and calls that must fail with an RPC error.
impl TestClient {
    async fn invoke<R: tl::RemoteCall>(&self, what: &str, request: &R) -> R::Return {
        within(what, self.client.invoke(request))
            .await
            .unwrap_or_else(|error| panic!("{what} failed: {error}"))
    }

    async fn rpc_error<R: tl::RemoteCall>(&self, what: &str, request: &R) -> (i32, String)
    where
        R::Return: std::fmt::Debug,
    {
        match within(what, self.client.invoke(request)).await {
            Err(InvocationError::Rpc(RpcError { code, name, .. })) => (code, name),
            other => panic!("{what}: expected an RPC error, got {other:?}"),
        }
    }
}

/// A sandbox with one account, a public channel `@news` and a private one with invite `AbCd`.
async fn start() -> (Sandbox, AccountId) {
    let sandbox = Sandbox::start().await.expect("sandbox starts");
    let account = sandbox
        .add_account(1000, 77, Some("watcher"), "Watcher")
        .expect("account");
    sandbox
        .add_channel(NEWS, NEWS_HASH, Some("News"), "The News", "All the news")
        .expect("channel");
    sandbox
        .add_channel(SECRET, SECRET_HASH, None, "Secret", "Invite only")
        .expect("channel");
    sandbox.add_invite(SECRET, "AbCd_-12").expect("invite");
    (sandbox, account)
}

fn input_channel(id: i64, access_hash: i64) -> tl::enums::InputChannel {
    tl::enums::InputChannel::Channel(tl::types::InputChannel {
        channel_id: id,
        access_hash,
    })
}

fn input_peer(id: i64, access_hash: i64) -> tl::enums::InputPeer {
    tl::enums::InputPeer::Channel(tl::types::InputPeerChannel {
        channel_id: id,
        access_hash,
    })
}

fn history(
    peer: tl::enums::InputPeer,
    offset_id: i32,
    add_offset: i32,
    limit: i32,
    min_id: i32,
) -> tl::functions::messages::GetHistory {
    tl::functions::messages::GetHistory {
        peer,
        offset_id,
        offset_date: 0,
        add_offset,
        limit,
        max_id: 0,
        min_id,
        hash: 0,
    }
}

/// The channel in a join result, checking that it is there.
fn joined_channel(result: tl::enums::messages::ChatInviteJoinResult) -> tl::types::Channel {
    let tl::enums::messages::ChatInviteJoinResult::Ok(ok) = result else {
        panic!("expected chatInviteJoinResultOk");
    };
    let tl::enums::Updates::Updates(updates) = ok.updates else {
        panic!("expected updates");
    };
    match updates.chats.into_iter().next() {
        Some(tl::enums::Chat::Channel(channel)) => channel,
        other => panic!("expected the channel in chats, got {other:?}"),
    }
}

fn message_ids(messages: tl::enums::messages::Messages) -> Vec<i32> {
    let tl::enums::messages::Messages::ChannelMessages(messages) = messages else {
        panic!("expected messages.channelMessages");
    };
    messages
        .messages
        .iter()
        .map(tl::enums::Message::id)
        .collect()
}

/// What the tests care about in a channel update.
#[derive(Debug, PartialEq, Eq)]
enum Seen {
    New { channel: i64, id: i32, text: String },
    Edited { channel: i64, id: i32, text: String },
    Deleted { channel: Option<i64>, ids: Vec<i32> },
}

fn seen(update: Update) -> Option<Seen> {
    let channel_of = |message: &grammers_client::message::Message| {
        let peer = message.peer_id();
        assert_eq!(
            peer.kind(),
            grammers_client::session::types::PeerKind::Channel
        );
        peer.bare_id().expect("a channel id")
    };
    match update {
        Update::NewMessage(message) => Some(Seen::New {
            channel: channel_of(&message),
            id: message.id(),
            text: message.text().to_owned(),
        }),
        Update::MessageEdited(message) => {
            assert!(message.edit_date().is_some(), "an edit has an edit date");
            Some(Seen::Edited {
                channel: channel_of(&message),
                id: message.id(),
                text: message.text().to_owned(),
            })
        }
        Update::MessageDeleted(deletion) => Some(Seen::Deleted {
            channel: deletion.channel_id(),
            ids: deletion.messages().to_vec(),
        }),
        _ => None,
    }
}

async fn next_seen(stream: &mut UpdateStream) -> Seen {
    loop {
        let update = within("channel update", stream.next())
            .await
            .expect("update stream");
        if let Some(seen) = seen(update) {
            return seen;
        }
    }
}

/// Consumes the stream in the background, as tgwatch's account actor does: the stream is what
/// notices a closed connection and asks `updates.getDifference` (which reconnects).
fn spawn_consumer(mut stream: UpdateStream) -> mpsc::UnboundedReceiver<Seen> {
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while !tx.is_closed() {
            match stream.next().await {
                Ok(update) => {
                    if let Some(seen) = seen(update) {
                        let _ = tx.send(seen);
                    }
                }
                // A getDifference racing a connection close can fail; the next call retries.
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            }
        }
    });
    rx
}

async fn next_from(seen: &mut mpsc::UnboundedReceiver<Seen>) -> Seen {
    within("channel update", seen.recv())
        .await
        .expect("the update stream ended")
}

fn new(id: i32, text: &str) -> Seen {
    Seen::New {
        channel: NEWS,
        id,
        text: text.into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_public_channel_resolves_by_username_and_joins() {
    let (sandbox, account) = start().await;
    let tc = TestClient::connect(&sandbox, account);

    // grammers' own resolve_username: usernames are case-insensitive.
    let peer = within("resolve news", tc.client.resolve_username("news"))
        .await
        .expect("resolve")
        .expect("@news exists");
    let Peer::Channel(channel) = peer else {
        panic!("expected a channel, got {peer:?}");
    };
    assert_eq!(channel.id(), PeerId::channel(NEWS).expect("id"));
    assert_eq!(channel.title(), "The News");
    assert_eq!(channel.username(), Some("News"));
    assert_eq!(channel.raw.access_hash, Some(NEWS_HASH));
    assert!(channel.raw.broadcast);
    assert!(channel.raw.left, "not joined yet");
    assert!(!sandbox.joined(account, NEWS));

    // grammers' join_chat sends channels.joinChannel.
    let peer_ref = PeerRef {
        id: PeerId::channel(NEWS).expect("id"),
        auth: PeerAuth::from_hash(NEWS_HASH),
    };
    let joined = within("join_chat", tc.client.join_chat(peer_ref))
        .await
        .expect("join")
        .expect("the channel comes back");
    assert_eq!(joined.id(), PeerId::channel(NEWS).expect("id"));
    assert!(sandbox.joined(account, NEWS));

    // Joining again is not an error, and the channel now shows as joined.
    let again = tc
        .invoke(
            "joinChannel again",
            &tl::functions::channels::JoinChannel {
                channel: input_channel(NEWS, NEWS_HASH),
            },
        )
        .await;
    let channel = joined_channel(again);
    assert!(!channel.left);
    assert_eq!(channel.participants_count, Some(1));

    // A wrong access hash, and a private channel without an invite.
    let wrong_hash = tl::functions::channels::JoinChannel {
        channel: input_channel(NEWS, NEWS_HASH + 1),
    };
    assert_eq!(
        tc.rpc_error("joinChannel wrong hash", &wrong_hash).await,
        (400, "CHANNEL_INVALID".to_owned())
    );
    let private = tl::functions::channels::JoinChannel {
        channel: input_channel(SECRET, SECRET_HASH),
    };
    assert_eq!(
        tc.rpc_error("joinChannel private", &private).await,
        (400, "CHANNEL_PRIVATE".to_owned())
    );
    assert!(!sandbox.joined(account, SECRET));
    assert_eq!(sandbox.calls("channels.joinChannel"), 4);

    // Users and channels share one username namespace.
    assert!(sandbox.add_user(3000, 1, Some("NEWS"), "Clash").is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_private_channel_joins_by_invite() {
    let (sandbox, account) = start().await;
    sandbox
        .set_channel_subscribers(SECRET, 41)
        .expect("subscribers");
    let tc = TestClient::connect(&sandbox, account);

    let check = tl::functions::messages::CheckChatInvite {
        hash: "AbCd_-12".into(),
    };
    let tl::enums::ChatInvite::Invite(preview) = tc.invoke("checkChatInvite", &check).await else {
        panic!("expected a preview");
    };
    assert!(preview.channel && preview.broadcast && !preview.public);
    assert_eq!(preview.title, "Secret");
    assert_eq!(preview.about.as_deref(), Some("Invite only"));
    assert_eq!(preview.participants_count, 41);

    let import = tl::functions::messages::ImportChatInvite {
        hash: "AbCd_-12".into(),
    };
    let channel = joined_channel(tc.invoke("importChatInvite", &import).await);
    assert_eq!(
        (channel.id, channel.access_hash),
        (SECRET, Some(SECRET_HASH))
    );
    assert_eq!(channel.username, None);
    assert_eq!(channel.participants_count, Some(42));
    assert!(sandbox.joined(account, SECRET));

    // A member: importing again is refused, checking shows the channel.
    assert_eq!(
        tc.rpc_error("importChatInvite again", &import).await,
        (400, "USER_ALREADY_PARTICIPANT".to_owned())
    );
    let tl::enums::ChatInvite::Already(already) = tc.invoke("checkChatInvite again", &check).await
    else {
        panic!("expected chatInviteAlready");
    };
    assert!(matches!(already.chat, tl::enums::Chat::Channel(ref c) if c.id == SECRET && !c.left));

    assert_eq!(
        tc.rpc_error(
            "importChatInvite unknown",
            &tl::functions::messages::ImportChatInvite {
                hash: "nope".into()
            }
        )
        .await,
        (400, "INVITE_HASH_INVALID".to_owned())
    );
    assert_eq!(
        tc.rpc_error(
            "checkChatInvite unknown",
            &tl::functions::messages::CheckChatInvite {
                hash: "nope".into()
            }
        )
        .await,
        (400, "INVITE_HASH_INVALID".to_owned())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_pages_newest_first_and_leaves_out_deleted_posts() {
    let (sandbox, account) = start().await;
    for i in 1..=12 {
        sandbox.post(NEWS, &format!("post {i}")).expect("post");
    }
    sandbox.delete(NEWS, &[6]).expect("delete");
    sandbox
        .post_media(NEWS, "a photo", MediaKind::Photo { id: 9001 })
        .expect("post");
    sandbox
        .post_media(
            NEWS,
            "a file",
            MediaKind::Document {
                id: 9002,
                mime_type: "application/pdf".into(),
                file_name: "report.pdf".into(),
            },
        )
        .expect("post");
    assert_eq!(sandbox.channel_posts(NEWS).expect("posts"), 13);
    let tc = TestClient::connect(&sandbox, account);
    let news = || input_peer(NEWS, NEWS_HASH);

    // The newest page.
    let ids = message_ids(
        tc.invoke("getHistory newest", &history(news(), 0, 0, 5, 0))
            .await,
    );
    assert_eq!(ids, [14, 13, 12, 11, 10]);
    // Older than an offset, skipping the deleted post.
    let ids = message_ids(
        tc.invoke("getHistory offset", &history(news(), 8, 0, 3, 0))
            .await,
    );
    assert_eq!(ids, [7, 5, 4]);
    // Catching up: the oldest three posts after id 4 (offset just above it, add_offset = -limit).
    let ids = message_ids(
        tc.invoke("getHistory catch-up", &history(news(), 5, -3, 3, 4))
            .await,
    );
    assert_eq!(ids, [8, 7, 5]);
    // min_id alone keeps the newest page above it.
    let ids = message_ids(
        tc.invoke("getHistory min_id", &history(news(), 0, 0, 100, 11))
            .await,
    );
    assert_eq!(ids, [14, 13, 12]);

    // grammers' iter_messages reads the same answers, media included.
    let peer_ref = PeerRef {
        id: PeerId::channel(NEWS).expect("id"),
        auth: PeerAuth::from_hash(NEWS_HASH),
    };
    let mut messages = tc.client.iter_messages(peer_ref).limit(3);
    let mut seen = Vec::new();
    while let Some(message) = within("iter_messages", messages.next())
        .await
        .expect("iter_messages")
    {
        seen.push((message.id(), message.text().to_owned(), message.media()));
    }
    assert_eq!(seen.len(), 3);
    assert_eq!((seen[0].0, seen[0].1.as_str()), (14, "a file"));
    assert!(
        matches!(&seen[0].2, Some(Media::Document(d)) if d.id() == 9002 && d.name() == Some("report.pdf"))
    );
    assert_eq!((seen[1].0, seen[1].1.as_str()), (13, "a photo"));
    assert!(matches!(&seen[1].2, Some(Media::Photo(p)) if p.id() == 9001));
    assert_eq!((seen[2].0, seen[2].2.is_none()), (12, true));

    // channels.getMessages by id: a deleted or unknown id comes back as messageEmpty.
    let by_id = tc
        .invoke(
            "channels.getMessages",
            &tl::functions::channels::GetMessages {
                channel: input_channel(NEWS, NEWS_HASH),
                id: [3, 6, 99]
                    .into_iter()
                    .map(|id| tl::enums::InputMessage::Id(tl::types::InputMessageId { id }))
                    .collect(),
            },
        )
        .await;
    let tl::enums::messages::Messages::ChannelMessages(by_id) = by_id else {
        panic!("expected channelMessages");
    };
    assert!(
        matches!(&by_id.messages[0], tl::enums::Message::Message(m) if m.id == 3 && m.message == "post 3")
    );
    assert!(matches!(&by_id.messages[1], tl::enums::Message::Empty(m) if m.id == 6));
    assert!(matches!(&by_id.messages[2], tl::enums::Message::Empty(m) if m.id == 99));

    // A private channel cannot be read by a non-member.
    assert_eq!(
        tc.rpc_error(
            "getHistory private",
            &history(input_peer(SECRET, SECRET_HASH), 0, 0, 10, 0)
        )
        .await,
        (400, "CHANNEL_PRIVATE".to_owned())
    );
    assert_eq!(
        tc.rpc_error(
            "getHistory wrong hash",
            &history(input_peer(NEWS, 1), 0, 0, 10, 0)
        )
        .await,
        (400, "CHANNEL_INVALID".to_owned())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn posts_edits_and_deletions_are_pushed_to_members() {
    let (sandbox, account) = start().await;
    let outsider = sandbox
        .add_account(2000, 1, None, "Outsider")
        .expect("account");
    sandbox.join(account, NEWS).expect("join");
    let mut tc = TestClient::connect(&sandbox, account);
    let mut stream = tc.stream().await;
    // A first request opens the connection, which registers it for pushes.
    within("get_me", tc.client.get_me()).await.expect("get_me");

    let posted = sandbox.post(NEWS, "breaking").expect("post");
    assert_eq!(posted.id, 1);
    // The outsider did not join: only the member is told.
    assert_eq!((posted.delivery.live, posted.delivery.queued), (1, 0));
    assert_eq!(next_seen(&mut stream).await, new(1, "breaking"));

    let photo = sandbox
        .post_media(NEWS, "look", MediaKind::Photo { id: 77 })
        .expect("post");
    assert_eq!(next_seen(&mut stream).await, new(photo.id, "look"));

    let delivery = sandbox.edit(NEWS, 1, "breaking (updated)").expect("edit");
    assert_eq!(delivery.live, 1);
    assert_eq!(
        next_seen(&mut stream).await,
        Seen::Edited {
            channel: NEWS,
            id: 1,
            text: "breaking (updated)".into()
        }
    );

    sandbox.delete(NEWS, &[2, 1]).expect("delete");
    assert_eq!(
        next_seen(&mut stream).await,
        Seen::Deleted {
            channel: Some(NEWS),
            ids: vec![1, 2]
        }
    );
    // One for each post and edit, one per deleted post.
    assert_eq!(sandbox.channel_pts(NEWS).expect("pts"), 1 + 2 + 1 + 2);
    assert_eq!(sandbox.channel_posts(NEWS).expect("posts"), 0);
    assert!(!sandbox.joined(outsider, NEWS));

    // The control API refuses what does not exist.
    assert!(sandbox.edit(NEWS, 1, "gone").is_err());
    assert!(sandbox.delete(NEWS, &[1]).is_err());
    assert!(sandbox.post(999, "nowhere").is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn posts_made_while_disconnected_arrive_through_get_channel_difference() {
    let (sandbox, account) = start().await;
    sandbox.join(account, NEWS).expect("join");
    let mut tc = TestClient::connect(&sandbox, account);
    let mut seen = spawn_consumer(tc.stream().await);
    within("get_me", tc.client.get_me()).await.expect("get_me");

    sandbox.post(NEWS, "one").expect("post");
    assert_eq!(next_from(&mut seen).await, new(1, "one"));

    // Off the network while posting, so the stream cannot reconnect before the posts (it
    // would then receive them live).
    sandbox.set_unreachable(account, true).expect("unreachable");
    for text in ["two", "three"] {
        let posted = sandbox.post(NEWS, text).expect("post");
        // Not queued for the common getDifference: the channel's log has it.
        assert_eq!((posted.delivery.live, posted.delivery.queued), (0, 1));
    }
    sandbox.set_unreachable(account, false).expect("reachable");

    // The stream reconnects by itself; updates.getDifference names the channel
    // (updateChannelTooLong) and grammers asks updates.getChannelDifference.
    assert_eq!(next_from(&mut seen).await, new(2, "two"));
    assert_eq!(next_from(&mut seen).await, new(3, "three"));
    assert!(sandbox.calls("updates.getDifference") >= 1);
    assert_eq!(sandbox.calls("updates.getChannelDifference"), 1);

    // Live pushes flow again, without another difference.
    let posted = sandbox.post(NEWS, "four").expect("post");
    assert_eq!(posted.delivery.live, 1);
    assert_eq!(next_from(&mut seen).await, new(4, "four"));
    assert_eq!(sandbox.calls("updates.getChannelDifference"), 1);
}

/// A fact about grammers 0.11 worth knowing: edits and deletions that reach it in the
/// `other_updates` of a final `updates.channelDifference` are skipped (it sets the channel's pts
/// to the difference's before applying them, so they look old). Only new posts survive a
/// dropped connection; whoever needs edits and deletions must re-read the history.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grammers_drops_edits_and_deletions_that_come_in_a_channel_difference() {
    let (sandbox, account) = start().await;
    sandbox.join(account, NEWS).expect("join");
    let mut tc = TestClient::connect(&sandbox, account);
    let mut seen = spawn_consumer(tc.stream().await);
    within("get_me", tc.client.get_me()).await.expect("get_me");
    sandbox.post(NEWS, "one").expect("post");
    sandbox.post(NEWS, "two").expect("post");
    assert_eq!(next_from(&mut seen).await, new(1, "one"));
    assert_eq!(next_from(&mut seen).await, new(2, "two"));

    sandbox.set_unreachable(account, true).expect("unreachable");
    sandbox.edit(NEWS, 1, "one, edited").expect("edit");
    sandbox.delete(NEWS, &[2]).expect("delete");
    sandbox.post(NEWS, "three").expect("post");
    sandbox.set_unreachable(account, false).expect("reachable");

    // The difference carries the edit and the deletion in other_updates, before the new post
    // (grammers applies other_updates first); only the new post comes out.
    assert_eq!(next_from(&mut seen).await, new(3, "three"));
    assert_eq!(sandbox.calls("updates.getChannelDifference"), 1);
    sandbox.post(NEWS, "four").expect("post");
    assert_eq!(next_from(&mut seen).await, new(4, "four"));

    // The history has the truth.
    let ids = message_ids(
        tc.invoke(
            "getHistory",
            &history(input_peer(NEWS, NEWS_HASH), 0, 0, 10, 0),
        )
        .await,
    );
    assert_eq!(ids, [4, 3, 1]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_channel_difference_replays_the_log_and_is_empty_when_up_to_date() {
    let (sandbox, account) = start().await;
    sandbox.join(account, NEWS).expect("join");
    for text in ["a", "b", "c"] {
        sandbox.post(NEWS, text).expect("post");
    }
    sandbox.edit(NEWS, 1, "a2").expect("edit");
    sandbox.delete(NEWS, &[2]).expect("delete");
    let tc = TestClient::connect(&sandbox, account);
    let difference = |pts, limit| tl::functions::updates::GetChannelDifference {
        force: false,
        channel: input_channel(NEWS, NEWS_HASH),
        filter: tl::enums::ChannelMessagesFilter::Empty,
        pts,
        limit,
    };

    // From the start: the posts as they are now; the edit and the deletion concern posts made
    // within the difference, so they need no update of their own.
    let tl::enums::updates::ChannelDifference::Difference(all) = tc
        .invoke("getChannelDifference from 1", &difference(1, 100))
        .await
    else {
        panic!("expected a difference");
    };
    assert!(all.r#final);
    assert_eq!(all.pts, 6);
    let ids: Vec<i32> = all
        .new_messages
        .iter()
        .map(tl::enums::Message::id)
        .collect();
    assert_eq!(ids, [1, 3]);
    assert!(all.other_updates.is_empty());
    assert_eq!(all.chats.len(), 1);

    // From after the posts: the edit and the deletion, with their pts.
    let tl::enums::updates::ChannelDifference::Difference(later) = tc
        .invoke("getChannelDifference from 4", &difference(4, 100))
        .await
    else {
        panic!("expected a difference");
    };
    assert!(later.new_messages.is_empty());
    assert!(matches!(
        &later.other_updates[..],
        [
            tl::enums::Update::EditChannelMessage(edit),
            tl::enums::Update::DeleteChannelMessages(deletion),
        ] if edit.pts == 5 && edit.message.id() == 1 && deletion.pts == 6 && deletion.messages == [2]
    ));

    // A limit cuts it short: not final, with the pts reached.
    let tl::enums::updates::ChannelDifference::Difference(first) = tc
        .invoke("getChannelDifference limited", &difference(1, 2))
        .await
    else {
        panic!("expected a difference");
    };
    assert!(!first.r#final);
    assert_eq!(first.pts, 3);

    let empty = tc
        .invoke("getChannelDifference up to date", &difference(6, 100))
        .await;
    assert!(matches!(
        empty,
        tl::enums::updates::ChannelDifference::Empty(ref e) if e.r#final && e.pts == 6
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_full_channel_tells_about_participants_and_pts() {
    let (sandbox, account) = start().await;
    sandbox
        .set_channel_subscribers(NEWS, 1499)
        .expect("subscribers");
    sandbox.join(account, NEWS).expect("join");
    sandbox.post(NEWS, "hello").expect("post");
    let tc = TestClient::connect(&sandbox, account);

    let full = tc
        .invoke(
            "getFullChannel",
            &tl::functions::channels::GetFullChannel {
                channel: input_channel(NEWS, NEWS_HASH),
            },
        )
        .await;
    let tl::enums::messages::ChatFull::Full(full) = full;
    let tl::enums::ChatFull::ChannelFull(channel) = full.full_chat else {
        panic!("expected channelFull");
    };
    assert_eq!(channel.id, NEWS);
    assert_eq!(channel.about, "All the news");
    assert_eq!(channel.participants_count, Some(1500));
    assert_eq!(channel.pts, 2);
    assert!(matches!(&full.chats[..], [tl::enums::Chat::Channel(c)] if c.title == "The News"));

    let private = tl::functions::channels::GetFullChannel {
        channel: input_channel(SECRET, SECRET_HASH),
    };
    assert_eq!(
        tc.rpc_error("getFullChannel private", &private).await,
        (400, "CHANNEL_PRIVATE".to_owned())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dialogs_list_the_joined_channels_with_their_top_message() {
    let (sandbox, account) = start().await;
    sandbox
        .add_channel(1_333_333_333, 1, Some("quiet"), "Quiet", "")
        .expect("channel");
    sandbox.join(account, NEWS).expect("join");
    sandbox.join(account, SECRET).expect("join");
    sandbox.post(NEWS, "older").expect("post");
    sandbox.post(SECRET, "newer").expect("post");
    let tc = TestClient::connect(&sandbox, account);

    // grammers' iter_dialogs reads the answer (it panics on dialogs whose peer is missing).
    let mut dialogs = tc.client.iter_dialogs();
    let mut listed = Vec::new();
    while let Some(dialog) = within("iter_dialogs", dialogs.next())
        .await
        .expect("iter_dialogs")
    {
        let last = dialog
            .last_message
            .as_ref()
            .map(|message| message.text().to_owned());
        listed.push((
            dialog.peer_id().bare_id(),
            dialog.peer().name().map(str::to_owned),
            last,
        ));
    }
    // Not the channel the account did not join; newest top message first.
    assert_eq!(
        listed,
        [
            (
                Some(SECRET),
                Some("Secret".to_owned()),
                Some("newer".to_owned())
            ),
            (
                Some(NEWS),
                Some("The News".to_owned()),
                Some("older".to_owned())
            ),
        ]
    );

    // Paging: a page of one is a slice that counts them all, and offset_peer goes on from it.
    let request = |offset_peer| tl::functions::messages::GetDialogs {
        exclude_pinned: false,
        folder_id: None,
        offset_date: 0,
        offset_id: 0,
        offset_peer,
        limit: 1,
        hash: 0,
    };
    let page = tc
        .invoke("getDialogs page 1", &request(tl::enums::InputPeer::Empty))
        .await;
    let tl::enums::messages::Dialogs::Slice(page) = page else {
        panic!("expected a slice");
    };
    assert_eq!(page.count, 2);
    assert!(
        matches!(&page.dialogs[..], [tl::enums::Dialog::Dialog(d)] if d.top_message == 1 && d.pts == Some(2))
    );
    let page = tc
        .invoke(
            "getDialogs page 2",
            &request(input_peer(SECRET, SECRET_HASH)),
        )
        .await;
    let tl::enums::messages::Dialogs::Slice(page) = page else {
        panic!("expected a slice");
    };
    assert!(matches!(
        &page.dialogs[..],
        [tl::enums::Dialog::Dialog(tl::types::Dialog { peer: tl::enums::Peer::Channel(c), .. })] if c.channel_id == NEWS
    ));
}
