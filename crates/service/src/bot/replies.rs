//! Everything the bot says, as pure functions of what it knows: command replies, notification
//! texts and the digest. Plain text (no parse mode), so names need no escaping. Times are UTC,
//! as everywhere in tgwatch.

use chrono::{DateTime, Datelike, Utc};
use serde_json::Value;

use super::commands;
use tgwatch_core::roles::Role;
use tgwatch_core::{
    events::EventType,
    presence::{StatusKind, sessions::Session, stats::Statistics},
};

/// Telegram refuses longer messages.
pub const MAX_MESSAGE_CHARS: usize = 4096;

/// Who a line is about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Who {
    pub username: Option<String>,
    pub first_name: Option<String>,
    pub telegram_user_id: Option<i64>,
}

impl std::fmt::Display for Who {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (&self.username, &self.first_name, self.telegram_user_id) {
            (Some(username), _, _) => write!(f, "@{username}"),
            (None, Some(name), Some(id)) => write!(f, "{name} (id {id})"),
            (None, Some(name), None) => f.write_str(name),
            (None, None, Some(id)) => write!(f, "user {id}"),
            (None, None, None) => f.write_str("someone"),
        }
    }
}

/// "14:03 UTC" on the day of `reference`, else with the date.
pub fn at(time: DateTime<Utc>, reference: DateTime<Utc>) -> String {
    if time.date_naive() == reference.date_naive() {
        time.format("%H:%M UTC").to_string()
    } else if time.year() == reference.year() {
        time.format("%b %-d, %H:%M UTC").to_string()
    } else {
        time.format("%Y-%m-%d %H:%M UTC").to_string()
    }
}

/// "45 s", "12 min", "1 h 05 min", "2 d 3 h".
pub fn duration(seconds: i64) -> String {
    let seconds = seconds.max(0);
    match seconds {
        s if s < 60 => format!("{s} s"),
        s if s < 3600 => format!("{} min", s / 60),
        s if s < 86_400 => format!("{} h {:02} min", s / 3600, (s % 3600) / 60),
        s => format!("{} d {} h", s / 86_400, (s % 86_400) / 3600),
    }
}

/// "24 h", "3 days", "365 days".
pub fn window(hours: i64) -> String {
    if hours >= 48 && hours % 24 == 0 {
        format!("{} days", hours / 24)
    } else {
        format!("{hours} h")
    }
}

/// What is known about someone's presence now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Presence {
    Online {
        since: DateTime<Utc>,
    },
    Offline {
        last_seen: Option<DateTime<Utc>>,
    },
    /// Telegram shows only "recently", "last week" or "last month".
    Hidden {
        shown: StatusKind,
        last_seen: Option<DateTime<Utc>>,
    },
    /// Not observed yet.
    Unknown,
}

/// The newest observation, as `presence` needs it.
pub struct Newest {
    pub kind: StatusKind,
    pub was_online: Option<DateTime<Utc>>,
    pub observed_at: DateTime<Utc>,
}

/// Presence from the open session, the newest observation and the latest session's last online
/// moment.
pub fn presence(
    open: Option<&Session>,
    newest: Option<&Newest>,
    latest_online: Option<DateTime<Utc>>,
) -> Presence {
    if let Some(open) = open {
        return Presence::Online {
            since: open.started_at,
        };
    }
    match newest {
        None => Presence::Unknown,
        Some(newest) => match newest.kind {
            StatusKind::Online => Presence::Online {
                since: newest.observed_at,
            },
            StatusKind::Offline => Presence::Offline {
                last_seen: latest_online.max(newest.was_online),
            },
            StatusKind::Recently | StatusKind::LastWeek | StatusKind::LastMonth => {
                Presence::Hidden {
                    shown: newest.kind,
                    last_seen: latest_online,
                }
            }
            StatusKind::Unknown => match latest_online {
                Some(last_seen) => Presence::Offline {
                    last_seen: Some(last_seen),
                },
                None => Presence::Unknown,
            },
        },
    }
}

