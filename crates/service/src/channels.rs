//! Channel monitoring: adding, changing and removing channels, and keeping each one watched by
//! a healthy account.
//!
//! A channel is joined by the least-loaded usable account under its `max_channels` (or the one
//! asked for), through that account's live session. When an account is lost (banned, revoked,
//! parked after too many restarts), each of its channels moves to another account, which joins
//! and then reads the history after the last stored message id, so no post of the gap is lost;
//! with no account left the channel waits as `unassigned` (and an alert says so) until an
//! account becomes ready again. The same happens to the lost account's tracked users.

use std::sync::Arc;

use actix::Addr;
use sea_orm::DatabaseConnection;
use serde_json::json;
use uuid::Uuid;

use crate::{
    actors::{
        channels::{CatchUp, ChannelsActor, Unwatch, Watch},
        messages::{Loss, ResolveError},
        supervisor::{self, FleetSupervisor},
    },
    tracking::{Tracking, TrackingError},
};
use tgwatch_core::config::Origin;
use tgwatch_core::{
    assignment,
    clock::Clock,
    events::{Event, EventType},
};
use tgwatch_store::{
    self as storage, LogLevel, StorageError,
    channels::{AssignmentEnd, ChannelPatch, ChannelStatus, NewChannel},
    entities::channels,
    logs::LogLine,
};
use tgwatch_telegram::{
    ChannelRef, ChannelRefError, ChatKind, InputChannel, TelegramChannel, TelegramError,
    TelegramSession,
};

/// Messages read per `channel_history` call while catching up.
const CATCH_UP_PAGE: usize = 500;
/// Dialogs searched for a channel given by numeric id.
const DIALOGS_SEARCHED: usize = 500;

#[derive(Debug, thiserror::Error)]
pub enum ChannelError {
    #[error("{0}")]
    BadReference(#[from] ChannelRefError),
    #[error(
        "`channel` must be \"@name\", \"https://t.me/name\", \"https://t.me/+invitehash\" or a numeric channel id"
    )]
    BadInput,
    #[error(
        "channel {0} is not in any account's chats: a numeric id works only for a channel an account is already in; use @username or an invite link"
    )]
    UnknownId(i64),
    #[error("the channel is already monitored")]
    AlreadyMonitored(Box<channels::Model>),
    #[error("no account can take another channel: {0}")]
    NoAccountAvailable(String),
    #[error("account {0} does not exist")]
    UnknownAccount(Uuid),
    #[error("account `{0}` cannot take channels: it is {1}")]
    AccountUnusable(String, String),
    #[error("Telegram refused the join: {0}")]
    JoinFailed(TelegramError),
    #[error("no account could join the channel: {}", JoinAttempt::summary(.0))]
    NoAccountCouldJoin(Vec<JoinAttempt>),
    #[error(transparent)]
    Resolve(#[from] ResolveError),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Tracking(#[from] TrackingError),
}

/// One account's failed try at joining a channel.
#[derive(Clone, Debug, serde::Serialize, utoipa::ToSchema)]
pub struct JoinAttempt {
    pub account_id: Uuid,
    pub label: String,
    /// Why it failed.
    pub reason: String,
    /// Telegram says there is no such channel, or this account cannot see it.
    pub not_found: bool,
}

impl JoinAttempt {
    /// "`a`: reason; `b`: reason".
    pub fn summary(attempts: &[JoinAttempt]) -> String {
        attempts
            .iter()
            .map(|attempt| format!("`{}`: {}", attempt.label, attempt.reason))
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// `POST /api/channels` and `[[channels]]`.
#[derive(Clone, Debug)]
pub struct AddChannel {
    pub channel: ChannelInput,
    pub account_id: Option<Uuid>,
    pub tags: Vec<String>,
}

/// How a user names a channel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChannelInput {
    Reference(ChannelRef),
    /// A bare channel id: found among an account's dialogs.
    Id(i64),
}

impl std::fmt::Display for ChannelInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ChannelInput::Reference(reference) => write!(f, "{reference}"),
            ChannelInput::Id(id) => write!(f, "{id}"),
        }
    }
}

