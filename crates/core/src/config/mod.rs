//! Configuration: built-in defaults, then `config.toml`, then `TGWATCH_` environment variables
//! (`TGWATCH_HTTP__ADMIN_TOKEN` sets `http.admin_token`), then [`Config::validate`].
//!
//! Unknown keys are errors, so that a typo cannot silently fall back to a default. Every error
//! names the key and where its value came from.

pub mod diff;
pub mod locate;

use std::{net::SocketAddr, path::Path, time::Duration};

use figment::{
    Figment,
    providers::{Env, Format, Serialized, Toml},
};
use serde::{Deserialize, Serialize};

use crate::telegram::Username;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration: {0}")]
    Load(#[from] Box<figment::Error>),
    #[error("configuration: `{key}`: {message}")]
    Invalid { key: String, message: String },
}

/// Where a row (account, tracked user, channel, webhook endpoint) comes from: declared in
/// config.toml, which then owns it, or made through the API (or the bot), which the file never
/// touches. Stored as its `as_str` text in the rows' `source` column.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(
    feature = "sea-orm",
    derive(sea_orm::EnumIter, sea_orm::DeriveActiveEnum),
    sea_orm(rs_type = "String", db_type = "Text")
)]
pub enum Origin {
    #[cfg_attr(feature = "sea-orm", sea_orm(string_value = "config"))]
    Config,
    #[cfg_attr(feature = "sea-orm", sea_orm(string_value = "api"))]
    Api,
}

impl Origin {
    pub fn as_str(self) -> &'static str {
        match self {
            Origin::Config => "config",
            Origin::Api => "api",
        }
    }
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

fn invalid(key: &str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.to_owned(),
        message: message.into(),
    }
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub database: DatabaseConfig,
    pub http: HttpConfig,
    pub presence: PresenceConfig,
    pub telegram: TelegramConfig,
    pub security: SecurityConfig,
    pub logins: LoginsConfig,
    pub webhooks: WebhooksConfig,
    pub bot: BotConfig,
    pub accounts: Vec<AccountConfig>,
    pub tracked_users: Vec<TrackedUserConfig>,
    pub channels: Vec<ChannelConfig>,
    pub reload: ReloadConfig,
    pub jobs: JobsConfig,
    pub logs: LogsConfig,
    pub retention: RetentionConfig,
    pub logging: LoggingConfig,
    pub live: LiveConfig,
    pub supervision: SupervisionConfig,
    pub cluster: ClusterConfig,
    pub testing: TestingConfig,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebhooksConfig {
    /// Waits before the 2nd, 3rd, ... attempt, in seconds of service time (Svix's schedule).
    pub retry_schedule_seconds: Vec<f64>,
    /// Relative jitter of each wait (0.2 = ±20 %).
    pub jitter: f64,
    /// Least wait after a timeout or a 429, in seconds.
    pub slow_down_seconds: f64,
    /// How long one request may take (real seconds).
    pub timeout_seconds: f64,
    /// Disable an endpoint that has failed for this long...
    pub disable_after_hours: f64,
    /// ...or that has used up every attempt on this many messages in a row.
    pub disable_after_failed_messages: i32,
    /// Requests in flight to one endpoint at most, so a slow consumer holds up only itself.
    pub max_in_flight_per_endpoint: usize,
    /// Allow URLs on private, loopback and link-local addresses (tests, internal consumers).
    pub allow_private_addresses: bool,
    /// The networks webhooks may reach (`["127.0.0.0/8", "203.0.113.0/24"]`; a bare address
    /// is one host). Empty: any public address (and private ones with
    /// `allow_private_addresses`). Set: only addresses inside these networks, private ones
    /// included, whatever `allow_private_addresses` says.
    pub allowed_destinations: Vec<String>,
    /// How long a rotated-out secret still signs, in hours.
    pub secret_overlap_hours: f64,
    /// How often the dispatcher looks for due messages when nothing wakes it (milliseconds).
    pub poll_interval_ms: u64,
    /// Endpoints declared here are created at start, updated to match, and removed when they
    /// disappear from the file (endpoints added through the API are left alone).
    pub endpoints: Vec<WebhookEndpointConfig>,
}

