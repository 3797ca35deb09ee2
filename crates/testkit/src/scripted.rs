//! A scripted Telegram: plays a scenario (who is online when, which calls hit FLOOD_WAIT)
//! against the service clock, behind the same port as the real client.
//!
//! `demo`, the integration tests and the benchmark use it; it counts the calls made to it so the
//! batching of polls can be measured.

use std::{
    cmp::Reverse,
    collections::{BinaryHeap, HashMap, HashSet},
    path::Path,
    sync::{
        Arc, Mutex, PoisonError, Weak,
        atomic::{AtomicU64, Ordering},
    },
};

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use rand::{Rng, SeedableRng, rngs::StdRng};
use serde::Deserialize;
use tokio::sync::mpsc;

use tgwatch_core::{clock::Clock, presence::Status};
use tgwatch_telegram::{
    AccountIdentity, ChannelMessage, ChannelRef, ChatKind, ChatMessage, Connection, Dialog,
    InputChannel, InputUser, SelfUser, TelegramChannel, TelegramConnector, TelegramError,
    TelegramSession, TelegramUser, USERNAME_NOT_A_CHANNEL, Update, Username,
};

/// How long Telegram keeps a user "online" after a sign of activity.
const ONLINE_EXPIRY_SECONDS: i64 = 300;

/// A scenario file. Times are seconds after the service clock starts.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    #[serde(default)]
    pub users: Vec<ScenarioUser>,
    #[serde(default)]
    pub flood_waits: Vec<ScenarioFloodWait>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioUser {
    pub id: i64,
    pub username: Option<String>,
    pub first_name: Option<String>,
    /// Online spans `[from, to)` in seconds, in order.
    #[serde(default)]
    pub online: Vec<[i64; 2]>,
    /// Play the spans again every this many seconds.
    pub repeat_every: Option<i64>,
    /// The user hides the exact status: always "recently".
    #[serde(default)]
    pub hidden: bool,
    /// Telegram pushes this user's status changes (a contact of the account).
    #[serde(default)]
    pub push: bool,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioFloodWait {
    /// The account that gets it; any account when absent.
    pub account: Option<String>,
    /// From this second on, the next call gets FLOOD_WAIT.
    pub at: i64,
    pub seconds: u32,
}

#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    #[error("cannot read scenario {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("scenario {path}: {message}")]
    Invalid { path: String, message: String },
}

impl Scenario {
    pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
        let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Scenario::from_toml(&text).map_err(|message| ScenarioError::Invalid {
            path: path.display().to_string(),
            message,
        })
    }

    /// Parses and checks a scenario; the error says what is wrong.
    pub fn from_toml(text: &str) -> Result<Scenario, String> {
        let scenario: Scenario = toml::from_str(text).map_err(|e| e.to_string())?;
        scenario.validate()?;
        Ok(scenario)
    }

    fn validate(&self) -> Result<(), String> {
        let mut ids = HashSet::new();
        for user in &self.users {
            if !ids.insert(user.id) {
                return Err(format!("user id {} appears twice", user.id));
            }
            if let Some(username) = &user.username {
                Username::parse(username).map_err(|e| e.to_string())?;
            }
            let mut previous_end = i64::MIN;
            for [from, to] in &user.online {
                if from >= to || *from < previous_end {
                    return Err(format!(
                        "user {}: online spans must be [from, to) with from < to, in order",
                        user.id
                    ));
                }
                previous_end = *to;
            }
            if let Some(period) = user.repeat_every
                && (period <= 0 || previous_end > period)
            {
                return Err(format!(
                    "user {}: repeat_every must be positive and cover every span",
                    user.id
                ));
            }
        }
        Ok(())
    }

    /// A scenario of `count` users with random daily habits: a few visits a day of a few minutes
    /// to an hour, some of them brief returns within the gap. One user in twenty hides the
    /// status, one in five is a contact whose changes are pushed.
    pub fn generated(count: usize, seed: u64) -> Scenario {
        const DAY: i64 = 86_400;
        let mut rng = StdRng::seed_from_u64(seed);
        let users = (0..count)
            .map(|index| {
                let mut online = Vec::new();
                let mut cursor = rng.random_range(0..3_600);
                while cursor < DAY - 7_200 {
                    let length = rng.random_range(120..3_600);
                    online.push([cursor, cursor + length]);
                    // Mostly long breaks, sometimes a quick return.
                    cursor += length
                        + if rng.random_bool(0.2) {
                            rng.random_range(30..170)
                        } else {
                            rng.random_range(1_800..14_400)
                        };
                }
                ScenarioUser {
                    id: 100_000 + index as i64,
                    username: Some(format!("user{index:05}")),
                    first_name: Some(format!("User {index}")),
                    online,
                    repeat_every: Some(DAY),
                    hidden: index % 20 == 19,
                    push: index % 5 == 0,
                }
            })
            .collect();
        Scenario {
            users,
            flood_waits: Vec::new(),
        }
    }
}

