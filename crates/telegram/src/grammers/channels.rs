//! The channel and chat half of the grammers adapter: joining, history, full info, dialogs, and
//! turning pushed channel updates into [`Update`]s.
//!
//! Everything goes through raw TL requests with [`invoke`] (a task of its own, under the call
//! timeout), like the user half: grammers' friendlier iterators panic on odd answers, and raw
//! answers keep one conversion path for pushed and fetched messages.
//!
//! grammers caches the channels it sees in pushed updates in its session, which it needs to ask
//! `updates.getChannelDifference` after a gap; the raw requests here do not feed that cache, so
//! the adapter keeps its own small one (chat id -> access hash) for [`chat_history`].

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use chrono::{DateTime, Utc};
use grammers_client::tl;

use super::{GrammersSession, invoke};
use crate::{
    ChannelMessage, ChannelRef, ChatKind, ChatMessage, Dialog, InputChannel, Media, MediaKind,
    TelegramChannel, TelegramError, USERNAME_NOT_A_CHANNEL, Update,
};

/// Telegram hands out at most this many messages or dialogs per call.
const PAGE_LIMIT: usize = 100;
/// When `chat_history` meets a chat it has no access hash for, it reads this many dialogs to
/// find it.
const DIALOGS_FOR_LOOKUP: usize = 100;

/// Access hashes by one-number chat id (see [`ChatKind::chat_id`]), learnt from dialogs, joins
/// and channel info. Groups need none and are stored with 0.
#[derive(Default)]
pub(super) struct PeerCache(Mutex<HashMap<i64, i64>>);

impl PeerCache {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<i64, i64>> {
        // Plain map operations: a panic elsewhere cannot leave it half-changed.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn remember(&self, chat_id: i64, access_hash: i64) {
        self.lock().insert(chat_id, access_hash);
    }

    fn get(&self, chat_id: i64) -> Option<i64> {
        self.lock().get(&chat_id).copied()
    }
}

fn rpc(name: &str) -> TelegramError {
    TelegramError::Rpc {
        code: 400,
        name: name.to_owned(),
    }
}

fn input_channel(channel: InputChannel) -> tl::enums::InputChannel {
    tl::enums::InputChannel::Channel(tl::types::InputChannel {
        channel_id: channel.id,
        access_hash: channel.access_hash,
    })
}

/// Telegram's Unix seconds; 0 (or nonsense) becomes the epoch, which no real message has.
fn date(seconds: i32) -> DateTime<Utc> {
    DateTime::from_timestamp(i64::from(seconds), 0).unwrap_or_default()
}

fn edit_date(seconds: Option<i32>) -> Option<DateTime<Utc>> {
    seconds
        .filter(|seconds| *seconds > 0)
        .and_then(|seconds| DateTime::from_timestamp(i64::from(seconds), 0))
}

/// A peer's kind and bare id.
fn peer_of(peer: &tl::enums::Peer) -> (ChatKind, i64) {
    match peer {
        tl::enums::Peer::User(user) => (ChatKind::User, user.user_id),
        tl::enums::Peer::Chat(chat) => (ChatKind::Group, chat.chat_id),
        tl::enums::Peer::Channel(channel) => (ChatKind::Channel, channel.channel_id),
    }
}

fn media_of(media: &tl::enums::MessageMedia) -> Option<Media> {
    use tl::enums::MessageMedia as M;
    let (kind, reference) = match media {
        M::Empty => return None,
        M::Photo(photo) => (
            MediaKind::Photo,
            match &photo.photo {
                Some(tl::enums::Photo::Photo(photo)) => {
                    format!("photo:{}:{}", photo.id, photo.access_hash)
                }
                // Expired (self-destructing) or removed.
                _ => "photo".to_owned(),
            },
        ),
        M::Document(document) => (
            MediaKind::Document,
            match &document.document {
                Some(tl::enums::Document::Document(document)) => {
                    format!("document:{}:{}", document.id, document.access_hash)
                }
                _ => "document".to_owned(),
            },
        ),
        other => {
            // The TL name says what it is; its constructor id leads its serialization.
            let bytes = tl::Serializable::to_bytes(other);
            let id = bytes.get(..4).map_or(0, |head| {
                u32::from_le_bytes([head[0], head[1], head[2], head[3]])
            });
            (MediaKind::Other, tl::name_for_id(id).to_owned())
        }
    };
    Some(Media { kind, reference })
}

