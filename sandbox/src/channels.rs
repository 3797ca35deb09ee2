//! Broadcast channels: what they hold, who joined them, the RPC methods about them, and the
//! control API that posts, edits and deletes.
//!
//! Each channel has its own update sequence (`pts`), as on Telegram: every post, edit and
//! deletion moves it and is logged, so that `updates.getChannelDifference` can replay what an
//! account missed. A change is pushed at once to every member with a live connection; a member
//! without one is not queued anything in its common update box. Instead its next
//! `updates.getDifference` carries an
//! `updateChannelTooLong` naming the pts it last saw, which is how Telegram tells a client
//! "this channel moved while you were away: ask `updates.getChannelDifference`". grammers does
//! so by itself, as it also does when it notices a pts gap in pushed channel updates.
//!
//! Simplifications, on purpose:
//! * broadcast channels only (no megagroups, no forum topics, no service messages: the first
//!   post is message 1);
//! * one access hash per channel, valid for every account;
//! * a public channel (one with a username) can be read without joining; a private one needs
//!   membership (`CHANNEL_PRIVATE` otherwise), and can be joined by invite only;
//! * no view counters: every post shows one view and no forwards.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use grammers_tl_types::{self as tl, Identifiable, functions};

use crate::dispatch::Answer;
use crate::error::SandboxError;
use crate::sandbox::Sandbox;
use crate::wire::parse_call;
use crate::world::{AccountId, Delivery, Pushed, World, unix_now};

/// The channel ids Telegram (and grammers' `PeerId`) accept: grammers panics on a channel id
/// outside this range, so the sandbox refuses to create one.
const CHANNEL_ID_RANGE: std::ops::RangeInclusive<i64> = 1..=997_852_516_352;
/// `messages.getHistory` hands out at most this many messages per call, as Telegram does.
const HISTORY_LIMIT: i32 = 100;
/// `messages.getDialogs` likewise.
const DIALOGS_LIMIT: i32 = 100;
/// Makes a file's access hash from its id, so that tests need not pass one.
const FILE_HASH_SALT: i64 = 0x5EED_F11E;

/// What a post carries besides its text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MediaKind {
    /// A photo; `id` is Telegram's photo id (its access hash is derived from it).
    Photo { id: i64 },
    /// A file (document, video, voice note...): Telegram's document id, its MIME type and its
    /// file name.
    Document {
        id: i64,
        mime_type: String,
        file_name: String,
    },
}

/// A post made with [`Sandbox::post`] or [`Sandbox::post_media`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Posted {
    /// The new message's id in its channel.
    pub id: i32,
    /// Which members were told at once and which will learn it from
    /// `updates.getChannelDifference`.
    pub delivery: Delivery,
}

/// One message of a channel's log. Deleted messages stay, flagged, so that ids never repeat.
struct MessageRecord {
    id: i32,
    date: i32,
    /// World-wide order of posts: dates have one-second resolution and message ids are
    /// per channel, so this is what orders dialogs whose top posts share a second.
    order: u64,
    text: String,
    media: Option<MediaKind>,
    edit_date: Option<i32>,
    deleted: bool,
    /// The post's signature (`post_author`), for channels that sign posts.
    author: Option<String>,
}

/// What moved a channel's pts.
enum Event {
    New(i32),
    Edit(i32),
    Delete(Vec<i32>),
}

struct LoggedEvent {
    /// The channel's pts after the event.
    pts: i32,
    /// How much the event moved it.
    pts_count: i32,
    event: Event,
}

/// An account in a channel.
struct Member {
    /// The channel pts up to which the account was sent every update, live or by
    /// `updates.getChannelDifference`. Behind the channel's pts means it missed something.
    seen_pts: i32,
}

pub(crate) struct ChannelRecord {
    id: i64,
    access_hash: i64,
    title: String,
    username: Option<String>,
    about: String,
    date: i32,
    /// Subscribers that are not sandbox accounts (see [`Sandbox::set_channel_subscribers`]).
    subscribers: i32,
    pts: i32,
    messages: BTreeMap<i32, MessageRecord>,
    events: Vec<LoggedEvent>,
    members: BTreeMap<AccountId, Member>,
}

impl ChannelRecord {
    fn participants_count(&self) -> i32 {
        self.subscribers
            .saturating_add(i32::try_from(self.members.len()).unwrap_or(i32::MAX))
    }

    fn is_public(&self) -> bool {
        self.username.is_some()
    }

    /// Whether `viewer` may read the channel: members always, others only if it is public.
    fn readable_by(&self, viewer: AccountId) -> bool {
        self.is_public() || self.members.contains_key(&viewer)
    }

    /// Visible (not deleted) messages, newest first, as Telegram lists history.
    fn visible_newest_first(&self) -> impl Iterator<Item = &MessageRecord> {
        self.messages
            .values()
            .rev()
            .filter(|message| !message.deleted)
    }

    fn top_message(&self) -> Option<&MessageRecord> {
        self.visible_newest_first().next()
    }

    fn next_message_id(&self) -> i32 {
        self.messages
            .keys()
            .next_back()
            .map_or(1, |last| last.saturating_add(1))
    }

    /// The channel as `viewer` sees it: `left` unless the viewer joined.
    fn to_tl(&self, viewer: AccountId) -> tl::enums::Chat {
        tl::enums::Chat::Channel(tl::types::Channel {
            creator: false,
            left: !self.members.contains_key(&viewer),
            broadcast: true,
            verified: false,
            megagroup: false,
            // Shares flag bit 9 with `restriction_reason`: both stay off.
            restricted: false,
            signatures: false,
            min: false,
            scam: false,
            has_link: false,
            has_geo: false,
            slowmode_enabled: false,
            call_active: false,
            call_not_empty: false,
            fake: false,
            gigagroup: false,
            noforwards: false,
            join_to_send: false,
            join_request: false,
            forum: false,
            stories_hidden: false,
            stories_hidden_min: false,
            stories_unavailable: false,
            signature_profiles: false,
            autotranslation: false,
            broadcast_messages_allowed: false,
            monoforum: false,
            forum_tabs: false,
            id: self.id,
            access_hash: Some(self.access_hash),
            title: self.title.clone(),
            username: self.username.clone(),
            photo: tl::enums::ChatPhoto::Empty,
            date: self.date,
            restriction_reason: None,
            admin_rights: None,
            banned_rights: None,
            default_banned_rights: None,
            participants_count: Some(self.participants_count()),
            usernames: None,
            stories_max_id: None,
            color: None,
            profile_color: None,
            emoji_status: None,
            level: None,
            subscription_until_date: None,
            bot_verification_icon: None,
            send_paid_messages_stars: None,
            linked_monoforum_id: None,
            linked_community_id: None,
        })
    }

    fn peer(&self) -> tl::enums::Peer {
        tl::enums::Peer::Channel(tl::types::PeerChannel {
            channel_id: self.id,
        })
    }