impl Default for WebhooksConfig {
    fn default() -> Self {
        WebhooksConfig {
            retry_schedule_seconds: vec![5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 36000.0],
            jitter: 0.2,
            slow_down_seconds: 60.0,
            timeout_seconds: 15.0,
            disable_after_hours: 120.0,
            disable_after_failed_messages: 50,
            max_in_flight_per_endpoint: 64,
            allow_private_addresses: false,
            allowed_destinations: Vec::new(),
            secret_overlap_hours: 24.0,
            poll_interval_ms: 200,
            endpoints: Vec::new(),
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookEndpointConfig {
    /// Unique name; ties the entry to its database row.
    pub name: String,
    pub url: String,
    /// Event types, or ["all"].
    #[serde(default = "all_events")]
    pub events: Vec<String>,
    /// `whsec_...`: the consumer's copy of the signing secret. Prefer the environment:
    /// TGWATCH_WEBHOOKS__... is awkward for lists, so keep this file private.
    pub secret: Secret,
    /// Only events about this tracked user (username).
    pub tracked_user: Option<String>,
}

fn all_events() -> Vec<String> {
    vec!["all".to_owned()]
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseConfig {
    /// `sqlite://PATH?mode=rwc` or `postgres://user@host/db`.
    pub url: String,
    pub max_connections: u32,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        DatabaseConfig {
            url: "sqlite://tgwatch.db?mode=rwc".to_owned(),
            max_connections: 10,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    pub bind: SocketAddr,
    /// Bearer token of the admin API. Required by `run`; `demo` makes one up.
    pub admin_token: Option<Secret>,
    /// Serve `GET /metrics` without the admin token (like `/api/health`). With false it needs
    /// `Authorization: Bearer <admin_token>`.
    pub metrics_public: bool,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            bind: SocketAddr::from(([127, 0, 0, 1], 8080)),
            admin_token: None,
            metrics_public: true,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PresenceConfig {
    /// Each tracked user is polled again after a random interval in [min, max].
    pub poll_min_seconds: u64,
    pub poll_max_seconds: u64,
    /// An offline spell shorter than this does not end an online session.
    pub gap_seconds: u64,
    /// Most users asked in one `users.getUsers` call (Telegram allows 200).
    pub batch_size: usize,
    /// How long a due poll may wait for others to fill its batch.
    pub batch_delay_seconds: u64,
    /// How often buffered observations are written to the database (milliseconds, real time).
    pub flush_interval_ms: u64,
}

impl Default for PresenceConfig {
    fn default() -> Self {
        PresenceConfig {
            poll_min_seconds: 60,
            poll_max_seconds: 120,
            gap_seconds: 180,
            batch_size: 200,
            batch_delay_seconds: 20,
            flush_interval_ms: 200,
        }
    }
}

impl PresenceConfig {
    pub fn poll_min(&self) -> Duration {
        Duration::from_secs(self.poll_min_seconds)
    }
    pub fn poll_max(&self) -> Duration {
        Duration::from_secs(self.poll_max_seconds)
    }
    pub fn gap(&self) -> chrono::Duration {
        chrono::Duration::seconds(self.gap_seconds as i64)
    }
    pub fn batch_delay(&self) -> Duration {
        Duration::from_secs(self.batch_delay_seconds)
    }
    pub fn flush_interval(&self) -> Duration {
        Duration::from_millis(self.flush_interval_ms)
    }
}

/// One entry of `webhooks.allowed_destinations`: a CIDR network, or a bare address (one host).
pub fn parse_destination(text: &str) -> Option<ipnet::IpNet> {
    let text = text.trim();
    text.parse::<ipnet::IpNet>().ok().or_else(|| {
        text.parse::<std::net::IpAddr>()
            .ok()
            .map(ipnet::IpNet::from)
    })
}

impl WebhooksConfig {
    /// `allowed_destinations` parsed (each entry was checked by `Config::validate`).
    pub fn allowed_networks(&self) -> Vec<ipnet::IpNet> {
        self.allowed_destinations
            .iter()
            .filter_map(|text| parse_destination(text))
            .collect()
    }

    pub fn retry_policy(&self) -> crate::retry::RetryPolicy {
        crate::retry::RetryPolicy {
            schedule: self
                .retry_schedule_seconds
                .iter()
                .map(|s| Duration::from_secs_f64(*s))
                .collect(),
            jitter: self.jitter,
            slow_down: Duration::from_secs_f64(self.slow_down_seconds.max(0.0)),
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TelegramConfig {
    /// A scenario file played by the scripted Telegram (see `scenarios/`).
    pub scenario: Option<String>,
    /// How much faster than real time the service clock runs (1 in production).
    pub clock_speed: f64,
    /// How long to wait before reconnecting an account whose connection failed, at first;
    /// the wait doubles up to `reconnect_max_seconds`.
    pub reconnect_min_seconds: u64,
    pub reconnect_max_seconds: u64,
    /// Restart intensity limit: an account whose connection fails (or whose actor panics) more
    /// than `restart_limit` times within `restart_window_seconds` (service time) is parked
    /// (status `inactive`),
    /// an alert is raised and its work moves to other accounts.
    pub restart_limit: usize,
    pub restart_window_seconds: u64,
    /// How often (real seconds) each connection checks itself with a cheap request: grammers
    /// notices a dropped connection, or a ban, only when a request is made.
    pub watchdog_seconds: f64,
    /// The application's api_id from my.telegram.org (an account's own `api_id` wins).
    pub api_id: Option<i32>,
    /// The api_hash that goes with `api_id`; a login may also pass its own, which is then
    /// stored sealed with the account.
    pub api_hash: Option<Secret>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SecurityConfig {
    /// The master key that seals sessions, api_hash and 2FA hints in the database. Created with
    /// mode 0600 on first run; `TGWATCH_MASTER_KEY` (base64 or hex) takes its place when set.
    pub master_key_file: String,
}

impl Default for SecurityConfig {
    fn default() -> Self {
        SecurityConfig {
            master_key_file: "tgwatch.key".to_owned(),
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LoginsConfig {
    /// Wrong codes or passwords allowed within `window_minutes`, per account and per client
    /// address; more get 429 with the time to wait. 0 turns the limit off.
    pub max_failures: usize,
    pub window_minutes: u32,
}

impl Default for LoginsConfig {
    fn default() -> Self {
        LoginsConfig {
            max_failures: 5,
            window_minutes: 15,
        }
    }
}

impl LoginsConfig {
    pub fn limits(&self) -> crate::login_limits::LoginLimits {
        crate::login_limits::LoginLimits {
            max_failures: self.max_failures,
            window: chrono::Duration::minutes(i64::from(self.window_minutes)),
        }
    }
}

impl Default for TelegramConfig {
    fn default() -> Self {
        TelegramConfig {
            scenario: None,
            clock_speed: 1.0,
            reconnect_min_seconds: 5,
            reconnect_max_seconds: 300,
            restart_limit: 10,
            restart_window_seconds: 3600,
            watchdog_seconds: 60.0,
            api_id: None,
            api_hash: None,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountConfig {
    /// Unique name of the account; the key that ties this entry to its database row.
    pub label: String,
    pub phone: Option<String>,
    pub api_id: Option<i32>,
    #[serde(default = "default_max_targets")]
    pub max_targets: i32,
    #[serde(default = "default_max_channels")]
    pub max_channels: i32,
}

fn default_max_targets() -> i32 {
    1000
}
fn default_max_channels() -> i32 {
    100
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrackedUserConfig {
    pub username: Option<String>,
    pub telegram_user_id: Option<i64>,
    /// Label of the account that watches this user; the least-loaded one when absent.
    pub account: Option<String>,
    #[serde(default)]
    pub notify: bool,
}

/// A channel to monitor (`[[channels]]`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelConfig {
    /// `@name`, `name` or `https://t.me/name`; an invite link `https://t.me/+hash` (or
    /// `https://t.me/joinchat/hash`); or the numeric channel id.
    pub channel: ChannelName,
    /// Label of the account that joins it; the least-loaded one when absent.
    pub account: Option<String>,
    #[serde(default)]
    pub tags: Vec<String>,
}

/// How a channel is named in config.toml: a string or a number.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ChannelName {
    Id(i64),
    Text(String),
}

impl std::fmt::Display for ChannelName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ChannelName::Id(id) => write!(f, "{id}"),
            ChannelName::Text(text) => f.write_str(text),
        }
    }
}

/// A channel name, checked: a username or an invite link, or a numeric id (which needs an
/// account that already knows the channel).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ChannelTarget {
    Link(crate::telegram::ChannelRef),
    Id(i64),
}

impl ChannelName {
    pub fn target(&self) -> Result<ChannelTarget, String> {
        match self {
            ChannelName::Id(0) => Err("a channel id must not be 0".to_owned()),
            ChannelName::Id(id) => Ok(ChannelTarget::Id(*id)),
            ChannelName::Text(text) => crate::telegram::ChannelRef::parse(text)
                .map(ChannelTarget::Link)
                .map_err(|error| error.to_string()),
        }
    }
}

/// Watching config.toml for edits (see README, "Configuration: live reload").
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReloadConfig {
    /// How often the file is checked for changes (milliseconds, real time).
    pub interval_ms: u64,
}

impl Default for ReloadConfig {
    fn default() -> Self {
        ReloadConfig { interval_ms: 1000 }
    }
}

/// Scheduled jobs (seconds of service time).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct JobsConfig {
    /// How often accounts are checked.
    pub account_health_interval_seconds: u64,
    /// An account that should work but is not running or not connected for this long is
    /// reported.
    pub account_unhealthy_after_seconds: u64,
    /// How often old log rows are deleted.
    pub log_cleanup_interval_seconds: u64,
}

impl Default for JobsConfig {
    fn default() -> Self {
        JobsConfig {
            account_health_interval_seconds: 60,
            account_unhealthy_after_seconds: 300,
            log_cleanup_interval_seconds: 3600,
        }
    }
}

/// The supervision tree (`[supervision]`): how often a singleton child (storage, channels,
/// webhooks, bot, live, and each tracked person's actor) may be restarted, and how long a stop
/// may take. Accounts keep `[telegram] restart_limit` and `restart_window_seconds`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SupervisionConfig {
    /// More restarts than this within `restart_window_seconds` (service time): the service
    /// reports unhealthy and stops cleanly (a person's actor is parked instead).
    pub restart_limit: usize,
    pub restart_window_seconds: u64,
    /// How long the stop on SIGTERM or SIGINT may take (real seconds): past it, what is left is
    /// abandoned, logged, and the process exits with a non-zero code.
    pub shutdown_timeout_seconds: u64,
}

impl Default for SupervisionConfig {
    fn default() -> Self {
        SupervisionConfig {
            restart_limit: 5,
            restart_window_seconds: 60,
            shutdown_timeout_seconds: 10,
        }
    }
}

impl SupervisionConfig {
    pub fn intensity(&self) -> crate::supervision::RestartIntensity {
        crate::supervision::RestartIntensity::new(self.restart_limit, self.restart_window_seconds)
    }

    pub fn shutdown_timeout(&self) -> Duration {
        Duration::from_secs(self.shutdown_timeout_seconds)
    }

    fn collect_problems(&self, problems: &mut Vec<ConfigError>) {
        if !(1..=3600).contains(&self.shutdown_timeout_seconds) {
            problems.push(invalid(
                "supervision.shutdown_timeout_seconds",
                "must be between 1 and 3600",
            ));
        }
    }
}

/// Several instances on one PostgreSQL database (`[cluster]`, see README "Several instances").
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClusterConfig {
    /// How long an instance holds an account or the leadership without renewing it (real
    /// seconds): an instance that dies loses what it held after this long, and the others take
    /// it over. Renewed three times per lease.
    pub lease_seconds: u64,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig { lease_seconds: 30 }
    }
}

impl ClusterConfig {
    pub fn lease(&self) -> Duration {
        Duration::from_secs(self.lease_seconds)
    }

    /// How often an instance renews its heartbeat and leases, and rebalances: a third of the
    /// lease, so that two missed renewals still leave the lease held.
    pub fn heartbeat_interval(&self) -> Duration {
        self.lease() / 3
    }

    fn collect_problems(&self, problems: &mut Vec<ConfigError>) {
        if !(1..=3600).contains(&self.lease_seconds) {
            problems.push(invalid(
                "cluster.lease_seconds",
                "must be between 1 and 3600",
            ));
        }
    }
}

impl TelegramConfig {
    /// How often an account may be restarted (its connection failing or its actor panicking).
    pub fn restart_intensity(&self) -> crate::supervision::RestartIntensity {
        crate::supervision::RestartIntensity::new(self.restart_limit, self.restart_window_seconds)
    }
}

/// Switches for tests and operators (`[testing]`), all off by default.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TestingConfig {
    /// `POST /api/faults/panic` makes an actor panic while handling its next message.
    pub fault_injection: bool,
}

/// The service's own log lines (`[logging]`; the `logs` table is `[logs]`).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LoggingConfig {
    pub format: LogFormat,
}

/// How log lines are written to standard output.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One line per event for people; coloured only on a terminal.
    #[default]
    Text,
    /// One JSON object per line for log collectors.
    Json,
}

impl LoggingConfig {
    /// `[logging]` of the file at `path` with the environment over it, or of the environment
    /// alone; the defaults when that does not parse (whatever reads the file next reports why).
    pub fn of(path: Option<&Path>) -> LoggingConfig {
        let file = match path {
            Some(path) => Toml::file_exact(path),
            None => Toml::string(""),
        };
        Config::extract(file)
            .map(|config| config.logging)
            .unwrap_or_default()
    }
}

/// The `logs` table.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogsConfig {
    /// Rows older than this many days are deleted; 0 keeps them forever.
    pub retention_days: u32,
    /// Rows deleted per statement.
    pub cleanup_batch_size: u64,
}

impl Default for LogsConfig {
    fn default() -> Self {
        LogsConfig {
            retention_days: 30,
            cleanup_batch_size: 1000,
        }
    }
}

/// How long rows of the tables that grow without bound are kept (`[retention]`), in days of
/// service time; 0 keeps them forever. Sessions, statistics and anything still waiting to be
/// delivered are never pruned.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetentionConfig {
    /// Raw observations (`status_checks`), by the time they were made. The newest observation
    /// of each person (and the newest online one) stays: the gap rule resumes from them.
    pub status_checks_days: u32,
    /// Outbox events (`events`) that every consumer has taken (webhooks fanned out and no
    /// webhook message left for them, the bot's messages queued when the bot is on).
    pub events_days: u32,
    /// Webhook attempts (`webhook_deliveries`) and the messages whose every attempt failed
    /// (`webhook_messages`; a delivered one leaves the queue at once), by the time they were
    /// done.
    pub webhook_messages_days: u32,
    /// The bot's messages that are done (sent, or refused for good), by when they were queued.
    pub bot_messages_days: u32,
    /// Channel posts (`messages` and their versions), by the date of the post. Kept forever
    /// unless set.
    pub channel_messages_days: u32,
    /// Rows deleted per statement: a statement holds the write lock, so keep it short.
    pub batch_size: u64,
    /// How often the pruning runs (seconds of service time; also once at start).
    pub interval_seconds: u64,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        RetentionConfig {
            status_checks_days: 30,
            events_days: 30,
            webhook_messages_days: 30,
            bot_messages_days: 30,
            channel_messages_days: 0,
            batch_size: 1000,
            interval_seconds: 3600,
        }
    }
}

impl RetentionConfig {
    /// The largest number of days a table may be kept before "forever" (0) is the way to say it.
    pub const MAX_DAYS: u32 = 36_500;
    /// Rows per delete statement at most: on SQLite a statement holds the only write lock.
    pub const MAX_BATCH: u64 = 10_000;

    fn collect_problems(&self, problems: &mut Vec<ConfigError>) {
        for (key, days) in [
            ("retention.status_checks_days", self.status_checks_days),
            ("retention.events_days", self.events_days),
            (
                "retention.webhook_messages_days",
                self.webhook_messages_days,
            ),
            ("retention.bot_messages_days", self.bot_messages_days),
            (
                "retention.channel_messages_days",
                self.channel_messages_days,
            ),
        ] {
            if days > Self::MAX_DAYS {
                problems.push(invalid(
                    key,
                    format!(
                        "must be at most {} days (0 keeps the rows forever)",
                        Self::MAX_DAYS
                    ),
                ));
            }
        }
        if !(1..=Self::MAX_BATCH).contains(&self.batch_size) {
            problems.push(invalid(
                "retention.batch_size",
                format!("must be between 1 and {}", Self::MAX_BATCH),
            ));
        }
        if self.interval_seconds == 0 {
            problems.push(invalid("retention.interval_seconds", "must be at least 1"));
        }
    }
}

/// The Telegram bot (`[bot]`). Without a token the service runs without it.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BotConfig {
    /// The token from @BotFather. Prefer the environment: TGWATCH_BOT__TOKEN.
    pub token: Option<Secret>,
    /// Where the Bot API lives: Telegram's, a local `telegram-bot-api` server, or a fake in tests.
    pub api_url: String,
    /// Telegram user ids that are admins whatever the database says.
    pub admin_ids: Vec<i64>,
    /// The role of people the bot meets for the first time: `user` lets anyone who finds the
    /// bot track people; `banned` keeps strangers out (recorded, unanswered) until an admin
    /// gives them a role through `/api/telegram-users`.
    pub default_role: String,
    /// Long polling: how long one getUpdates call waits for news (seconds, below the HTTP
    /// client's 17 s timeout).
    pub polling_timeout_seconds: u32,
    /// Also tell subscribed chats when a tracked user goes offline...
    pub notify_offline: bool,
    /// ...and when the gap rule closes a session (with its length).
    pub notify_session_summary: bool,
    /// Hour of the day (UTC) when chats with `/digest on` get the daily summary.
    pub digest_hour: u32,
    /// Events older than this when the bot first sees them are not told (stale news, e.g. after
    /// the bot was off for a long time).
    pub max_event_age_minutes: u64,
    /// Waits before the 2nd, 3rd, ... try of a notification the Bot API did not take (seconds of
    /// service time); the last wait repeats, so a notification is never dropped for an outage.
    /// A 429 waits for Telegram's `retry_after` instead.
    pub retry_schedule_seconds: Vec<f64>,
    /// How often the notifier looks for due notifications when nothing wakes it (ms, real time).
    pub poll_interval_ms: u64,
    /// Telegram's limits, which every message the bot sends is held to (teloxide's Throttle).
    pub messages_per_chat_per_second: u32,
    pub messages_per_chat_per_minute: u32,
    pub messages_per_group_per_minute: u32,
    pub messages_per_second: u32,
}

impl Default for BotConfig {
    fn default() -> Self {
        BotConfig {
            token: None,
            api_url: "https://api.telegram.org".to_owned(),
            admin_ids: Vec::new(),
            default_role: "user".to_owned(),
            polling_timeout_seconds: 10,
            notify_offline: false,
            notify_session_summary: false,
            digest_hour: 9,
            max_event_age_minutes: 60,
            retry_schedule_seconds: vec![5.0, 15.0, 60.0, 300.0, 900.0, 1800.0, 3600.0],
            poll_interval_ms: 1000,
            messages_per_chat_per_second: 1,
            messages_per_chat_per_minute: 20,
            messages_per_group_per_minute: 20,
            messages_per_second: 30,
        }
    }
}

impl BotConfig {
    fn collect_problems(&self, problems: &mut Vec<ConfigError>) {
        // The token goes into every request path: refuse anything that is not `<id>:<secret>`,
        // without ever echoing it.
        if let Some(token) = &self.token {
            let well_formed = token.expose().split_once(':').is_some_and(|(id, secret)| {
                !id.is_empty()
                    && id.bytes().all(|b| b.is_ascii_digit())
                    && !secret.is_empty()
                    && secret
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
            });
            if !well_formed {
                problems.push(invalid(
                    "bot.token",
                    "is not a bot token (`<digits>:<letters, digits, _ and ->` from @BotFather)",
                ));
            }
        }
        match url::Url::parse(&self.api_url) {
            Ok(url) if matches!(url.scheme(), "http" | "https") && !url.cannot_be_a_base() => {}
            _ => {
                problems.push(invalid(
                    "bot.api_url",
                    format!("`{}` is not an http(s) URL", self.api_url),
                ));
            }
        }
        if let Some(id) = self.admin_ids.iter().find(|id| **id <= 0) {
            problems.push(invalid(
                "bot.admin_ids",
                format!("{id} is not a Telegram user id (they are positive)"),
            ));
        }
        match crate::roles::Role::parse(&self.default_role) {
            None => {
                problems.push(invalid(
                    "bot.default_role",
                    format!(
                        "unknown role `{}` (banned, user, vip, moderator or admin)",
                        self.default_role
                    ),
                ));
            }
            Some(crate::roles::Role::Admin) => {
                problems.push(invalid(
                    "bot.default_role",
                    "`admin` would make every stranger an admin: list admins in bot.admin_ids",
                ));
            }
            Some(_) => {}
        }
        if !(1..=15).contains(&self.polling_timeout_seconds) {
            problems.push(invalid(
                "bot.polling_timeout_seconds",
                "must be between 1 and 15 (the Bot API client gives up after 17 s)",
            ));
        }
        if self.digest_hour > 23 {
            problems.push(invalid("bot.digest_hour", "must be an hour from 0 to 23"));
        }
        if self.retry_schedule_seconds.is_empty()
            || self
                .retry_schedule_seconds
                .iter()
                .any(|s| !(s.is_finite() && *s > 0.0))
        {
            problems.push(invalid(
                "bot.retry_schedule_seconds",
                "needs at least one wait, each a positive number of seconds",
            ));
        }
        if self.poll_interval_ms == 0 {
            problems.push(invalid("bot.poll_interval_ms", "must be at least 1"));
        }
        for (key, value) in [
            (
                "bot.messages_per_chat_per_second",
                self.messages_per_chat_per_second,
            ),
            (
                "bot.messages_per_chat_per_minute",
                self.messages_per_chat_per_minute,
            ),
            (
                "bot.messages_per_group_per_minute",
                self.messages_per_group_per_minute,
            ),
            ("bot.messages_per_second", self.messages_per_second),
        ] {
            if value == 0 {
                problems.push(invalid(key, "must be at least 1"));
            }
        }
    }