/// A message of any chat; `None` for empty messages and service messages (joins, pins...).
fn chat_message(message: &tl::enums::Message) -> Option<ChatMessage> {
    let tl::enums::Message::Message(message) = message else {
        return None;
    };
    let (kind, id) = peer_of(&message.peer_id);
    // Since layer 119 incoming private messages carry no `from_id`: the sender is the peer.
    let sender_id = match (&message.from_id, kind) {
        (Some(from), _) => Some(peer_of(from).1),
        (None, ChatKind::User) if !message.out => Some(id),
        (None, _) => None,
    };
    Some(ChatMessage {
        chat_id: kind.chat_id(id),
        id: message.id,
        date: date(message.date),
        text: message.message.clone(),
        media: message.media.as_ref().and_then(media_of),
        edit_date: edit_date(message.edit_date),
        sender_id,
        outgoing: message.out,
    })
}

/// A channel message; `None` for other chats' messages, empty and service messages. Its author
/// is the post's signature, else its sender's name, which `sender_name` finds by the sender's
/// chat id (a user's full name, a chat's title; anonymous broadcast posts have neither).
fn channel_message(
    message: &tl::enums::Message,
    sender_name: impl FnOnce(i64) -> Option<String>,
) -> Option<ChannelMessage> {
    let sender_name = match message {
        tl::enums::Message::Message(message) => message.post_author.clone().or_else(|| {
            let (kind, id) = peer_of(message.from_id.as_ref()?);
            sender_name(kind.chat_id(id))
        }),
        _ => None,
    };
    let message = chat_message(message)?;
    let (ChatKind::Channel, channel_id) = ChatKind::of_chat_id(message.chat_id)? else {
        return None;
    };
    Some(ChannelMessage {
        channel_id,
        id: message.id,
        date: message.date,
        text: message.text,
        media: message.media,
        edit_date: message.edit_date,
        sender_id: message.sender_id,
        sender_name,
    })
}

/// The port's update for a pushed channel update; `None` for everything else. `sender_name`
/// is the sender's name as it came with the update (see [`channel_message`]).
pub(super) fn channel_update(
    update: &tl::enums::Update,
    sender_name: impl FnOnce(i64) -> Option<String>,
) -> Option<Update> {
    match update {
        tl::enums::Update::NewChannelMessage(update) => {
            channel_message(&update.message, sender_name).map(Update::ChannelMessageNew)
        }
        tl::enums::Update::EditChannelMessage(update) => {
            channel_message(&update.message, sender_name).map(Update::ChannelMessageEdited)
        }
        tl::enums::Update::DeleteChannelMessages(update) => Some(Update::ChannelMessagesDeleted {
            channel_id: update.channel_id,
            ids: update.messages.clone(),
        }),
        _ => None,
    }
}

/// The channel (or supergroup) with this id among `chats`.
fn find_channel(chats: Vec<tl::enums::Chat>, id: i64) -> Option<tl::enums::Chat> {
    chats.into_iter().find(|chat| chat.id() == id)
}

/// The first channel among `chats` (what a join by invite returns).
fn first_channel(chats: Vec<tl::enums::Chat>) -> Option<tl::enums::Chat> {
    chats.into_iter().find(|chat| {
        matches!(
            chat,
            tl::enums::Chat::Channel(_) | tl::enums::Chat::ChannelForbidden(_)
        )
    })
}

/// The port's channel; `fallback_hash` stands in for a missing access hash (`min` channels).
fn telegram_channel(
    chat: tl::enums::Chat,
    fallback_hash: Option<i64>,
) -> Result<TelegramChannel, TelegramError> {
    match chat {
        tl::enums::Chat::Channel(channel) => {
            let username = channel.username.clone().or_else(|| {
                // Channels with several usernames list them here instead.
                channel.usernames.as_ref().and_then(|names| {
                    names.iter().find_map(|name| {
                        let tl::enums::Username::Username(name) = name;
                        name.active.then(|| name.username.clone())
                    })
                })
            });
            let access_hash = channel.access_hash.or(fallback_hash).ok_or_else(|| {
                TelegramError::Connection(format!(
                    "Telegram sent channel {} without an access hash",
                    channel.id
                ))
            })?;
            Ok(TelegramChannel {
                id: channel.id,
                access_hash,
                title: channel.title,
                username,
                about: None,
                participants_count: channel.participants_count,
            })
        }
        // Banned from it, or it is gone for this account.
        tl::enums::Chat::ChannelForbidden(_) => Err(rpc("CHANNEL_PRIVATE")),
        _ => Err(rpc("CHANNEL_INVALID")),
    }
}