impl ChannelInput {
    /// A JSON string (`@name`, a t.me link, an invite link, or digits) or a JSON number, which
    /// reads as its digits would (a Bot API id `-100...` too).
    pub fn from_json(value: &serde_json::Value) -> Result<ChannelInput, ChannelError> {
        match value {
            serde_json::Value::Number(number) => number
                .as_i64()
                .ok_or(ChannelError::BadInput)
                .and_then(|id| ChannelInput::parse(&id.to_string())),
            serde_json::Value::String(text) => ChannelInput::parse(text),
            _ => Err(ChannelError::BadInput),
        }
    }

    pub fn parse(text: &str) -> Result<ChannelInput, ChannelError> {
        let trimmed = text.trim();
        // Bot API style ids (-100...) are accepted too.
        let digits = trimmed.strip_prefix("-100").unwrap_or(trimmed);
        if !digits.is_empty() && digits.chars().all(|c| c.is_ascii_digit()) {
            return digits
                .parse()
                .map(ChannelInput::Id)
                .map_err(|_| ChannelError::BadInput);
        }
        Ok(ChannelInput::Reference(ChannelRef::parse(trimmed)?))
    }
}

/// What [`Channels::add`] did.
#[derive(Debug)]
pub struct Added {
    pub channel: channels::Model,
    /// The channel had been removed and is monitored again as the same record.
    pub rejoined: bool,
}

/// The operations on channels; cheap to clone.
#[derive(Clone)]
pub struct Channels {
    pub db: DatabaseConnection,
    pub supervisor: Addr<FleetSupervisor>,
    pub router: Addr<ChannelsActor>,
    pub tracking: Tracking,
    pub clock: Clock,
    /// Where the alerts it commits go (webhooks, bot, live).
    pub publisher: crate::publish::Publisher,
    /// Held while a channel is added or joined again: two requests for the same channel at once
    /// would both pass the "already monitored" check and both join; one at a time, the second
    /// finds the first one's record.
    pub adding: Arc<tokio::sync::Mutex<()>>,
}

/// How a channel is named for a join by an account: its username or invite (access hashes are
/// per account), else the stored id and access hash.
fn reference_for(channel: &channels::Model) -> Option<ChannelRef> {
    if let Some(username) = &channel.username
        && let Ok(reference) = ChannelRef::parse(username)
    {
        return Some(reference);
    }
    if let Some(hash) = &channel.invite_hash
        && let Ok(reference) = ChannelRef::parse(&format!("+{hash}"))
    {
        return Some(reference);
    }
    Some(ChannelRef::Id(InputChannel {
        id: channel.telegram_channel_id?,
        access_hash: channel.access_hash?,
    }))
}

impl Channels {
    async fn session(&self, account_id: Uuid) -> Result<Arc<dyn TelegramSession>, ChannelError> {
        Ok(supervisor::account_session(&self.supervisor, account_id).await?)
    }

    /// The given account if it can take a channel, else the least-loaded one that can (never
    /// one of `excluded`): [`assignment::choose`] by channels (`max_channels`).
    async fn choose_account(
        &self,
        wanted: Option<Uuid>,
        excluded: &[Uuid],
    ) -> Result<Uuid, ChannelError> {
        let accounts = storage::accounts::all(&self.db).await?;
        let loads: Vec<assignment::Account> = accounts
            .iter()
            .map(|account| assignment::Account {
                id: account.id,
                label: &account.label,
                status: account.status,
                status_reason: account.status_reason.as_deref(),
                load: account.channels_count,
                capacity: account.max_channels,
            })
            .collect();
        assignment::choose(&loads, wanted, excluded, "max_channels").map_err(
            |refusal| match refusal {
                assignment::Refusal::Unknown(id) => ChannelError::UnknownAccount(id),
                assignment::Refusal::Unusable { label, status } => {
                    ChannelError::AccountUnusable(label, status)
                }
                assignment::Refusal::NoneAvailable(why) => ChannelError::NoAccountAvailable(why),
            },
        )
    }

