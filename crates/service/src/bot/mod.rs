//! The Telegram bot: commands over long polling, notifications from the event outbox,
//! a daily digest, roles.
//!
//! # Layout
//!
//! - Roles and permissions are pure rules of `tgwatch_core::roles`.
//! - [`commands`]: the command enum (its descriptions are `/help` and the command menu), the
//!   role each needs, argument parsing (pure).
//! - [`replies`]: every text the bot sends (pure).
//! - [`charts`]: the `/stats` chart as PNG bytes (pure).
//! - [`outbox`]: who gets which event, retry waits, which Bot API errors are final, when the
//!   digest is due (pure).
//! - `handlers`: the dispatcher's endpoint: who is asking, what they may do, the command's work.
//! - [`notifier`]: fans events out into the `bot_messages` outbox and sends it, under a lease.
//!
//! Everything the bot sends goes through one teloxide `Throttle`, which keeps it within
//! Telegram's limits (per chat, per group, overall) and holds every send while Telegram's
//! `retry_after` runs. Its own retry is off: replies retry a 429 themselves, notifications are
//! rescheduled in the outbox, where a crash cannot lose them.

pub mod charts;
pub mod commands;
mod handlers;
pub mod notifier;
pub mod outbox;
pub mod replies;

use std::{sync::Arc, time::Duration};

use chrono::{DateTime, Utc};
use sea_orm::DatabaseConnection;
use teloxide::{
    ApiError, RequestError,
    adaptors::{
        Throttle,
        throttle::{Limits, Settings},
    },
    dispatching::{Dispatcher, UpdateFilterExt},
    dptree,
    prelude::*,
    types::{BotCommand, Update},
    update_listeners::Polling,
};

use crate::tracking::Tracking;
use replies::Who;
use tgwatch_core::{
    clock::Clock,
    config::{BotConfig, Secret},
    presence::stats::{Statistics, Window},
};
use tgwatch_store::{self as storage, StorageError, entities::tracked_users};

/// The bot as every part of it uses it: held to Telegram's limits.
pub type TelegramBot = Throttle<Bot>;

#[derive(Debug, thiserror::Error)]
pub enum BotError {
    #[error("`bot.api_url`: {0}")]
    ApiUrl(String),
}

/// What the bot needs from the rest of the service.
pub struct BotDeps {
    pub db: DatabaseConnection,
    pub clock: Clock,
    pub tracking: Tracking,
    pub config: BotConfig,
    /// How long a notification claimed by a sender that died stays claimed (`[cluster]
    /// lease_seconds`: the time another instance waits before it takes a dead one's work).
    pub claim_lease: std::time::Duration,
}

/// The bot, ready to start (and to start again after a crash), when `bot.token` is set.
/// Telegram being unreachable is not an error: the bot keeps trying.
pub fn prepare(deps: BotDeps) -> Result<Option<BotSetup>, BotError> {
    let Some(token) = deps.config.token.clone() else {
        return Ok(None);
    };
    let api_url =
        reqwest::Url::parse(&deps.config.api_url).map_err(|e| BotError::ApiUrl(e.to_string()))?;
    Ok(Some(BotSetup {
        notifier_wake: Arc::default(),
        db: deps.db,
        clock: deps.clock,
        tracking: deps.tracking,
        config: Arc::new(deps.config),
        token,
        api_url,
        claim_lease: deps.claim_lease,
    }))
}

/// What the bot is made of; [`BotSetup::spawn`] starts it.
pub struct BotSetup {
    db: DatabaseConnection,
    clock: Clock,
    tracking: Tracking,
    config: Arc<BotConfig>,
    token: Secret,
    api_url: reqwest::Url,
    claim_lease: std::time::Duration,
    /// Wakes the notifier (events committed, a command that changed who is told); kept across
    /// restarts.
    notifier_wake: Arc<tokio::sync::Notify>,
}

impl BotSetup {
    /// Tells the notifier that events were committed: it reads the outbox now.
    pub fn events_committed(&self) {
        self.notifier_wake.notify_one();
    }

    /// Starts the notifier and the long polling on the runtime, with a new `Throttle` (the old
    /// one's queue goes with the old tasks; notifications wait in the outbox, not there).
    pub fn spawn(&self) -> Vec<tokio::task::JoinHandle<()>> {
        let config = &self.config;
        let limits = Limits {
            messages_per_sec_chat: config.messages_per_chat_per_second,
            messages_per_min_chat: config.messages_per_chat_per_minute,
            messages_per_min_channel_or_supergroup: config.messages_per_group_per_minute,
            messages_per_sec_overall: config.messages_per_second,
        };
        let bot = Throttle::spawn_with_settings(
            Bot::new(self.token.expose()).set_api_url(self.api_url.clone()),
            Settings::default().limits(limits).no_retry(),
        );
        let notifier = notifier::Notifier::new(
            self.db.clone(),
            self.clock,
            Arc::clone(config),
            bot.clone(),
            self.token.clone(),
            Arc::clone(&self.notifier_wake),
            self.claim_lease,
        );
        let context = Arc::new(handlers::BotContext {
            db: self.db.clone(),
            clock: self.clock,
            tracking: self.tracking.clone(),
            config: Arc::clone(config),
            token: self.token.clone(),
            notifier: Arc::clone(&self.notifier_wake),
        });
        vec![
            tokio::spawn(notifier.run()),
            tokio::spawn(listen(bot, context, Arc::clone(config), self.token.clone())),
        ]
    }
}