    fn message_tl(&self, message: &MessageRecord) -> tl::enums::Message {
        if message.deleted {
            return self.empty_message(message.id);
        }
        // Broadcast posts without signatures have no sender.
        let base = crate::updates::text_message(
            message.id,
            self.peer(),
            None,
            message.date,
            &message.text,
        );
        tl::enums::Message::Message(tl::types::Message {
            post: true,
            media: message
                .media
                .as_ref()
                .map(|media| media_tl(media, message.date)),
            // `views` and `forwards` share flag bit 10: set both or neither.
            views: Some(1),
            forwards: Some(0),
            edit_date: message.edit_date,
            post_author: message.author.clone(),
            ..base
        })
    }

    fn empty_message(&self, id: i32) -> tl::enums::Message {
        tl::enums::Message::Empty(tl::types::MessageEmpty {
            id,
            peer_id: Some(self.peer()),
        })
    }

    /// Moves the pts by `pts_count` and logs the event. Returns the new pts.
    fn log(&mut self, pts_count: i32, event: Event) -> i32 {
        self.pts = self.pts.saturating_add(pts_count);
        self.events.push(LoggedEvent {
            pts: self.pts,
            pts_count,
            event,
        });
        self.pts
    }
}

fn file_access_hash(id: i64) -> i64 {
    id.rotate_left(17) ^ FILE_HASH_SALT
}

fn media_tl(media: &MediaKind, date: i32) -> tl::enums::MessageMedia {
    match media {
        MediaKind::Photo { id } => tl::enums::MessageMedia::Photo(tl::types::MessageMediaPhoto {
            spoiler: false,
            // Shares flag bit 4 with `video`: both stay off.
            live_photo: false,
            photo: Some(tl::enums::Photo::Photo(tl::types::Photo {
                has_stickers: false,
                id: *id,
                access_hash: file_access_hash(*id),
                file_reference: id.to_le_bytes().to_vec(),
                date,
                sizes: vec![tl::enums::PhotoSize::Size(tl::types::PhotoSize {
                    r#type: "x".into(),
                    w: 800,
                    h: 600,
                    size: 40_000,
                })],
                video_sizes: None,
                dc_id: crate::HOME_DC,
            })),
            ttl_seconds: None,
            video: None,
        }),
        MediaKind::Document {
            id,
            mime_type,
            file_name,
        } => tl::enums::MessageMedia::Document(tl::types::MessageMediaDocument {
            nopremium: false,
            spoiler: false,
            video: false,
            round: false,
            voice: false,
            document: Some(tl::enums::Document::Document(tl::types::Document {
                id: *id,
                access_hash: file_access_hash(*id),
                file_reference: id.to_le_bytes().to_vec(),
                date,
                mime_type: mime_type.clone(),
                size: 1024,
                thumbs: None,
                video_thumbs: None,
                dc_id: crate::HOME_DC,
                attributes: vec![tl::enums::DocumentAttribute::Filename(
                    tl::types::DocumentAttributeFilename {
                        file_name: file_name.clone(),
                    },
                )],
            })),
            alt_documents: None,
            video_cover: None,
            video_timestamp: None,
            ttl_seconds: None,
        }),
    }
}

/// Every channel of the fake Telegram; a field of [`World`].
#[derive(Default)]
pub(crate) struct Channels {
    by_id: BTreeMap<i64, ChannelRecord>,
    /// Lower-cased username -> channel id.
    usernames: HashMap<String, i64>,
    /// Invite hash -> channel id.
    invites: HashMap<String, i64>,
    /// The last [`MessageRecord::order`] handed out.
    last_order: u64,
}

impl Channels {
    /// Whether a channel has this (lower-cased) username. Users and channels share one namespace.
    pub(crate) fn username_taken(&self, lowercase: &str) -> bool {
        self.usernames.contains_key(lowercase)
    }

    fn get(&self, id: i64) -> Result<&ChannelRecord, SandboxError> {
        self.by_id.get(&id).ok_or(SandboxError::UnknownChannel(id))
    }

    fn get_mut(&mut self, id: i64) -> Result<&mut ChannelRecord, SandboxError> {
        self.by_id
            .get_mut(&id)
            .ok_or(SandboxError::UnknownChannel(id))
    }

    /// The channel an `InputChannel` names, if its access hash is right.
    fn lookup(&self, input: &tl::enums::InputChannel) -> Option<&ChannelRecord> {
        match input {
            tl::enums::InputChannel::Channel(channel) => self
                .by_id
                .get(&channel.channel_id)
                .filter(|record| record.access_hash == channel.access_hash),
            tl::enums::InputChannel::Empty | tl::enums::InputChannel::FromMessage(_) => None,
        }
    }

    /// The channel an `InputPeer` names, if it is a channel with the right access hash.
    fn lookup_peer(&self, input: &tl::enums::InputPeer) -> Option<&ChannelRecord> {
        match input {
            tl::enums::InputPeer::Channel(channel) => self
                .by_id
                .get(&channel.channel_id)
                .filter(|record| record.access_hash == channel.access_hash),
            _ => None,
        }
    }
}

// --- World-level operations (called under the world lock) ---------------------------------

fn add_channel(
    world: &mut World,
    id: i64,
    access_hash: i64,
    username: Option<&str>,
    title: &str,
    about: &str,
) -> Result<(), SandboxError> {
    if !CHANNEL_ID_RANGE.contains(&id) {
        return Err(SandboxError::InvalidChannelId(id));
    }
    if world.channels.by_id.contains_key(&id) {
        return Err(SandboxError::DuplicateChannel(id));
    }
    if let Some(name) = username {
        let key = name.to_lowercase();
        if world.usernames.contains_key(&key) || world.channels.username_taken(&key) {
            return Err(SandboxError::UsernameTaken(name.to_owned()));
        }
        world.channels.usernames.insert(key, id);
    }
    world.channels.by_id.insert(
        id,
        ChannelRecord {
            id,
            access_hash,
            title: title.to_owned(),
            username: username.map(str::to_owned),
            about: about.to_owned(),
            date: world.message_time(),
            subscribers: 0,
            // Telegram channels start their sequence at 1.
            pts: 1,
            messages: BTreeMap::new(),
            events: Vec::new(),
            members: BTreeMap::new(),
        },
    );
    Ok(())
}

/// Makes `account` a member. Returns false if it already was.
fn join(world: &mut World, account: AccountId, channel_id: i64) -> Result<bool, SandboxError> {
    world.account(account)?;
    let channel = world.channels.get_mut(channel_id)?;
    if channel.members.contains_key(&account) {
        return Ok(false);
    }
    // A new member starts from now: what was posted before is history, not updates.
    let seen_pts = channel.pts;
    channel.members.insert(account, Member { seen_pts });
    Ok(true)
}