    /// Adds a channel: joins it with an account and starts storing its messages. A channel that
    /// was removed before is joined again as the same record (its messages and assignment
    /// history kept).
    pub async fn add(&self, request: AddChannel, source: Origin) -> Result<Added, ChannelError> {
        let _adding = self.adding.lock().await;
        let now = self.clock.now();
        let (username, invite_hash) = match &request.channel {
            ChannelInput::Reference(ChannelRef::Username(name)) => {
                (Some(name.as_str().to_owned()), None)
            }
            ChannelInput::Reference(ChannelRef::Invite(hash)) => {
                (None, Some(hash.as_str().to_owned()))
            }
            _ => (None, None),
        };
        let telegram_id = match &request.channel {
            ChannelInput::Id(id) => Some(*id),
            ChannelInput::Reference(ChannelRef::Id(input)) => Some(input.id),
            ChannelInput::Reference(_) => None,
        };
        if let Some(existing) = storage::channels::find_existing(
            &self.db,
            telegram_id,
            username.as_deref(),
            invite_hash.as_deref(),
        )
        .await?
        {
            return Err(ChannelError::AlreadyMonitored(Box::new(existing)));
        }

        let (account_id, session, joined) = self.join_new(&request).await?;
        // The same channel under another name (its username and an invite link, say), or a
        // channel that was removed and comes back.
        let known = storage::channels::find_by_telegram_id(&self.db, joined.id).await?;
        if let Some(existing) = &known
            && existing.status != ChannelStatus::Left
        {
            return Err(ChannelError::AlreadyMonitored(Box::new(existing.clone())));
        }
        let (joined, newest) = details(session.as_ref(), joined).await;
        let new = NewChannel {
            username,
            invite_hash,
            tags: request.tags,
            source,
        };
        let (channel, rejoined) = match known {
            Some(left) => (
                storage::channels::rejoin(&self.db, left, new, &joined, account_id, newest, now)
                    .await?,
                true,
            ),
            None => match storage::channels::create_joined(
                &self.db, new, &joined, account_id, newest, now,
            )
            .await
            {
                Ok(channel) => (channel, false),
                // Stored meanwhile by another process on the same database.
                Err(error) if error.unique_violation().is_some() => {
                    let existing = storage::channels::find_by_telegram_id(&self.db, joined.id)
                        .await?
                        .ok_or(error)?;
                    return Err(ChannelError::AlreadyMonitored(Box::new(existing)));
                }
                Err(error) => return Err(error.into()),
            },
        };
        self.watch_joined(&channel, account_id, rejoined).await?;
        Ok(Added { channel, rejoined })
    }

    /// Joins a channel not monitored yet: with the account asked for, or else with the
    /// least-loaded account that can take it and, when that one fails, the next one, until one
    /// joins (seed 001's failover). When none can, the reason of each account is logged, an
    /// `alert` of kind `channel_join_failed` is raised, and the error lists them.
    async fn join_new(
        &self,
        request: &AddChannel,
    ) -> Result<(Uuid, Arc<dyn TelegramSession>, TelegramChannel), ChannelError> {
        if let Some(wanted) = request.account_id {
            let account_id = self.choose_account(Some(wanted), &[]).await?;
            let (session, joined) = self.join_with(account_id, &request.channel).await?;
            return Ok((account_id, session, joined));
        }
        let mut attempts: Vec<JoinAttempt> = Vec::new();
        loop {
            let tried: Vec<Uuid> = attempts.iter().map(|attempt| attempt.account_id).collect();
            let account_id = match self.choose_account(None, &tried).await {
                Ok(account_id) => account_id,
                Err(ChannelError::NoAccountAvailable(why)) if attempts.is_empty() => {
                    return Err(ChannelError::NoAccountAvailable(why));
                }
                Err(ChannelError::NoAccountAvailable(_)) => break,
                Err(error) => return Err(error),
            };
            match self.join_with(account_id, &request.channel).await {
                Ok((session, joined)) => return Ok((account_id, session, joined)),
                Err(
                    error @ (ChannelError::JoinFailed(_)
                    | ChannelError::Resolve(_)
                    | ChannelError::UnknownId(_)),
                ) => {
                    let label = storage::accounts::get(&self.db, account_id)
                        .await?
                        .map_or_else(|| account_id.to_string(), |account| account.label);
                    tracing::warn!(account = %label, %error, "an account could not join a channel; trying the next one");
                    attempts.push(JoinAttempt {
                        account_id,
                        label,
                        not_found: matches!(&error, ChannelError::JoinFailed(telegram) if telegram.is_not_found())
                            || matches!(error, ChannelError::UnknownId(_)),
                        reason: error.to_string(),
                    });
                }
                Err(error) => return Err(error),
            }
        }
        let channel = request.channel.to_string();
        let message = format!(
            "no account could join channel {channel}: {}",
            JoinAttempt::summary(&attempts)
        );
        self.alert(
            EventType::Alert,
            &message,
            json!({ "kind": "channel_join_failed", "channel": channel, "attempts": attempts }),
            None,
            None,
        )
        .await?;
        Err(ChannelError::NoAccountCouldJoin(attempts))
    }

