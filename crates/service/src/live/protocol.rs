//! The `/ws` protocol: what clients send, what the server sends, who may do what. Pure.
//!
//! Client to server (JSON text frames; the kind is `type` or `action`, as seed 004 uses both):
//! - `{"type": "ping"}` -> `{"type": "pong"}`
//! - `{"action": "broadcast", "text": "...", "thread_id": 47, "pin": false}`
//! - `{"action": "pin", "data": {"messageId": 12345}, "thread_id": 47}` (`messageId` /
//!   `message_id` also at the top level)
//! - `{"action": "send_and_pin", "text": "...", "thread_id": 47}`
//!
//! Server to client: `hello` (once), `status` (every tick), `presence`, `message`, `alert` (as
//! events happen), `toast`, `pong`, `error`.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use serde_json::{Value, json};

use super::seed_004;
use tgwatch_core::{
    events::{Event, EventType},
    roles::Role,
};

/// Telegram's longest message text.
pub const MAX_TEXT_CHARS: usize = 4096;

/// What a client asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientMessage {
    Ping,
    /// Send `text` to the broadcast chat (into forum topic `thread_id`), and pin it if `pin`.
    Broadcast {
        text: String,
        thread_id: Option<i64>,
        pin: bool,
    },
    /// Pin a message of the broadcast chat.
    Pin {
        message_id: i64,
        thread_id: Option<i64>,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    #[error("not JSON: {0}")]
    NotJson(String),
    #[error("a message is a JSON object with a `type` (or `action`)")]
    NoKind,
    #[error("unknown message type `{0}` (ping, broadcast, pin, send_and_pin)")]
    UnknownKind(String),
    #[error("`{0}` is missing or not a {1}")]
    BadField(&'static str, &'static str),
    #[error("`text` must not be empty")]
    EmptyText,
    #[error("`text` is longer than {MAX_TEXT_CHARS} characters")]
    TextTooLong,
}

impl ProtocolError {
    /// The error's `code` for clients.
    pub fn code(&self) -> &'static str {
        "invalid_message"
    }
}

/// Parses one text frame from a client.
pub fn parse(text: &str) -> Result<ClientMessage, ProtocolError> {
    let value: Value =
        serde_json::from_str(text).map_err(|error| ProtocolError::NotJson(error.to_string()))?;
    let object = value.as_object().ok_or(ProtocolError::NoKind)?;
    let kind = object
        .get("type")
        .or_else(|| object.get("action"))
        .and_then(Value::as_str)
        .ok_or(ProtocolError::NoKind)?;
    let data = object.get("data").and_then(Value::as_object);
    // A field at the top level, or else inside `data`.
    let get = |names: &[&str]| {
        names.iter().find_map(|name| {
            object
                .get(*name)
                .filter(|v| !v.is_null())
                .or_else(|| data.and_then(|d| d.get(*name)).filter(|v| !v.is_null()))
        })
    };
    let thread_id = match get(&["thread_id", "threadId", "message_thread_id"]) {
        None => None,
        Some(value) => Some(
            value
                .as_i64()
                .filter(|id| *id > 0)
                .ok_or(ProtocolError::BadField("thread_id", "positive integer"))?,
        ),
    };
    let text_field = || -> Result<String, ProtocolError> {
        let text = get(&["text"])
            .and_then(Value::as_str)
            .ok_or(ProtocolError::BadField("text", "string"))?;
        if text.trim().is_empty() {
            return Err(ProtocolError::EmptyText);
        }
        if text.chars().count() > MAX_TEXT_CHARS {
            return Err(ProtocolError::TextTooLong);
        }
        Ok(text.to_owned())
    };
    match kind {
        "ping" => Ok(ClientMessage::Ping),
        "broadcast" => {
            let pin = match get(&["pin"]) {
                None => false,
                Some(value) => value
                    .as_bool()
                    .ok_or(ProtocolError::BadField("pin", "boolean"))?,
            };
            Ok(ClientMessage::Broadcast {
                text: text_field()?,
                thread_id,
                pin,
            })
        }
        "send_and_pin" | "sendAndPin" => Ok(ClientMessage::Broadcast {
            text: text_field()?,
            thread_id,
            pin: true,
        }),
        "pin" => {
            let message_id = get(&["messageId", "message_id"])
                .and_then(Value::as_i64)
                .filter(|id| *id > 0)
                .ok_or(ProtocolError::BadField("messageId", "positive integer"))?;
            Ok(ClientMessage::Pin {
                message_id,
                thread_id,
            })
        }
        other => Err(ProtocolError::UnknownKind(other.chars().take(40).collect())),
    }
}

