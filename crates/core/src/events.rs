//! Events: what happens, and what consumers (webhooks, the bot, the live feed) hear of it.
//!
//! Two kinds of change flow through the service: [`PresenceChanged`] (a person's observation
//! folded by the gap rule) and [`MessageEvent`] (a channel post new, edited or deleted). The
//! storage path commits them with their [`Event`]s: an event is built once, with the exact JSON
//! body every consumer receives (`{"type", "timestamp", "data"}`), and written to the `events`
//! outbox in the same transaction as the data it describes; only then is it published to the
//! consumers, which catch up from the outbox after a restart.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::{
    presence::{
        Observation, StatusKind,
        sessions::{Session, SessionChange},
    },
    telegram::ChannelMessage,
};

/// What one observation of a person changed, after the gap rule.
#[derive(Clone, Debug, PartialEq)]
pub enum PresenceChanged {
    SessionOpened(Session),
    /// Seen online again within the gap: the open session goes on.
    SessionExtended(Session),
    SessionClosed(Session),
    /// Seen offline after being seen online.
    WentOffline {
        was_online: Option<DateTime<Utc>>,
    },
    /// Telegram no longer shows the exact status ("recently", "last week", ...) where it
    /// showed online or offline before: the person hid it, or hides it from this account.
    StatusHidden(StatusKind),
}

impl PresenceChanged {
    /// What `observation` changed, given the one before it and the gap rule's session changes.
    pub fn of(
        previous: Option<&Observation>,
        observation: &Observation,
        changes: &[SessionChange],
    ) -> Vec<PresenceChanged> {
        let mut changed: Vec<PresenceChanged> = changes
            .iter()
            .map(|change| match change {
                SessionChange::Opened(session) => PresenceChanged::SessionOpened(*session),
                SessionChange::Extended(session) => PresenceChanged::SessionExtended(*session),
                SessionChange::Closed(session) => PresenceChanged::SessionClosed(*session),
            })
            .collect();
        let before = previous.map(|previous| previous.status.kind());
        let now = observation.status.kind();
        let exact = |kind: StatusKind| matches!(kind, StatusKind::Online | StatusKind::Offline);
        if before == Some(StatusKind::Online) && now == StatusKind::Offline {
            changed.push(PresenceChanged::WentOffline {
                was_online: observation.status.was_online(),
            });
        }
        if before.is_some_and(exact) && !exact(now) {
            changed.push(PresenceChanged::StatusHidden(now));
        }
        changed
    }

    /// The outbox event consumers receive for this change, if they hear of it:
    /// - `user_online` when a session opens (not on every online poll),
    /// - `user_offline` when the user is seen offline after being seen online,
    /// - `session_closed` when the gap rule closes a session, with its length.
    pub fn event(&self, user: &TrackedUserRef, observation: &Observation) -> Option<Event> {
        let session_data = |session: &Session| {
            json!({
                "started_at": session.started_at,
                "last_online_at": session.last_online_at,
                "ended_at": session.ended_at,
                "duration_seconds": (session.last_online_at - session.started_at).num_seconds(),
            })
        };
        let (event_type, data) = match self {
            PresenceChanged::SessionOpened(session) => (
                EventType::UserOnline,
                json!({ "user": user, "session": session_data(session), "observed_at": observation.observed_at }),
            ),
            PresenceChanged::SessionClosed(session) => (
                EventType::SessionClosed,
                json!({ "user": user, "session": session_data(session), "observed_at": observation.observed_at }),
            ),
            PresenceChanged::WentOffline { was_online } => (
                EventType::UserOffline,
                json!({ "user": user, "observed_at": observation.observed_at, "was_online": was_online }),
            ),
            PresenceChanged::SessionExtended(_) | PresenceChanged::StatusHidden(_) => return None,
        };
        Some(
            Event::new(event_type, observation.observed_at, data)
                .about_tracked_user(user.tracked_user_id),
        )
    }
}

/// A change of a channel post, as an account saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MessageEvent {
    /// A message pushed as new, or read from history (which shows current contents only).
    New(ChannelMessage),
    Edited(ChannelMessage),
    /// Telegram tells deletions by message id only.
    Deleted {
        ids: Vec<i32>,
    },
}

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

/// The outbox events an observation causes, after the gap rule (see [`PresenceChanged::event`]).
pub fn presence_events(
    user: &TrackedUserRef,
    previous: Option<&Observation>,
    observation: &Observation,
    changes: &[SessionChange],
) -> Vec<Event> {
    PresenceChanged::of(previous, observation, changes)
        .iter()
        .filter_map(|changed| changed.event(user, observation))
        .collect()
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
    use crate::presence::{
        Status,
        sessions::{Applied, SessionFolder},
    };
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
    fn an_extension_and_a_hidden_status_are_changes_without_an_outbox_event() {
        let user = TrackedUserRef {
            tracked_user_id: Uuid::nil(),
            telegram_user_id: Some(7),
            username: None,
        };
        let mut folder = SessionFolder::new(Duration::seconds(180));
        let online = |second| Observation {
            observed_at: at(second),
            status: Status::Online {
                expires: at(second + 300),
            },
        };
        let Applied::Changes(opened) = folder.apply(online(0)) else {
            panic!("the first observation opens a session");
        };
        assert!(matches!(
            PresenceChanged::of(None, &online(0), &opened)[..],
            [PresenceChanged::SessionOpened(_)]
        ));
        let Applied::Changes(extended) = folder.apply(online(60)) else {
            panic!("a second online observation extends it");
        };
        let changed = PresenceChanged::of(Some(&online(0)), &online(60), &extended);
        assert!(matches!(changed[..], [PresenceChanged::SessionExtended(_)]));
        assert_eq!(changed[0].event(&user, &online(60)), None);

        let hidden = Observation {
            observed_at: at(120),
            status: Status::Recently,
        };
        let changed = PresenceChanged::of(Some(&online(60)), &hidden, &[]);
        assert_eq!(
            changed,
            vec![PresenceChanged::StatusHidden(StatusKind::Recently)]
        );
        assert_eq!(changed[0].event(&user, &hidden), None);
        // Hidden after hidden is no change.
        assert!(PresenceChanged::of(Some(&hidden), &hidden, &[]).is_empty());
    }

    #[test]
    fn event_type_names_round_trip() {
        for kind in EventType::SUBSCRIBABLE {
            assert_eq!(EventType::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(EventType::parse("everything"), None);
    }
}