    /// One account's try at joining: its session, the channel's reference as this account can
    /// use it, the join.
    async fn join_with(
        &self,
        account_id: Uuid,
        channel: &ChannelInput,
    ) -> Result<(Arc<dyn TelegramSession>, TelegramChannel), ChannelError> {
        let session = self.session(account_id).await?;
        let reference = match channel {
            ChannelInput::Reference(reference) => reference.clone(),
            // A channel removed before is no longer among the account's chats: its stored
            // name (or id and access hash) joins it again.
            ChannelInput::Id(id) => match storage::channels::find_by_telegram_id(&self.db, *id)
                .await?
                .and_then(|left| reference_for(&left))
            {
                Some(reference) => reference,
                None => find_in_dialogs(session.as_ref(), *id).await?,
            },
        };
        let joined = session
            .join_channel(&reference)
            .await
            .map_err(ChannelError::JoinFailed)?;
        Ok((session, joined))
    }

    /// Monitors again a channel that was removed: joined with `account_id` (or the least-loaded
    /// account), the same record, its messages and assignment history kept.
    pub async fn rejoin(
        &self,
        left: channels::Model,
        account_id: Option<Uuid>,
        source: Origin,
    ) -> Result<channels::Model, ChannelError> {
        let _adding = self.adding.lock().await;
        let now = self.clock.now();
        let left = storage::channels::get(&self.db, left.id)
            .await?
            .unwrap_or(left);
        if left.status != ChannelStatus::Left {
            // Joined again by another request meanwhile.
            return Ok(left);
        }
        let account_id = self.choose_account(account_id, &[]).await?;
        let session = self.session(account_id).await?;
        let reference = reference_for(&left).ok_or(ChannelError::BadInput)?;
        let joined = session
            .join_channel(&reference)
            .await
            .map_err(ChannelError::JoinFailed)?;
        let (joined, newest) = details(session.as_ref(), joined).await;
        let new = NewChannel {
            username: None,
            invite_hash: None,
            tags: Vec::new(),
            source,
        };
        let channel =
            storage::channels::rejoin(&self.db, left, new, &joined, account_id, newest, now)
                .await?;
        self.watch_joined(&channel, account_id, true).await?;
        Ok(channel)
    }

    /// A channel just stored as joined: its messages are routed, its account's count follows,
    /// and the log says so.
    async fn watch_joined(
        &self,
        channel: &channels::Model,
        account_id: Uuid,
        rejoined: bool,
    ) -> Result<(), ChannelError> {
        self.router.do_send(Watch(channel.clone()));
        storage::accounts::refresh_channels_count(&self.db, account_id).await?;
        let again = if rejoined { " again" } else { "" };
        LogLine::new(
            LogLevel::Info,
            format!("channel {} is monitored{again}", describe(channel)),
        )
        .account(account_id)
        .channel(channel.id)
        .source("channels")
        .write(&self.db, self.clock.now())
        .await;
        Ok(())
    }

    /// Changes tags or the pause flag, or moves the channel to another account.
    pub async fn update(
        &self,
        existing: channels::Model,
        patch: ChannelPatch,
    ) -> Result<channels::Model, ChannelError> {
        let now = self.clock.now();
        if let Some(account_id) = patch.account_id
            && existing.account_id != Some(account_id)
        {
            let target = self.choose_account(Some(account_id), &[]).await?;
            self.move_channel(
                &existing,
                target,
                AssignmentEnd::Left,
                "moved by an operator",
            )
            .await?;
            if let Some(previous) = existing.account_id {
                self.leave_quietly(previous, &existing).await;
                storage::accounts::refresh_channels_count(&self.db, previous).await?;
            }
        }
        let current = storage::channels::get(&self.db, existing.id)
            .await?
            .unwrap_or(existing);
        let updated =
            storage::channels::update_flags(&self.db, current, patch.tags, patch.is_active, now)
                .await?;
        self.router.do_send(Watch(updated.clone()));
        Ok(updated)
    }