/// An action on the broadcast chat.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Broadcast,
    Pin,
}

impl Action {
    /// The permission name that grants it (in `telegram_users.permissions`).
    pub fn permission(self) -> &'static str {
        match self {
            Action::Broadcast => "broadcast",
            Action::Pin => "pin",
        }
    }
}

/// Who is connected, as far as permissions go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    /// The `user_id` the client gave (checked against init data for Mini App clients).
    pub user_id: i64,
    pub role: Role,
    pub permissions: Vec<String>,
    /// Signed in with the admin token (counts as admin).
    pub admin_token: bool,
}

/// Whether `who` may do `action`: an admin (the admin token counts as one), someone holding the
/// action's own permission (`broadcast`, `pin`), or, when `allow_all` (seed 004), someone holding
/// `"all"`. Banned people may do nothing.
pub fn may(who: &Principal, action: Action, allow_all: bool) -> bool {
    if who.admin_token {
        return true;
    }
    if who.role == Role::Banned {
        return false;
    }
    who.role == Role::Admin
        || who.permissions.iter().any(|p| p == action.permission())
        || (allow_all && who.permissions.iter().any(|p| p == "all"))
}

/// Who receives a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Audience {
    /// Every connected client.
    Everyone,
    /// Admins only (alerts, as the bot tells them to admins only).
    Admins,
}

/// The figures of a `status` message.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Status {
    pub running: bool,
    pub uptime_seconds: u64,
    pub accounts_active: u64,
    pub accounts_limited: u64,
    pub accounts_banned: u64,
    pub accounts_inactive: u64,
    pub tracked_users: u64,
    /// Tracked users with an open session (online, by the gap rule).
    pub online_now: u64,
    /// Channel message events (new, edited, deleted) since the service started.
    pub messages_processed: u64,
    pub webhooks_delivered: u64,
    pub webhooks_failed: u64,
    /// `alert` and `account_banned` events since the service started.
    pub alerts_sent: u64,
    /// WebSocket clients connected now.
    pub clients: u64,
    /// Seed 004's names for some of these, beside them.
    #[serde(flatten)]
    pub seed_004: seed_004::StatusFields,
}

/// What goes into a status besides the database's figures.
#[derive(Clone, Debug, Default)]
pub struct Counters {
    pub uptime_seconds: u64,
    pub messages_processed: u64,
    pub alerts_sent: u64,
    pub webhooks_delivered: u64,
    pub webhooks_failed: u64,
    pub clients: u64,
    /// Clients signed in as Mini App users (with `init_data`).
    pub mini_app_clients: u64,
}

/// The database's figures.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DatabaseFigures {
    /// Accounts by status (`active`, `limited`, `banned`, `inactive`).
    pub accounts: std::collections::BTreeMap<String, u64>,
    pub tracked_users: u64,
    pub online_now: u64,
}