fn chats_of_updates(updates: tl::enums::Updates) -> Vec<tl::enums::Chat> {
    match updates {
        tl::enums::Updates::Updates(updates) => updates.chats,
        tl::enums::Updates::Combined(updates) => updates.chats,
        _ => Vec::new(),
    }
}

fn chats_of_join(result: tl::enums::messages::ChatInviteJoinResult) -> Vec<tl::enums::Chat> {
    match result {
        tl::enums::messages::ChatInviteJoinResult::Ok(ok) => chats_of_updates(ok.updates),
        // A paid subscription, which needs a bot's web view: nothing an unattended service can
        // do.
        tl::enums::messages::ChatInviteJoinResult::WebView(_) => Vec::new(),
    }
}

fn messages_of(answer: tl::enums::messages::Messages) -> Vec<tl::enums::Message> {
    messages_and_peers_of(answer).0
}

/// The messages of an answer, with the users and chats it names (their senders among them).
fn messages_and_peers_of(
    answer: tl::enums::messages::Messages,
) -> (Vec<tl::enums::Message>, HashMap<i64, Peer>) {
    use tl::enums::messages::Messages as M;
    let (messages, users, chats) = match answer {
        M::Messages(answer) => (answer.messages, answer.users, answer.chats),
        M::Slice(answer) => (answer.messages, answer.users, answer.chats),
        M::ChannelMessages(answer) => (answer.messages, answer.users, answer.chats),
        M::NotModified(_) => return (Vec::new(), HashMap::new()),
    };
    (messages, peers_of(users, chats))
}

impl GrammersSession {
    fn remember_channel(&self, channel: &TelegramChannel) {
        self.peers
            .remember(ChatKind::Channel.chat_id(channel.id), channel.access_hash);
    }
}

pub(super) async fn join_channel(
    session: &GrammersSession,
    reference: &ChannelRef,
) -> Result<TelegramChannel, TelegramError> {
    let joined = match reference {
        ChannelRef::Username(username) => join_by_username(session, username.as_str()).await,
        ChannelRef::Invite(hash) => join_by_invite(session, hash.as_str()).await,
        ChannelRef::Id(channel) => join_by_id(session, *channel).await,
    };
    // An invite link lets anyone in: it stays out of the logs.
    let by = match reference {
        ChannelRef::Invite(_) => "an invite link".to_owned(),
        other => other.to_string(),
    };
    match &joined {
        Ok(channel) => {
            session.remember_channel(channel);
            tracing::info!(account = %session.account, by, channel_id = channel.id, "joined channel");
        }
        Err(error) => {
            tracing::warn!(account = %session.account, by, %error, "cannot join channel");
        }
    }
    joined
}

pub(super) async fn leave_channel(
    session: &GrammersSession,
    channel: InputChannel,
) -> Result<(), TelegramError> {
    let request = tl::functions::channels::LeaveChannel {
        channel: input_channel(channel),
    };
    match invoke(&session.client, session.call_timeout, request).await {
        Ok(_) => {
            tracing::info!(account = %session.account, channel_id = channel.id, "left channel");
            Ok(())
        }
        Err(TelegramError::Rpc { name, .. }) if name == "USER_NOT_PARTICIPANT" => Ok(()),
        Err(error) => {
            tracing::warn!(account = %session.account, channel_id = channel.id, %error, "cannot leave channel");
            Err(error)
        }
    }
}

async fn join_by_id(
    session: &GrammersSession,
    channel: InputChannel,
) -> Result<TelegramChannel, TelegramError> {
    let request = tl::functions::channels::JoinChannel {
        channel: input_channel(channel),
    };
    let result = invoke(&session.client, session.call_timeout, request).await?;
    let chat =
        find_channel(chats_of_join(result), channel.id).ok_or_else(|| rpc("CHANNEL_INVALID"))?;
    telegram_channel(chat, Some(channel.access_hash))
}

