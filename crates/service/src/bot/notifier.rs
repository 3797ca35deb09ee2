//! The notifier: turns new events into queued messages for the chats that want them (the
//! `bot_messages` outbox), queues daily digests, and sends what is due.
//!
//! It works like the webhook dispatcher: woken when the storage actor commits events and on a
//! timer (retries, digests, other instances' leftovers). A message is claimed with a lease
//! (`[cluster] lease_seconds`) that its sender renews while the chat's batch goes out, so one
//! whose sender died or stopped is sent again once the lease runs out: delivery is at least
//! once, and a Bot API failure never loses a message. A chat has one sender at a time, which
//! keeps its messages in order: when one fails, the rest of that chat's batch waits with it. A
//! 429 waits for Telegram's `retry_after` (and teloxide's Throttle holds every send meanwhile);
//! other failures wait for `bot.retry_schedule_seconds`; only answers that can never change (bot
//! blocked, chat gone) give up, and then the chat is marked inactive.

use std::{
    collections::HashSet,
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use chrono::{DateTime, Utc};
use sea_orm::DatabaseConnection;
use teloxide::{prelude::*, types::ChatId};
use tokio::{sync::Notify, task::JoinSet};

use super::{
    TelegramBot,
    outbox::{self, ChatAudience, Failure, Telling},
    replies, stats_lines,
};
use tgwatch_core::roles::{Role, effective_role};
use tgwatch_core::{
    clock::Clock,
    config::{BotConfig, Secret},
    events::{EventType, shows_online_state},
};
use tgwatch_store::{
    self as storage, StorageError,
    bot::{NewBotMessage, SendOutcome},
    entities::bot_messages,
};

/// Events handled per fan-out round.
const FAN_OUT_BATCH: u64 = 500;
/// Messages claimed per round.
const CLAIM_BATCH: u64 = 200;

#[derive(Clone)]
pub struct Notifier {
    pub db: DatabaseConnection,
    pub clock: Clock,
    pub config: Arc<BotConfig>,
    pub bot: TelegramBot,
    pub token: Secret,
    /// Woken by the storage actor (new events) and by `/digest on`.
    pub wake: Arc<Notify>,
    /// Chats with a sender at work.
    busy: Arc<Mutex<HashSet<i64>>>,
    /// A claim's lease in real time; a chat's sender renews it at a third of that.
    lease: Duration,
}

impl Notifier {
    pub fn new(
        db: DatabaseConnection,
        clock: Clock,
        config: Arc<BotConfig>,
        bot: TelegramBot,
        token: Secret,
        wake: Arc<Notify>,
        lease: Duration,
    ) -> Notifier {
        Notifier {
            db,
            clock,
            config,
            bot,
            token,
            wake,
            busy: Arc::default(),
            lease,
        }
    }

    /// Runs until aborted; the chats' senders are its own tasks and end with it.
    pub async fn run(self) {
        let interval = Duration::from_millis(self.config.poll_interval_ms);
        let mut senders = JoinSet::new();
        loop {
            while senders.try_join_next().is_some() {}
            if let Err(error) = self.round(&mut senders).await {
                tracing::error!(%error, "bot notifier round failed; retrying");
            }
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(interval) => {}
            }
        }
    }

    async fn round(&self, senders: &mut JoinSet<()>) -> Result<(), StorageError> {
        self.fan_out().await?;
        self.queue_digests().await?;
        self.send_due(senders).await
    }

    /// A real-time span on the service clock.
    fn clock_span(&self, real: Duration) -> chrono::Duration {
        chrono::Duration::from_std(real.mul_f64(self.clock.speed()))
            .unwrap_or(chrono::Duration::MAX)
    }

    async fn fan_out(&self) -> Result<(), StorageError> {
        let telling = Telling {
            offline: self.config.notify_offline,
            session_summary: self.config.notify_session_summary,
        };
        loop {
            let events = storage::bot::pending_events(&self.db, FAN_OUT_BATCH).await?;
            if events.is_empty() {
                return Ok(());
            }
            let now = self.clock.now();
            let audience = storage::bot::audience(&self.db).await?;
            let chats: Vec<ChatAudience> = audience
                .chats
                .iter()
                .map(|(chat, owner)| ChatAudience {
                    bot_chat_id: chat.id,
                    chat_id: chat.chat_id,
                    notify: chat.notify,
                    role: effective_role(
                        owner.telegram_user_id,
                        Some(owner.role),
                        &self.config.admin_ids,
                    ),
                })
                .collect();
            let hidden = storage::tracked_users::online_hidden(&self.db).await?;
            let mut messages = Vec::new();
            let mut stale = 0_usize;
            for event in &events {
                let Some(kind) = EventType::parse(&event.event_type) else {
                    continue;
                };
                if !shows_online_state(kind, event.tracked_user_id, &hidden) {
                    continue;
                }
                let targets = outbox::recipients(
                    kind,
                    event.tracked_user_id,
                    &chats,
                    &audience.subscriptions,
                    &audience.tracked_notify,
                    telling,
                );
                if targets.is_empty() {
                    continue;
                }
                if now - event.created_at > self.config.max_event_age() {
                    stale += 1;
                    continue;
                }
                let Some(text) = replies::notification(kind, &event.body) else {
                    continue;
                };
                messages.extend(targets.into_iter().map(|chat_id| NewBotMessage {
                    chat_id,
                    dedupe_key: event.id.clone(),
                    kind: event.event_type.clone(),
                    text: text.clone(),
                }));
            }
            if stale > 0 {
                tracing::warn!(
                    stale,
                    max_age_minutes = self.config.max_event_age_minutes,
                    "events too old to tell about were skipped"
                );
            }
            let handled = events.len();
            let ids = events.into_iter().map(|event| event.id).collect();
            storage::bot::queue_event_messages(&self.db, &messages, ids, now).await?;
            if !messages.is_empty() {
                tracing::debug!(messages = messages.len(), "notifications queued");
            }
            if (handled as u64) < FAN_OUT_BATCH {
                return Ok(());
            }
        }
    }

    /// Queues the digest of every chat that wants one and has not had the one due last.
    async fn queue_digests(&self) -> Result<(), StorageError> {
        let now = self.clock.now();
        let due = outbox::digest_due(now, self.config.digest_hour);
        let chats = storage::bot::chats_due_for_digest(&self.db, due).await?;
        if chats.is_empty() {
            return Ok(());
        }
        let mut text = None;
        for chat in chats {
            let owner = storage::telegram_users::get(&self.db, chat.owner_id).await?;
            let role = owner.map_or(Role::Banned, |owner| {
                effective_role(
                    owner.telegram_user_id,
                    Some(owner.role),
                    &self.config.admin_ids,
                )
            });
            if !role.allows(Role::User) {
                continue;
            }
            // The same summary for every chat: compute it once.
            if text.is_none() {
                let lines = stats_lines(&self.db, 24, now).await?;
                text = Some(replies::digest(&lines, now));
            }
            let message = NewBotMessage {
                chat_id: chat.chat_id,
                dedupe_key: format!("digest:{}", due.format("%Y-%m-%dT%H:%MZ")),
                kind: "digest".to_owned(),
                text: text.clone().unwrap_or_default(),
            };
            storage::bot::queue_digest(&self.db, &chat, message, due, now).await?;
        }
        Ok(())
    }

    async fn send_due(&self, senders: &mut JoinSet<()>) -> Result<(), StorageError> {
        let now = self.clock.now();
        let busy = self
            .busy
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let lease_until = now + self.clock_span(self.lease);
        let claimed = storage::bot::claim(&self.db, now, lease_until, CLAIM_BATCH, &busy).await?;
        // One sender per chat, its messages in the order they were queued.
        let mut chats: Vec<(i64, Vec<bot_messages::Model>)> = Vec::new();
        for message in claimed {
            match chats.iter_mut().find(|(chat, _)| *chat == message.chat_id) {
                Some((_, messages)) => messages.push(message),
                None => chats.push((message.chat_id, vec![message])),
            }
        }
        for (chat_id, messages) in chats {
            self.busy
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(chat_id);
            let notifier = self.clone();
            senders.spawn(async move {
                notifier.send_chat(messages).await;
                notifier
                    .busy
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .remove(&chat_id);
                // More of this chat's messages may have come due meanwhile.
                notifier.wake.notify_one();
            });
        }
        Ok(())
    }

    /// Sends a chat's claimed messages in order. After a failure the rest wait with the failed
    /// one (without counting a try), so the chat never sees them out of order.
    async fn send_chat(&self, messages: Vec<bot_messages::Model>) {
        let mut held_back: Option<(DateTime<Utc>, String)> = None;
        let mut refused: Option<String> = None;
        let mut waiting: Vec<uuid::Uuid> = messages.iter().map(|message| message.id).collect();
        for message in messages {
            let outcome = if let Some(error) = &refused {
                SendOutcome::Failed {
                    error: error.clone(),
                }
            } else if let Some((at, error)) = &held_back {
                SendOutcome::Retry {
                    at: *at,
                    error: error.clone(),
                    attempted: false,
                }
            } else {
                let outcome = self.send_renewing(&message, &waiting).await;
                match &outcome {
                    SendOutcome::Retry { at, error, .. } => {
                        held_back =
                            Some((*at, format!("waiting behind an earlier message: {error}")));
                    }
                    SendOutcome::Failed { error } => refused = Some(error.clone()),
                    SendOutcome::Sent { .. } => {}
                }
                outcome
            };
            waiting.retain(|id| *id != message.id);
            self.record(&message, outcome).await;
        }
    }

    /// Sends `message`, renewing the claims on the chat's `waiting` messages (it among them)
    /// every third of the lease meanwhile: a send can wait long (a 429's `retry_after`, a slow
    /// Telegram), and a claim that ran out would let the message be sent twice.
    async fn send_renewing(
        &self,
        message: &bot_messages::Model,
        waiting: &[uuid::Uuid],
    ) -> SendOutcome {
        let send = self.send(message);
        tokio::pin!(send);
        loop {
            tokio::select! {
                outcome = &mut send => return outcome,
                () = tokio::time::sleep(self.lease / 3) => {
                    let until = self.clock.now() + self.clock_span(self.lease);
                    if let Err(error) = storage::bot::extend_claims(&self.db, waiting, until).await {
                        tracing::warn!(%error, chat_id = message.chat_id, "could not renew the claims of a chat's notifications");
                    }
                }
            }
        }
    }

    async fn send(&self, message: &bot_messages::Model) -> SendOutcome {
        let sent = self
            .bot
            .send_message(ChatId(message.chat_id), &message.text)
            .await;
        let now = self.clock.now();
        let attempt = message.attempts + 1;
        match sent {
            Ok(sent) => {
                tracing::debug!(chat_id = message.chat_id, kind = %message.kind, attempt, "notification sent");
                SendOutcome::Sent {
                    telegram_message_id: sent.id.0,
                }
            }
            Err(error) => match outbox::classify(&error, self.token.expose()) {
                Failure::RetryAfter(wait) => {
                    tracing::warn!(
                        chat_id = message.chat_id,
                        attempt,
                        retry_after_seconds = wait.as_secs(),
                        "Telegram asked the bot to slow down"
                    );
                    SendOutcome::Retry {
                        at: now + self.clock_span(wait),
                        error: format!("429: retry after {} s", wait.as_secs()),
                        attempted: true,
                    }
                }
                Failure::Migrated(to) => {
                    tracing::info!(from = message.chat_id, to, "group moved to a supergroup");
                    if let Err(error) =
                        storage::bot::move_chat(&self.db, message.chat_id, to, now).await
                    {
                        tracing::error!(%error, "cannot move a chat to its supergroup");
                    }
                    SendOutcome::Retry {
                        at: now,
                        error: format!("the group moved to {to}"),
                        attempted: false,
                    }
                }
                Failure::Final(error) => {
                    tracing::warn!(chat_id = message.chat_id, %error, "Telegram refuses messages to this chat; it is marked inactive until its next /start");
                    if let Err(error) =
                        storage::bot::deactivate_chat(&self.db, message.chat_id, now).await
                    {
                        tracing::error!(%error, "cannot mark a chat inactive");
                    }
                    SendOutcome::Failed { error }
                }
                Failure::Transient(error) => {
                    let wait = outbox::retry_delay(&self.config.retry_schedule_seconds, attempt);
                    tracing::warn!(chat_id = message.chat_id, attempt, %error, retry_in_seconds = wait.as_secs_f64(), "notification not sent; will retry");
                    SendOutcome::Retry {
                        at: now + chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::MAX),
                        error,
                        attempted: true,
                    }
                }
            },
        }
    }

    /// Writes an outcome, trying again while the database is away: a sent message whose outcome
    /// is lost would be sent again when its lease ends.
    async fn record(&self, message: &bot_messages::Model, outcome: SendOutcome) {
        for attempt in 1.. {
            match storage::bot::record(&self.db, message, outcome.clone(), self.clock.now()).await {
                Ok(()) => return,
                Err(error) if attempt < 20 => {
                    tracing::error!(%error, attempt, "cannot record a notification's outcome; retrying");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                Err(error) => {
                    tracing::error!(%error, message_id = %message.id, "giving up recording a notification's outcome; it may be sent again");
                    return;
                }
            }
        }
    }
}