/// Sends `update` (which moved the channel from `pts - pts_count` to `pts`) to every member
/// with a live connection.
fn publish(
    world: &mut World,
    channel_id: i64,
    update: &tl::enums::Update,
    pts: i32,
    pts_count: i32,
) -> Delivery {
    let members: Vec<AccountId> = world
        .channels
        .by_id
        .get(&channel_id)
        .map(|channel| channel.members.keys().copied().collect())
        .unwrap_or_default();
    let mut delivery = Delivery::default();
    let pushed = Pushed::Updates {
        updates: vec![update.clone()],
        users: Vec::new(),
    };
    for account in members {
        // Never logged in the common box: getChannelDifference replays the channel's log.
        let reached = world.push(account, &pushed).unwrap_or(0);
        if reached > 0 {
            delivery.live += reached;
            if let Some(member) = world
                .channels
                .by_id
                .get_mut(&channel_id)
                .and_then(|channel| channel.members.get_mut(&account))
                // Only a contiguous push brings the account up to date; after a gap the client
                // still has to ask getChannelDifference for what it missed.
                && member.seen_pts == pts - pts_count
            {
                member.seen_pts = pts;
            }
        } else {
            delivery.queued += 1;
        }
    }
    delivery
}

/// A channel update sent to `account` that its connection closed before writing: the member
/// is taken back to before it, so that the next `updates.getDifference` names the channel.
pub(crate) fn undelivered(world: &mut World, account: AccountId, update: &tl::enums::Update) {
    let (channel_id, pts, pts_count) = match update {
        tl::enums::Update::NewChannelMessage(u) => {
            let Some(id) = channel_of_update(update) else {
                return;
            };
            (id, u.pts, u.pts_count)
        }
        tl::enums::Update::EditChannelMessage(u) => {
            let Some(id) = channel_of_update(update) else {
                return;
            };
            (id, u.pts, u.pts_count)
        }
        tl::enums::Update::DeleteChannelMessages(u) => (u.channel_id, u.pts, u.pts_count),
        _ => return,
    };
    if let Some(member) = world
        .channels
        .by_id
        .get_mut(&channel_id)
        .and_then(|channel| channel.members.get_mut(&account))
    {
        member.seen_pts = member.seen_pts.min(pts - pts_count);
    }
}

fn post(
    world: &mut World,
    channel_id: i64,
    text: &str,
    media: Option<MediaKind>,
    author: Option<&str>,
) -> Result<Posted, SandboxError> {
    world.channels.get(channel_id)?;
    world.channels.last_order += 1;
    let order = world.channels.last_order;
    let date = world.message_time();
    let channel = world.channels.get_mut(channel_id)?;
    let id = channel.next_message_id();
    let record = MessageRecord {
        id,
        date,
        order,
        text: text.to_owned(),
        media,
        edit_date: None,
        deleted: false,
        author: author.map(str::to_owned),
    };
    let message = channel.message_tl(&record);
    channel.messages.insert(id, record);
    let pts = channel.log(1, Event::New(id));
    let update = tl::enums::Update::NewChannelMessage(tl::types::UpdateNewChannelMessage {
        message,
        pts,
        pts_count: 1,
    });
    let delivery = publish(world, channel_id, &update, pts, 1);
    Ok(Posted { id, delivery })
}

fn edit(
    world: &mut World,
    channel_id: i64,
    message_id: i32,
    text: &str,
) -> Result<Delivery, SandboxError> {
    let now = world.message_time();
    let channel = world.channels.get_mut(channel_id)?;
    let unknown = SandboxError::UnknownMessage {
        channel_id,
        message_id,
    };
    let record = channel
        .messages
        .get_mut(&message_id)
        .filter(|record| !record.deleted)
        .ok_or(unknown)?;
    record.text = text.to_owned();
    // Never before the post itself, even if the clock went back.
    record.edit_date = Some(now.max(record.date));
    let message = channel
        .messages
        .get(&message_id)
        .map(|record| channel.message_tl(record))
        .unwrap_or_else(|| channel.empty_message(message_id));
    let pts = channel.log(1, Event::Edit(message_id));
    let update = tl::enums::Update::EditChannelMessage(tl::types::UpdateEditChannelMessage {
        message,
        pts,
        pts_count: 1,
    });
    Ok(publish(world, channel_id, &update, pts, 1))
}

fn delete(world: &mut World, channel_id: i64, ids: &[i32]) -> Result<Delivery, SandboxError> {
    let channel = world.channels.get_mut(channel_id)?;
    // All or nothing: a test that names a message that is not there has a bug worth seeing.
    if let Some(&missing) = ids
        .iter()
        .find(|id| channel.messages.get(id).is_none_or(|record| record.deleted))
    {
        return Err(SandboxError::UnknownMessage {
            channel_id,
            message_id: missing,
        });
    }
    let ids: Vec<i32> = ids
        .iter()
        .copied()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    if ids.is_empty() {
        return Ok(Delivery::default());
    }
    for id in &ids {
        if let Some(record) = channel.messages.get_mut(id) {
            record.deleted = true;
        }
    }
    // Telegram moves a channel's pts by one per deleted message.
    let pts_count = i32::try_from(ids.len()).unwrap_or(i32::MAX);
    let pts = channel.log(pts_count, Event::Delete(ids.clone()));
    let update = tl::enums::Update::DeleteChannelMessages(tl::types::UpdateDeleteChannelMessages {
        channel_id,
        messages: ids,
        pts,
        pts_count,
    });
    Ok(publish(world, channel_id, &update, pts, pts_count))
}

// --- Hooks for the rest of the sandbox ------------------------------------------------------

/// The channels that `updates` mention, as `viewer` sees them: the `chats` of an `Updates`
/// (Telegram always sends the peers an update names, and grammers caches them, which it needs
/// to ask `updates.getChannelDifference` later).
pub(crate) fn chats_for(
    world: &World,
    viewer: AccountId,
    updates: &[tl::enums::Update],
) -> Vec<tl::enums::Chat> {
    let ids: BTreeSet<i64> = updates.iter().filter_map(channel_of_update).collect();
    ids.into_iter()
        .filter_map(|id| world.channels.by_id.get(&id))
        .map(|channel| channel.to_tl(viewer))
        .collect()
}

fn channel_of_update(update: &tl::enums::Update) -> Option<i64> {
    let of_message = |message: &tl::enums::Message| match message {
        tl::enums::Message::Message(tl::types::Message {
            peer_id: tl::enums::Peer::Channel(peer),
            ..
        })
        | tl::enums::Message::Service(tl::types::MessageService {
            peer_id: tl::enums::Peer::Channel(peer),
            ..
        })
        | tl::enums::Message::Empty(tl::types::MessageEmpty {
            peer_id: Some(tl::enums::Peer::Channel(peer)),
            ..
        }) => Some(peer.channel_id),
        _ => None,
    };
    match update {
        tl::enums::Update::NewChannelMessage(update) => of_message(&update.message),
        tl::enums::Update::EditChannelMessage(update) => of_message(&update.message),
        tl::enums::Update::DeleteChannelMessages(update) => Some(update.channel_id),
        tl::enums::Update::ChannelTooLong(update) => Some(update.channel_id),
        tl::enums::Update::Channel(update) => Some(update.channel_id),
        _ => None,
    }
}