fn status_line(who: &Who, presence: &Presence, now: DateTime<Utc>) -> String {
    match presence {
        Presence::Online { since } => format!(
            "🟢 {who}: online since {} ({})",
            at(*since, now),
            duration((now - *since).num_seconds())
        ),
        Presence::Offline {
            last_seen: Some(seen),
        } => format!(
            "⚪ {who}: offline, last seen {} ({} ago)",
            at(*seen, now),
            duration((now - *seen).num_seconds())
        ),
        Presence::Offline { last_seen: None } => format!("⚪ {who}: offline, not seen online yet"),
        Presence::Hidden { shown, last_seen } => {
            let shown = match shown {
                StatusKind::LastWeek => "last week",
                StatusKind::LastMonth => "last month",
                _ => "recently",
            };
            let seen = match last_seen {
                Some(seen) => format!(", last seen by us {}", at(*seen, now)),
                None => String::new(),
            };
            format!("🙈 {who}: hides their status (Telegram shows “{shown}”){seen}")
        }
        Presence::Unknown => format!("❔ {who}: no status yet"),
    }
}

/// `/status`: one line per user.
pub fn status(lines: &[(Who, Presence)], now: DateTime<Utc>) -> String {
    if lines.is_empty() {
        return "Nobody is tracked yet. Start with /track @user.".to_owned();
    }
    let body: Vec<String> = lines
        .iter()
        .map(|(who, presence)| status_line(who, presence, now))
        .collect();
    fit(body.join("\n"))
}

/// `/stats` for one user (or all, with `who` = None).
pub fn stats(who: Option<&Who>, hours: i64, stats: &Statistics, now: DateTime<Utc>) -> String {
    let about = who.map_or_else(|| "all tracked users".to_owned(), Who::to_string);
    let mut text = format!("📊 {about}, last {}\n", window(hours));
    if stats.session_count == 0 {
        text.push_str("Not seen online in this time.");
        return text;
    }
    text.push_str(&format!(
        "Online: {} ({:.1} % of the time)\nSessions: {} (average {}, longest {})",
        duration(stats.online_seconds),
        stats.online_share * 100.0,
        stats.session_count,
        duration(stats.average_session_seconds),
        duration(stats.longest_session_seconds),
    ));
    if let Some(first) = stats.first_online {
        text.push_str(&format!("\nFirst online: {}", at(first, now)));
    }
    if let Some(last) = stats.last_online {
        text.push_str(&format!("\nLast online: {}", at(last, now)));
    }
    text
}

/// `/stats` without a user and several tracked: a line each.
pub fn stats_overview(lines: &[(Who, Statistics)], hours: i64) -> String {
    let mut text = format!("📊 Last {}\n", window(hours));
    for (who, stats) in lines {
        text.push_str(&digest_line(who, stats));
        text.push('\n');
    }
    text.push_str("Add a user for details: /stats ");
    text.push_str(&hours.to_string());
    text.push_str(" @user");
    fit(text)
}

fn digest_line(who: &Who, stats: &Statistics) -> String {
    if stats.session_count == 0 {
        return format!("• {who}: not seen online");
    }
    format!(
        "• {who}: online {} in {} session{} (longest {})",
        duration(stats.online_seconds),
        stats.session_count,
        if stats.session_count == 1 { "" } else { "s" },
        duration(stats.longest_session_seconds),
    )
}

/// The daily digest: the last 24 hours of every tracked user.
pub fn digest(lines: &[(Who, Statistics)], now: DateTime<Utc>) -> String {
    let mut text = format!("📋 Daily digest: the 24 hours to {}\n", at(now, now));
    if lines.is_empty() {
        text.push_str("Nobody is tracked.");
    }
    let body: Vec<String> = lines
        .iter()
        .map(|(who, stats)| digest_line(who, stats))
        .collect();
    text.push_str(&body.join("\n"));
    fit(text)
}

