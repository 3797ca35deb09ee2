//! Events: what consumers (webhooks, later the bot and the live feed) can subscribe to.
//!
//! An event is built once, with the exact JSON body every consumer receives
//! (`{"type", "timestamp", "data"}`), and written to the `events` outbox in the same transaction
//! as the data it describes.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::presence::{
    Observation, StatusKind,
    sessions::{Session, SessionChange},
};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventType {
    NewMessage,
    EditedMessage,
    DeletedMessage,
    UserOnline,
    UserOffline,
    SessionClosed,
    AccountBanned,
    Alert,
    /// Sent by `POST /api/webhooks/{id}/test` only.
    Test,
}

impl EventType {
    pub const SUBSCRIBABLE: [EventType; 8] = [
        EventType::NewMessage,
        EventType::EditedMessage,
        EventType::DeletedMessage,
        EventType::UserOnline,
        EventType::UserOffline,
        EventType::SessionClosed,
        EventType::AccountBanned,
        EventType::Alert,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventType::NewMessage => "new_message",
            EventType::EditedMessage => "edited_message",
            EventType::DeletedMessage => "deleted_message",
            EventType::UserOnline => "user_online",
            EventType::UserOffline => "user_offline",
            EventType::SessionClosed => "session_closed",
            EventType::AccountBanned => "account_banned",
            EventType::Alert => "alert",
            EventType::Test => "test",
        }
    }

    pub fn parse(text: &str) -> Option<EventType> {
        EventType::SUBSCRIBABLE
            .into_iter()
            .chain([EventType::Test])
            .find(|kind| kind.as_str() == text)
    }
}

/// One event, ready to store and send.
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    /// `msg_<uuid v7>`: the `webhook-id` consumers use to drop repeats.
    pub id: String,
    pub event_type: EventType,
    pub timestamp: DateTime<Utc>,
    /// The JSON body sent to consumers.
    pub body: String,
    pub tracked_user_id: Option<Uuid>,
    pub channel_id: Option<Uuid>,
}

impl Event {
    pub fn new(event_type: EventType, timestamp: DateTime<Utc>, data: Value) -> Event {
        let body = json!({
            "type": event_type.as_str(),
            "timestamp": timestamp,
            "data": data,
        });
        Event {
            id: format!("msg_{}", Uuid::now_v7().simple()),
            event_type,
            timestamp,
            body: body.to_string(),
            tracked_user_id: None,
            channel_id: None,
        }
    }

    pub fn about_tracked_user(mut self, tracked_user_id: Uuid) -> Event {
        self.tracked_user_id = Some(tracked_user_id);
        self
    }
}

/// Whether an event may be shown to people (the bot's chats, the live feed): every event but the
/// presence events (`user_online`, `user_offline`, `session_closed`) of a person whose online
/// state is hidden (`visible_online = false`, the ids in `hidden`). Webhooks still get them: they
/// are the admin's own integrations.
pub fn shows_online_state(
    kind: EventType,
    tracked_user_id: Option<Uuid>,
    hidden: &std::collections::HashSet<Uuid>,
) -> bool {
    let presence = matches!(
        kind,
        EventType::UserOnline | EventType::UserOffline | EventType::SessionClosed
    );
    !(presence && tracked_user_id.is_some_and(|id| hidden.contains(&id)))
}

/// Who a presence event is about, as consumers see them.
#[derive(Clone, Debug, Serialize)]
pub struct TrackedUserRef {
    pub tracked_user_id: Uuid,
    pub telegram_user_id: Option<i64>,
    pub username: Option<String>,
}