impl ScenarioUser {
    /// A stable access hash derived from the id: the scripted Telegram checks it like the real one.
    pub fn access_hash(&self) -> i64 {
        self.id.wrapping_mul(0x5DEE_CE66D) ^ 0x2545_F491_4F6C_DD1D
    }

    /// Where `second` falls in the repeating pattern: (start of its cycle, offset in the cycle).
    fn cycle_of(&self, second: i64) -> (i64, i64) {
        match self.repeat_every {
            Some(period) => {
                let offset = second.rem_euclid(period);
                (second - offset, offset)
            }
            None => (0, second),
        }
    }

    pub(crate) fn status_at(&self, second: i64, started_at: DateTime<Utc>) -> Status {
        if self.hidden {
            return Status::Recently;
        }
        let at = |s: i64| started_at + Duration::seconds(s);
        let (cycle, offset) = self.cycle_of(second);
        if self
            .online
            .iter()
            .any(|[from, to]| *from <= offset && offset < *to)
        {
            return Status::Online {
                expires: at(second + ONLINE_EXPIRY_SECONDS),
            };
        }
        let last_end_in_cycle = self
            .online
            .iter()
            .rev()
            .find(|[_, to]| *to <= offset)
            .map(|[_, to]| cycle + to);
        let last_end =
            last_end_in_cycle.or_else(|| match (self.repeat_every, self.online.last()) {
                (Some(period), Some([_, to])) if cycle >= period => Some(cycle - period + to),
                _ => None,
            });
        Status::Offline {
            was_online: last_end.map(at),
        }
    }

    /// The first second after `second` at which the status changes.
    pub(crate) fn next_change_after(&self, second: i64) -> Option<i64> {
        if self.hidden || self.online.is_empty() {
            return None;
        }
        let (cycle, offset) = self.cycle_of(second);
        let in_cycle = self
            .online
            .iter()
            .flat_map(|[from, to]| [*from, *to])
            .find(|edge| *edge > offset)
            .map(|edge| cycle + edge);
        in_cycle.or_else(|| {
            self.repeat_every
                .zip(self.online.first())
                .map(|(period, [from, _])| cycle + period + from)
        })
    }

    fn as_telegram_user(&self, second: i64, started_at: DateTime<Utc>) -> TelegramUser {
        TelegramUser {
            id: self.id,
            access_hash: self.access_hash(),
            username: self.username.clone(),
            first_name: self.first_name.clone(),
            status: self.status_at(second, started_at),
        }
    }
}

/// How many calls the scripted Telegram has answered.
#[derive(Debug, Default)]
pub struct CallCounts {
    /// Connections made (an account's start and every reconnect).
    pub connects: AtomicU64,
    pub get_users_calls: AtomicU64,
    pub users_requested: AtomicU64,
    pub resolve_calls: AtomicU64,
    pub flood_waits_sent: AtomicU64,
}

struct FloodWaitState {
    rule: ScenarioFloodWait,
    /// Set when the rule fires: calls until then are refused.
    until: Option<DateTime<Utc>>,
}

struct Subscriber {
    known_users: Arc<Mutex<HashSet<i64>>>,
    /// Weak: the connection's session holds the only sender, so that dropping the session
    /// ends its update stream, as it does with grammers.
    updates: mpsc::WeakSender<Update>,
}