/// Cuts a text to Telegram's limit at a line end, saying how much was left out.
pub fn fit(text: String) -> String {
    if text.chars().count() <= MAX_MESSAGE_CHARS {
        return text;
    }
    let mut kept = String::new();
    let lines: Vec<&str> = text.lines().collect();
    for (index, line) in lines.iter().enumerate() {
        let note = format!("… and {} more lines", lines.len() - index);
        if kept.chars().count() + line.chars().count() + note.chars().count() + 2
            > MAX_MESSAGE_CHARS
        {
            kept.push_str(&note);
            return kept;
        }
        kept.push_str(line);
        kept.push('\n');
    }
    kept
}

pub fn help(role: Role) -> String {
    let mut text = format!("tgwatch bot. Your role: {}.\n", role.as_str());
    for (name, description) in commands::commands_for(role) {
        text.push_str(&format!("/{name}: {description}\n"));
    }
    text.push_str("Times are UTC.");
    text
}

pub fn start(first_name: &str, chat_id: i64, role: Role, new: bool) -> String {
    let registered = if new {
        "This chat is now registered with tgwatch."
    } else {
        "This chat is registered with tgwatch (again)."
    };
    let notifications = if role == Role::Admin {
        "You will get a message here when a followed user comes online, and alerts."
    } else {
        "You will get a message here when a followed user comes online."
    };
    format!(
        "Hello, {first_name}! {registered}\nChat id: {chat_id}\nYour role: {}\n{notifications} /list shows who is followed; /help lists the commands.",
        role.as_str()
    )
}

pub fn not_allowed(command: &str, role: Role) -> String {
    format!(
        "/{command} is for {}s; your role is {}.",
        commands::required_role(command).as_str(),
        role.as_str()
    )
}

pub fn unknown_command(name: &str) -> String {
    format!("I don't know /{name}. /help lists the commands.")
}

pub fn not_a_command() -> String {
    "I only understand commands. /help lists them.".to_owned()
}

pub fn not_tracked(user: &str) -> String {
    format!("{user} is not tracked (see /list).")
}

pub fn trouble() -> String {
    "Something went wrong on my side; please try again in a minute.".to_owned()
}

/// A line of `/list`.
pub struct ListLine {
    pub who: Who,
    pub online: bool,
    pub notify_here: bool,
}

pub fn list(lines: &[ListLine], chat_notify: bool) -> String {
    if lines.is_empty() {
        return "Nobody is tracked yet. Start with /track @user.".to_owned();
    }
    let mut text = format!("Tracked users ({}):\n", lines.len());
    for line in lines {
        text.push_str(&format!(
            "• {}{}: notifications {}\n",
            line.who,
            if line.online { " 🟢" } else { "" },
            if line.notify_here { "on" } else { "off" },
        ));
    }
    if !chat_notify {
        text.push_str("This chat's notifications are off (/notify on).");
    }
    fit(text)
}

pub fn tracked(who: &Who, already: bool) -> String {
    if already {
        format!("{who} is already tracked. Notifications about them in this chat: on.")
    } else {
        format!(
            "Now tracking {who}. You will get a message here when they come online (/notify off {who} stops that)."
        )
    }
}

pub fn untracked(who: &Who) -> String {
    format!("Stopped tracking {who}. Their history is kept.")
}

pub fn chat_notify(on: bool) -> String {
    if on {
        "Notifications in this chat: on. /list shows whom they cover.".to_owned()
    } else {
        "Notifications in this chat: off. /notify on turns them back on.".to_owned()
    }
}

pub fn user_notify(who: &Who, on: bool, chat_notify: bool) -> String {
    let mut text = format!(
        "Notifications about {who} in this chat: {}.",
        if on { "on" } else { "off" }
    );
    if on && !chat_notify {
        text.push_str(" This chat's notifications are off, though: /notify on.");
    }
    text
}

/// `/digest on|off`; `due_now` when the chat has not had the latest digest yet (it is sent at
/// once).
pub fn digest_switched(on: bool, hour: u32, due_now: bool) -> String {
    match (on, due_now) {
        (true, true) => format!(
            "Daily digest in this chat: on, every day at {hour:02}:00 UTC. Today's comes right away."
        ),
        (true, false) => {
            format!("Daily digest in this chat: on, every day at {hour:02}:00 UTC.")
        }
        (false, _) => "Daily digest in this chat: off.".to_owned(),
    }
}

