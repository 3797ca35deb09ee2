//! Seed 004 (the Mini App's Bun WebSocket server): what its clients read, built from ours. Pure.
//!
//! - The `status` frame's `data` carries the seed's fields ([`StatusFields`]: `uptime` in
//!   seconds, `activeUsers`, `messagesProcessed`, `alertsSent`; `running` is ours already) beside
//!   our own.
//! - `live_out` frames ([`LiveOuts`]) say what is happening now, in the seed's shape
//!   (`{"type": "live_out", "data": {"id", "type", "name", ..., "expiresAt"}}`, `expiresAt` in
//!   milliseconds since the epoch on the service clock, like every time the service shows):
//!   - a tracked person came online (`user_online`): `type` `user-online`, `id`
//!     `presence:<tracked user id>`, live until the session ends. While the session is open its
//!     `expiresAt` lies at least [`ONLINE_AHEAD`] ahead and is sent again (same `id`) before it
//!     passes; when the gap rule closes the session (`session_closed`) a last frame with the same
//!     `id` carries `endedAt` and `expiresAt` = the session's end, which has passed.
//!   - a new channel post (`new_message`): `type` `channel-post`, `id`
//!     `post:<channel id>:<message id>`, live for [`POST_LIVE_FOR`] after the post's date.

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use serde_json::{Map, Value, json};

use tgwatch_core::events::{Event, EventType};

/// How far ahead of now an open session's `expiresAt` is set.
pub const ONLINE_AHEAD: Duration = Duration::seconds(60);
/// An open session's item is sent again once its `expiresAt` is this close (or past).
const REFRESH_WITHIN: Duration = Duration::seconds(30);
/// How long a channel post is "live" after its date.
pub const POST_LIVE_FOR: Duration = Duration::minutes(15);
/// Characters of a post's text in its `name`.
const NAME_TEXT_CHARS: usize = 80;

/// The seed's status fields; serialised in camelCase beside ours.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusFields {
    /// Seconds since the service started (ours: `uptime_seconds`).
    pub uptime: u64,
    /// Mini App users connected now: clients signed in with `init_data` (admins connected with
    /// the token or a ticket are not users of the Mini App).
    pub active_users: u64,
    /// Channel message events (new, edited, deleted) since start (ours: `messages_processed`).
    pub messages_processed: u64,
    /// `alert` and `account_banned` events since start (ours: `alerts_sent`).
    pub alerts_sent: u64,
}

/// The `live_out` items of open sessions, to send again while they last and to new clients.
#[derive(Debug, Default)]
pub struct LiveOuts {
    /// Item id -> the item's `data` (its `expiresAt` kept in step with `expires_at`).
    open: HashMap<String, (Map<String, Value>, DateTime<Utc>)>,
}

impl LiveOuts {
    /// The `live_out` frame `event` makes, if any; remembers a session that opened and forgets
    /// one that closed.
    pub fn on_event(&mut self, event: &Event, now: DateTime<Utc>) -> Option<String> {
        let body: Value = serde_json::from_str(&event.body).ok()?;
        let data = body.get("data")?;
        match event.event_type {
            EventType::UserOnline => {
                let (id, mut item) = person_item(data)?;
                let session = data.get("session")?;
                let presumed_end = time(session.get("last_online_at"))?;
                let expires_at = presumed_end.max(now + ONLINE_AHEAD);
                item.insert("name".into(), json!(format!("{} is online", who(data))));
                item.insert("expiresAt".into(), json!(expires_at.timestamp_millis()));
                let frame = frame(&item);
                self.open.insert(id, (item, expires_at));
                Some(frame)
            }
            EventType::SessionClosed => {
                let (id, mut item) = person_item(data)?;
                self.open.remove(&id);
                let ended_at = time(data.get("session")?.get("ended_at"))?;
                item.insert("name".into(), json!(format!("{} was online", who(data))));
                item.insert("endedAt".into(), json!(ended_at.timestamp_millis()));
                item.insert("expiresAt".into(), json!(ended_at.timestamp_millis()));
                Some(frame(&item))
            }
            EventType::NewMessage => Some(frame(&post_item(data)?)),
            _ => None,
        }
    }