impl Status {
    pub fn assemble(figures: &DatabaseFigures, counters: &Counters) -> Status {
        let accounts = |status: &str| figures.accounts.get(status).copied().unwrap_or(0);
        Status {
            running: true,
            uptime_seconds: counters.uptime_seconds,
            accounts_active: accounts("active"),
            accounts_limited: accounts("limited"),
            accounts_banned: accounts("banned"),
            accounts_inactive: accounts("inactive"),
            tracked_users: figures.tracked_users,
            online_now: figures.online_now,
            messages_processed: counters.messages_processed,
            webhooks_delivered: counters.webhooks_delivered,
            webhooks_failed: counters.webhooks_failed,
            alerts_sent: counters.alerts_sent,
            clients: counters.clients,
            seed_004: seed_004::StatusFields {
                uptime: counters.uptime_seconds,
                active_users: counters.mini_app_clients,
                messages_processed: counters.messages_processed,
                alerts_sent: counters.alerts_sent,
            },
        }
    }
}

fn timestamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// `{"type":"status","at":...,"data":{...}}`; `at` is the real time it was made (microseconds),
/// which clients can use to measure delivery latency.
pub fn status_frame(status: &Status, at: DateTime<Utc>) -> String {
    json!({ "type": "status", "at": timestamp(at), "data": status }).to_string()
}

/// The frame an event becomes, and who gets it; `None` for events clients do not see.
/// The event's stored body (`{"type","timestamp","data"}`) is embedded as it is, not re-encoded.
pub fn event_frame(event: &Event) -> Option<(String, Audience)> {
    let (kind, audience) = match event.event_type {
        EventType::UserOnline | EventType::UserOffline | EventType::SessionClosed => {
            ("presence", Audience::Everyone)
        }
        EventType::NewMessage | EventType::EditedMessage | EventType::DeletedMessage => {
            ("message", Audience::Everyone)
        }
        EventType::AccountBanned | EventType::Alert => ("alert", Audience::Admins),
        EventType::Test => return None,
    };
    let id = serde_json::to_string(&event.id).ok()?;
    Some((
        format!(r#"{{"type":"{kind}","id":{id},"event":{}}}"#, event.body),
        audience,
    ))
}

/// The first frame of a session: who the server thinks the client is and what it may do.
pub fn hello_frame(who: &Principal, allow_all: bool, broadcast_configured: bool) -> String {
    json!({
        "type": "hello",
        "user_id": who.user_id,
        "role": if who.admin_token { "admin" } else { who.role.as_str() },
        "admin_token": who.admin_token,
        "can": {
            "broadcast": broadcast_configured && may(who, Action::Broadcast, allow_all),
            "pin": broadcast_configured && may(who, Action::Pin, allow_all),
        },
    })
    .to_string()
}

pub fn pong_frame() -> &'static str {
    r#"{"type":"pong"}"#
}

/// `{"type":"toast","title":...}` plus details.
pub fn toast_frame(title: &str, details: Value) -> String {
    let mut frame = json!({ "type": "toast", "title": title });
    if let (Some(frame), Value::Object(details)) = (frame.as_object_mut(), details) {
        frame.extend(details);
    }
    frame.to_string()
}