pub struct ScriptedTelegram {
    clock: Clock,
    started_at: DateTime<Utc>,
    users: HashMap<i64, ScenarioUser>,
    by_username: HashMap<String, i64>,
    flood_waits: Mutex<Vec<FloodWaitState>>,
    subscribers: Mutex<Vec<Subscriber>>,
    counts: CallCounts,
    /// The `Arc` that [`ScriptedTelegram::start`] returns: every session keeps a handle on the
    /// scenario it plays.
    this: Weak<ScriptedTelegram>,
}

/// Locks a mutex; a panic elsewhere while holding it leaves plain data we can still use.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl ScriptedTelegram {
    /// Starts playing `scenario` from the clock's current time. Must run inside a tokio runtime:
    /// a task pushes status changes to connected accounts.
    pub fn start(scenario: Scenario, clock: Clock) -> Arc<ScriptedTelegram> {
        ScriptedTelegram::start_at(scenario, clock, clock.now())
    }

    /// Like [`ScriptedTelegram::start`], with second 0 of the scenario at `origin` (tests put it
    /// after the service's start-up, whose length varies).
    pub fn start_at(
        scenario: Scenario,
        clock: Clock,
        origin: DateTime<Utc>,
    ) -> Arc<ScriptedTelegram> {
        let by_username = scenario
            .users
            .iter()
            .filter_map(|user| {
                let username = Username::parse(user.username.as_deref()?).ok()?;
                Some((username.as_str().to_owned(), user.id))
            })
            .collect();
        let flood_waits = scenario
            .flood_waits
            .into_iter()
            .map(|rule| FloodWaitState { rule, until: None })
            .collect();
        let telegram = Arc::new_cyclic(|this| ScriptedTelegram {
            clock,
            started_at: origin,
            users: scenario.users.into_iter().map(|u| (u.id, u)).collect(),
            by_username,
            flood_waits: Mutex::new(flood_waits),
            subscribers: Mutex::new(Vec::new()),
            counts: CallCounts::default(),
            this: this.clone(),
        });
        tokio::spawn(push_status_changes(Arc::downgrade(&telegram)));
        telegram
    }

    /// Second 0 of the scenario on the service clock.
    pub fn started_at(&self) -> DateTime<Utc> {
        self.started_at
    }

    pub fn counts(&self) -> &CallCounts {
        &self.counts
    }

    fn second_now(&self) -> i64 {
        (self.clock.now() - self.started_at).num_seconds()
    }

    /// FLOOD_WAIT if a scenario rule applies to this account now.
    fn check_flood_wait(&self, account: &str) -> Result<(), TelegramError> {
        let now = self.clock.now();
        let second = self.second_now();
        for state in lock(&self.flood_waits).iter_mut() {
            let for_another_account = state.rule.account.as_deref().is_some_and(|a| a != account);
            if for_another_account || second < state.rule.at {
                continue;
            }
            let until = *state
                .until
                .get_or_insert(now + Duration::seconds(i64::from(state.rule.seconds)));
            if now < until {
                self.counts.flood_waits_sent.fetch_add(1, Ordering::Relaxed);
                let seconds = (until - now).num_seconds().max(1) as u32;
                return Err(TelegramError::FloodWait { seconds });
            }
        }
        Ok(())
    }
}

