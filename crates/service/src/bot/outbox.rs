//! The rules of the notification outbox, pure: who receives an event, how long to wait after a
//! failure, which Bot API errors are final, when the daily digest is due.

use std::{collections::HashMap, time::Duration};

use chrono::{DateTime, Days, NaiveTime, Utc};
use teloxide::{ApiError, RequestError};
use uuid::Uuid;

use tgwatch_core::events::EventType;
use tgwatch_core::roles::Role;

/// A registered, active chat as the fan-out sees it.
#[derive(Clone, Debug)]
pub struct ChatAudience {
    pub bot_chat_id: Uuid,
    pub chat_id: i64,
    /// The chat's switch for presence notifications.
    pub notify: bool,
    /// Its owner's role (with `bot.admin_ids` applied).
    pub role: Role,
}

/// Which events the bot tells about beyond `user_online` (config).
#[derive(Clone, Copy, Debug)]
pub struct Telling {
    pub offline: bool,
    pub session_summary: bool,
}

/// The chats that get a message about an event.
///
/// - `user_online` (and, if configured, `user_offline` / `session_closed`): chats with
///   notifications on, owned by someone of role `user` or more, that follow the user: their own
///   choice for that user (`/notify on|off @user`) or else the user's `notify` flag. Users no
///   longer tracked are not told about.
/// - `account_banned`, `alert`: every chat of an admin, whatever its notification switch.
/// - anything else: nobody.
pub fn recipients(
    kind: EventType,
    tracked_user_id: Option<Uuid>,
    chats: &[ChatAudience],
    subscriptions: &HashMap<(Uuid, Uuid), bool>,
    tracked_notify: &HashMap<Uuid, bool>,
    telling: Telling,
) -> Vec<i64> {
    let presence = match kind {
        EventType::UserOnline => true,
        EventType::UserOffline => telling.offline,
        EventType::SessionClosed => telling.session_summary,
        EventType::AccountBanned | EventType::Alert => {
            return chats
                .iter()
                .filter(|chat| chat.role == Role::Admin)
                .map(|chat| chat.chat_id)
                .collect();
        }
        _ => false,
    };
    let Some(user) = tracked_user_id.filter(|_| presence) else {
        return Vec::new();
    };
    let Some(user_default) = tracked_notify.get(&user) else {
        return Vec::new();
    };
    chats
        .iter()
        .filter(|chat| chat.notify && chat.role.allows(Role::User))
        .filter(|chat| {
            subscriptions
                .get(&(chat.bot_chat_id, user))
                .copied()
                .unwrap_or(*user_default)
        })
        .map(|chat| chat.chat_id)
        .collect()
}

/// What a failed send means for the message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Failure {
    /// 429: wait as long as Telegram says.
    RetryAfter(Duration),
    /// The group became a supergroup: send there instead.
    Migrated(i64),
    /// The bot can never write there (blocked, kicked, chat gone, a bot).
    Final(String),
    /// Anything else (network, Telegram's errors, unknown answers): try again later.
    Transient(String),
}

/// Classifies a Bot API error. `token` is cut out of every description: a network error's text
/// holds the request URL, and the URL holds the token.
pub fn classify(error: &RequestError, token: &str) -> Failure {
    let text = redact(&error.to_string(), token);
    match error {
        RequestError::RetryAfter(seconds) => Failure::RetryAfter(seconds.duration()),
        RequestError::MigrateToChatId(chat) => Failure::Migrated(chat.0),
        RequestError::Api(
            ApiError::BotBlocked
            | ApiError::ChatNotFound
            | ApiError::UserDeactivated
            | ApiError::BotKicked
            | ApiError::BotKickedFromSupergroup
            | ApiError::BotKickedFromChannel
            | ApiError::CantInitiateConversation
            | ApiError::CantTalkWithBots
            | ApiError::GroupDeactivated,
        ) => Failure::Final(text),
        _ => Failure::Transient(text),
    }
}

/// `text` with every occurrence of the bot token replaced.
pub fn redact(text: &str, token: &str) -> String {
    if token.is_empty() {
        return text.to_owned();
    }
    text.replace(token, "<token>")
}

/// The wait before try number `attempts + 1`: the schedule's entry, the last one repeating.
pub fn retry_delay(schedule: &[f64], attempts: i32) -> Duration {
    let index = (attempts.max(1) as usize - 1).min(schedule.len().saturating_sub(1));
    Duration::from_secs_f64(schedule.get(index).copied().unwrap_or(60.0).max(0.0))
}