    /// Stops monitoring: the account leaves the channel; stored messages stay.
    pub async fn remove(&self, existing: channels::Model) -> Result<(), ChannelError> {
        if let Some(account_id) = existing.account_id {
            self.leave_quietly(account_id, &existing).await;
        }
        storage::channels::set_unwatched(
            &self.db,
            existing.id,
            ChannelStatus::Left,
            AssignmentEnd::Left,
            "removed from monitoring",
            self.clock.now(),
        )
        .await?;
        if let Some(telegram_channel_id) = existing.telegram_channel_id {
            self.router.do_send(Unwatch {
                telegram_channel_id,
            });
        }
        if let Some(account_id) = existing.account_id {
            storage::accounts::refresh_channels_count(&self.db, account_id).await?;
        }
        Ok(())
    }

    async fn leave_quietly(&self, account_id: Uuid, channel: &channels::Model) {
        let (Some(id), Some(access_hash)) = (channel.telegram_channel_id, channel.access_hash)
        else {
            return;
        };
        let left = match self.session(account_id).await {
            Ok(session) => session
                .leave_channel(InputChannel { id, access_hash })
                .await
                .map_err(|error| error.to_string()),
            Err(error) => Err(error.to_string()),
        };
        if let Err(error) = left {
            tracing::warn!(%account_id, channel_id = id, %error, "could not leave the channel; it stays joined");
        }
    }

    /// Joins the channel with `account_id`, records the new assignment, and reads what was
    /// posted since the last stored message.
    async fn move_channel(
        &self,
        channel: &channels::Model,
        account_id: Uuid,
        end: AssignmentEnd,
        reason: &str,
    ) -> Result<usize, ChannelError> {
        let session = self.session(account_id).await?;
        let reference = reference_for(channel).ok_or(ChannelError::BadInput)?;
        let joined = session
            .join_channel(&reference)
            .await
            .map_err(ChannelError::JoinFailed)?;
        storage::channels::reassign(
            &self.db,
            channel.id,
            account_id,
            &joined,
            end,
            reason,
            self.clock.now(),
        )
        .await?;
        storage::accounts::refresh_channels_count(&self.db, account_id).await?;
        if let Some(updated) = storage::channels::get(&self.db, channel.id).await? {
            self.router.do_send(Watch(updated));
        }
        self.catch_up(session.as_ref(), joined.input(), channel.last_message_id)
            .await
    }

    /// Reads what `channels` of `account_id` posted after their `last_message_id`: the account
    /// was taken over from an instance that stopped or died, and nobody listened meanwhile. The
    /// rows are those read before the account started here (posts pushed since then raise
    /// `last_message_id` past the gap). Returns the messages read.
    pub async fn catch_up_account(
        &self,
        account_id: Uuid,
        channels: &[channels::Model],
    ) -> Result<usize, ChannelError> {
        let session = self.session(account_id).await?;
        let mut total = 0;
        for channel in channels {
            let (Some(id), Some(access_hash)) = (channel.telegram_channel_id, channel.access_hash)
            else {
                continue;
            };
            total += self
                .catch_up(
                    session.as_ref(),
                    InputChannel { id, access_hash },
                    channel.last_message_id,
                )
                .await?;
        }
        Ok(total)
    }

    /// Reads the history after `after_id` and hands it to the router (stored idempotently).
    async fn catch_up(
        &self,
        session: &dyn TelegramSession,
        channel: InputChannel,
        mut after_id: i32,
    ) -> Result<usize, ChannelError> {
        let mut total = 0;
        loop {
            let page = session
                .channel_history(channel, after_id, CATCH_UP_PAGE)
                .await
                .map_err(ChannelError::JoinFailed)?;
            let count = page.len();
            total += count;
            if let Some(last) = page.last() {
                after_id = last.id;
            }
            if !page.is_empty() {
                self.router.do_send(CatchUp {
                    telegram_channel_id: channel.id,
                    messages: page,
                });
            }
            if count < CATCH_UP_PAGE {
                return Ok(total);
            }
        }
    }