/// The presence events an observation causes, after the gap rule:
/// - `user_online` when a session opens (not on every online poll),
/// - `user_offline` when the user is seen offline after being seen online,
/// - `session_closed` when the gap rule closes a session, with its length.
pub fn presence_events(
    user: &TrackedUserRef,
    previous: Option<&Observation>,
    observation: &Observation,
    changes: &[SessionChange],
) -> Vec<Event> {
    let session_data = |session: &Session| {
        json!({
            "started_at": session.started_at,
            "last_online_at": session.last_online_at,
            "ended_at": session.ended_at,
            "duration_seconds": (session.last_online_at - session.started_at).num_seconds(),
        })
    };
    let event = |event_type, session: &Session| {
        Event::new(
            event_type,
            observation.observed_at,
            json!({ "user": user, "session": session_data(session), "observed_at": observation.observed_at }),
        )
        .about_tracked_user(user.tracked_user_id)
    };
    let mut events = Vec::new();
    let went_offline = previous.is_some_and(|p| p.status.kind() == StatusKind::Online)
        && observation.status.kind() == StatusKind::Offline;
    for change in changes {
        match change {
            SessionChange::Opened(session) => events.push(event(EventType::UserOnline, session)),
            SessionChange::Closed(session) => events.push(event(EventType::SessionClosed, session)),
            SessionChange::Extended(_) => {}
        }
    }
    if went_offline {
        let data = json!({
            "user": user,
            "observed_at": observation.observed_at,
            "was_online": observation.status.was_online(),
        });
        events.push(
            Event::new(EventType::UserOffline, observation.observed_at, data)
                .about_tracked_user(user.tracked_user_id),
        );
    }
    events
}

#[cfg(test)]
mod tests {

    #[test]
    fn presence_events_of_a_hidden_person_are_not_shown_and_everything_else_is() {
        let hidden_person = Uuid::now_v7();
        let shown_person = Uuid::now_v7();
        let hidden = std::collections::HashSet::from([hidden_person]);
        for kind in [
            EventType::UserOnline,
            EventType::UserOffline,
            EventType::SessionClosed,
        ] {
            assert!(!shows_online_state(kind, Some(hidden_person), &hidden));
            assert!(shows_online_state(kind, Some(shown_person), &hidden));
        }
        assert!(shows_online_state(
            EventType::Alert,
            Some(hidden_person),
            &hidden
        ));
        assert!(shows_online_state(EventType::NewMessage, None, &hidden));
    }

    use super::*;
    use crate::presence::{Status, sessions::SessionFolder};
    use chrono::{Duration, TimeZone};

    fn at(seconds: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_700_000_000 + seconds, 0)
            .single()
            .expect("time")
    }

    #[test]
    fn online_offline_and_closing_make_one_event_each() {
        let user = TrackedUserRef {
            tracked_user_id: Uuid::nil(),
            telegram_user_id: Some(7),
            username: Some("alice_w".into()),
        };
        let mut folder = SessionFolder::new(Duration::seconds(180));
        let observations = [
            Observation {
                observed_at: at(0),
                status: Status::Online { expires: at(300) },
            },
            Observation {
                observed_at: at(90),
                status: Status::Online { expires: at(390) },
            },
            Observation {
                observed_at: at(180),
                status: Status::Offline {
                    was_online: Some(at(150)),
                },
            },
            Observation {
                observed_at: at(400),
                status: Status::Offline {
                    was_online: Some(at(150)),
                },
            },
        ];
        let mut kinds = Vec::new();
        let mut previous = None;
        for observation in observations {
            let changes = match folder.apply(observation) {
                crate::presence::sessions::Applied::Changes(changes) => changes,
                other => panic!("{other:?}"),
            };
            for event in presence_events(&user, previous.as_ref(), &observation, &changes) {
                let body: Value = serde_json::from_str(&event.body).expect("json body");
                assert_eq!(body["type"], event.event_type.as_str());
                assert_eq!(body["data"]["user"]["username"], "alice_w");
                assert!(event.id.starts_with("msg_"));
                kinds.push(event.event_type);
            }
            previous = Some(observation);
        }
        assert_eq!(
            kinds,
            vec![
                EventType::UserOnline,
                EventType::UserOffline,
                EventType::SessionClosed
            ]
        );
    }

    #[test]
    fn event_type_names_round_trip() {
        for kind in EventType::SUBSCRIBABLE {
            assert_eq!(EventType::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(EventType::parse("everything"), None);
    }
}