async fn join_by_username(
    session: &GrammersSession,
    username: &str,
) -> Result<TelegramChannel, TelegramError> {
    let request = tl::functions::contacts::ResolveUsername {
        username: username.to_owned(),
        referer: None,
    };
    let tl::enums::contacts::ResolvedPeer::Peer(resolved) =
        invoke(&session.client, session.call_timeout, request).await?;
    let tl::enums::Peer::Channel(peer) = resolved.peer else {
        // A user, a bot or a small group owns the name.
        return Err(rpc(USERNAME_NOT_A_CHANNEL));
    };
    let chat =
        find_channel(resolved.chats, peer.channel_id).ok_or_else(|| rpc("CHANNEL_INVALID"))?;
    let already_member = matches!(&chat, tl::enums::Chat::Channel(channel) if !channel.left);
    let channel = telegram_channel(chat, None)?;
    if already_member {
        // One flood-prone call saved.
        return Ok(channel);
    }
    join_by_id(session, channel.input()).await
}

async fn join_by_invite(
    session: &GrammersSession,
    hash: &str,
) -> Result<TelegramChannel, TelegramError> {
    let request = tl::functions::messages::ImportChatInvite {
        hash: hash.to_owned(),
    };
    match invoke(&session.client, session.call_timeout, request).await {
        Ok(result) => {
            let chat = first_channel(chats_of_join(result))
                // The invite was to a small group, or needs a paid subscription.
                .ok_or_else(|| rpc("CHANNEL_INVALID"))?;
            telegram_channel(chat, None)
        }
        // Already a member: the invite's preview names the channel.
        Err(TelegramError::Rpc { name, .. }) if name == "USER_ALREADY_PARTICIPANT" => {
            let check = tl::functions::messages::CheckChatInvite {
                hash: hash.to_owned(),
            };
            match invoke(&session.client, session.call_timeout, check).await? {
                tl::enums::ChatInvite::Already(already) => telegram_channel(already.chat, None),
                tl::enums::ChatInvite::Peek(peek) => telegram_channel(peek.chat, None),
                tl::enums::ChatInvite::Invite(_) => Err(rpc("CHANNEL_INVALID")),
            }
        }
        Err(error) => Err(error),
    }
}

pub(super) async fn channel_history(
    session: &GrammersSession,
    channel: InputChannel,
    after_id: i32,
    limit: usize,
) -> Result<Vec<ChannelMessage>, TelegramError> {
    let mut found: Vec<ChannelMessage> = Vec::new();
    let mut after = after_id;
    while found.len() < limit {
        let page = i32::try_from((limit - found.len()).min(PAGE_LIMIT)).unwrap_or(1);
        // The `page` oldest messages above `after`: Telegram counts `offset_id` from the newest
        // message down to it, inclusive, and a negative `add_offset` moves that window towards
        // newer messages; `min_id` keeps anything at or below `after` out.
        let request = tl::functions::messages::GetHistory {
            peer: tl::enums::InputPeer::Channel(tl::types::InputPeerChannel {
                channel_id: channel.id,
                access_hash: channel.access_hash,
            }),
            offset_id: after.saturating_add(1),
            offset_date: 0,
            add_offset: -page,
            limit: page,
            max_id: 0,
            min_id: after,
            hash: 0,
        };
        let (messages, peers) =
            messages_and_peers_of(invoke(&session.client, session.call_timeout, request).await?);
        let Some(newest) = messages.iter().map(tl::enums::Message::id).max() else {
            break;
        };
        let fetched = messages.len();
        let mut batch: Vec<ChannelMessage> = messages
            .iter()
            .filter_map(|message| {
                channel_message(message, |sender| {
                    peers.get(&sender).map(|peer| peer.title.clone())
                })
            })
            .filter(|message| message.channel_id == channel.id && message.id > after)
            .collect();
        batch.sort_by_key(|message| message.id);
        found.extend(batch);
        if newest <= after {
            // No progress: never loop on an answer that ignores the offsets.
            break;
        }
        after = newest;
        if fetched < usize::try_from(page).unwrap_or(0) {
            break;
        }
    }
    found.truncate(limit);
    tracing::debug!(account = %session.account, channel_id = channel.id, after_id, found = found.len(), "channel history");
    Ok(found)
}