/// For `updates.getDifference`: an `updateChannelTooLong` for every joined channel that moved
/// past what the account was sent. Its `pts` is where the account left off, which grammers
/// takes as the point to ask `updates.getChannelDifference` from (Telegram documents it as the
/// starting point for a client that has no state for the channel).
pub(crate) fn missed_channels(world: &World, account: AccountId) -> Vec<tl::enums::Update> {
    world
        .channels
        .by_id
        .values()
        .filter_map(|channel| {
            let member = channel.members.get(&account)?;
            (member.seen_pts < channel.pts).then_some(tl::enums::Update::ChannelTooLong(
                tl::types::UpdateChannelTooLong {
                    channel_id: channel.id,
                    pts: Some(member.seen_pts),
                },
            ))
        })
        .collect()
}

/// `contacts.resolveUsername` for a channel's username, if a channel has it.
pub(crate) fn resolve_username(world: &World, account: AccountId, name: &str) -> Option<Answer> {
    let channel = world
        .channels
        .usernames
        .get(name)
        .and_then(|id| world.channels.by_id.get(id))?;
    Some(Answer::ok(&tl::enums::contacts::ResolvedPeer::Peer(
        tl::types::contacts::ResolvedPeer {
            peer: channel.peer(),
            chats: vec![channel.to_tl(account)],
            users: Vec::new(),
        },
    )))
}

/// Whether [`call`] answers this method.
pub(crate) fn handles(id: u32) -> bool {
    matches!(
        id,
        functions::channels::JoinChannel::CONSTRUCTOR_ID
            | functions::channels::LeaveChannel::CONSTRUCTOR_ID
            | functions::messages::CheckChatInvite::CONSTRUCTOR_ID
            | functions::messages::ImportChatInvite::CONSTRUCTOR_ID
            | functions::messages::GetHistory::CONSTRUCTOR_ID
            | functions::channels::GetFullChannel::CONSTRUCTOR_ID
            | functions::channels::GetMessages::CONSTRUCTOR_ID
            | functions::messages::GetDialogs::CONSTRUCTOR_ID
            | functions::updates::GetChannelDifference::CONSTRUCTOR_ID
    )
}

/// Answers one of the methods [`handles`] names.
pub(crate) fn call(
    world: &mut World,
    account: AccountId,
    id: u32,
    query: &[u8],
) -> Result<Answer, tl::deserialize::Error> {
    match id {
        functions::channels::JoinChannel::CONSTRUCTOR_ID => {
            join_channel(world, account, &parse_call(query)?)
        }
        functions::channels::LeaveChannel::CONSTRUCTOR_ID => {
            leave_channel(world, account, &parse_call(query)?)
        }
        functions::messages::CheckChatInvite::CONSTRUCTOR_ID => {
            check_chat_invite(world, account, &parse_call(query)?)
        }
        functions::messages::ImportChatInvite::CONSTRUCTOR_ID => {
            import_chat_invite(world, account, &parse_call(query)?)
        }
        functions::messages::GetHistory::CONSTRUCTOR_ID => {
            get_history(world, account, &parse_call(query)?)
        }
        functions::channels::GetFullChannel::CONSTRUCTOR_ID => {
            get_full_channel(world, account, &parse_call(query)?)
        }
        functions::channels::GetMessages::CONSTRUCTOR_ID => {
            get_messages(world, account, &parse_call(query)?)
        }
        functions::messages::GetDialogs::CONSTRUCTOR_ID => {
            get_dialogs(world, account, &parse_call(query)?)
        }
        functions::updates::GetChannelDifference::CONSTRUCTOR_ID => {
            get_channel_difference(world, account, &parse_call(query)?)
        }
        _ => Ok(Answer::error(400, "METHOD_NOT_IMPLEMENTED")),
    }
}

// --- RPC methods ----------------------------------------------------------------------------

/// What a join answers: `messages.chatInviteJoinResultOk` with the channel in `chats`.
/// `updateChannel` tells the client that its view of the channel changed (it is no longer
/// `left`); it carries no pts.
fn join_result(channel: &ChannelRecord, account: AccountId, joined_now: bool) -> Answer {
    let updates = if joined_now {
        vec![tl::enums::Update::Channel(tl::types::UpdateChannel {
            channel_id: channel.id,
        })]
    } else {
        Vec::new()
    };
    Answer::ok(&tl::enums::messages::ChatInviteJoinResult::Ok(
        tl::types::messages::ChatInviteJoinResultOk {
            updates: tl::enums::Updates::Updates(tl::types::Updates {
                updates,
                users: Vec::new(),
                chats: vec![channel.to_tl(account)],
                date: unix_now(),
                // Outside the common sequence, like every update the sandbox sends.
                seq: 0,
            }),
        },
    ))
}

/// `channels.joinChannel`. Joining a channel again just answers it (Telegram's
/// `USER_ALREADY_PARTICIPANT` is for invites); a private channel needs an invite.
fn join_channel(
    world: &mut World,
    account: AccountId,
    request: &functions::channels::JoinChannel,
) -> Result<Answer, tl::deserialize::Error> {
    let Some(channel) = world.channels.lookup(&request.channel) else {
        return Ok(Answer::error(400, "CHANNEL_INVALID"));
    };
    if !channel.readable_by(account) {
        return Ok(Answer::error(400, "CHANNEL_PRIVATE"));
    }
    let channel_id = channel.id;
    let joined_now = match join(world, account, channel_id) {
        Ok(joined_now) => joined_now,
        Err(_) => return Ok(Answer::error(400, "CHANNEL_INVALID")),
    };
    Ok(match world.channels.by_id.get(&channel_id) {
        Some(channel) => join_result(channel, account, joined_now),
        None => Answer::error(400, "CHANNEL_INVALID"),
    })
}

/// `channels.leaveChannel`: the account stops being a member (and stops getting its
/// updates). Leaving a channel one is not in is `USER_NOT_PARTICIPANT`, as on Telegram.
fn leave_channel(
    world: &mut World,
    account: AccountId,
    request: &functions::channels::LeaveChannel,
) -> Result<Answer, tl::deserialize::Error> {
    let Some(channel) = world.channels.lookup(&request.channel) else {
        return Ok(Answer::error(400, "CHANNEL_INVALID"));
    };
    let channel_id = channel.id;
    let Ok(channel) = world.channels.get_mut(channel_id) else {
        return Ok(Answer::error(400, "CHANNEL_INVALID"));
    };
    if channel.members.remove(&account).is_none() {
        return Ok(Answer::error(400, "USER_NOT_PARTICIPANT"));
    }
    Ok(Answer::ok(&tl::enums::Updates::Updates(
        tl::types::Updates {
            updates: vec![tl::enums::Update::Channel(tl::types::UpdateChannel {
                channel_id,
            })],
            users: Vec::new(),
            chats: Vec::new(),
            date: unix_now(),
            seq: 0,
        },
    )))
}

