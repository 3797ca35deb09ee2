//! What the bot does with a message: who sent it and what they may do, the command's work
//! against the database and the fleet, and the replies. The texts come from `replies`.

use std::sync::Arc;

use chrono::Utc;
use sea_orm::DatabaseConnection;
use teloxide::{
    prelude::*,
    types::{InputFile, Me, ThreadId},
};
use tokio::sync::Notify;

use super::{
    TelegramBot, charts,
    commands::{self, Command, Parsed},
    lanes_and_stats, outbox, replies, who,
};
use crate::{
    actors::messages::ResolveError,
    tracking::{TrackRequest, Tracking, TrackingError},
};
use tgwatch_core::config::Origin;
use tgwatch_core::roles::{Role, effective_role};
use tgwatch_core::{
    clock::Clock,
    config::{BotConfig, Secret},
    presence::{sessions::Session, stats::Window},
};
use tgwatch_store::{
    self as storage, StorageError,
    bot::ChatInfo,
    entities::{bot_chats, telegram_users, tracked_users},
};
use tgwatch_telegram::Username;

/// What every handler can reach.
pub struct BotContext {
    pub db: DatabaseConnection,
    pub clock: Clock,
    pub tracking: Tracking,
    pub config: Arc<BotConfig>,
    pub token: Secret,
    /// Wakes the notifier (a digest switched on goes out right away).
    pub notifier: Arc<Notify>,
}

/// A reply to send.
pub enum Reply {
    Text(String),
    Photo { png: Vec<u8>, caption: String },
}

#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("drawing a chart: {0}")]
    Chart(#[from] charts::ChartError),
    #[error("the chart task failed: {0}")]
    Join(#[from] tokio::task::JoinError),
}

/// The dispatcher's endpoint for every message. Failures are answered with a short apology and
/// logged; they never reach teloxide (which would only log them through `log`).
pub async fn on_message(
    bot: TelegramBot,
    me: Me,
    message: Message,
    context: Arc<BotContext>,
) -> Result<(), HandlerError> {
    let chat_id = message.chat.id;
    let thread = message.thread_id.filter(|_| message.is_topic_message);
    let replies = match handle(&me, &message, &context).await {
        Ok(replies) => replies,
        Err(error) => {
            tracing::error!(%error, chat_id = chat_id.0, "a bot command failed");
            vec![Reply::Text(replies::trouble())]
        }
    };
    for reply in replies {
        send_reply(&bot, chat_id, thread, reply, context.token.expose()).await;
    }
    Ok(())
}

/// Sends a reply; a 429 is waited out and tried again (twice at most), other failures are
/// logged: the person can ask again, unlike a notification, which is queued.
async fn send_reply(
    bot: &TelegramBot,
    chat: ChatId,
    thread: Option<ThreadId>,
    reply: Reply,
    token: &str,
) {
    for _ in 0..3 {
        let sent = match &reply {
            Reply::Text(text) => {
                let mut request = bot.send_message(chat, text);
                if let Some(thread) = thread {
                    request = request.message_thread_id(thread);
                }
                request.await.map(|_| ())
            }
            Reply::Photo { png, caption } => {
                let photo = InputFile::memory(png.clone()).file_name("stats.png");
                let mut request = bot.send_photo(chat, photo).caption(caption);
                if let Some(thread) = thread {
                    request = request.message_thread_id(thread);
                }
                request.await.map(|_| ())
            }
        };
        match sent {
            Ok(()) => return,
            Err(error) => match outbox::classify(&error, token) {
                outbox::Failure::RetryAfter(wait) => {
                    tracing::warn!(
                        chat_id = chat.0,
                        retry_after_seconds = wait.as_secs(),
                        "reply rate-limited; waiting"
                    );
                    tokio::time::sleep(wait).await;
                }
                outbox::Failure::Migrated(_)
                | outbox::Failure::Final(_)
                | outbox::Failure::Transient(_) => {
                    let error = outbox::redact(&error.to_string(), token);
                    tracing::warn!(chat_id = chat.0, %error, "a reply could not be sent");
                    return;
                }
            },
        }
    }
}

async fn handle(
    me: &Me,
    message: &Message,
    context: &BotContext,
) -> Result<Vec<Reply>, HandlerError> {
    let (Some(text), Some(from)) = (message.text(), message.from.as_ref()) else {
        return Ok(Vec::new());
    };
    if from.is_bot {
        return Ok(Vec::new());
    }
    let bot_name = me.user.username.as_deref().unwrap_or_default();
    let parsed = commands::parse(text, bot_name);
    // In groups the bot hears every message it is allowed to: only commands for it count, and
    // nobody is recorded for merely talking there.
    if parsed == Parsed::NotForUs && !message.chat.is_private() {
        return Ok(Vec::new());
    }
    let now = context.clock.now();
    let default_role = Role::parse(&context.config.default_role).unwrap_or(Role::Banned);
    let person = storage::telegram_users::met(
        &context.db,
        from.id.0 as i64,
        from.username.clone(),
        Some(from.first_name.clone()),
        default_role,
        now,
    )
    .await?;
    let role = effective_role(
        person.telegram_user_id,
        Some(person.role),
        &context.config.admin_ids,
    );
    if role == Role::Banned {
        tracing::debug!(
            telegram_user_id = person.telegram_user_id,
            "ignoring a banned person"
        );
        return Ok(Vec::new());
    }
    let command = match parsed {
        Parsed::NotForUs => return Ok(text_reply(replies::not_a_command())),
        Parsed::Unknown(name) => return Ok(text_reply(replies::unknown_command(&name))),
        Parsed::Command(command) => command,
    };
    if !role.allows(command.required_role()) {
        return Ok(text_reply(replies::not_allowed(command.name(), role)));
    }
    tracing::info!(
        command = command.name(),
        telegram_user_id = person.telegram_user_id,
        chat_id = message.chat.id.0,
        "bot command"
    );
    let run = Run {
        context,
        message,
        person: &person,
        role,
        now,
    };
    run.command(command).await
}

fn text_reply(text: String) -> Vec<Reply> {
    vec![Reply::Text(text)]
}

/// One command being run.
struct Run<'a> {
    context: &'a BotContext,
    message: &'a Message,
    person: &'a telegram_users::Model,
    role: Role,
    now: chrono::DateTime<Utc>,
}