pub(super) async fn channel_info(
    session: &GrammersSession,
    channel: InputChannel,
) -> Result<TelegramChannel, TelegramError> {
    let request = tl::functions::channels::GetFullChannel {
        channel: input_channel(channel),
    };
    let tl::enums::messages::ChatFull::Full(full) =
        invoke(&session.client, session.call_timeout, request).await?;
    let chat = find_channel(full.chats, channel.id).ok_or_else(|| rpc("CHANNEL_INVALID"))?;
    let mut info = telegram_channel(chat, Some(channel.access_hash))?;
    match full.full_chat {
        tl::enums::ChatFull::ChannelFull(full) => {
            info.about = Some(full.about);
            info.participants_count = full.participants_count.or(info.participants_count);
        }
        // Not a channel: cannot happen for a channel id, but keep what we have.
        tl::enums::ChatFull::Full(full) => info.about = Some(full.about),
        tl::enums::ChatFull::CommunityFull(_) => {}
    }
    session.remember_channel(&info);
    Ok(info)
}

/// A dialog's peer as the port describes it, with the access hash to reach it.
struct Peer {
    title: String,
    username: Option<String>,
    access_hash: i64,
}

fn peers_of(users: Vec<tl::enums::User>, chats: Vec<tl::enums::Chat>) -> HashMap<i64, Peer> {
    let users = users.into_iter().filter_map(|user| match user {
        tl::enums::User::User(user) => {
            let title = [user.first_name, user.last_name]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(" ");
            Some((
                ChatKind::User.chat_id(user.id),
                Peer {
                    title,
                    username: user.username,
                    access_hash: user.access_hash.unwrap_or(0),
                },
            ))
        }
        tl::enums::User::Empty(_) => None,
    });
    let chats = chats.into_iter().filter_map(|chat| {
        let (chat_id, peer) = match chat {
            tl::enums::Chat::Chat(chat) => (
                ChatKind::Group.chat_id(chat.id),
                Peer {
                    title: chat.title,
                    username: None,
                    access_hash: 0,
                },
            ),
            tl::enums::Chat::Forbidden(chat) => (
                ChatKind::Group.chat_id(chat.id),
                Peer {
                    title: chat.title,
                    username: None,
                    access_hash: 0,
                },
            ),
            tl::enums::Chat::Channel(channel) => (
                ChatKind::Channel.chat_id(channel.id),
                Peer {
                    title: channel.title,
                    username: channel.username,
                    access_hash: channel.access_hash.unwrap_or(0),
                },
            ),
            tl::enums::Chat::ChannelForbidden(channel) => (
                ChatKind::Channel.chat_id(channel.id),
                Peer {
                    title: channel.title,
                    username: None,
                    access_hash: channel.access_hash,
                },
            ),
            // Communities group chats; they are not chats themselves.
            tl::enums::Chat::Empty(_)
            | tl::enums::Chat::Community(_)
            | tl::enums::Chat::CommunityForbidden(_) => return None,
        };
        Some((chat_id, peer))
    });
    users.chain(chats).collect()
}

fn input_peer(kind: ChatKind, id: i64, access_hash: i64) -> tl::enums::InputPeer {
    match kind {
        ChatKind::User => tl::enums::InputPeer::User(tl::types::InputPeerUser {
            user_id: id,
            access_hash,
        }),
        ChatKind::Group => tl::enums::InputPeer::Chat(tl::types::InputPeerChat { chat_id: id }),
        ChatKind::Channel => tl::enums::InputPeer::Channel(tl::types::InputPeerChannel {
            channel_id: id,
            access_hash,
        }),
    }
}