fn invited_channel<'w>(world: &'w World, hash: &str) -> Option<&'w ChannelRecord> {
    world
        .channels
        .invites
        .get(hash)
        .and_then(|id| world.channels.by_id.get(id))
}

/// `messages.checkChatInvite`: a preview of the channel, or `chatInviteAlready` for a member.
fn check_chat_invite(
    world: &World,
    account: AccountId,
    request: &functions::messages::CheckChatInvite,
) -> Result<Answer, tl::deserialize::Error> {
    let Some(channel) = invited_channel(world, &request.hash) else {
        return Ok(Answer::error(400, "INVITE_HASH_INVALID"));
    };
    if channel.members.contains_key(&account) {
        return Ok(Answer::ok(&tl::enums::ChatInvite::Already(
            tl::types::ChatInviteAlready {
                chat: channel.to_tl(account),
            },
        )));
    }
    Ok(Answer::ok(&tl::enums::ChatInvite::Invite(
        tl::types::ChatInvite {
            channel: true,
            broadcast: true,
            public: channel.is_public(),
            megagroup: false,
            request_needed: false,
            verified: false,
            scam: false,
            fake: false,
            can_refulfill_subscription: false,
            title: channel.title.clone(),
            about: Some(channel.about.clone()),
            photo: tl::enums::Photo::Empty(tl::types::PhotoEmpty { id: 0 }),
            participants_count: channel.participants_count(),
            participants: None,
            color: 0,
            subscription_pricing: None,
            subscription_form_id: None,
            bot_verification: None,
        },
    )))
}

/// `messages.importChatInvite`: joins; `USER_ALREADY_PARTICIPANT` for a member.
fn import_chat_invite(
    world: &mut World,
    account: AccountId,
    request: &functions::messages::ImportChatInvite,
) -> Result<Answer, tl::deserialize::Error> {
    let Some(channel_id) = invited_channel(world, &request.hash).map(|channel| channel.id) else {
        return Ok(Answer::error(400, "INVITE_HASH_INVALID"));
    };
    match join(world, account, channel_id) {
        Ok(true) => {}
        Ok(false) => return Ok(Answer::error(400, "USER_ALREADY_PARTICIPANT")),
        Err(_) => return Ok(Answer::error(400, "INVITE_HASH_INVALID")),
    }
    Ok(match world.channels.by_id.get(&channel_id) {
        Some(channel) => join_result(channel, account, true),
        None => Answer::error(400, "INVITE_HASH_INVALID"),
    })
}

/// A channel the account may read, or the error Telegram gives.
fn readable_channel<'w>(
    world: &'w World,
    account: AccountId,
    input: &tl::enums::InputChannel,
) -> Result<&'w ChannelRecord, Answer> {
    let channel = world
        .channels
        .lookup(input)
        .ok_or_else(|| Answer::error(400, "CHANNEL_INVALID"))?;
    if !channel.readable_by(account) {
        return Err(Answer::error(400, "CHANNEL_PRIVATE"));
    }
    Ok(channel)
}

/// `messages.getHistory`, newest first, as Telegram pages it: messages with `min_id < id <
/// max_id` (each bound only when non-zero), starting at the first one older than `offset_id`
/// (or than `offset_date`; the newest when both are 0), shifted by `add_offset` (negative
/// reaches newer messages), at most `limit` of them.
fn get_history(
    world: &World,
    account: AccountId,
    request: &functions::messages::GetHistory,
) -> Result<Answer, tl::deserialize::Error> {
    let Some(channel) = world.channels.lookup_peer(&request.peer) else {
        return Ok(history_of_non_channel(world, &request.peer));
    };
    if !channel.readable_by(account) {
        return Ok(Answer::error(400, "CHANNEL_PRIVATE"));
    }
    let matching: Vec<&MessageRecord> = channel
        .visible_newest_first()
        .filter(|message| request.min_id == 0 || message.id > request.min_id)
        .filter(|message| request.max_id == 0 || message.id < request.max_id)
        .collect();
    let start = if request.offset_id != 0 {
        matching
            .iter()
            .position(|message| message.id < request.offset_id)
            .unwrap_or(matching.len())
    } else if request.offset_date != 0 {
        matching
            .iter()
            .position(|message| message.date < request.offset_date)
            .unwrap_or(matching.len())
    } else {
        0
    };
    let len = i64::try_from(matching.len()).unwrap_or(i64::MAX);
    let from = i64::try_from(start)
        .unwrap_or(i64::MAX)
        .saturating_add(i64::from(request.add_offset));
    let to = from.saturating_add(i64::from(request.limit.clamp(0, HISTORY_LIMIT)));
    let (from, to) = (from.clamp(0, len), to.clamp(0, len));
    let page: Vec<tl::enums::Message> = matching
        .get(usize::try_from(from).unwrap_or(0)..usize::try_from(to).unwrap_or(0))
        .unwrap_or_default()
        .iter()
        .map(|message| channel.message_tl(message))
        .collect();
    Ok(Answer::ok(&tl::enums::messages::Messages::ChannelMessages(
        tl::types::messages::ChannelMessages {
            inexact: false,
            pts: channel.pts,
            count: i32::try_from(matching.len()).unwrap_or(i32::MAX),
            offset_id_offset: None,
            messages: page,
            topics: Vec::new(),
            chats: vec![channel.to_tl(account)],
            users: Vec::new(),
        },
    )))
}

/// The sandbox has no private chats or groups: a known user's history is empty.
fn history_of_non_channel(world: &World, peer: &tl::enums::InputPeer) -> Answer {
    let known_user = match peer {
        tl::enums::InputPeer::PeerSelf => true,
        tl::enums::InputPeer::User(user) => world
            .users
            .get(&user.user_id)
            .is_some_and(|record| record.access_hash == user.access_hash),
        tl::enums::InputPeer::Channel(_) => {
            return Answer::error(400, "CHANNEL_INVALID");
        }
        _ => false,
    };
    if !known_user {
        return Answer::error(400, "PEER_ID_INVALID");
    }
    Answer::ok(&tl::enums::messages::Messages::Messages(
        tl::types::messages::Messages {
            messages: Vec::new(),
            topics: Vec::new(),
            chats: Vec::new(),
            users: Vec::new(),
        },
    ))
}