/// Pushes each status change of a `push` user to the accounts that know the user, at the moment
/// it happens on the service clock. Stops when the scripted Telegram is dropped.
async fn push_status_changes(telegram: Weak<ScriptedTelegram>) {
    let mut next_changes: BinaryHeap<Reverse<(i64, i64)>> = {
        let Some(telegram) = telegram.upgrade() else {
            return;
        };
        telegram
            .users
            .values()
            .filter(|user| user.push)
            .filter_map(|user| Some(Reverse((user.next_change_after(-1)?, user.id))))
            .collect()
    };
    while let Some(Reverse((second, user_id))) = next_changes.pop() {
        let (clock, started_at) = match telegram.upgrade() {
            Some(telegram) => (telegram.clock, telegram.started_at),
            None => return,
        };
        clock
            .sleep_until(started_at + Duration::seconds(second))
            .await;
        let Some(telegram) = telegram.upgrade() else {
            return;
        };
        let Some(user) = telegram.users.get(&user_id) else {
            continue;
        };
        let update = Update::UserStatus {
            user_id,
            status: user.status_at(second, started_at),
        };
        lock(&telegram.subscribers).retain(|subscriber| {
            let Some(updates) = subscriber.updates.upgrade() else {
                return false; // the connection is closed
            };
            if !lock(&subscriber.known_users).contains(&user_id) {
                return !updates.is_closed();
            }
            // A full channel drops the update, as grammers does; a closed one unsubscribes.
            !matches!(
                updates.try_send(update.clone()),
                Err(mpsc::error::TrySendError::Closed(_))
            )
        });
        if let Some(next) = user.next_change_after(second) {
            next_changes.push(Reverse((next, user_id)));
        }
    }
}

#[async_trait]
impl TelegramConnector for ScriptedTelegram {
    async fn connect(&self, account: &AccountIdentity) -> Result<Connection, TelegramError> {
        // Always there: a ScriptedTelegram only exists inside the `Arc` that `start` made.
        let telegram = self
            .this
            .upgrade()
            .ok_or_else(|| TelegramError::Connection("the scripted Telegram stopped".into()))?;
        telegram.counts.connects.fetch_add(1, Ordering::Relaxed);
        let (updates_tx, updates) = mpsc::channel(1024);
        let known_users = Arc::new(Mutex::new(HashSet::new()));
        lock(&self.subscribers).push(Subscriber {
            known_users: known_users.clone(),
            updates: updates_tx.downgrade(),
        });
        let session = ScriptedSession {
            telegram,
            account: account.label.clone(),
            known_users,
            _updates: updates_tx,
        };
        Ok(Connection {
            session: Arc::new(session),
            updates,
        })
    }
}

struct ScriptedSession {
    telegram: Arc<ScriptedTelegram>,
    account: String,
    known_users: Arc<Mutex<HashSet<i64>>>,
    /// The connection's update stream lives as long as this session.
    _updates: mpsc::Sender<Update>,
}

#[async_trait]
impl TelegramSession for ScriptedSession {
    async fn get_users(&self, users: &[InputUser]) -> Result<Vec<TelegramUser>, TelegramError> {
        let telegram = &self.telegram;
        telegram.check_flood_wait(&self.account)?;
        telegram
            .counts
            .get_users_calls
            .fetch_add(1, Ordering::Relaxed);
        telegram
            .counts
            .users_requested
            .fetch_add(users.len() as u64, Ordering::Relaxed);
        if users.len() > 200 {
            return Err(TelegramError::Rpc {
                code: 400,
                name: "LIMIT_INVALID".into(),
            });
        }
        let second = telegram.second_now();
        let found: Vec<TelegramUser> = users
            .iter()
            .filter_map(|input| {
                let user = telegram.users.get(&input.id)?;
                (user.access_hash() == input.access_hash)
                    .then(|| user.as_telegram_user(second, telegram.started_at))
            })
            .collect();
        lock(&self.known_users).extend(found.iter().map(|user| user.id));
        Ok(found)
    }

    /// The scripted Telegram plays the people an account watches, not the accounts themselves:
    /// it has no self user, and answers as Telegram does for a user that does not exist.
    async fn get_me(&self) -> Result<SelfUser, TelegramError> {
        self.telegram.check_flood_wait(&self.account)?;
        Err(no_such("USER_EMPTY"))
    }

    async fn resolve_username(
        &self,
        username: &Username,
    ) -> Result<Option<TelegramUser>, TelegramError> {
        let telegram = &self.telegram;
        telegram.check_flood_wait(&self.account)?;
        telegram
            .counts
            .resolve_calls
            .fetch_add(1, Ordering::Relaxed);
        let user = telegram
            .by_username
            .get(username.as_str())
            .and_then(|id| telegram.users.get(id))
            .map(|user| user.as_telegram_user(telegram.second_now(), telegram.started_at));
        if let Some(user) = &user {
            lock(&self.known_users).insert(user.id);
        }
        Ok(user)
    }