/// The latest digest time (`hour`:00 UTC) at or before `now`.
pub fn digest_due(now: DateTime<Utc>, hour: u32) -> DateTime<Utc> {
    let time = NaiveTime::from_hms_opt(hour.min(23), 0, 0).unwrap_or(NaiveTime::MIN);
    let today = now.date_naive().and_time(time).and_utc();
    if today <= now {
        today
    } else {
        now.date_naive()
            .checked_sub_days(Days::new(1))
            .map(|day| day.and_time(time).and_utc())
            .unwrap_or(today)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use teloxide::types::{ChatId, Seconds};

    fn chat(n: u128, notify: bool, role: Role) -> ChatAudience {
        ChatAudience {
            bot_chat_id: Uuid::from_u128(n),
            chat_id: n as i64,
            notify,
            role,
        }
    }

    const ALL: Telling = Telling {
        offline: true,
        session_summary: true,
    };

    #[test]
    fn presence_goes_to_followers_alerts_to_admins() {
        let alice = Uuid::from_u128(100);
        let chats = [
            chat(1, true, Role::User),
            chat(2, false, Role::User),
            chat(3, true, Role::Admin),
            chat(4, true, Role::Banned),
            chat(5, true, Role::Vip),
        ];
        let tracked = HashMap::from([(alice, true)]);
        // Chat 5 muted alice; chat 2's switch is off whatever it chose.
        let subscriptions = HashMap::from([
            ((Uuid::from_u128(5), alice), false),
            ((Uuid::from_u128(2), alice), true),
        ]);
        let online = recipients(
            EventType::UserOnline,
            Some(alice),
            &chats,
            &subscriptions,
            &tracked,
            ALL,
        );
        assert_eq!(online, vec![1, 3]);
        let alerts = recipients(
            EventType::Alert,
            None,
            &chats,
            &subscriptions,
            &tracked,
            ALL,
        );
        assert_eq!(alerts, vec![3]);
        assert!(
            recipients(
                EventType::NewMessage,
                None,
                &chats,
                &subscriptions,
                &tracked,
                ALL
            )
            .is_empty()
        );
    }

    #[test]
    fn a_chat_choice_beats_the_user_flag_and_offline_needs_config() {
        let bob = Uuid::from_u128(200);
        let chats = [chat(1, true, Role::User), chat(2, true, Role::User)];
        let tracked = HashMap::from([(bob, false)]);
        let subscriptions = HashMap::from([((Uuid::from_u128(2), bob), true)]);
        let quiet = Telling {
            offline: false,
            session_summary: false,
        };
        let online = recipients(
            EventType::UserOnline,
            Some(bob),
            &chats,
            &subscriptions,
            &tracked,
            quiet,
        );
        assert_eq!(online, vec![2]);
        for kind in [EventType::UserOffline, EventType::SessionClosed] {
            assert!(
                recipients(kind, Some(bob), &chats, &subscriptions, &tracked, quiet).is_empty()
            );
            assert_eq!(
                recipients(kind, Some(bob), &chats, &subscriptions, &tracked, ALL),
                vec![2]
            );
        }
        // No longer tracked: nobody hears about them.
        assert!(
            recipients(
                EventType::UserOnline,
                Some(Uuid::from_u128(999)),
                &chats,
                &subscriptions,
                &tracked,
                ALL
            )
            .is_empty()
        );
    }

    #[test]
    fn errors_are_classified_and_the_token_never_shows() {
        let token = "123456:SECRET-token_value";
        assert_eq!(
            classify(&RequestError::RetryAfter(Seconds::from_seconds(3)), token),
            Failure::RetryAfter(Duration::from_secs(3))
        );
        assert_eq!(
            classify(&RequestError::MigrateToChatId(ChatId(-100_123)), token),
            Failure::Migrated(-100_123)
        );
        assert!(matches!(
            classify(&RequestError::Api(ApiError::BotBlocked), token),
            Failure::Final(_)
        ));
        let unknown = RequestError::Api(ApiError::Unknown(format!("Bad Request: {token}")));
        match classify(&unknown, token) {
            Failure::Transient(text) => {
                assert!(!text.contains("SECRET"), "{text}");
                assert!(text.contains("<token>"), "{text}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn retry_schedule_repeats_its_last_wait() {
        let schedule = [5.0, 60.0];
        assert_eq!(retry_delay(&schedule, 1), Duration::from_secs(5));
        assert_eq!(retry_delay(&schedule, 2), Duration::from_secs(60));
        assert_eq!(retry_delay(&schedule, 50), Duration::from_secs(60));
    }

    #[test]
    fn digest_is_due_at_the_last_passed_hour() {
        let at = |d, h, m| {
            Utc.with_ymd_and_hms(2026, 11, d, h, m, 0)
                .single()
                .expect("time")
        };
        assert_eq!(digest_due(at(26, 10, 0), 9), at(26, 9, 0));
        assert_eq!(digest_due(at(26, 9, 0), 9), at(26, 9, 0));
        assert_eq!(digest_due(at(26, 8, 59), 9), at(25, 9, 0));
        assert_eq!(
            digest_due(at(1, 0, 30), 23),
            at(1, 0, 30) - chrono::Duration::minutes(90)
        );
    }
}