fn empty_notify_settings() -> tl::enums::PeerNotifySettings {
    tl::enums::PeerNotifySettings::Settings(tl::types::PeerNotifySettings {
        show_previews: None,
        silent: None,
        mute_until: None,
        ios_sound: None,
        android_sound: None,
        other_sound: None,
        stories_muted: None,
        stories_hide_sender: None,
        stories_ios_sound: None,
        stories_android_sound: None,
        stories_other_sound: None,
    })
}

/// `channels.getFullChannel`: about, participants count and pts.
fn get_full_channel(
    world: &World,
    account: AccountId,
    request: &functions::channels::GetFullChannel,
) -> Result<Answer, tl::deserialize::Error> {
    let channel = match readable_channel(world, account, &request.channel) {
        Ok(channel) => channel,
        Err(answer) => return Ok(answer),
    };
    let full = tl::types::ChannelFull {
        can_view_participants: false,
        can_set_username: false,
        can_set_stickers: false,
        hidden_prehistory: false,
        can_set_location: false,
        has_scheduled: false,
        can_view_stats: false,
        blocked: false,
        can_delete_channel: false,
        antispam: false,
        participants_hidden: false,
        translations_disabled: false,
        stories_pinned_available: false,
        view_forum_as_messages: false,
        restricted_sponsored: false,
        can_view_revenue: false,
        paid_media_allowed: false,
        can_view_stars_revenue: false,
        paid_reactions_available: false,
        stargifts_available: false,
        paid_messages_available: false,
        has_welcome_messages: false,
        id: channel.id,
        about: channel.about.clone(),
        participants_count: Some(channel.participants_count()),
        admins_count: None,
        // `kicked_count` and `banned_count` share flag bit 2: both stay None.
        kicked_count: None,
        banned_count: None,
        online_count: None,
        read_inbox_max_id: channel.top_message().map_or(0, |message| message.id),
        read_outbox_max_id: 0,
        unread_count: 0,
        chat_photo: tl::enums::Photo::Empty(tl::types::PhotoEmpty { id: 0 }),
        notify_settings: empty_notify_settings(),
        exported_invite: None,
        bot_info: Vec::new(),
        migrated_from_chat_id: None,
        migrated_from_max_id: None,
        pinned_msg_id: None,
        stickerset: None,
        available_min_id: None,
        folder_id: None,
        linked_chat_id: None,
        location: None,
        slowmode_seconds: None,
        slowmode_next_send_date: None,
        stats_dc: None,
        pts: channel.pts,
        call: None,
        ttl_period: None,
        pending_suggestions: None,
        groupcall_default_join_as: None,
        theme_emoticon: None,
        // `requests_pending` and `recent_requesters` share flag bit 28, likewise.
        requests_pending: None,
        recent_requesters: None,
        default_send_as: None,
        available_reactions: None,
        reactions_limit: None,
        stories: None,
        wallpaper: None,
        boosts_applied: None,
        boosts_unrestrict: None,
        emojiset: None,
        bot_verification: None,
        stargifts_count: None,
        send_paid_messages_stars: None,
        main_tab: None,
        guard_bot_id: None,
    };
    Ok(Answer::ok(&tl::enums::messages::ChatFull::Full(
        tl::types::messages::ChatFull {
            full_chat: tl::enums::ChatFull::ChannelFull(full),
            chats: vec![channel.to_tl(account)],
            users: Vec::new(),
        },
    )))
}

/// `channels.getMessages`: the messages asked for by id, in the order asked, `messageEmpty`
/// for ids that do not exist (any more), as Telegram answers.
fn get_messages(
    world: &World,
    account: AccountId,
    request: &functions::channels::GetMessages,
) -> Result<Answer, tl::deserialize::Error> {
    let channel = match readable_channel(world, account, &request.channel) {
        Ok(channel) => channel,
        Err(answer) => return Ok(answer),
    };
    let messages: Vec<tl::enums::Message> = request
        .id
        .iter()
        .filter_map(|input| match input {
            tl::enums::InputMessage::Id(id) => Some(id.id),
            // Replies, pins and callback queries do not exist in the sandbox.
            _ => None,
        })
        .map(|id| match channel.messages.get(&id) {
            Some(message) => channel.message_tl(message),
            None => channel.empty_message(id),
        })
        .collect();
    Ok(Answer::ok(&tl::enums::messages::Messages::ChannelMessages(
        tl::types::messages::ChannelMessages {
            inexact: false,
            pts: channel.pts,
            count: i32::try_from(messages.len()).unwrap_or(i32::MAX),
            offset_id_offset: None,
            messages,
            topics: Vec::new(),
            chats: vec![channel.to_tl(account)],
            users: Vec::new(),
        },
    )))
}

/// `messages.getDialogs`: the channels the account joined, most recent top message first
/// (channels without posts sort by creation date). Paging follows Telegram: dialogs after
/// `offset_peer` when it is one of them, else those older than `offset_date`.
fn get_dialogs(
    world: &World,
    account: AccountId,
    request: &functions::messages::GetDialogs,
) -> Result<Answer, tl::deserialize::Error> {
    // Folder 1 is the archive; nothing is archived in the sandbox.
    let mut joined: Vec<&ChannelRecord> = if request.folder_id.is_some_and(|folder| folder != 0) {
        Vec::new()
    } else {
        world
            .channels
            .by_id
            .values()
            .filter(|channel| channel.members.contains_key(&account))
            .collect()
    };
    let sort_key = |channel: &ChannelRecord| {
        let top = channel.top_message();
        (
            top.map_or(channel.date, |message| message.date),
            top.map_or(0, |message| message.order),
            top.map_or(0, |message| message.id),
            channel.id,
        )
    };
    joined.sort_by_key(|channel| std::cmp::Reverse(sort_key(channel)));
    let total = joined.len();

    let after_peer = world
        .channels
        .lookup_peer(&request.offset_peer)
        .and_then(|peer| joined.iter().position(|channel| channel.id == peer.id))
        .map(|index| index + 1);
    let start = after_peer.unwrap_or_else(|| {
        if request.offset_date == 0 {
            0
        } else {
            joined
                .iter()
                .position(|channel| {
                    let (date, _, id, _) = sort_key(channel);
                    (date, id) < (request.offset_date, request.offset_id)
                })
                .unwrap_or(total)
        }
    });
    let limit = usize::try_from(request.limit.clamp(1, DIALOGS_LIMIT)).unwrap_or(1);
    let page: Vec<&ChannelRecord> = joined.iter().skip(start).take(limit).copied().collect();

    let dialogs = page
        .iter()
        .map(|channel| {
            let top = channel.top_message().map_or(0, |message| message.id);
            tl::enums::Dialog::Dialog(tl::types::Dialog {
                pinned: false,
                unread_mark: false,
                view_forum_as_messages: false,
                peer: channel.peer(),
                top_message: top,
                read_inbox_max_id: top,
                read_outbox_max_id: 0,
                unread_count: 0,
                unread_mentions_count: 0,
                unread_reactions_count: 0,
                unread_poll_votes_count: 0,
                notify_settings: empty_notify_settings(),
                pts: Some(channel.pts),
                draft: None,
                folder_id: None,
                ttl_period: None,
            })
        })
        .collect();
    let messages = page
        .iter()
        .filter_map(|channel| {
            channel
                .top_message()
                .map(|message| channel.message_tl(message))
        })
        .collect();
    let chats = page.iter().map(|channel| channel.to_tl(account)).collect();
    let dialogs = if start == 0 && page.len() == total {
        tl::enums::messages::Dialogs::Dialogs(tl::types::messages::Dialogs {
            dialogs,
            messages,
            chats,
            users: Vec::new(),
        })
    } else {
        tl::enums::messages::Dialogs::Slice(tl::types::messages::DialogsSlice {
            count: i32::try_from(total).unwrap_or(i32::MAX),
            dialogs,
            messages,
            chats,
            users: Vec::new(),
        })
    };
    Ok(Answer::ok(&dialogs))
}