    pub fn max_event_age(&self) -> chrono::Duration {
        chrono::Duration::minutes(self.max_event_age_minutes.min(i64::MAX as u64 / 60_000) as i64)
    }
}

/// The live WebSocket `/ws` and the dashboard (`[live]`, src/live/). The bot token that checks
/// Mini App sign-ins and sends broadcasts is `bot.token`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LiveConfig {
    /// How often every client gets the `status` message (ms, real time).
    pub status_interval_ms: u64,
    /// Mini App sign-ins (`init_data`) older than this are refused (seconds since `auth_date`).
    pub init_data_max_age_seconds: u64,
    /// The chat broadcasts go to (a supergroup: `-100...`); without it broadcasting is off.
    pub broadcast_chat_id: Option<i64>,
    /// The forum topic (`message_thread_id`) of a broadcast that names none.
    pub broadcast_thread_id: Option<i64>,
    /// Broadcasts (and send-and-pins) one person may send per minute.
    pub broadcasts_per_minute: u32,
    /// Seed 004's `"all"` permission lets its holder broadcast and pin like an admin.
    pub allow_all_broadcast: bool,
    /// Connections held at once; more are answered 503.
    pub max_clients: usize,
    /// How often the server pings each client (seconds, real time)...
    pub heartbeat_seconds: u64,
    /// ...and how long a client may stay silent before it is dropped.
    pub client_timeout_seconds: u64,
}