    /// The frames of open sessions whose `expiresAt` is near: each moved [`ONLINE_AHEAD`]
    /// ahead of `now`.
    pub fn refresh(&mut self, now: DateTime<Utc>) -> Vec<String> {
        self.open
            .values_mut()
            .filter(|(_, expires_at)| *expires_at - now <= REFRESH_WITHIN)
            .map(|(item, expires_at)| {
                *expires_at = now + ONLINE_AHEAD;
                item.insert("expiresAt".into(), json!(expires_at.timestamp_millis()));
                frame(item)
            })
            .collect()
    }

    /// Every open session's frame, for a client that just connected.
    pub fn current(&self) -> Vec<String> {
        self.open.values().map(|(item, _)| frame(item)).collect()
    }
}

fn frame(item: &Map<String, Value>) -> String {
    json!({ "type": "live_out", "data": item }).to_string()
}

fn time(value: Option<&Value>) -> Option<DateTime<Utc>> {
    value?.as_str()?.parse().ok()
}

/// `@username`, else the Telegram user id.
fn who(data: &Value) -> String {
    let user = &data["user"];
    match user["username"].as_str() {
        Some(username) => format!("@{username}"),
        None => format!("user {}", user["telegram_user_id"]),
    }
}

/// The id and common fields of a presence event's item.
fn person_item(data: &Value) -> Option<(String, Map<String, Value>)> {
    let user = data.get("user")?;
    let tracked_user_id = user.get("tracked_user_id")?.as_str()?;
    let session = data.get("session")?;
    let id = format!("presence:{tracked_user_id}");
    let mut item = Map::new();
    item.insert("id".into(), json!(id));
    item.insert("type".into(), json!("user-online"));
    item.insert("trackedUserId".into(), json!(tracked_user_id));
    item.insert("telegramUserId".into(), user["telegram_user_id"].clone());
    item.insert("username".into(), user["username"].clone());
    item.insert(
        "startedAt".into(),
        json!(time(session.get("started_at"))?.timestamp_millis()),
    );
    Some((id, item))
}