/// `updates.getChannelDifference`: what happened in the channel after `pts`, up to `limit`
/// events. New posts come as `new_messages` (as they are now); edits of older posts and
/// deletions as `other_updates` with their pts. `channelDifferenceEmpty` when up to date.
fn get_channel_difference(
    world: &mut World,
    account: AccountId,
    request: &functions::updates::GetChannelDifference,
) -> Result<Answer, tl::deserialize::Error> {
    let channel = match readable_channel(world, account, &request.channel) {
        Ok(channel) => channel,
        Err(answer) => return Ok(answer),
    };
    if request.pts <= 0 {
        return Ok(Answer::error(400, "PERSISTENT_TIMESTAMP_INVALID"));
    }
    let limit = usize::try_from(request.limit.max(1)).unwrap_or(1);
    let pending: Vec<&LoggedEvent> = channel
        .events
        .iter()
        .filter(|event| event.pts > request.pts)
        .collect();
    let window = &pending[..pending.len().min(limit)];
    let is_final = window.len() == pending.len();
    let pts = window.last().map_or(channel.pts, |event| event.pts);
    let channel_id = channel.id;

    let answer = if window.is_empty() {
        tl::enums::updates::ChannelDifference::Empty(tl::types::updates::ChannelDifferenceEmpty {
            r#final: true,
            pts: channel.pts,
            timeout: None,
        })
    } else {
        let created: BTreeSet<i32> = window
            .iter()
            .filter_map(|event| match event.event {
                Event::New(id) => Some(id),
                _ => None,
            })
            .collect();
        let new_messages = created
            .iter()
            .filter_map(|id| channel.messages.get(id))
            .filter(|message| !message.deleted)
            .map(|message| channel.message_tl(message))
            .collect();
        let other_updates = window
            .iter()
            .filter_map(|event| match &event.event {
                Event::New(_) => None,
                // An edit of a post made within the window is already in `new_messages`.
                Event::Edit(id) if created.contains(id) => None,
                Event::Edit(id) => {
                    let message = channel.messages.get(id)?;
                    (!message.deleted).then(|| {
                        tl::enums::Update::EditChannelMessage(tl::types::UpdateEditChannelMessage {
                            message: channel.message_tl(message),
                            pts: event.pts,
                            pts_count: event.pts_count,
                        })
                    })
                }
                Event::Delete(ids) => {
                    let seen: Vec<i32> = ids
                        .iter()
                        .copied()
                        .filter(|id| !created.contains(id))
                        .collect();
                    (!seen.is_empty()).then_some(tl::enums::Update::DeleteChannelMessages(
                        tl::types::UpdateDeleteChannelMessages {
                            channel_id,
                            messages: seen,
                            pts: event.pts,
                            pts_count: event.pts_count,
                        },
                    ))
                }
            })
            .collect();
        tl::enums::updates::ChannelDifference::Difference(tl::types::updates::ChannelDifference {
            r#final: is_final,
            pts,
            timeout: None,
            new_messages,
            other_updates,
            chats: vec![channel.to_tl(account)],
            users: Vec::new(),
        })
    };
    let answered_pts = match &answer {
        tl::enums::updates::ChannelDifference::Empty(empty) => empty.pts,
        _ => pts,
    };
    if let Some(member) = world
        .channels
        .by_id
        .get_mut(&channel_id)
        .and_then(|channel| channel.members.get_mut(&account))
    {
        member.seen_pts = member.seen_pts.max(answered_pts);
    }
    Ok(Answer::ok(&answer))
}

// --- Control API ----------------------------------------------------------------------------

/// Channels: creating them, joining accounts, and posting, editing and deleting, each of which
/// is pushed to the members (see the module documentation of `channels`).
impl Sandbox {
    /// Adds a broadcast channel. With a `username` it is public (anyone may read it and join it
    /// with `channels.joinChannel`); without one it is private, joined by invite only (see
    /// [`Self::add_invite`]). Channel ids must be in Telegram's range (1..=997852516352);
    /// usernames are unique among users and channels, case-insensitively.
    pub fn add_channel(
        &self,
        id: i64,
        access_hash: i64,
        username: Option<&str>,
        title: &str,
        about: &str,
    ) -> Result<(), SandboxError> {
        add_channel(
            &mut self.shared.world(),
            id,
            access_hash,
            username,
            title,
            about,
        )
    }

    /// Adds an invite link `https://t.me/+<hash>` to the channel, for
    /// `messages.checkChatInvite` / `messages.importChatInvite`.
    pub fn add_invite(&self, channel_id: i64, hash: &str) -> Result<(), SandboxError> {
        let mut world = self.shared.world();
        world.channels.get(channel_id)?;
        if world.channels.invites.contains_key(hash) {
            return Err(SandboxError::InviteTaken(hash.to_owned()));
        }
        world.channels.invites.insert(hash.to_owned(), channel_id);
        Ok(())
    }

    /// Sets how many subscribers the channel has besides the sandbox accounts that joined it
    /// (`participants_count` is the sum).
    pub fn set_channel_subscribers(&self, channel_id: i64, count: i32) -> Result<(), SandboxError> {
        self.shared
            .world()
            .channels
            .get_mut(channel_id)?
            .subscribers = count.max(0);
        Ok(())
    }

    /// Makes the account a member, as if it had joined from another device: no update is sent.
    /// Joining twice is a no-op.
    pub fn join(&self, account: AccountId, channel_id: i64) -> Result<(), SandboxError> {
        join(&mut self.shared.world(), account, channel_id).map(|_| ())
    }

    /// Whether the account is a member of the channel (false for unknown ones).
    pub fn joined(&self, account: AccountId, channel_id: i64) -> bool {
        self.shared
            .world()
            .channels
            .by_id
            .get(&channel_id)
            .is_some_and(|channel| channel.members.contains_key(&account))
    }