/// One monitored channel for `/channels`.
pub struct ChannelLine {
    pub name: String,
    pub title: Option<String>,
    pub status: String,
}

pub fn channels(lines: &[ChannelLine]) -> String {
    match lines {
        [] => "No channels are monitored yet.".to_owned(),
        lines => {
            let mut text = format!("Monitored channels ({}):\n", lines.len());
            for line in lines {
                let title = line
                    .title
                    .as_deref()
                    .map(|t| format!(" “{t}”"))
                    .unwrap_or_default();
                text.push_str(&format!("• {}{title}: {}\n", line.name, line.status));
            }
            fit(text)
        }
    }
}

/// One fleet account for `/accounts`.
pub struct AccountLine {
    pub label: String,
    pub status: String,
    pub authorized: bool,
    pub targets: i32,
    pub max_targets: i32,
    pub last_active: Option<DateTime<Utc>>,
}

pub fn accounts(lines: &[AccountLine], now: DateTime<Utc>) -> String {
    if lines.is_empty() {
        return "No accounts yet: add one with POST /api/accounts or [[accounts]] in config.toml."
            .to_owned();
    }
    let mut text = format!("Accounts ({}):\n", lines.len());
    for line in lines {
        let seen = line
            .last_active
            .map(|t| format!(", last active {}", at(t, now)))
            .unwrap_or_default();
        let login = if line.authorized {
            ""
        } else {
            ", not logged in"
        };
        text.push_str(&format!(
            "• {}: {}{login}, {}/{} users{seen}\n",
            line.label, line.status, line.targets, line.max_targets
        ));
    }
    fit(text)
}

/// Who an event is about, from its body.
fn event_user(data: &Value) -> Who {
    let user = &data["user"];
    Who {
        username: user["username"].as_str().map(str::to_owned),
        first_name: None,
        telegram_user_id: user["telegram_user_id"].as_i64(),
    }
}

fn time_field(value: &Value) -> Option<DateTime<Utc>> {
    value
        .as_str()
        .and_then(|text| DateTime::parse_from_rfc3339(text).ok())
        .map(|t| t.with_timezone(&Utc))
}

/// The notification for an event (its stored JSON body), or None for events the bot does not
/// tell about.
pub fn notification(kind: EventType, body: &str) -> Option<String> {
    let body: Value = serde_json::from_str(body).ok()?;
    let data = &body["data"];
    // Times are written relative to the event's own (dates only when another day).
    let event_time = time_field(&body["timestamp"]);
    let reference = |time: DateTime<Utc>| event_time.unwrap_or(time);
    match kind {
        EventType::UserOnline => {
            let since = time_field(&data["session"]["started_at"]).or(event_time)?;
            Some(format!(
                "🟢 {} is online (since {})",
                event_user(data),
                at(since, reference(since))
            ))
        }
        EventType::UserOffline => {
            let seen = time_field(&data["was_online"])
                .or_else(|| time_field(&data["observed_at"]))
                .or(event_time)?;
            Some(format!(
                "⚪ {} went offline (last seen {})",
                event_user(data),
                at(seen, reference(seen))
            ))
        }
        EventType::SessionClosed => {
            let session = &data["session"];
            let started = time_field(&session["started_at"])?;
            let ended = time_field(&session["ended_at"])
                .or_else(|| time_field(&session["last_online_at"]))?;
            Some(format!(
                "⏹ {} was online {}–{} ({})",
                event_user(data),
                at(started, reference(started)).trim_end_matches(" UTC"),
                at(ended, reference(ended)),
                duration((ended - started).num_seconds())
            ))
        }
        EventType::AccountBanned => {
            let account = data["account"]["label"]
                .as_str()
                .or_else(|| data["label"].as_str())
                .or_else(|| data["account"].as_str())
                .unwrap_or("an account");
            let reason = data["reason"]
                .as_str()
                .map(|r| format!(": {r}"))
                .unwrap_or_default();
            Some(format!(
                "⛔ Account {account} is banned or logged out{reason}. Its work moves to the other accounts."
            ))
        }
        EventType::Alert => Some(alert(data)),
        _ => None,
    }
}