impl Run<'_> {
    fn db(&self) -> &DatabaseConnection {
        &self.context.db
    }

    async fn command(&self, command: Command) -> Result<Vec<Reply>, HandlerError> {
        let text = match command {
            Command::Start => self.start().await?,
            Command::Help => replies::help(self.role),
            Command::Status(args) => match commands::status_args(&args) {
                Ok(user) => self.status(user).await?,
                Err(error) => error.to_string(),
            },
            Command::Stats(args) => match commands::stats_args(&args) {
                Ok((hours, user)) => return self.stats(hours, user).await,
                Err(error) => error.to_string(),
            },
            Command::Track(args) => match commands::user_arg("track", &args) {
                Ok(user) => self.track(user).await?,
                Err(error) => error.to_string(),
            },
            Command::Untrack(args) => match commands::user_arg("untrack", &args) {
                Ok(user) => self.untrack(user).await?,
                Err(error) => error.to_string(),
            },
            Command::List => self.list().await?,
            Command::Notify(args) => match commands::notify_args(&args) {
                Ok((on, user)) => self.notify(on, user).await?,
                Err(error) => error.to_string(),
            },
            Command::Channels => self.channels().await?,
            Command::Digest(args) => match commands::digest_args(&args) {
                Ok(on) => self.digest(on).await?,
                Err(error) => error.to_string(),
            },
            Command::Accounts => self.accounts().await?,
        };
        Ok(text_reply(text))
    }

    fn chat_info(&self) -> ChatInfo {
        let chat = &self.message.chat;
        let chat_type = if chat.is_private() {
            "private"
        } else if chat.is_supergroup() {
            "supergroup"
        } else if chat.is_channel() {
            "channel"
        } else {
            "group"
        };
        ChatInfo {
            chat_id: chat.id.0,
            chat_type,
            title: chat.title().map(str::to_owned),
        }
    }

    async fn start(&self) -> Result<String, HandlerError> {
        let (chat, new) =
            storage::bot::register_chat(self.db(), self.chat_info(), self.person, self.now).await?;
        let name = self.person.first_name.as_deref().unwrap_or("there");
        Ok(replies::start(name, chat.chat_id, self.role, new))
    }

    /// The chat's row, registering the chat first if it is not (or no longer) registered: the
    /// commands about a chat's notifications imply it wants them.
    async fn chat(&self) -> Result<bot_chats::Model, HandlerError> {
        match storage::bot::chat(self.db(), self.message.chat.id.0).await? {
            Some(chat) if chat.is_active => Ok(chat),
            _ => {
                Ok(
                    storage::bot::register_chat(self.db(), self.chat_info(), self.person, self.now)
                        .await?
                        .0,
                )
            }
        }
    }

    /// The active tracked user with this username.
    async fn tracked(&self, user: &Username) -> Result<Option<tracked_users::Model>, HandlerError> {
        Ok(
            storage::tracked_users::find_existing(self.db(), Some(user), None)
                .await?
                .filter(|row| row.is_active && row.username.as_deref() == Some(user.as_str())),
        )
    }

    /// One user (or a reply saying they are not tracked), or everyone tracked, whose online
    /// state may be shown: a person with `visible_online = false` is left out (as if not tracked).
    async fn users(
        &self,
        user: Option<Username>,
    ) -> Result<Result<Vec<tracked_users::Model>, String>, HandlerError> {
        match user {
            Some(user) => match self.tracked(&user).await?.filter(|row| row.visible_online) {
                Some(row) => Ok(Ok(vec![row])),
                None => Ok(Err(replies::not_tracked(&user.to_string()))),
            },
            None => {
                let mut all = storage::tracked_users::active(self.db()).await?;
                all.retain(|row| row.visible_online);
                all.sort_by(|a, b| a.username.cmp(&b.username).then(a.id.cmp(&b.id)));
                Ok(Ok(all))
            }
        }
    }

    async fn status(&self, user: Option<Username>) -> Result<String, HandlerError> {
        let users = match self.users(user).await? {
            Ok(users) => users,
            Err(reply) => return Ok(reply),
        };
        let mut lines = Vec::with_capacity(users.len());
        for user in &users {
            let open = storage::sessions::open_of(self.db(), user.id).await?;
            let newest = storage::observations::newest_of(self.db(), user.id).await?;
            let latest = storage::bot::latest_session_of(self.db(), user.id).await?;
            let newest = newest.map(|row| replies::Newest {
                kind: row.status,
                was_online: row.was_online_at,
                observed_at: row.observed_at,
            });
            let open: Option<Session> = open.as_ref().map(storage::sessions::from_row);
            let presence = replies::presence(
                open.as_ref(),
                newest.as_ref(),
                latest.map(|row| row.last_online_at),
            );
            lines.push((who(user), presence));
        }
        Ok(replies::status(&lines, self.now))
    }

    async fn stats(&self, hours: i64, user: Option<Username>) -> Result<Vec<Reply>, HandlerError> {
        let users = match self.users(user).await? {
            Ok(users) if users.is_empty() => {
                return Ok(text_reply(replies::status(&[], self.now)));
            }
            Ok(users) => users,
            Err(reply) => return Ok(text_reply(reply)),
        };
        let Ok(window) = Window::last_hours(hours, self.now) else {
            return Ok(text_reply(commands::usage("stats").to_owned()));
        };
        let (lanes, per_user) = lanes_and_stats(self.db(), &users, window, self.now).await?;
        let (text, title, hourly) = match per_user.as_slice() {
            [(who, stats)] => (
                replies::stats(Some(who), hours, stats, self.now),
                format!("{who}, last {}", replies::window(hours)),
                stats.hourly_online_seconds,
            ),
            _ => {
                let mut hourly = [0_i64; 24];
                for (_, stats) in &per_user {
                    for (total, value) in hourly.iter_mut().zip(stats.hourly_online_seconds) {
                        *total += value;
                    }
                }
                (
                    replies::stats_overview(&per_user, hours),
                    format!("{} users, last {}", per_user.len(), replies::window(hours)),
                    hourly,
                )
            }
        };
        let chart = charts::Chart {
            title: title.clone(),
            from: window.from,
            to: window.to,
            lanes,
            hourly_seconds: hourly,
        };
        // Drawing a year of sessions is CPU work: keep it off the async workers.
        let png = tokio::task::spawn_blocking(move || charts::render_png(&chart)).await??;
        Ok(vec![
            Reply::Text(text),
            Reply::Photo {
                png,
                caption: title,
            },
        ])
    }

    async fn track(&self, user: Username) -> Result<String, HandlerError> {
        let chat = self.chat().await?;
        let request = TrackRequest {
            username: Some(user.clone()),
            telegram_user_id: None,
            access_hash: None,
            account_id: None,
            // The user's own flag tells every chat (kept for a user tracked before); this chat
            // follows them by its choice below.
            notify: None,
            visible_online: None,
            source: Origin::Api,
        };
        let (tracked, already) = match self.context.tracking.track(request, self.now).await {
            Ok(tracked) => (tracked, false),
            Err(TrackingError::AlreadyTracked(existing)) => (*existing, true),
            Err(TrackingError::Resolve(ResolveError::NotFound(_))) => {
                return Ok(format!("Telegram has no user {user}."));
            }
            Err(TrackingError::Storage(error)) => return Err(error.into()),
            Err(error) => return Ok(format!("Could not track {user}: {error}")),
        };
        storage::bot::set_subscription(self.db(), &chat, tracked.id, true, self.now).await?;
        Ok(replies::tracked(&who(&tracked), already))
    }

    async fn untrack(&self, user: Username) -> Result<String, HandlerError> {
        let Some(tracked) = self.tracked(&user).await? else {
            return Ok(replies::not_tracked(&user.to_string()));
        };
        let who = who(&tracked);
        match self
            .context
            .tracking
            .untrack(tracked, false, self.now)
            .await
        {
            Ok(()) => Ok(replies::untracked(&who)),
            Err(TrackingError::Storage(error)) => Err(error.into()),
            Err(error) => Ok(format!("Could not stop tracking {who}: {error}")),
        }
    }

    async fn list(&self) -> Result<String, HandlerError> {
        let chat = storage::bot::chat(self.db(), self.message.chat.id.0)
            .await?
            .filter(|chat| chat.is_active);
        let choices = match &chat {
            Some(chat) => storage::bot::subscriptions_of(self.db(), chat.id).await?,
            None => Default::default(),
        };
        let chat_notify = chat.as_ref().is_some_and(|chat| chat.notify);
        let Ok(users) = self.users(None).await? else {
            return Ok(replies::status(&[], self.now));
        };
        let mut lines = Vec::with_capacity(users.len());
        for user in &users {
            let online = storage::sessions::open_of(self.db(), user.id)
                .await?
                .is_some();
            lines.push(replies::ListLine {
                who: who(user),
                online,
                notify_here: chat.is_some()
                    && choices.get(&user.id).copied().unwrap_or(user.notify),
            });
        }
        let mut text = replies::list(&lines, chat_notify || chat.is_none());
        if chat.is_none() {
            text.push_str("\nThis chat gets no notifications: /start registers it.");
        }
        Ok(text)
    }

    async fn notify(&self, on: bool, user: Option<Username>) -> Result<String, HandlerError> {
        let chat = self.chat().await?;
        match user {
            None => {
                storage::bot::set_chat_notify(self.db(), chat, on, self.now).await?;
                Ok(replies::chat_notify(on))
            }
            Some(user) => {
                let Some(tracked) = self.tracked(&user).await? else {
                    return Ok(replies::not_tracked(&user.to_string()));
                };
                storage::bot::set_subscription(self.db(), &chat, tracked.id, on, self.now).await?;
                Ok(replies::user_notify(&who(&tracked), on, chat.notify))
            }
        }
    }

    async fn digest(&self, on: bool) -> Result<String, HandlerError> {
        let chat = self.chat().await?;
        let hour = self.context.config.digest_hour;
        let due = outbox::digest_due(self.now, hour);
        // The notifier sends the latest digest to a chat that has not had it.
        let due_now = chat.last_digest_at.is_none_or(|last| last < due);
        storage::bot::set_chat_digest(self.db(), chat, on, self.now).await?;
        if on && due_now {
            self.context.notifier.notify_one();
        }
        Ok(replies::digest_switched(on, hour, due_now))
    }

    async fn channels(&self) -> Result<String, HandlerError> {
        let channels = storage::channels::monitored(self.db()).await?;
        let lines: Vec<replies::ChannelLine> = channels
            .into_iter()
            .map(|channel| replies::ChannelLine {
                name: channel
                    .username
                    .as_ref()
                    .map(|name| format!("@{name}"))
                    .or_else(|| {
                        channel
                            .telegram_channel_id
                            .map(|id| format!("channel {id}"))
                    })
                    .unwrap_or_else(|| "a private channel".to_owned()),
                title: channel.title,
                status: channel.status.to_string(),
            })
            .collect();
        Ok(replies::channels(&lines))
    }

    async fn accounts(&self) -> Result<String, HandlerError> {
        let accounts = storage::accounts::all(self.db()).await?;
        let lines: Vec<replies::AccountLine> = accounts
            .into_iter()
            .map(|account| replies::AccountLine {
                label: account.label,
                status: account.status.to_string(),
                authorized: account.is_authorized,
                targets: account.targets_count,
                max_targets: account.max_targets,
                last_active: account.last_active,
            })
            .collect();
        Ok(replies::accounts(&lines, self.now))
    }
}