pub(super) async fn dialogs(
    session: &GrammersSession,
    limit: usize,
) -> Result<Vec<Dialog>, TelegramError> {
    let mut found: Vec<Dialog> = Vec::new();
    let (mut offset_date, mut offset_id, mut offset_peer) = (0, 0, tl::enums::InputPeer::Empty);
    while found.len() < limit {
        let page = (limit - found.len()).min(PAGE_LIMIT);
        let request = tl::functions::messages::GetDialogs {
            exclude_pinned: false,
            folder_id: None,
            offset_date,
            offset_id,
            offset_peer: offset_peer.clone(),
            limit: i32::try_from(page).unwrap_or(1),
            hash: 0,
        };
        use tl::enums::messages::Dialogs as D;
        let (dialogs, messages, chats, users, complete) =
            match invoke(&session.client, session.call_timeout, request).await? {
                D::Dialogs(answer) => (
                    answer.dialogs,
                    answer.messages,
                    answer.chats,
                    answer.users,
                    true,
                ),
                D::Slice(answer) => {
                    let complete = answer.dialogs.len() < page;
                    (
                        answer.dialogs,
                        answer.messages,
                        answer.chats,
                        answer.users,
                        complete,
                    )
                }
                // Only sent for a non-zero `hash`.
                D::NotModified(_) => break,
            };
        let peers = peers_of(users, chats);
        let before = found.len();
        for dialog in dialogs {
            let tl::enums::Dialog::Dialog(dialog) = dialog else {
                // Folders and communities group other dialogs; they are not chats.
                continue;
            };
            let (kind, id) = peer_of(&dialog.peer);
            let chat_id = kind.chat_id(id);
            let last = messages.iter().find(|message| {
                message.id() == dialog.top_message
                    && chat_message(message).is_some_and(|m| m.chat_id == chat_id)
            });
            let last_date = last.and_then(chat_message).map(|message| message.date);
            let peer = peers.get(&chat_id);
            if let Some(peer) = peer {
                session.peers.remember(chat_id, peer.access_hash);
                offset_peer = input_peer(kind, id, peer.access_hash);
            }
            if let Some(date) = last_date {
                offset_date = i32::try_from(date.timestamp()).unwrap_or(0);
                offset_id = dialog.top_message;
            }
            found.push(Dialog {
                chat_id,
                kind,
                id,
                access_hash: peer.map(|peer| peer.access_hash),
                title: peer.map(|peer| peer.title.clone()).unwrap_or_default(),
                username: peer.and_then(|peer| peer.username.clone()),
                last_message_id: (dialog.top_message > 0).then_some(dialog.top_message),
                last_message_date: last_date,
            });
        }
        // No progress means the offsets do not move: stop rather than ask the same again.
        if complete || found.len() == before {
            break;
        }
    }
    found.truncate(limit);
    tracing::debug!(account = %session.account, found = found.len(), "dialogs");
    Ok(found)
}