    /// An account can no longer be used: its channels and tracked users move to healthy
    /// accounts, and an alert tells operators.
    pub async fn on_account_lost(
        &self,
        account_id: Uuid,
        loss: Loss,
        reason: &str,
    ) -> Result<(), ChannelError> {
        let now = self.clock.now();
        let label = storage::accounts::get(&self.db, account_id)
            .await?
            .map(|account| account.label)
            .unwrap_or_else(|| account_id.to_string());
        let (event_type, kind) = match loss {
            Loss::Banned => (EventType::AccountBanned, "account_banned"),
            Loss::Parked => (EventType::Alert, "restart_storm"),
        };
        self.alert(
            event_type,
            &format!("account {label} is lost: {reason}"),
            json!({ "kind": kind, "account_id": account_id, "label": label, "reason": reason }),
            Some(account_id),
            None,
        )
        .await?;
        for channel in storage::channels::of_account(&self.db, account_id).await? {
            self.reassign(
                &channel,
                &[account_id],
                &format!("account {label} lost: {reason}"),
            )
            .await?;
        }
        storage::accounts::refresh_channels_count(&self.db, account_id).await?;
        self.tracking.reassign_from(account_id, now).await?;
        Ok(())
    }

    /// Moves one channel to the least-loaded healthy account, or parks it as unassigned.
    async fn reassign(
        &self,
        channel: &channels::Model,
        excluded: &[Uuid],
        reason: &str,
    ) -> Result<(), ChannelError> {
        let now = self.clock.now();
        let mut excluded = excluded.to_vec();
        loop {
            let account_id = match self.choose_account(None, &excluded).await {
                Ok(account_id) => account_id,
                Err(ChannelError::NoAccountAvailable(_)) => {
                    storage::channels::set_unwatched(
                        &self.db,
                        channel.id,
                        ChannelStatus::Unassigned,
                        AssignmentEnd::Reassigned,
                        "no healthy account with room",
                        now,
                    )
                    .await?;
                    self.alert(
                        EventType::Alert,
                        &format!(
                            "channel {} has no account: it waits until one is available",
                            describe(channel)
                        ),
                        json!({ "kind": "channel_unassigned", "channel_id": channel.id }),
                        None,
                        Some(channel.id),
                    )
                    .await?;
                    return Ok(());
                }
                Err(error) => return Err(error),
            };
            match self
                .move_channel(channel, account_id, AssignmentEnd::Reassigned, reason)
                .await
            {
                Ok(caught_up) => {
                    LogLine::new(
                        LogLevel::Warning,
                        format!(
                            "channel {} reassigned ({reason}); {caught_up} messages read back",
                            describe(channel)
                        ),
                    )
                    .account(account_id)
                    .channel(channel.id)
                    .source("supervisor")
                    .write(&self.db, now)
                    .await;
                    return Ok(());
                }
                Err(error @ (ChannelError::JoinFailed(_) | ChannelError::Resolve(_))) => {
                    self.alert(
                        EventType::Alert,
                        &format!(
                            "account could not join channel {}: {error}",
                            describe(channel)
                        ),
                        json!({ "kind": "join_failed", "channel_id": channel.id, "account_id": account_id, "error": error.to_string() }),
                        Some(account_id),
                        Some(channel.id),
                    )
                    .await?;
                    excluded.push(account_id);
                }
                Err(error) => return Err(error),
            }
        }
    }

    /// An account is connected and usable: unassigned channels and tracked users without an
    /// account are given out again.
    pub async fn on_account_ready(&self, _account_id: Uuid) -> Result<(), ChannelError> {
        for channel in storage::channels::unassigned(&self.db).await? {
            self.reassign(&channel, &[], "an account is available again")
                .await?;
        }
        self.tracking.adopt_orphans(self.clock.now()).await?;
        Ok(())
    }