impl Default for LiveConfig {
    fn default() -> Self {
        LiveConfig {
            status_interval_ms: 1000,
            init_data_max_age_seconds: 86_400,
            broadcast_chat_id: None,
            broadcast_thread_id: None,
            broadcasts_per_minute: 5,
            allow_all_broadcast: true,
            max_clients: 20_000,
            heartbeat_seconds: 10,
            client_timeout_seconds: 30,
        }
    }
}

impl LiveConfig {
    fn collect_problems(&self, problems: &mut Vec<ConfigError>) {
        if !(10..=600_000).contains(&self.status_interval_ms) {
            problems.push(invalid(
                "live.status_interval_ms",
                "must be between 10 and 600000",
            ));
        }
        if self.init_data_max_age_seconds == 0 {
            problems.push(invalid(
                "live.init_data_max_age_seconds",
                "must be at least 1",
            ));
        }
        if self.broadcast_chat_id == Some(0) {
            problems.push(invalid(
                "live.broadcast_chat_id",
                "is not a chat id (a supergroup's is -100...)",
            ));
        }
        if self.broadcast_thread_id.is_some_and(|id| id <= 0) {
            problems.push(invalid(
                "live.broadcast_thread_id",
                "must be a positive forum topic id",
            ));
        }
        for (key, value) in [
            (
                "live.broadcasts_per_minute",
                u64::from(self.broadcasts_per_minute),
            ),
            ("live.max_clients", self.max_clients as u64),
            ("live.heartbeat_seconds", self.heartbeat_seconds),
        ] {
            if value == 0 {
                problems.push(invalid(key, "must be at least 1"));
            }
        }
        if self.client_timeout_seconds <= self.heartbeat_seconds {
            problems.push(invalid(
                "live.client_timeout_seconds",
                format!(
                    "must be above live.heartbeat_seconds ({})",
                    self.heartbeat_seconds
                ),
            ));
        }
    }