fn alert(data: &Value) -> String {
    if data["alert"] == "webhook_disabled" {
        return format!(
            "⚠️ Webhook {} was disabled: {}. PATCH /api/webhooks/{} {{\"status\": \"active\"}} enables it again.",
            data["url"].as_str().unwrap_or("?"),
            data["reason"].as_str().unwrap_or("it kept failing"),
            data["webhook_id"].as_str().unwrap_or("?"),
        );
    }
    let what = data["alert"].as_str().unwrap_or("alert");
    let message = data["message"]
        .as_str()
        .map(str::to_owned)
        .unwrap_or_else(|| data.to_string());
    fit(format!("⚠️ Alert ({what}): {message}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, TimeZone};
    use serde_json::json;
    use tgwatch_core::presence::stats::{Window, statistics};

    fn t(h: u32, m: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 26, h, m, 0)
            .single()
            .expect("time")
    }

    fn alice() -> Who {
        Who {
            username: Some("alice_w".into()),
            first_name: Some("Alice".into()),
            telegram_user_id: Some(1001),
        }
    }

    #[test]
    fn times_and_durations_read_naturally() {
        assert_eq!(at(t(14, 3), t(20, 0)), "14:03 UTC");
        assert_eq!(
            at(t(14, 3), t(14, 3) + Duration::days(1)),
            "Nov 26, 14:03 UTC"
        );
        assert_eq!(
            at(t(14, 3), t(14, 3) + Duration::days(400)),
            "2026-11-26 14:03 UTC"
        );
        assert_eq!(duration(42), "42 s");
        assert_eq!(duration(600), "10 min");
        assert_eq!(duration(3_900), "1 h 05 min");
        assert_eq!(duration(2 * 86_400 + 3 * 3600), "2 d 3 h");
        assert_eq!(window(24), "24 h");
        assert_eq!(window(72), "3 days");
        assert_eq!(window(25), "25 h");
        let nameless = Who {
            username: None,
            first_name: None,
            telegram_user_id: Some(7),
        };
        assert_eq!(nameless.to_string(), "user 7");
    }

    #[test]
    fn presence_follows_the_newest_knowledge() {
        let open = Session {
            started_at: t(14, 0),
            last_online_at: t(14, 10),
            ended_at: None,
        };
        assert_eq!(
            presence(Some(&open), None, None),
            Presence::Online { since: t(14, 0) }
        );
        let offline = Newest {
            kind: StatusKind::Offline,
            was_online: Some(t(13, 0)),
            observed_at: t(14, 0),
        };
        assert_eq!(
            presence(None, Some(&offline), Some(t(12, 0))),
            Presence::Offline {
                last_seen: Some(t(13, 0))
            }
        );
        let hidden = Newest {
            kind: StatusKind::Recently,
            was_online: None,
            observed_at: t(14, 0),
        };
        assert_eq!(
            presence(None, Some(&hidden), None),
            Presence::Hidden {
                shown: StatusKind::Recently,
                last_seen: None
            }
        );
        assert_eq!(presence(None, None, None), Presence::Unknown);
    }

    #[test]
    fn status_lines() {
        let now = t(14, 30);
        let text = status(
            &[
                (alice(), Presence::Online { since: t(14, 0) }),
                (
                    Who {
                        username: Some("bob_b".into()),
                        first_name: None,
                        telegram_user_id: None,
                    },
                    Presence::Offline {
                        last_seen: Some(t(12, 30)),
                    },
                ),
            ],
            now,
        );
        assert_eq!(
            text,
            "🟢 @alice_w: online since 14:00 UTC (30 min)\n⚪ @bob_b: offline, last seen 12:30 UTC (2 h 00 min ago)"
        );
        assert!(status(&[], now).contains("/track"));
    }

    #[test]
    fn stats_text_shows_every_figure() {
        let now = t(20, 0);
        let window = Window::last_hours(24, now).expect("window");
        let sessions = [
            Session {
                started_at: t(10, 0),
                last_online_at: t(11, 0),
                ended_at: Some(t(11, 0)),
            },
            Session {
                started_at: t(12, 0),
                last_online_at: t(12, 30),
                ended_at: Some(t(12, 30)),
            },
        ];
        let figures = statistics(&sessions, window, now);
        let text = stats(Some(&alice()), 24, &figures, now);
        assert_eq!(
            text,
            "📊 @alice_w, last 24 h\nOnline: 1 h 30 min (6.2 % of the time)\nSessions: 2 (average 45 min, longest 1 h 00 min)\nFirst online: 10:00 UTC\nLast online: 12:30 UTC"
        );
        let empty = statistics(&[], window, now);
        assert!(stats(Some(&alice()), 24, &empty, now).ends_with("Not seen online in this time."));
        let digest_text = digest(&[(alice(), figures)], now);
        assert!(
            digest_text
                .contains("• @alice_w: online 1 h 30 min in 2 sessions (longest 1 h 00 min)"),
            "{digest_text}"
        );
    }

    #[test]
    fn notifications_from_event_bodies() {
        let body = json!({
            "type": "user_online",
            "timestamp": "2026-11-26T14:05:00Z",
            "data": {
                "user": {"tracked_user_id": "x", "telegram_user_id": 1001, "username": "alice_w"},
                "session": {"started_at": "2026-11-26T14:03:10Z", "last_online_at": "2026-11-26T14:05:00Z", "ended_at": null},
            }
        })
        .to_string();
        assert_eq!(
            notification(EventType::UserOnline, &body).as_deref(),
            Some("🟢 @alice_w is online (since 14:03 UTC)")
        );
        let closed = json!({
            "type": "session_closed",
            "timestamp": "2026-11-26T14:40:00Z",
            "data": {
                "user": {"username": "alice_w"},
                "session": {"started_at": "2026-11-26T14:03:00Z", "last_online_at": "2026-11-26T14:25:00Z", "ended_at": "2026-11-26T14:25:00Z"},
            }
        })
        .to_string();
        assert_eq!(
            notification(EventType::SessionClosed, &closed).as_deref(),
            Some("⏹ @alice_w was online 14:03–14:25 UTC (22 min)")
        );
        let alert = json!({
            "type": "alert",
            "timestamp": "2026-11-26T14:40:00Z",
            "data": {"alert": "webhook_disabled", "webhook_id": "w1", "url": "http://x", "reason": "410 Gone"}
        })
        .to_string();
        let text = notification(EventType::Alert, &alert).expect("alert text");
        assert!(
            text.starts_with("⚠️ Webhook http://x was disabled: 410 Gone."),
            "{text}"
        );
        assert_eq!(notification(EventType::NewMessage, &alert), None);
        assert_eq!(notification(EventType::UserOnline, "not json"), None);
    }

    #[test]
    fn channel_and_account_lists() {
        assert_eq!(channels(&[]), "No channels are monitored yet.");
        let listed = channels(&[ChannelLine {
            name: "@news".into(),
            title: Some("All the news".into()),
            status: "active".into(),
        }]);
        assert_eq!(
            listed,
            "Monitored channels (1):\n• @news “All the news”: active\n"
        );
        let now = t(12, 0);
        let text = accounts(
            &[AccountLine {
                label: "main".into(),
                status: "limited".into(),
                authorized: true,
                targets: 3,
                max_targets: 1000,
                last_active: Some(t(11, 58)),
            }],
            now,
        );
        assert_eq!(
            text,
            "Accounts (1):\n• main: limited, 3/1000 users, last active 11:58 UTC\n"
        );
    }

    #[test]
    fn long_texts_are_cut_at_a_line() {
        let long: String = (0..2000).map(|i| format!("line {i}\n")).collect();
        let cut = fit(long);
        assert!(cut.chars().count() <= MAX_MESSAGE_CHARS);
        assert!(cut.ends_with("more lines"), "{}", &cut[cut.len() - 40..]);
    }
}