    /// A critical log line and an event (webhooks and the bot deliver it).
    async fn alert(
        &self,
        event_type: EventType,
        message: &str,
        data: serde_json::Value,
        account_id: Option<Uuid>,
        channel_id: Option<Uuid>,
    ) -> Result<(), StorageError> {
        let now = self.clock.now();
        tracing::error!(message, "alert");
        let mut line = LogLine::new(LogLevel::Critical, message)
            .source("supervisor")
            .context(data.clone());
        line.account_id = account_id;
        line.channel_id = channel_id;
        line.write(&self.db, now).await;
        let mut data = data;
        data["message"] = json!(message);
        let mut event = Event::new(event_type, now, data);
        event.channel_id = channel_id;
        storage::webhooks::write_events(&self.db, std::slice::from_ref(&event)).await?;
        self.publisher.publish(vec![event]);
        Ok(())
    }
}

/// What Telegram says about a channel just joined (the join's answer when the details cannot be
/// read), and its newest message id: messages after it are stored, and a later catch-up starts
/// there.
async fn details(session: &dyn TelegramSession, joined: TelegramChannel) -> (TelegramChannel, i32) {
    let joined = match session.channel_info(joined.input()).await {
        Ok(full) => full,
        Err(error) => {
            tracing::warn!(%error, channel_id = joined.id, "cannot read the channel's details");
            joined
        }
    };
    let newest = session
        .chat_history(ChatKind::Channel.chat_id(joined.id), 0, 1)
        .await
        .ok()
        .and_then(|messages| messages.first().map(|message| message.id))
        .unwrap_or(0);
    (joined, newest)
}

/// A numeric id is joined through the account's dialogs, where its access hash is.
async fn find_in_dialogs(
    session: &dyn TelegramSession,
    channel_id: i64,
) -> Result<ChannelRef, ChannelError> {
    let dialogs = session
        .dialogs(DIALOGS_SEARCHED)
        .await
        .map_err(ChannelError::JoinFailed)?;
    dialogs
        .iter()
        .find(|dialog| dialog.kind == ChatKind::Channel && dialog.id == channel_id)
        .and_then(|dialog| {
            Some(ChannelRef::Id(InputChannel {
                id: channel_id,
                access_hash: dialog.access_hash?,
            }))
        })
        .ok_or(ChannelError::UnknownId(channel_id))
}

/// How a channel is named in logs and alerts.
pub fn describe(channel: &channels::Model) -> String {
    match (
        &channel.username,
        &channel.title,
        channel.telegram_channel_id,
    ) {
        (Some(username), _, _) => format!("@{username}"),
        (None, Some(title), _) => format!("\"{title}\""),
        (None, None, Some(id)) => format!("{id}"),
        (None, None, None) => channel.id.to_string(),
    }
}

/// Acts on what account actors report: a lost account's work moves to healthy accounts, a
/// ready account takes the work that waited. One report at a time, in order, so that two
/// reassignments never race for the same channel.
pub async fn look_after_accounts(
    channels: Channels,
    mut reports: tokio::sync::mpsc::UnboundedReceiver<crate::actors::messages::AccountHealth>,
) {
    while let Some(report) = reports.recv().await {
        let outcome = match &report {
            crate::actors::messages::AccountHealth::Lost {
                account_id,
                loss,
                reason,
            } => channels.on_account_lost(*account_id, *loss, reason).await,
            crate::actors::messages::AccountHealth::Ready(account_id) => {
                channels.on_account_ready(*account_id).await
            }
        };
        if let Err(error) = outcome {
            tracing::error!(?report, %error, "could not move work after an account change");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_input_accepts_names_links_and_ids() {
        assert_eq!(
            ChannelInput::parse("-1001234").ok(),
            Some(ChannelInput::Id(1234))
        );
        assert_eq!(ChannelInput::parse("987").ok(), Some(ChannelInput::Id(987)));
        assert!(matches!(
            ChannelInput::parse("https://t.me/+AbC_12"),
            Ok(ChannelInput::Reference(ChannelRef::Invite(_)))
        ));
        assert!(ChannelInput::parse("no spaces allowed").is_err());
        assert!(ChannelInput::from_json(&serde_json::json!(-3)).is_err());
        assert!(ChannelInput::from_json(&serde_json::json!(null)).is_err());
    }
}