/// `{"type":"error","code":...,"message":...}`.
pub fn error_frame(code: &str, message: &str) -> String {
    json!({ "type": "error", "code": code, "message": message }).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_messages_parse_in_both_spellings() {
        assert_eq!(parse(r#"{"type":"ping"}"#), Ok(ClientMessage::Ping));
        assert_eq!(parse(r#"{"action":"ping"}"#), Ok(ClientMessage::Ping));
        assert_eq!(
            parse(r#"{"action":"broadcast","text":"LIVE: hello","thread_id":47}"#),
            Ok(ClientMessage::Broadcast {
                text: "LIVE: hello".into(),
                thread_id: Some(47),
                pin: false
            })
        );
        assert_eq!(
            parse(r#"{"type":"broadcast","text":"x","pin":true}"#),
            Ok(ClientMessage::Broadcast {
                text: "x".into(),
                thread_id: None,
                pin: true
            })
        );
        // Seed 004's pin: the id inside `data`, the thread beside it.
        assert_eq!(
            parse(r#"{"action":"pin","data":{"messageId":12345},"thread_id":47}"#),
            Ok(ClientMessage::Pin {
                message_id: 12345,
                thread_id: Some(47)
            })
        );
        assert_eq!(
            parse(r#"{"action":"pin","message_id":5}"#),
            Ok(ClientMessage::Pin {
                message_id: 5,
                thread_id: None
            })
        );
        assert_eq!(
            parse(r#"{"action":"send_and_pin","text":"t","thread_id":null}"#),
            Ok(ClientMessage::Broadcast {
                text: "t".into(),
                thread_id: None,
                pin: true
            })
        );
    }

    #[test]
    fn malformed_messages_say_what_is_wrong() {
        assert!(matches!(parse("{nope"), Err(ProtocolError::NotJson(_))));
        assert_eq!(parse("[1,2]"), Err(ProtocolError::NoKind));
        assert_eq!(parse(r#"{"text":"x"}"#), Err(ProtocolError::NoKind));
        assert_eq!(
            parse(r#"{"type":"dance"}"#),
            Err(ProtocolError::UnknownKind("dance".into()))
        );
        assert_eq!(
            parse(r#"{"action":"broadcast"}"#),
            Err(ProtocolError::BadField("text", "string"))
        );
        assert_eq!(
            parse(r#"{"action":"broadcast","text":"  "}"#),
            Err(ProtocolError::EmptyText)
        );
        let long = format!(
            r#"{{"action":"broadcast","text":"{}"}}"#,
            "é".repeat(MAX_TEXT_CHARS + 1)
        );
        assert_eq!(parse(&long), Err(ProtocolError::TextTooLong));
        assert_eq!(
            parse(r#"{"action":"broadcast","text":"x","thread_id":-4}"#),
            Err(ProtocolError::BadField("thread_id", "positive integer"))
        );
        assert_eq!(
            parse(r#"{"action":"broadcast","text":"x","thread_id":"47"}"#),
            Err(ProtocolError::BadField("thread_id", "positive integer"))
        );
        assert_eq!(
            parse(r#"{"action":"pin","data":{}}"#),
            Err(ProtocolError::BadField("messageId", "positive integer"))
        );
        assert_eq!(
            parse(r#"{"action":"broadcast","text":"x","pin":"yes"}"#),
            Err(ProtocolError::BadField("pin", "boolean"))
        );
    }

    fn person(role: Role, permissions: &[&str]) -> Principal {
        Principal {
            user_id: 7,
            role,
            permissions: permissions.iter().map(|p| (*p).to_owned()).collect(),
            admin_token: false,
        }
    }

    #[test]
    fn admins_and_permission_holders_may_broadcast() {
        let admin = person(Role::Admin, &[]);
        assert!(may(&admin, Action::Broadcast, false));
        assert!(may(&admin, Action::Pin, false));
        let token = Principal {
            admin_token: true,
            ..person(Role::Banned, &[])
        };
        assert!(may(&token, Action::Broadcast, false));
        // Seed 004's "all" counts only when allowed.
        let all = person(Role::Vip, &["all"]);
        assert!(may(&all, Action::Broadcast, true));
        assert!(may(&all, Action::Pin, true));
        assert!(!may(&all, Action::Broadcast, false));
        // A named permission grants that action only.
        let broadcaster = person(Role::Moderator, &["broadcast"]);
        assert!(may(&broadcaster, Action::Broadcast, false));
        assert!(!may(&broadcaster, Action::Pin, false));
        // Roles alone grant nothing below admin; banned people nothing at all.
        for role in [Role::User, Role::Vip, Role::Moderator] {
            assert!(!may(
                &person(role, &["mute", "warn"]),
                Action::Broadcast,
                true
            ));
        }
        assert!(!may(
            &person(Role::Banned, &["all", "broadcast"]),
            Action::Broadcast,
            true
        ));
    }

    #[test]
    fn the_status_is_assembled_from_the_database_and_the_counters() {
        let figures = DatabaseFigures {
            accounts: [("active".to_owned(), 3), ("banned".to_owned(), 1)]
                .into_iter()
                .collect(),
            tracked_users: 24,
            online_now: 5,
        };
        let counters = Counters {
            uptime_seconds: 90,
            messages_processed: 12,
            alerts_sent: 2,
            webhooks_delivered: 40,
            webhooks_failed: 3,
            clients: 7,
            mini_app_clients: 4,
        };
        let status = Status::assemble(&figures, &counters);
        assert_eq!(
            status,
            Status {
                running: true,
                uptime_seconds: 90,
                accounts_active: 3,
                accounts_limited: 0,
                accounts_banned: 1,
                accounts_inactive: 0,
                tracked_users: 24,
                online_now: 5,
                messages_processed: 12,
                webhooks_delivered: 40,
                webhooks_failed: 3,
                alerts_sent: 2,
                clients: 7,
                seed_004: seed_004::StatusFields {
                    uptime: 90,
                    active_users: 4,
                    messages_processed: 12,
                    alerts_sent: 2,
                },
            }
        );
        let at = DateTime::from_timestamp(1_767_225_600, 123_456_000).unwrap_or_default();
        let frame: Value = serde_json::from_str(&status_frame(&status, at)).expect("json");
        assert_eq!(frame["type"], "status");
        assert_eq!(frame["at"], "2026-01-01T00:00:00.123456Z");
        assert_eq!(frame["data"]["online_now"], 5);
        assert_eq!(frame["data"]["accounts_banned"], 1);
        // Seed 004's names beside ours.
        assert_eq!(frame["data"]["uptime"], 90);
        assert_eq!(frame["data"]["activeUsers"], 4);
        assert_eq!(frame["data"]["messagesProcessed"], 12);
        assert_eq!(frame["data"]["alertsSent"], 2);
    }

    #[test]
    fn events_become_frames_for_their_audience() {
        let at = DateTime::from_timestamp(1_767_225_600, 0).unwrap_or_default();
        let online = Event::new(
            EventType::UserOnline,
            at,
            json!({"user": {"username": "a"}}),
        );
        let (frame, audience) = event_frame(&online).expect("presence frame");
        assert_eq!(audience, Audience::Everyone);
        let frame: Value = serde_json::from_str(&frame).expect("json");
        assert_eq!(frame["type"], "presence");
        assert_eq!(frame["id"], json!(online.id));
        assert_eq!(frame["event"]["type"], "user_online");
        assert_eq!(frame["event"]["data"]["user"]["username"], "a");

        let deleted = Event::new(EventType::DeletedMessage, at, json!({"message_id": 4}));
        let (frame, audience) = event_frame(&deleted).expect("message frame");
        assert_eq!(audience, Audience::Everyone);
        assert!(frame.starts_with(r#"{"type":"message""#), "{frame}");

        let alert = Event::new(EventType::AccountBanned, at, json!({"label": "main"}));
        assert_eq!(event_frame(&alert).map(|f| f.1), Some(Audience::Admins));
        assert_eq!(
            event_frame(&Event::new(EventType::Test, at, json!({}))),
            None
        );
    }

    #[test]
    fn server_frames_are_json() {
        let hello: Value =
            serde_json::from_str(&hello_frame(&person(Role::Vip, &["all"]), true, true))
                .expect("json");
        assert_eq!(hello["role"], "vip");
        assert_eq!(hello["can"]["broadcast"], true);
        let hello: Value =
            serde_json::from_str(&hello_frame(&person(Role::Admin, &[]), true, false))
                .expect("json");
        assert_eq!(hello["can"]["broadcast"], false, "not configured");
        let toast: Value =
            serde_json::from_str(&toast_frame("Sent", json!({"message_id": 3}))).expect("json");
        assert_eq!(
            toast,
            json!({"type": "toast", "title": "Sent", "message_id": 3})
        );
        let error: Value =
            serde_json::from_str(&error_frame("denied", "no \"way\"")).expect("json");
        assert_eq!(error["message"], "no \"way\"");
        assert_eq!(pong_frame(), r#"{"type":"pong"}"#);
    }
}