    pub fn status_interval(&self) -> Duration {
        Duration::from_millis(self.status_interval_ms)
    }
}

/// A secret string that never shows in logs or debug output.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl Config {
    /// Loads defaults, then the file at `path` if it exists, then the environment, and validates.
    /// Relative paths resolve against the file's folder ([`Config::resolve_paths`]).
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let mut config = Config::extract(Toml::file_exact(path)).map_err(ConfigError::Load)?;
        config.resolve_paths(&config_folder(path));
        config.validate()?;
        Ok(config)
    }

    /// Defaults, then `file`, then the environment: no validation, no path resolution.
    pub fn extract(file: figment::providers::Data<Toml>) -> Result<Config, Box<figment::Error>> {
        Figment::from(Serialized::defaults(Config::default()))
            .merge(file)
            // Only TGWATCH_SECTION__KEY: other TGWATCH_ variables (TGWATCH_TEST_DATABASE_URL,
            // TGWATCH_MASTER_KEY) are not configuration keys.
            .merge(
                Env::prefixed("TGWATCH_")
                    .filter(|key| key.as_str().contains("__"))
                    .split("__"),
            )
            .extract()
            .map_err(Box::new)
    }

    /// Parses a configuration from TOML text (no file, no environment) and validates it.
    pub fn from_toml(text: &str) -> Result<Config, ConfigError> {
        let config: Config = Figment::from(Serialized::defaults(Config::default()))
            .merge(Toml::string(text))
            .extract()
            .map_err(Box::new)?;
        config.validate()?;
        Ok(config)
    }

    /// Makes the relative paths of the configuration (the SQLite database, the master key file,
    /// the scenario) relative to `folder`, the configuration file's: `--config /srv/x/config.toml`
    /// means /srv/x/tgwatch.db wherever the command runs.
    pub fn resolve_paths(&mut self, folder: &Path) {
        if let Some(url) = resolve_sqlite_url(&self.database.url, folder) {
            self.database.url = url;
        }
        self.security.master_key_file = resolve_path(&self.security.master_key_file, folder);
        if let Some(scenario) = &self.telegram.scenario {
            self.telegram.scenario = Some(resolve_path(scenario, folder));
        }
    }

    /// The first problem of [`Config::problems`].
    pub fn validate(&self) -> Result<(), ConfigError> {
        match self.problems().into_iter().next() {
            Some(problem) => Err(problem),
            None => Ok(()),
        }
    }

    /// Every value that is wrong, key by key.
    pub fn problems(&self) -> Vec<ConfigError> {
        self.collect_problems(false)
    }

    /// What `run` checks before it writes anything: [`Config::problems`], and an admin token.
    pub fn service_problems(&self) -> Vec<ConfigError> {
        self.collect_problems(true)
    }

    /// Settings that are valid but cannot work as written: an account that can never log in,
    /// because neither it nor `[telegram]` has an `api_id`.
    pub fn warnings(&self) -> Vec<ConfigError> {
        if self.telegram.api_id.is_some() {
            return Vec::new();
        }
        self.accounts
            .iter()
            .enumerate()
            .filter(|(_, account)| account.api_id.is_none())
            .map(|(index, account)| {
                invalid(
                    &format!("accounts[{index}].api_id"),
                    format!(
                        "account `{}` can never log in: neither it nor [telegram] has an api_id \
                         (from https://my.telegram.org)",
                        account.label
                    ),
                )
            })
            .collect()
    }

    fn collect_problems(&self, for_service: bool) -> Vec<ConfigError> {
        let mut problems = Vec::new();
        let url = &self.database.url;
        if !(url.starts_with("sqlite:")
            || url.starts_with("postgres:")
            || url.starts_with("postgresql:"))
        {
            problems.push(invalid(
                "database.url",
                format!("`{url}` is neither a sqlite: nor a postgres: URL"),
            ));
        }
        if self.database.max_connections == 0 {
            problems.push(invalid("database.max_connections", "must be at least 1"));
        }
        #[cfg(not(feature = "scripted"))]
        if self.telegram.scenario.is_some() {
            problems.push(invalid(
                "telegram.scenario",
                "this build has no scripted Telegram: it was built without the default `sandbox` \
                 feature, so it talks to real Telegram only",
            ));
        }
        match &self.http.admin_token {
            Some(token) if token.expose().len() < 16 => problems.push(invalid(
                "http.admin_token",
                "must be at least 16 characters long",
            )),
            None if for_service => problems.push(invalid(
                "http.admin_token",
                "is not set: the service needs it (here, or in TGWATCH_HTTP__ADMIN_TOKEN)",
            )),
            _ => {}
        }
        let presence = &self.presence;
        if presence.poll_min_seconds == 0 {
            problems.push(invalid("presence.poll_min_seconds", "must be at least 1"));
        }
        if presence.poll_max_seconds < presence.poll_min_seconds {
            problems.push(invalid(
                "presence.poll_max_seconds",
                format!(
                    "must not be below presence.poll_min_seconds ({})",
                    presence.poll_min_seconds
                ),
            ));
        }
        if presence.gap_seconds == 0 {
            problems.push(invalid("presence.gap_seconds", "must be at least 1"));
        }
        if !(1..=200).contains(&presence.batch_size) {
            problems.push(invalid(
                "presence.batch_size",
                "must be between 1 and 200 (Telegram's limit for users.getUsers)",
            ));
        }
        if presence.flush_interval_ms == 0 {
            problems.push(invalid("presence.flush_interval_ms", "must be at least 1"));
        }
        let telegram = &self.telegram;
        if !(telegram.clock_speed.is_finite() && telegram.clock_speed > 0.0) {
            problems.push(invalid("telegram.clock_speed", "must be a positive number"));
        }
        if telegram.reconnect_min_seconds == 0
            || telegram.reconnect_max_seconds < telegram.reconnect_min_seconds
        {
            problems.push(invalid(
                "telegram.reconnect_min_seconds",
                "must be at least 1 and not above telegram.reconnect_max_seconds",
            ));
        }
        let webhooks = &self.webhooks;
        if webhooks
            .retry_schedule_seconds
            .iter()
            .any(|s| !(s.is_finite() && *s >= 0.0))
        {
            problems.push(invalid(
                "webhooks.retry_schedule_seconds",
                "every wait must be a non-negative number of seconds",
            ));
        }
        if !(0.0..1.0).contains(&webhooks.jitter) {
            problems.push(invalid("webhooks.jitter", "must be at least 0 and below 1"));
        }
        if !(webhooks.timeout_seconds.is_finite() && webhooks.timeout_seconds > 0.0) {
            problems.push(invalid("webhooks.timeout_seconds", "must be positive"));
        }
        if webhooks.max_in_flight_per_endpoint == 0 {
            problems.push(invalid(
                "webhooks.max_in_flight_per_endpoint",
                "must be at least 1",
            ));
        }
        for (index, text) in webhooks.allowed_destinations.iter().enumerate() {
            if parse_destination(text).is_none() {
                problems.push(invalid(
                    &format!("webhooks.allowed_destinations[{index}]"),
                    format!(
                        "`{text}` is not a network: write an address with its prefix length, like `127.0.0.0/8` or `2001:db8::/32`, or a single address"
                    ),
                ));
            }
        }
        let mut names = std::collections::HashSet::new();
        for (index, endpoint) in webhooks.endpoints.iter().enumerate() {
            let key = format!("webhooks.endpoints[{index}]");
            if !names.insert(endpoint.name.as_str()) {
                problems.push(invalid(
                    &format!("{key}.name"),
                    format!("`{}` is used twice", endpoint.name),
                ));
            }
            if let Some(unknown) = endpoint
                .events
                .iter()
                .find(|e| e.as_str() != "all" && crate::events::EventType::parse(e).is_none())
            {
                problems.push(invalid(
                    &format!("{key}.events"),
                    format!("unknown event type `{unknown}`"),
                ));
            }
            if let Err(e) = crate::signing::SigningSecret::parse(endpoint.secret.expose()) {
                problems.push(invalid(&format!("{key}.secret"), e.to_string()));
            }
            if let Some(username) = &endpoint.tracked_user
                && let Err(e) = Username::parse(username)
            {
                problems.push(invalid(&format!("{key}.tracked_user"), e.to_string()));
            }
        }
        self.bot.collect_problems(&mut problems);
        self.live.collect_problems(&mut problems);
        self.supervision.collect_problems(&mut problems);
        self.cluster.collect_problems(&mut problems);
        let mut labels = std::collections::HashSet::new();
        for (index, account) in self.accounts.iter().enumerate() {
            if account.label.trim().is_empty() {
                problems.push(invalid(
                    &format!("accounts[{index}].label"),
                    "must not be empty",
                ));
            }
            if !labels.insert(account.label.as_str()) {
                problems.push(invalid(
                    &format!("accounts[{index}].label"),
                    format!("`{}` is used by two accounts", account.label),
                ));
            }
            if account.max_targets < 0 || account.max_channels < 0 {
                problems.push(invalid(
                    &format!("accounts[{index}]"),
                    "max_targets and max_channels must not be negative",
                ));
            }
        }
        for (index, user) in self.tracked_users.iter().enumerate() {
            let key = format!("tracked_users[{index}]");
            match (&user.username, user.telegram_user_id) {
                (None, None) => {
                    problems.push(invalid(&key, "needs a username or a telegram_user_id"));
                }
                (Some(username), _) => {
                    if let Err(error) = Username::parse(username) {
                        problems.push(invalid(&format!("{key}.username"), error.to_string()));
                    }
                }
                (None, Some(id)) if id <= 0 => {
                    problems.push(invalid(
                        &format!("{key}.telegram_user_id"),
                        "must be positive",
                    ));
                }
                _ => {}
            }
            if let Some(label) = &user.account
                && !labels.contains(label.as_str())
            {
                problems.push(invalid(
                    &format!("{key}.account"),
                    format!("no account labelled `{label}` in [[accounts]]"),
                ));
            }
        }
        self.channel_problems(&labels, &mut problems);
        if self.reload.interval_ms < 10 {
            problems.push(invalid("reload.interval_ms", "must be at least 10"));
        }
        let jobs = &self.jobs;
        for (key, value) in [
            (
                "jobs.account_health_interval_seconds",
                jobs.account_health_interval_seconds,
            ),
            (
                "jobs.log_cleanup_interval_seconds",
                jobs.log_cleanup_interval_seconds,
            ),
        ] {
            if value == 0 {
                problems.push(invalid(key, "must be at least 1"));
            }
        }
        if !(1..=100_000).contains(&self.logs.cleanup_batch_size) {
            problems.push(invalid(
                "logs.cleanup_batch_size",
                "must be between 1 and 100000",
            ));
        }
        self.retention.collect_problems(&mut problems);
        problems
    }

    /// `[[channels]]`: each reference well formed and named once, accounts declared, tags short.
    fn channel_problems(
        &self,
        labels: &std::collections::HashSet<&str>,
        problems: &mut Vec<ConfigError>,
    ) {
        let mut seen = std::collections::HashSet::new();
        for (index, channel) in self.channels.iter().enumerate() {
            let key = format!("channels[{index}]");
            match channel.channel.target() {
                Err(message) => problems.push(invalid(&format!("{key}.channel"), message)),
                Ok(target) => {
                    if !seen.insert(target) {
                        problems.push(invalid(
                            &format!("{key}.channel"),
                            "this channel is listed twice",
                        ));
                    }
                }
            }
            if let Some(label) = &channel.account
                && !labels.contains(label.as_str())
            {
                problems.push(invalid(
                    &format!("{key}.account"),
                    format!("no account labelled `{label}` in [[accounts]]"),
                ));
            }
            if let Some(tag) = crate::tags::first_invalid(&channel.tags) {
                problems.push(invalid(
                    &format!("{key}.tags"),
                    format!(
                        "`{tag}`: a tag is 1 to {} characters",
                        crate::tags::MAX_TAG_CHARS
                    ),
                ));
            }
        }
    }
}