pub(super) async fn chat_history(
    session: &GrammersSession,
    chat_id: i64,
    before_id: i32,
    limit: usize,
) -> Result<Vec<ChatMessage>, TelegramError> {
    let (kind, id) = ChatKind::of_chat_id(chat_id).ok_or_else(|| rpc("PEER_ID_INVALID"))?;
    let access_hash = match session.peers.get(chat_id) {
        Some(hash) => hash,
        None if kind == ChatKind::Group => 0,
        None => {
            // Not seen yet: the chat is most likely among the recent dialogs.
            dialogs(session, DIALOGS_FOR_LOOKUP).await?;
            session
                .peers
                .get(chat_id)
                .ok_or_else(|| rpc("PEER_ID_INVALID"))?
        }
    };
    if limit == 0 {
        return Ok(Vec::new());
    }
    let request = tl::functions::messages::GetHistory {
        peer: input_peer(kind, id, access_hash),
        offset_id: before_id.max(0),
        offset_date: 0,
        add_offset: 0,
        limit: i32::try_from(limit.min(PAGE_LIMIT)).unwrap_or(1),
        max_id: 0,
        min_id: 0,
        hash: 0,
    };
    let messages = messages_of(invoke(&session.client, session.call_timeout, request).await?);
    let mut found: Vec<ChatMessage> = messages
        .iter()
        .filter_map(chat_message)
        .filter(|message| message.chat_id == chat_id)
        .collect();
    found.sort_by_key(|message| std::cmp::Reverse(message.id));
    found.truncate(limit);
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(
        peer: tl::enums::Peer,
        media: Option<tl::enums::MessageMedia>,
    ) -> tl::enums::Message {
        tl::enums::Message::Message(tl::types::Message {
            out: false,
            mentioned: false,
            media_unread: false,
            silent: false,
            post: true,
            from_scheduled: false,
            legacy: false,
            edit_hide: false,
            pinned: false,
            noforwards: false,
            invert_media: false,
            offline: false,
            video_processing_pending: false,
            paid_suggested_post_stars: false,
            paid_suggested_post_ton: false,
            id: 7,
            from_id: None,
            from_boosts_applied: None,
            from_rank: None,
            peer_id: peer,
            saved_peer_id: None,
            fwd_from: None,
            via_bot_id: None,
            via_business_bot_id: None,
            guestchat_via_from: None,
            reply_to: None,
            date: 1_700_000_000,
            message: "hello".into(),
            media,
            reply_markup: None,
            entities: None,
            views: None,
            forwards: None,
            replies: None,
            edit_date: Some(1_700_000_060),
            post_author: None,
            grouped_id: None,
            reactions: None,
            restriction_reason: None,
            ttl_period: None,
            quick_reply_shortcut_id: None,
            effect: None,
            factcheck: None,
            report_delivery_until_date: None,
            paid_message_stars: None,
            suggested_post: None,
            schedule_repeat_period: None,
            summary_from_language: None,
            rich_message: None,
        })
    }

    fn no_name(_sender: i64) -> Option<String> {
        None
    }

    #[test]
    fn a_posts_author_is_its_signature_else_its_senders_name() {
        let channel = tl::enums::Peer::Channel(tl::types::PeerChannel { channel_id: 55 });
        let signed = match message(channel.clone(), None) {
            tl::enums::Message::Message(message) => {
                tl::enums::Message::Message(tl::types::Message {
                    post_author: Some("Ann Editor".into()),
                    from_id: Some(tl::enums::Peer::User(tl::types::PeerUser { user_id: 9 })),
                    ..message
                })
            }
            other => other,
        };
        let name_of_9 = |sender: i64| (sender == 9).then(|| "Bob Member".to_owned());
        let mapped = channel_message(&signed, name_of_9).expect("a message");
        assert_eq!(mapped.sender_name.as_deref(), Some("Ann Editor"));

        // A member's message in a supergroup: no signature, a sender.
        let from_member = match signed {
            tl::enums::Message::Message(message) => {
                tl::enums::Message::Message(tl::types::Message {
                    post_author: None,
                    ..message
                })
            }
            other => other,
        };
        let mapped = channel_message(&from_member, name_of_9).expect("a message");
        assert_eq!(mapped.sender_name.as_deref(), Some("Bob Member"));
        assert_eq!(mapped.sender_id, Some(9));

        // An anonymous broadcast post has neither.
        let anonymous = channel_message(&message(channel, None), name_of_9).expect("a message");
        assert_eq!(anonymous.sender_name, None);
    }

    #[test]
    fn channel_messages_map_with_their_media_and_dates() {
        let channel = tl::enums::Peer::Channel(tl::types::PeerChannel { channel_id: 55 });
        let dice = tl::enums::MessageMedia::Dice(tl::types::MessageMediaDice {
            value: 6,
            emoticon: "🎲".into(),
            game_outcome: None,
        });
        let mapped =
            channel_message(&message(channel.clone(), Some(dice)), no_name).expect("a message");
        assert_eq!(mapped.channel_id, 55);
        assert_eq!((mapped.id, mapped.text.as_str()), (7, "hello"));
        assert_eq!(mapped.date.timestamp(), 1_700_000_000);
        assert_eq!(mapped.edit_date.map(|d| d.timestamp()), Some(1_700_000_060));
        assert_eq!(
            mapped.media,
            Some(Media {
                kind: MediaKind::Other,
                reference: "messageMediaDice".into()
            })
        );
        assert_eq!(mapped.sender_id, None);

        // Another chat's message is not a channel message, but a chat message with a sender.
        let user = tl::enums::Peer::User(tl::types::PeerUser { user_id: 9 });
        assert_eq!(channel_message(&message(user.clone(), None), no_name), None);
        let private = chat_message(&message(user, None)).expect("a chat message");
        assert_eq!((private.chat_id, private.sender_id), (9, Some(9)));
    }

    #[test]
    fn deletions_map_with_their_channel() {
        let update =
            tl::enums::Update::DeleteChannelMessages(tl::types::UpdateDeleteChannelMessages {
                channel_id: 55,
                messages: vec![1, 2],
                pts: 9,
                pts_count: 2,
            });
        assert_eq!(
            channel_update(&update, no_name),
            Some(Update::ChannelMessagesDeleted {
                channel_id: 55,
                ids: vec![1, 2]
            })
        );
        let private = tl::enums::Update::DeleteMessages(tl::types::UpdateDeleteMessages {
            messages: vec![1],
            pts: 2,
            pts_count: 1,
        });
        assert_eq!(channel_update(&private, no_name), None);
    }
}