/// A new post's item.
fn post_item(data: &Value) -> Option<Map<String, Value>> {
    let channel_id = data.get("channel_id")?.as_str()?;
    let message_id = data.get("message_id")?.as_i64()?;
    let date = time(data.get("date"))?;
    let text = data["text"].as_str().unwrap_or_default();
    let channel = match data["channel_username"].as_str() {
        Some(username) => format!("@{username}"),
        None => format!("channel {}", data["telegram_channel_id"]),
    };
    let excerpt: String = text.chars().take(NAME_TEXT_CHARS).collect();
    let name = if excerpt.is_empty() {
        format!("{channel}: new post")
    } else {
        format!("{channel}: {excerpt}")
    };
    let mut item = Map::new();
    item.insert(
        "id".into(),
        json!(format!("post:{channel_id}:{message_id}")),
    );
    item.insert("type".into(), json!("channel-post"));
    item.insert("name".into(), json!(name));
    item.insert("channelId".into(), json!(channel_id));
    item.insert("channelUsername".into(), data["channel_username"].clone());
    item.insert("messageId".into(), json!(message_id));
    item.insert("text".into(), json!(text));
    item.insert("postedAt".into(), json!(date.timestamp_millis()));
    item.insert(
        "expiresAt".into(),
        json!((date + POST_LIVE_FOR).timestamp_millis()),
    );
    Some(item)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_767_225_600 + seconds, 0).unwrap_or_default()
    }

    fn presence(event_type: EventType, ended_at: Option<DateTime<Utc>>) -> Event {
        Event::new(
            event_type,
            at(0),
            json!({
                "user": {"tracked_user_id": "0190c0de-0000-7000-8000-000000000001",
                         "telegram_user_id": 7, "username": "alice_w"},
                "session": {"started_at": at(0), "last_online_at": at(300), "ended_at": ended_at,
                            "duration_seconds": 300},
                "observed_at": at(0),
            }),
        )
    }

    fn data(frame: &str) -> Value {
        let frame: Value = serde_json::from_str(frame).expect("json");
        assert_eq!(frame["type"], "live_out");
        frame["data"].clone()
    }

    #[test]
    fn the_status_fields_have_the_seeds_names() {
        let fields = StatusFields {
            uptime: 103_245,
            active_users: 842,
            messages_processed: 12_984,
            alerts_sent: 437,
        };
        assert_eq!(
            serde_json::to_value(&fields).expect("json"),
            json!({"uptime": 103_245, "activeUsers": 842, "messagesProcessed": 12_984, "alertsSent": 437})
        );
    }

    #[test]
    fn a_person_online_is_live_until_the_session_ends() {
        let mut outs = LiveOuts::default();
        let opened = data(
            &outs
                .on_event(&presence(EventType::UserOnline, None), at(10))
                .expect("frame"),
        );
        assert_eq!(
            opened["id"],
            "presence:0190c0de-0000-7000-8000-000000000001"
        );
        assert_eq!(opened["type"], "user-online");
        assert_eq!(opened["name"], "@alice_w is online");
        assert_eq!(opened["startedAt"], at(0).timestamp_millis());
        // Telegram's `expires` (300 s) lies beyond now + 60 s.
        assert_eq!(opened["expiresAt"], at(300).timestamp_millis());
        assert_eq!(outs.current().len(), 1);

        // Not yet near its end: nothing to send again.
        assert!(outs.refresh(at(200)).is_empty());
        // Near it: sent again, a minute ahead.
        let refreshed = outs.refresh(at(280));
        assert_eq!(refreshed.len(), 1);
        assert_eq!(
            data(&refreshed[0])["expiresAt"],
            (at(280) + ONLINE_AHEAD).timestamp_millis()
        );
        assert!(outs.refresh(at(281)).is_empty());

        let closed = data(
            &outs
                .on_event(&presence(EventType::SessionClosed, Some(at(400))), at(600))
                .expect("frame"),
        );
        assert_eq!(closed["id"], opened["id"]);
        assert_eq!(closed["name"], "@alice_w was online");
        assert_eq!(closed["endedAt"], at(400).timestamp_millis());
        assert_eq!(closed["expiresAt"], at(400).timestamp_millis());
        assert!(outs.current().is_empty());
        assert!(outs.refresh(at(10_000)).is_empty());
    }

    #[test]
    fn a_new_post_is_live_for_a_while() {
        let mut outs = LiveOuts::default();
        let event = Event::new(
            EventType::NewMessage,
            at(0),
            json!({"channel_id": "0190c0de-0000-7000-8000-0000000000aa", "channel_username": "news",
                   "telegram_channel_id": 1001, "message_id": 42, "date": at(-5), "text": "Hello"}),
        );
        let post = data(&outs.on_event(&event, at(0)).expect("frame"));
        assert_eq!(post["id"], "post:0190c0de-0000-7000-8000-0000000000aa:42");
        assert_eq!(post["type"], "channel-post");
        assert_eq!(post["name"], "@news: Hello");
        assert_eq!(post["messageId"], 42);
        assert_eq!(
            post["expiresAt"],
            (at(-5) + POST_LIVE_FOR).timestamp_millis()
        );
        assert!(outs.current().is_empty(), "posts are not re-sent");

        for other in [
            EventType::EditedMessage,
            EventType::UserOffline,
            EventType::Alert,
        ] {
            let event = Event::new(other, at(0), json!({}));
            assert_eq!(outs.on_event(&event, at(0)), None, "{other:?}");
        }
    }
}