    // The scripted Telegram has no channels and no chats: it answers as a Telegram in which
    // none exist would.

    async fn join_channel(&self, channel: &ChannelRef) -> Result<TelegramChannel, TelegramError> {
        self.telegram.check_flood_wait(&self.account)?;
        let name = match channel {
            ChannelRef::Username(username)
                if self.telegram.by_username.contains_key(username.as_str()) =>
            {
                USERNAME_NOT_A_CHANNEL
            }
            ChannelRef::Username(_) => "USERNAME_NOT_OCCUPIED",
            ChannelRef::Invite(_) => "INVITE_HASH_INVALID",
            ChannelRef::Id(_) => "CHANNEL_INVALID",
        };
        Err(no_such(name))
    }

    async fn channel_history(
        &self,
        _channel: InputChannel,
        _after_id: i32,
        _limit: usize,
    ) -> Result<Vec<ChannelMessage>, TelegramError> {
        self.telegram.check_flood_wait(&self.account)?;
        Err(no_such("CHANNEL_INVALID"))
    }

    async fn channel_info(&self, _channel: InputChannel) -> Result<TelegramChannel, TelegramError> {
        self.telegram.check_flood_wait(&self.account)?;
        Err(no_such("CHANNEL_INVALID"))
    }

    async fn leave_channel(&self, _channel: InputChannel) -> Result<(), TelegramError> {
        self.telegram.check_flood_wait(&self.account)?;
        Err(no_such("CHANNEL_INVALID"))
    }

    async fn dialogs(&self, _limit: usize) -> Result<Vec<Dialog>, TelegramError> {
        self.telegram.check_flood_wait(&self.account)?;
        Ok(Vec::new())
    }

    /// A scripted user's chat exists but is empty; any other chat does not exist.
    async fn chat_history(
        &self,
        chat_id: i64,
        _before_id: i32,
        _limit: usize,
    ) -> Result<Vec<ChatMessage>, TelegramError> {
        self.telegram.check_flood_wait(&self.account)?;
        match ChatKind::of_chat_id(chat_id) {
            Some((ChatKind::User, id)) if self.telegram.users.contains_key(&id) => Ok(Vec::new()),
            _ => Err(no_such("PEER_ID_INVALID")),
        }
    }
}

/// The 400 Telegram answers for something that does not exist.
fn no_such(name: &str) -> TelegramError {
    TelegramError::Rpc {
        code: 400,
        name: name.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tgwatch_telegram::{ChannelRef, ChatKind};

    #[tokio::test]
    async fn there_are_no_channels_and_no_chats() {
        let scenario = Scenario::from_toml(
            r#"
            [[users]]
            id = 42
            username = "alice_w"
            "#,
        )
        .expect("scenario");
        let telegram = ScriptedTelegram::start(scenario, Clock::fast(1.0));
        let identity = AccountIdentity {
            label: "main".into(),
            phone: None,
        };
        let session = telegram.connect(&identity).await.expect("connect").session;

        for (reference, name) in [
            ("@alice_w", USERNAME_NOT_A_CHANNEL),
            ("@nobody_here", "USERNAME_NOT_OCCUPIED"),
            ("https://t.me/+AbCd", "INVITE_HASH_INVALID"),
        ] {
            let reference = ChannelRef::parse(reference).expect("reference");
            let error = session
                .join_channel(&reference)
                .await
                .expect_err("no channels");
            assert_eq!(error, no_such(name));
            assert!(error.is_not_found());
        }
        let channel = InputChannel {
            id: 1,
            access_hash: 1,
        };
        assert!(session.channel_info(channel).await.is_err());
        assert!(session.channel_history(channel, 0, 10).await.is_err());
        assert_eq!(session.dialogs(10).await, Ok(Vec::new()));
        assert_eq!(
            session
                .chat_history(ChatKind::User.chat_id(42), 0, 10)
                .await,
            Ok(Vec::new())
        );
        assert!(session.chat_history(-5, 0, 10).await.is_err());
    }
}