/// Checks the token, prepares the bot (no webhook in the way, the command menu) and dispatches
/// updates from long polling until the service stops.
async fn listen(
    bot: TelegramBot,
    context: Arc<handlers::BotContext>,
    config: Arc<BotConfig>,
    token: Secret,
) {
    let mut wait = Duration::from_secs(1);
    let me = loop {
        match bot.get_me().await {
            Ok(me) => break me,
            Err(RequestError::Api(ApiError::InvalidToken)) => {
                let message = "the Bot API refused bot.token: the bot stays off until it is fixed";
                tracing::error!("{message}");
                storage::logs::write(
                    &context.db,
                    storage::LogLevel::Critical,
                    message,
                    None,
                    None,
                    context.clock.now(),
                )
                .await;
                return;
            }
            Err(error) => {
                let error = outbox::redact(&error.to_string(), token.expose());
                tracing::warn!(%error, retry_in_seconds = wait.as_secs(), "cannot reach the Bot API");
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(60));
            }
        }
    };
    tracing::info!(
        bot = me.user.username.as_deref().unwrap_or_default(),
        "Telegram bot started"
    );
    // getUpdates answers 409 while a webhook is set for the bot (by another deployment, say).
    if let Err(error) = bot.delete_webhook().await {
        let error = outbox::redact(&error.to_string(), token.expose());
        tracing::warn!(%error, "cannot delete the bot's webhook");
    }
    let menu: Vec<BotCommand> = commands::commands_for(tgwatch_core::roles::Role::User)
        .into_iter()
        .map(|(name, description)| BotCommand::new(name, description))
        .collect();
    if let Err(error) = bot.set_my_commands(menu).await {
        let error = outbox::redact(&error.to_string(), token.expose());
        tracing::warn!(%error, "cannot set the bot's command menu");
    }
    let listener = Polling::builder(bot.clone())
        .timeout(Duration::from_secs(u64::from(
            config.polling_timeout_seconds,
        )))
        .build();
    let handler = Update::filter_message().endpoint(handlers::on_message);
    let listener_token = token.clone();
    Dispatcher::builder(bot, handler)
        .dependencies(dptree::deps![context])
        .default_handler(|_| async {})
        .error_handler(Arc::new(|error: handlers::HandlerError| async move {
            tracing::error!(%error, "a bot handler failed");
        }))
        .build()
        .dispatch_with_listener(
            listener,
            Arc::new(move |error: RequestError| {
                let error = outbox::redact(&error.to_string(), listener_token.expose());
                async move {
                    tracing::warn!(%error, "getUpdates failed; polling again shortly");
                }
            }),
        )
        .await;
}

/// How a tracked user is named in the bot's texts.
pub(crate) fn who(row: &tracked_users::Model) -> Who {
    Who {
        username: row.username.clone(),
        first_name: row.first_name.clone(),
        telegram_user_id: row.telegram_user_id,
    }
}

/// Statistics of each user over a window, and their online spans for the chart.
async fn lanes_and_stats(
    db: &DatabaseConnection,
    users: &[tracked_users::Model],
    window: Window,
    now: DateTime<Utc>,
) -> Result<(Vec<charts::Lane>, Vec<(Who, Statistics)>), StorageError> {
    let mut lanes = Vec::with_capacity(users.len());
    let mut stats = Vec::with_capacity(users.len());
    for user in users {
        let rows = storage::sessions::overlapping(db, user.id, window).await?;
        let sessions: Vec<_> = rows.iter().map(storage::sessions::from_row).collect();
        let spans = sessions
            .iter()
            .filter_map(|session| {
                let from = session.started_at.max(window.from);
                let to = session.end_at(now).min(window.to);
                (from <= to).then_some((from, to))
            })
            .collect();
        let who = who(user);
        lanes.push(charts::Lane {
            label: who.to_string(),
            spans,
        });
        stats.push((
            who,
            tgwatch_core::presence::stats::statistics(&sessions, window, now),
        ));
    }
    Ok((lanes, stats))
}

/// Every tracked user's statistics over the last `hours` (the digest).
async fn stats_lines(
    db: &DatabaseConnection,
    hours: i64,
    now: DateTime<Utc>,
) -> Result<Vec<(Who, Statistics)>, StorageError> {
    let mut users = storage::tracked_users::active(db).await?;
    users.sort_by(|a, b| a.username.cmp(&b.username).then(a.id.cmp(&b.id)));
    let window = Window {
        from: now - chrono::Duration::hours(hours),
        to: now,
    };
    Ok(lanes_and_stats(db, &users, window, now).await?.1)
}