    /// Posts a text message. The channel's pts moves by one and every member is sent an
    /// `updateNewChannelMessage` over its live connection; members without one learn it from
    /// `updates.getChannelDifference` (counted as `queued`).
    pub fn post(&self, channel_id: i64, text: &str) -> Result<Posted, SandboxError> {
        post(&mut self.shared.world(), channel_id, text, None, None)
    }

    /// Like [`Self::post`], signed by `author` (`post_author`, as channels that sign posts do).
    pub fn post_signed(
        &self,
        channel_id: i64,
        text: &str,
        author: &str,
    ) -> Result<Posted, SandboxError> {
        post(
            &mut self.shared.world(),
            channel_id,
            text,
            None,
            Some(author),
        )
    }

    /// Like [`Self::post`], with a photo or a file; `text` is the caption.
    pub fn post_media(
        &self,
        channel_id: i64,
        text: &str,
        media: MediaKind,
    ) -> Result<Posted, SandboxError> {
        post(
            &mut self.shared.world(),
            channel_id,
            text,
            Some(media),
            None,
        )
    }

    /// Replaces a post's text (its media stays) and sets its `edit_date`; members are sent an
    /// `updateEditChannelMessage` like [`Self::post`] sends new ones.
    pub fn edit(
        &self,
        channel_id: i64,
        message_id: i32,
        text: &str,
    ) -> Result<Delivery, SandboxError> {
        edit(&mut self.shared.world(), channel_id, message_id, text)
    }

    /// Deletes posts; members are sent one `updateDeleteChannelMessages` (pts moves by the
    /// number of posts). Every id must name a post that exists, or nothing is deleted.
    pub fn delete(&self, channel_id: i64, ids: &[i32]) -> Result<Delivery, SandboxError> {
        delete(&mut self.shared.world(), channel_id, ids)
    }

    /// The channel's current pts.
    pub fn channel_pts(&self, channel_id: i64) -> Result<i32, SandboxError> {
        Ok(self.shared.world().channels.get(channel_id)?.pts)
    }

    /// How many posts the channel shows (deleted ones are not counted).
    pub fn channel_posts(&self, channel_id: i64) -> Result<usize, SandboxError> {
        Ok(self
            .shared
            .world()
            .channels
            .get(channel_id)?
            .visible_newest_first()
            .count())
    }
}

#[cfg(test)]
mod tests {
    use grammers_tl_types::Deserializable;

    use super::*;
    use crate::crypto::{ServerKey, random_key};

    const CHANNEL: i64 = 1_500_000_000;

    fn world_with_channel() -> (World, AccountId) {
        let mut world = World::default();
        let account = world
            .add_account(1, 1, None, "Me", ServerKey::new(random_key()))
            .expect("account");
        add_channel(&mut world, CHANNEL, 7, Some("news"), "News", "About").expect("channel");
        (world, account)
    }

    fn input_peer() -> tl::enums::InputPeer {
        tl::enums::InputPeer::Channel(tl::types::InputPeerChannel {
            channel_id: CHANNEL,
            access_hash: 7,
        })
    }

    fn history(
        world: &World,
        account: AccountId,
        request: functions::messages::GetHistory,
    ) -> Vec<i32> {
        let Ok(Answer::Result(bytes)) = get_history(world, account, &request) else {
            panic!("getHistory failed");
        };
        let tl::enums::messages::Messages::ChannelMessages(answer) =
            tl::enums::messages::Messages::from_bytes(&bytes).expect("messages")
        else {
            panic!("expected channelMessages");
        };
        answer.messages.iter().map(tl::enums::Message::id).collect()
    }

    fn request(
        offset_id: i32,
        add_offset: i32,
        limit: i32,
        max_id: i32,
        min_id: i32,
    ) -> functions::messages::GetHistory {
        functions::messages::GetHistory {
            peer: input_peer(),
            offset_id,
            offset_date: 0,
            add_offset,
            limit,
            max_id,
            min_id,
            hash: 0,
        }
    }

    #[test]
    fn history_pages_like_telegram() {
        let (mut world, account) = world_with_channel();
        for i in 1..=10 {
            post(&mut world, CHANNEL, &format!("post {i}"), None, None).expect("post");
        }
        delete(&mut world, CHANNEL, &[5]).expect("delete");
        // Newest first; deleted posts are absent.
        assert_eq!(
            history(&world, account, request(0, 0, 4, 0, 0)),
            [10, 9, 8, 7]
        );
        // Older than offset_id.
        assert_eq!(history(&world, account, request(7, 0, 3, 0, 0)), [6, 4, 3]);
        // The oldest three after id 3: offset just above, add_offset = -limit, min_id.
        assert_eq!(history(&world, account, request(4, -3, 3, 0, 3)), [7, 6, 4]);
        assert_eq!(history(&world, account, request(1, -3, 3, 0, 0)), [3, 2, 1]);
        // max_id and min_id bound the result.
        assert_eq!(
            history(&world, account, request(0, 0, 100, 8, 2)),
            [7, 6, 4, 3]
        );
        assert!(history(&world, account, request(0, 0, 100, 0, 10)).is_empty());
    }

    #[test]
    fn a_member_without_a_connection_is_hinted_to_ask_for_the_channel_difference() {
        let (mut world, account) = world_with_channel();
        join(&mut world, account, CHANNEL).expect("join");
        assert!(missed_channels(&world, account).is_empty());
        let delivery = post(&mut world, CHANNEL, "hello", None, None)
            .expect("post")
            .delivery;
        assert_eq!((delivery.live, delivery.queued), (0, 1));
        let hints = missed_channels(&world, account);
        assert_eq!(
            hints,
            [tl::enums::Update::ChannelTooLong(
                tl::types::UpdateChannelTooLong {
                    channel_id: CHANNEL,
                    pts: Some(1),
                }
            )]
        );
        assert_eq!(chats_for(&world, account, &hints).len(), 1);
        // Nothing went to the account's own update log.
        assert!(world.account(account).expect("account").log.is_empty());
    }

    #[test]
    fn control_errors_are_specific() {
        let (mut world, _) = world_with_channel();
        assert!(matches!(
            add_channel(&mut world, CHANNEL, 1, None, "Again", ""),
            Err(SandboxError::DuplicateChannel(CHANNEL))
        ));
        assert!(matches!(
            add_channel(&mut world, 2_000_000_000, 1, Some("NEWS"), "Clash", ""),
            Err(SandboxError::UsernameTaken(_))
        ));
        assert!(matches!(
            add_channel(&mut world, 0, 1, None, "Zero", ""),
            Err(SandboxError::InvalidChannelId(0))
        ));
        assert!(matches!(
            edit(&mut world, CHANNEL, 1, "x"),
            Err(SandboxError::UnknownMessage { message_id: 1, .. })
        ));
        assert!(matches!(
            post(&mut world, 99, "x", None, None),
            Err(SandboxError::UnknownChannel(99))
        ));
    }
}