/// The folder relative paths in the file at `path` are relative to.
pub fn config_folder(path: &Path) -> std::path::PathBuf {
    let folder = path.parent().unwrap_or(Path::new(""));
    std::path::absolute(folder).unwrap_or_else(|_| folder.to_path_buf())
}

fn resolve_path(path: &str, folder: &Path) -> String {
    if path.is_empty() || Path::new(path).is_absolute() {
        path.to_owned()
    } else {
        folder.join(path).display().to_string()
    }
}

/// `sqlite://PATH?QUERY` (or `sqlite:PATH`) as its path and query; None for other URLs.
fn split_sqlite_url(url: &str) -> Option<(&str, Option<&str>)> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    Some(match rest.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (rest, None),
    })
}

impl DatabaseConfig {
    /// The file of a SQLite database; None for PostgreSQL and in-memory databases.
    pub fn sqlite_file(&self) -> Option<std::path::PathBuf> {
        let (path, query) = split_sqlite_url(&self.url)?;
        let in_memory = path.is_empty()
            || path.starts_with(':')
            || query.is_some_and(|query| query.split('&').any(|pair| pair == "mode=memory"));
        (!in_memory).then(|| std::path::PathBuf::from(path))
    }
}

/// `sqlite://PATH?QUERY` (or `sqlite:PATH`) with a relative PATH, made relative to `folder`;
/// None for other URLs, absolute paths and in-memory databases.
fn resolve_sqlite_url(url: &str, folder: &Path) -> Option<String> {
    let (path, query) = split_sqlite_url(url)?;
    if path.is_empty() || path.starts_with(':') || Path::new(path).is_absolute() {
        return None;
    }
    Some(format!(
        "sqlite://{}{}",
        folder.join(path).display(),
        query.map(|query| format!("?{query}")).unwrap_or_default()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allowed_destinations_are_networks_or_addresses_and_a_bad_one_is_named() {
        let mut config = Config::default();
        config.http.admin_token = Some(Secret::new("0123456789abcdef0123"));
        config.webhooks.allowed_destinations = vec!["127.0.0.0/8".into(), "::1".into()];
        assert!(config.validate().is_ok());
        assert_eq!(config.webhooks.allowed_networks().len(), 2);
        config.webhooks.allowed_destinations = vec!["127.0.0.0/8".into(), "localhost".into()];
        let error = config.validate().unwrap_err().to_string();
        assert!(
            error.contains("webhooks.allowed_destinations[1]") && error.contains("`localhost`"),
            "{error}"
        );
    }

    #[test]
    fn empty_file_gives_the_defaults() {
        let config = Config::from_toml("").expect("defaults are valid");
        assert_eq!(config.presence.gap_seconds, 180);
        assert_eq!(config.presence.poll_min_seconds, 60);
        assert_eq!(config.presence.poll_max_seconds, 120);
    }

    #[test]
    fn the_shutdown_timeout_defaults_to_10_seconds_and_is_bounded() {
        let config = Config::from_toml("").expect("defaults are valid");
        assert_eq!(
            config.supervision.shutdown_timeout(),
            Duration::from_secs(10)
        );
        assert_eq!(config.supervision.restart_limit, 5);
        assert_eq!(config.supervision.restart_window_seconds, 60);
        for seconds in [0, 3601] {
            let error = Config::from_toml(&format!(
                "[supervision]\nshutdown_timeout_seconds = {seconds}\n"
            ))
            .expect_err("out of range")
            .to_string();
            assert!(
                error.contains("supervision.shutdown_timeout_seconds"),
                "{error}"
            );
        }
        let config =
            Config::from_toml("[supervision]\nshutdown_timeout_seconds = 30\n").expect("in range");
        assert_eq!(
            config.supervision.shutdown_timeout(),
            Duration::from_secs(30)
        );
    }

    #[test]
    fn only_a_sqlite_file_has_a_file() {
        let file = |url: &str| {
            DatabaseConfig {
                url: url.to_owned(),
                ..DatabaseConfig::default()
            }
            .sqlite_file()
        };
        assert_eq!(
            file("sqlite:///var/t.db?mode=rwc"),
            Some(std::path::PathBuf::from("/var/t.db"))
        );
        assert_eq!(file("sqlite:t.db"), Some(std::path::PathBuf::from("t.db")));
        assert_eq!(file("sqlite::memory:"), None);
        assert_eq!(file("sqlite://x.db?mode=memory&cache=shared"), None);
        assert_eq!(file("postgres://u@h/db"), None);
    }

    #[test]
    fn the_lease_is_renewed_three_times_and_must_be_in_range() {
        let config = Config::from_toml("[cluster]\nlease_seconds = 6\n").expect("in range");
        assert_eq!(config.cluster.lease(), Duration::from_secs(6));
        assert_eq!(config.cluster.heartbeat_interval(), Duration::from_secs(2));
        for wrong in ["0", "3601"] {
            let error = Config::from_toml(&format!("[cluster]\nlease_seconds = {wrong}\n"))
                .expect_err("out of range");
            assert!(
                error.to_string().contains("cluster.lease_seconds"),
                "{error}"
            );
        }
    }

    #[test]
    fn the_documented_example_is_valid() {
        let text = include_str!("../../../../config.toml");
        let config = Config::from_toml(text).expect("config.toml parses and validates");
        assert!(!config.accounts.is_empty());
        // It describes a real deployment: the scripted Telegram is a testing aid.
        assert_eq!(config.telegram.scenario, None);
    }

    #[test]
    fn every_problem_is_listed_and_the_service_needs_an_admin_token() {
        let config: Config = Figment::from(Serialized::defaults(Config::default()))
            .merge(Toml::string(
                "[presence]\npoll_min_seconds = 0\n[logs]\ncleanup_batch_size = 0\n\
                 [[accounts]]\nlabel = \"a\"\n[[accounts]]\nlabel = \"a\"\n",
            ))
            .extract()
            .expect("well-typed");
        let keys = |problems: Vec<ConfigError>| -> Vec<String> {
            problems
                .into_iter()
                .map(|problem| match problem {
                    ConfigError::Invalid { key, .. } => key,
                    ConfigError::Load(error) => error.to_string(),
                })
                .collect()
        };
        assert_eq!(
            keys(config.problems()),
            vec![
                "presence.poll_min_seconds",
                "accounts[1].label",
                "logs.cleanup_batch_size"
            ]
        );
        assert_eq!(
            keys(config.service_problems()),
            vec![
                "http.admin_token",
                "presence.poll_min_seconds",
                "accounts[1].label",
                "logs.cleanup_batch_size"
            ]
        );
    }

    #[test]
    fn retention_keys_are_checked_by_name_and_zero_keeps_forever() {
        let config = Config::from_toml("").expect("defaults are valid");
        assert_eq!(config.retention.status_checks_days, 30);
        assert_eq!(config.retention.channel_messages_days, 0, "posts are kept");
        let config = Config::from_toml("[retention]\nstatus_checks_days = 0\nevents_days = 7\n")
            .expect("valid");
        assert_eq!(config.retention.status_checks_days, 0);
        assert_eq!(config.retention.events_days, 7);
        let config: Config = Figment::from(Serialized::defaults(Config::default()))
            .merge(Toml::string(
                "[retention]\nbot_messages_days = 40000\nbatch_size = 0\ninterval_seconds = 0\n",
            ))
            .extract()
            .expect("well-typed");
        let problems: Vec<String> = config.problems().iter().map(ToString::to_string).collect();
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert!(problems[0].contains("`retention.bot_messages_days`: must be at most 36500 days"));
        assert!(problems[1].contains("`retention.batch_size`: must be between 1 and 10000"));
        assert!(problems[2].contains("`retention.interval_seconds`"));
        let unknown = Config::from_toml("[retention]\nraw_days = 3\n");
        assert!(unknown.is_err_and(|error| error.to_string().contains("raw_days")));
    }

    #[test]
    fn an_account_that_can_never_log_in_is_a_warning() {
        let config = Config::from_toml("[[accounts]]\nlabel = \"main\"\n").expect("valid");
        let warnings: Vec<String> = config.warnings().iter().map(ToString::to_string).collect();
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(warnings[0].contains("accounts[0].api_id"), "{warnings:?}");
        assert!(warnings[0].contains("main"), "{warnings:?}");
        for text in [
            "[[accounts]]\nlabel = \"main\"\napi_id = 5\n",
            "[telegram]\napi_id = 5\n[[accounts]]\nlabel = \"main\"\n",
        ] {
            let config = Config::from_toml(text).expect("valid");
            assert!(config.warnings().is_empty(), "{text}");
        }
    }

    #[test]
    fn relative_paths_are_relative_to_the_configuration_folder() {
        let mut config =
            Config::from_toml("[security]\nmaster_key_file = \"keys/k\"\n").expect("valid");
        // Set after validation: builds without the scripted Telegram refuse the key itself.
        config.telegram.scenario = Some("scenarios/x.toml".to_owned());
        config.resolve_paths(Path::new("/srv/tgwatch"));
        assert_eq!(
            config.database.url,
            "sqlite:///srv/tgwatch/tgwatch.db?mode=rwc"
        );
        assert_eq!(config.security.master_key_file, "/srv/tgwatch/keys/k");
        assert_eq!(
            config.telegram.scenario.as_deref(),
            Some("/srv/tgwatch/scenarios/x.toml")
        );
        for (url, resolved) in [
            ("sqlite:data/t.db", "sqlite:///srv/tgwatch/data/t.db"),
            ("sqlite:///var/t.db?mode=rwc", "sqlite:///var/t.db?mode=rwc"),
            ("sqlite::memory:", "sqlite::memory:"),
            ("postgres://u@h/db", "postgres://u@h/db"),
        ] {
            config.database.url = url.to_owned();
            config.resolve_paths(Path::new("/srv/tgwatch"));
            assert_eq!(config.database.url, resolved, "{url}");
        }
    }

    #[test]
    fn unknown_key_is_named() {
        let error = Config::from_toml("[presence]\ngap_secs = 10\n")
            .expect_err("unknown key must fail")
            .to_string();
        assert!(error.contains("gap_secs"), "{error}");
    }

    #[test]
    fn wrong_type_is_named() {
        let error = Config::from_toml("[presence]\ngap_seconds = \"three minutes\"\n")
            .expect_err("wrong type must fail")
            .to_string();
        assert!(error.contains("gap_seconds"), "{error}");
    }

    #[test]
    fn inconsistent_values_are_refused_with_the_key() {
        let error =
            Config::from_toml("[presence]\npoll_min_seconds = 100\npoll_max_seconds = 50\n")
                .expect_err("max below min must fail")
                .to_string();
        assert!(error.contains("presence.poll_max_seconds"), "{error}");

        let error = Config::from_toml("[[tracked_users]]\nusername = \"no spaces allowed\"\n")
            .expect_err("bad username must fail")
            .to_string();
        assert!(error.contains("tracked_users[0].username"), "{error}");

        let error =
            Config::from_toml("[[tracked_users]]\nusername = \"alice_w\"\naccount = \"ghost\"\n")
                .expect_err("unknown account must fail")
                .to_string();
        assert!(error.contains("ghost"), "{error}");
    }

    #[test]
    fn channels_are_checked() {
        let config = Config::from_toml(
            "[[accounts]]\nlabel = \"main\"\n\
             [[channels]]\nchannel = \"@durov\"\ntags = [\"news\"]\n\
             [[channels]]\nchannel = \"https://t.me/+AbC-d_9\"\naccount = \"main\"\n\
             [[channels]]\nchannel = -1001234567890\n",
        )
        .expect("valid channels");
        let targets: Vec<ChannelTarget> = config
            .channels
            .iter()
            .map(|c| c.channel.target().expect("valid"))
            .collect();
        assert!(matches!(
            &targets[..],
            [
                ChannelTarget::Link(crate::telegram::ChannelRef::Username(_)),
                ChannelTarget::Link(crate::telegram::ChannelRef::Invite(_)),
                ChannelTarget::Id(-1001234567890),
            ]
        ));
        for (text, key) in [
            (
                "[[channels]]\nchannel = \"no spaces\"\n",
                "channels[0].channel",
            ),
            (
                "[[channels]]\nchannel = \"https://t.me/+\"\n",
                "channels[0].channel",
            ),
            ("[[channels]]\nchannel = 0\n", "channels[0].channel"),
            (
                "[[channels]]\nchannel = \"durov\"\n[[channels]]\nchannel = \"t.me/Durov\"\n",
                "channels[1].channel",
            ),
            (
                "[[channels]]\nchannel = \"durov\"\naccount = \"ghost\"\n",
                "channels[0].account",
            ),
            (
                "[[channels]]\nchannel = \"durov\"\ntags = [\"\"]\n",
                "channels[0].tags",
            ),
        ] {
            let error = Config::from_toml(text)
                .expect_err("invalid channel")
                .to_string();
            assert!(error.contains(key), "{text}: {error}");
        }
        let error = Config::from_toml("[[channels]]\nchannel = \"durov\"\nfolder = 1\n")
            .expect_err("unknown key")
            .to_string();
        assert!(error.contains("folder"), "{error}");
    }

    #[test]
    fn secrets_do_not_print() {
        let secret = Secret::new("super-secret-token-123");
        assert_eq!(format!("{secret:?}"), "Secret(***)");
    }

    #[test]
    fn bot_settings_are_checked_without_showing_the_token() {
        let config = Config::from_toml("[bot]\ntoken = \"123456:AAbb-cc_DD\"\nadmin_ids = [7]\n")
            .expect("a valid bot section");
        assert_eq!(config.bot.admin_ids, vec![7]);
        let error = Config::from_toml("[bot]\ntoken = \"not a token/secret\"\n")
            .expect_err("a malformed token must fail")
            .to_string();
        assert!(error.contains("bot.token"), "{error}");
        assert!(
            !error.contains("secret"),
            "the value is not echoed: {error}"
        );
        for (toml, key) in [
            ("[bot]\ndefault_role = \"admin\"\n", "bot.default_role"),
            ("[bot]\ndefault_role = \"root\"\n", "bot.default_role"),
            ("[bot]\ndigest_hour = 24\n", "bot.digest_hour"),
            (
                "[bot]\npolling_timeout_seconds = 0\n",
                "bot.polling_timeout_seconds",
            ),
            ("[bot]\napi_url = \"ftp://x\"\n", "bot.api_url"),
            ("[bot]\nadmin_ids = [-5]\n", "bot.admin_ids"),
            (
                "[bot]\nretry_schedule_seconds = []\n",
                "bot.retry_schedule_seconds",
            ),
            (
                "[bot]\nmessages_per_second = 0\n",
                "bot.messages_per_second",
            ),
        ] {
            let error = Config::from_toml(toml).expect_err(toml).to_string();
            assert!(error.contains(key), "{toml}: {error}");
        }
    }

    #[cfg(feature = "scripted")]
    #[test]
    fn builds_with_the_scripted_telegram_accept_a_scenario() {
        let mut config = Config::default();
        config.telegram.scenario = Some("scenarios/example.toml".into());
        let problems: Vec<String> = config.problems().iter().map(ToString::to_string).collect();
        assert!(
            !problems
                .iter()
                .any(|problem| problem.contains("telegram.scenario")),
            "{problems:?}"
        );
    }

    #[cfg(not(feature = "scripted"))]
    #[test]
    fn builds_without_the_scripted_telegram_refuse_a_scenario() {
        let mut config = Config::default();
        config.telegram.scenario = Some("scenarios/example.toml".into());
        let problems: Vec<String> = config.problems().iter().map(ToString::to_string).collect();
        assert!(
            problems
                .iter()
                .any(|problem| problem.contains("telegram.scenario")
                    && problem.contains("no scripted Telegram")),
            "{problems:?}"
        );
    }
}
